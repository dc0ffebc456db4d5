"""The package's public face: every exported name resolves, and ``import crosssell`` stays lean.

The analysis modules bring scipy and statsmodels, ``plots`` brings matplotlib and seaborn, and the
Spark adapter Ibis's PySpark compiler: a script that only needs the ratio should not pay for them
(about 0.9 s per process here), so ``crosssell/__init__.py`` imports them on first use.
"""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import crosssell as cs

HEAVY = ["scipy", "statsmodels", "matplotlib", "seaborn", "pyspark", "crosssell.outcomes",
         "crosssell.affinity", "crosssell.cohorts", "crosssell.adapters"]


def test_import_does_not_load_the_analysis_stack():
    code = ("import sys, crosssell; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_public_name_resolves_to_what_its_module_defines():
    import crosssell.affinity  # noqa: F401  (the submodule import must not shadow the function)
    from crosssell import cohorts, outcomes

    for name in cs.__all__:
        assert getattr(cs, name) is not None, name
    assert isinstance(cs.affinity, types.FunctionType)
    assert cs.cohort_table is cohorts.cohort_table
    assert cs.churn_by_tier is outcomes.churn_by_tier
    assert set(cs.__all__) <= set(dir(cs))


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_function"):
        cs.no_such_function  # noqa: B018
