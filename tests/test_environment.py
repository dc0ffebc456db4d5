"""environment.yml (conda) and pyproject.toml (pip) must name the same dependencies and bounds."""

from __future__ import annotations

import re
import tomllib

import yaml
from conftest import ROOT

# conda-forge names that differ from PyPI's
CONDA_NAMES = {"duckdb": "python-duckdb"}
# conda-forge packages the conda environment needs that are not Python requirements
CONDA_ONLY = {"python", "pip"}


def _split(req: str) -> tuple[str, str]:
    """'ibis-framework[duckdb]>=12.0,<13' -> ('ibis-framework', '>=12.0,<13')."""
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", req)
    assert m, req
    return m.group(1).lower(), m.group(3).replace(" ", "")


def pyproject_requirements() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in ("lab", "test"):
        reqs += meta["optional-dependencies"][extra]
    out = {}
    for r in reqs:
        name, spec = _split(r)
        out[CONDA_NAMES.get(name, name)] = spec
    return out


def conda_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):  # the pip: section installs the package itself
            assert dep == {"pip": ["-e ."]}, dep
            continue
        name, spec = _split(dep)
        if name not in CONDA_ONLY:
            out[name] = spec
    return out


def test_environment_matches_pyproject():
    pip_side, conda_side = pyproject_requirements(), conda_requirements()
    assert set(pip_side) == set(conda_side), (
        f"only in pyproject: {sorted(set(pip_side) - set(conda_side))}; "
        f"only in environment.yml: {sorted(set(conda_side) - set(pip_side))}"
    )
    differ = {k: (pip_side[k], conda_side[k]) for k in pip_side if pip_side[k] != conda_side[k]}
    assert not differ, f"version bounds differ (pyproject, environment.yml): {differ}"


def test_environment_pins_python_311():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python>=3.11" in env["dependencies"]
    assert "conda-forge" in env["channels"]


def test_lock_satisfies_pyproject():
    """Every pinned version in requirements.lock satisfies pyproject's bounds."""
    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"]) + [r for extra in meta["optional-dependencies"].values() for r in extra]
    bad = []
    for r in reqs:
        req = Requirement(r)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in requirements.lock"
        if not req.specifier.contains(pins[name], prereleases=True):
            bad.append(f"{name}=={pins[name]} vs {req.specifier}")
    assert not bad, bad
