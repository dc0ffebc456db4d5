"""crosssell: the cross-sell ratio, computed under an explicit definition and analysed honestly.

>>> import crosssell as cs
>>> data = cs.load(cs.sample_path())
>>> cs.cross_sell_ratio(data, period="Q").tail(1)  # doctest: +SKIP
"""

from pathlib import Path

from . import errors
from .adapters import connect_spark, from_counts, from_transactions, from_wide
from .affinity import (
    AcquisitionOrder,
    acquisition_order,
    affinity,
    evaluate_recommendations,
    next_best_product,
    whitespace,
)
from .cohorts import cohort_table, decompose_change, maturity, simpson_check, trend
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
from .outcomes import (
    SurvivalResult,
    churn_by_tier,
    churn_model,
    cltv_by_tier,
    compare_naive,
    landmark,
    overselling,
    satisfaction_by_tier,
    survival_by_tier,
    tiers,
    upsell,
)

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``cs.plots`` imports matplotlib and seaborn: loaded when a figure is first asked for
    if name == "plots":
        import importlib

        return importlib.import_module(".plots", __name__)
    raise AttributeError(f"module 'crosssell' has no attribute {name!r}")


def sample_path() -> Path:
    """The folder of the bundled sample data (``data/sample`` of the repository)."""
    here = Path(__file__).resolve().parent.parent / "data" / "sample"
    return here


__all__ = [
    "AcquisitionOrder",
    "acquisition_order",
    "affinity",
    "evaluate_recommendations",
    "next_best_product",
    "whitespace",
    "SurvivalResult",
    "churn_by_tier",
    "churn_model",
    "cltv_by_tier",
    "compare_naive",
    "landmark",
    "overselling",
    "satisfaction_by_tier",
    "survival_by_tier",
    "tiers",
    "upsell",
    "cohort_table",
    "decompose_change",
    "maturity",
    "simpson_check",
    "trend",
    "CrossSellData",
    "Definition",
    "arpu",
    "connect",
    "connect_spark",
    "cross_sell_ratio",
    "customer_products",
    "errors",
    "from_counts",
    "from_frames",
    "from_ibis",
    "from_transactions",
    "from_wide",
    "load",
    "multi_product_rate",
    "penetration",
    "periods",
    "plots",
    "product_distribution",
    "sample_path",
    "validate",
]
