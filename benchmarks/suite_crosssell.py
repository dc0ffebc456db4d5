"""The core metrics suite through crosssell: ``cs.load`` on the Parquet folder, then the functions.

The results are reduced to the canonical columns the harness compares (the period as text such
as ``2024Q3``); that reshaping is a few rows and costs nothing measurable.
"""

from __future__ import annotations

import crosssell as cs


def load(folder, reference_date):
    """``cs.load`` on the Parquet folder: validation runs here, the tables stay lazy."""
    return cs.load(folder, reference_date=reference_date)


def _periods_as_text(frame):
    if "period" in frame.columns:
        frame = frame.assign(period=frame["period"].astype(str))
    return frame.reset_index(drop=True)


def suite(data) -> dict:
    """The core metrics suite, as {name: callable returning the canonical frame}."""
    ratio_cols = ["numerator", "denominator", "ratio"]
    return {
        "overall_ratio": lambda: cs.cross_sell_ratio(data)[ratio_cols],
        "product_distribution": lambda: cs.product_distribution(data)[["products", "customers", "share"]],
        "ratio_by_cohort_q": lambda: _periods_as_text(
            cs.cross_sell_ratio(data, period="Q", by="cohort")[["period", "cohort", *ratio_cols]]
        ),
        "ratio_by_plan_q": lambda: _periods_as_text(
            cs.cross_sell_ratio(data, period="Q", by="plan")[["period", "plan", *ratio_cols]]
        ),
        "penetration": lambda: cs.penetration(data)[
            ["product_id", "customers", "population", "share", "attach_rate"]
        ],
    }
