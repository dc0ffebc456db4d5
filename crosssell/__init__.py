"""crosssell: the cross-sell ratio, computed under an explicit definition and analysed honestly.

>>> import crosssell as cs
>>> data = cs.load(cs.sample_path())
>>> cs.cross_sell_ratio(data, period="Q").tail(1)  # doctest: +SKIP

``import crosssell`` loads only the data contract, the engine and the core metrics.  The
analysis modules (cohorts, outcomes, affinity, adapters) bring scipy and statsmodels with them,
and ``plots`` brings matplotlib and seaborn; each is imported the first time one of its names is
used (``cs.cohort_table``, ``from crosssell import churn_by_tier``), so a script or a worker that
only needs the ratio does not pay for them.
"""

import importlib
import sys
import types
from pathlib import Path

from . import errors
from .data import CrossSellData, from_frames, from_ibis, load, validate
from .engine import connect
from .metrics import (
    Definition,
    arpu,
    cross_sell_ratio,
    customer_products,
    multi_product_rate,
    penetration,
    periods,
    product_distribution,
)

__version__ = "0.1.0"

#: public name -> the submodule that defines it, imported on first use
_LAZY = {
    **dict.fromkeys(["connect_spark", "from_counts", "from_transactions", "from_wide"], "adapters"),
    **dict.fromkeys(
        ["AcquisitionOrder", "acquisition_order", "affinity", "evaluate_recommendations",
         "next_best_product", "whitespace"],
        "affinity",
    ),
    **dict.fromkeys(["cohort_table", "decompose_change", "maturity", "simpson_check", "trend"], "cohorts"),
    **dict.fromkeys(
        ["SurvivalResult", "churn_by_tier", "churn_model", "cltv_by_tier", "compare_naive", "landmark",
         "overselling", "satisfaction_by_tier", "survival_by_tier", "tiers", "upsell"],
        "outcomes",
    ),
}


class _Package(types.ModuleType):
    """The package's module type: keeps ``cs.affinity`` the function.

    The first import of the submodule ``crosssell.affinity`` binds the package attribute
    ``affinity`` to that module (the import system does it); the public name is the function.
    """

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name == "plots":
        return importlib.import_module(".plots", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'crosssell' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


def sample_path() -> Path:
    """The folder of the bundled sample data (``data/sample`` of the repository)."""
    here = Path(__file__).resolve().parent.parent / "data" / "sample"
    return here


__all__ = [
    *_LAZY,
    "CrossSellData",
    "Definition",
    "arpu",
    "connect",
    "cross_sell_ratio",
    "customer_products",
    "errors",
    "from_frames",
    "from_ibis",
    "load",
    "multi_product_rate",
    "penetration",
    "periods",
    "plots",
    "product_distribution",
    "sample_path",
    "validate",
]
