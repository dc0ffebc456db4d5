"""The bundled notebooks: pairing, parameters, nbval on the sample, papermill with other parameters.

* every notebook is paired with a py:percent file (jupytext) holding the same cells;
* every notebook's parameters cell declares the same typed, commented parameters
  (:data:`crosssell.report.PARAMETERS`) and the cell after it validates them;
* nbval runs each notebook top to bottom on its defaults (``--nbval-lax``) and compares the
  outputs of the cells marked ``# NBVAL_CHECK_OUTPUT`` (the headline ratio and its definition,
  the tier counts, the strongest pairs) with the ones saved in the notebook;
* papermill runs each focused notebook with non-default parameters, and the test reads back what
  the run recorded in its manifest.

The main report with non-default parameters is rendered (and opened in a browser) in
test_browser.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import pytest
from conftest import SAMPLE, shared_file

from crosssell import report

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NAMES = [p.stem for p in NOTEBOOKS]


def test_the_bundled_notebooks_are_there():
    assert NAMES == ["affinity", "churn_satisfaction", "cohorts", "cross_sell_report", "explore"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_paired_with_a_percent_script_in_sync(path):
    script = path.with_suffix(".py")
    assert script.exists(), f"{script.name} is missing: run jupytext --sync {path.name}"
    nb = nbformat.read(str(path), as_version=4)
    assert nb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    text = jupytext.read(str(script))
    ours = [(c.cell_type, c.source.strip()) for c in nb.cells]
    theirs = [(c.cell_type, c.source.strip()) for c in text.cells]
    assert ours == theirs, f"{path.name} and {script.name} differ: run jupytext --sync notebooks/{script.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_parameters_cell_and_validation(path):
    import papermill as pm

    declared = pm.inspect_notebook(str(path))
    assert list(declared) == list(report.PARAMETERS)
    for name, spec in report.PARAMETERS.items():
        got = declared[name]
        assert got["inferred_type_name"] == spec.type_name, name
        assert got["help"] == spec.help, name
        if name != "title":  # each notebook has its own default title
            assert eval(got["default"]) == spec.default, name  # noqa: S307 - literals we wrote
    nb = nbformat.read(str(path), as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    after = nb.cells[i + 1].source
    assert after.count("report.check_parameters(") == 1
    for name in report.PARAMETERS:
        assert f"{name}={name}" in after, f"{path.name}: {name} is not validated"
    assert "report.load_data(params)" in after


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_checked_outputs_are_saved(path):
    """nbval only compares cells saved with outputs: each notebook has at least one."""
    nb = nbformat.read(str(path), as_version=4)
    checked = [c for c in nb.cells if c.cell_type == "code" and report.CHECK_MARK in c.source]
    assert checked and all(c.outputs for c in checked), (
        f"{path.name}: run crosssell.report.store_checked_outputs({path.stem!r})"
    )
    others = [c for c in nb.cells if c.cell_type == "code" and report.CHECK_MARK not in c.source]
    assert not any(c.get("outputs") for c in others), "only the checked cells keep outputs"


def test_saved_headline_is_the_sample_headline(sample_data):
    """The headline saved in the main notebook is what the package computes on the sample now."""
    nb = nbformat.read(str(ROOT / "notebooks" / "cross_sell_report.ipynb"), as_version=4)
    (cell,) = [c for c in nb.cells if report.CHECK_MARK in c.source]
    saved = cell.outputs[0]["data"]["text/plain"]
    params = report.check_parameters()
    assert saved == repr(report.headline(sample_data, params))
    assert "Definition: distinct products sold in the period (net of returns) / customers active in the " \
           "period; not counted: CORE" in saved


@pytest.mark.slow
def test_nbval_runs_every_notebook_on_the_sample():
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
           "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"), "-q", "-o", "addopts=",
           *[str(p) for p in NOTEBOOKS]]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "failed" not in run.stdout.splitlines()[-1]


# --------------------------------------------------------------------------------------------
# papermill with non-default parameters


def _render(tmp_path, notebook, **params):
    res = report.render(notebook, parameters=params, out=tmp_path)
    assert res.ok, f"{res.error}\n{res.error.source if res.error else ''}"
    return res.manifest


def _customers(**where) -> int:
    cust = pd.read_csv(SAMPLE / "customers.csv", dtype=str)
    for k, v in where.items():
        cust = cust[cust[k] == v]
    return len(cust)


@pytest.mark.slow
def test_cohorts_with_a_segment_and_years(tmp_path):
    man = _render(tmp_path, "cohorts", period="Y", segment={"plan": "Pro"}, title="Pro cohorts")
    # the segment filter really filtered, and by (unset) fell on the next attribute
    assert man["data"]["in_report"]["customers"] == _customers(plan="Pro")
    assert man["parameters"]["period"] == "Y"
    assert man["headline"]["period"] == "2024" and man["headline"]["segment"] == {"plan": ["Pro"]}
    assert man["headline"]["previous_period"] == "2023"
    summary = man["metrics"]["decomposition_tenure"]
    assert summary["change"] == pytest.approx(summary["mix"] + summary["within"] + summary["interaction"])
    assert "figures/cohort_ratio.png" in man["figures"]


@pytest.mark.slow
def test_churn_with_other_tiers_and_horizon(tmp_path):
    man = _render(tmp_path, "churn_satisfaction", tier_bins="0,1,2+", horizon=6, segment={"region": "Europe"})
    # three tiers, as asked; their customers add up to the segment's active customers
    tiers = man["metrics"]["tier_customers"]
    assert list(tiers) == ["0", "1", "2+"]
    cust = pd.read_csv(SAMPLE / "customers.csv", dtype=str)
    active = cust[(cust["region"] == "Europe") & cust["churn_date"].isna()]
    assert sum(tiers.values()) == len(active)
    assert man["parameters"]["horizon"] == 6 and man["parameters"]["tier_bins"] == "0,1,2+"
    churn = pd.read_csv(tmp_path / "churn_satisfaction" / "tables" / "churn_by_tier.csv", dtype={"tier": str})
    assert churn["tier"].tolist() == ["0", "1", "2+"]
    page = (tmp_path / "churn_satisfaction" / "report.html").read_text()
    assert 'alt="Churn within 6 months by add-on tier"' in page  # the figure, described


@pytest.mark.slow
def test_affinity_by_region_and_a_date(tmp_path):
    man = _render(tmp_path, "affinity", by="region", reference_date="2024-06-30", segment={"channel": "web"})
    assert man["data"]["reference_date"] == "2024-06-30"
    # customers who signed up after the reference date are excluded, and the segment applied
    cust = pd.read_csv(SAMPLE / "customers.csv", dtype=str)
    kept = cust[(cust["channel"] == "web") & (cust["signup_date"] <= "2024-06-30")]
    assert man["data"]["in_report"]["customers"] == len(kept)
    rates = man["metrics"]["recommendation_hit_rate"]
    assert set(rates) == {"next_best_product", "popularity"} and all(0 <= v <= 1 for v in rates.values())
    assert man["metrics"]["top_pairs"][0]["lift"] > 1


@pytest.mark.slow
def test_explore_monthly_over_a_range(tmp_path):
    man = _render(tmp_path, "explore", period="M", start="2024-01-01", end="2024-06-30", by="channel")
    latest = man["metrics"]["latest_ratio"]
    assert latest["period"] == "2024-06" and latest["complete"] is True
    import crosssell as cs

    direct = cs.cross_sell_ratio(cs.load(SAMPLE), period="M", start="2024-01-01", end="2024-06-30")
    assert latest["ratio"] == pytest.approx(float(direct["ratio"].iloc[-1]))


# --------------------------------------------------------------------------------------------
# the real data sets, through their mapping files (skipped when ../shared/data is absent)


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize(("folder", "mapping"),
                         [("telco_churn", "telco"), ("bank_churn", "bank"), ("online_retail", "online_retail")])
def test_main_report_renders_real_data(tmp_path, folder, mapping):
    data = shared_file(folder)
    man = _render(tmp_path, "cross_sell_report", data_path=str(data),
                  mapping_file=str(ROOT / "data" / "examples" / f"{mapping}.yml"), title=f"{folder} report")
    assert man["data"]["rows"]["customers"]["rows_read"] > 1000
    assert man["headline"]["ratio"] > 0
    assert json.dumps(man)  # serialisable to the end
    if folder == "online_retail":
        # the transaction log's exclusions reach the data-quality appendix, counted
        lines = man["data"]["rows"]["purchases"]
        assert lines["rows_read"] == 541_909
        assert "no customer id: 135,080" in lines["excluded_because"]
