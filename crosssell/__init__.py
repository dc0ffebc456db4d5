"""crosssell: the cross-sell ratio, computed under an explicit definition and analysed honestly.

>>> import crosssell as cs
>>> data = cs.load(cs.sample_path())
>>> cs.cross_sell_ratio(data, period="Q").tail(1)  # doctest: +SKIP
"""

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


def sample_path() -> Path:
    """The folder of the bundled sample data (``data/sample`` of the repository)."""
    here = Path(__file__).resolve().parent.parent / "data" / "sample"
    return here


__all__ = [
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
    "product_distribution",
    "sample_path",
    "validate",
]
