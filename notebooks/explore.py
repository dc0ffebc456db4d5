# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=["remove_cell"]
# # Explore
#
# A template for ad-hoc work on your own data: set `data_path` (and `mapping_file` if your
# columns have other names) in the parameters cell, run it, then add cells below.

# %%
# ruff: noqa: UP045  (papermill reads Optional[...] annotations, not X | None)
from typing import Optional

from IPython.display import display

import crosssell as cs
from crosssell import plots, report

report.setup_notebook()

# %% tags=["parameters"]
title: str = "Exploration"  # report title shown at the top
data_path: str = ""  # folder with customers, purchases [, surveys, products]; empty: the bundled sample
mapping_file: Optional[str] = None  # YAML column or adapter mapping (see data/examples/*.yml); None: contract names
reference_date: Optional[str] = None  # as-of date YYYY-MM-DD; None: the latest date in the data
period: str = "Q"  # M, Q or Y
start: Optional[str] = None  # first day of the date range YYYY-MM-DD; None: from the start
end: Optional[str] = None  # last day of the date range YYYY-MM-DD; None: to the reference date
segment: dict = {}  # segment filter {attribute: value or [values]}, e.g. {"plan": "Pro"}; {}: everyone
by: Optional[str] = None  # customer attribute to compare segments by; None: the first attribute of the data
tier_bins: str = "0,1,2,3-4,5+"  # add-on tiers: counts and ranges, the last open (5+ means 5 or more)
horizon: int = 12  # months: churn and survival horizon
target_ratio: Optional[float] = None  # goal for the cross-sell ratio, drawn on the trend
basis: str = "sold"  # sold (in the period) or held (at the period end)
output_dir: Optional[str] = None  # where figures, tables and metrics.json go; crosssell report sets it

# %%
# Validate the parameters (stops here with one message listing every bad value), then load.
params = report.check_parameters(
    title=title, data_path=data_path, mapping_file=mapping_file, reference_date=reference_date,
    period=period, start=start, end=end, segment=segment, by=by, tier_bins=tier_bins,
    horizon=horizon, target_ratio=target_ratio, basis=basis, output_dir=output_dir,
)
data = report.load_data(params)
by = report.resolve_by(params, data)
rec = report.Recorder(params)
rec.record_data(data)
rec.metric(by=by)
report.title_block(params, data)

# %% [markdown]
# ## What was loaded
#
# Rows read and excluded per table, the segment attributes, the reference date.

# %%
print(data)
rec.table("data_quality", report.quality_tables(data)["rows"])

# %% [markdown]
# ## The ratio, three ways
#
# Sold in the period, held at its end, and per `by` segment. Change `basis`, `count` or
# `customers` below to see how much the definition matters.

# %%
# NBVAL_CHECK_OUTPUT
ratio = cs.cross_sell_ratio(data, period=params.period, basis=params.basis, **params.date_range)
rec.metric(latest_ratio=report.jsonable(ratio.iloc[-1].to_dict()))
print(f"Cross-sell ratio = {ratio.attrs['definition']['text']}")
print(report.Table(ratio.tail(4)))

# %%
held = cs.cross_sell_ratio(data, period=params.period, basis="held", **params.date_range)
ax = plots.ratio_bars(held, title="Products held at the end of each period, per customer")
rec.figure("ratio_held", ax, headline=True)

# %%
if by is not None:
    segments = cs.cross_sell_ratio(data, by=by, basis="held", **params.date_range)
    display(report.Table(segments))

# %% [markdown]
# ## Your analysis
#
# Everything in `crosssell` takes `data` first. A few starting points:
#
# ```python
# cs.product_distribution(data)                     # 0, 1, 2, ... products
# cs.cohort_table(data, metric="retention")         # who stays
# cs.churn_by_tier(data, horizon="12M")             # churn by tier
# cs.affinity(data).head(10)                        # products that go together
# data.where(plan="Pro")                            # any segment
# ```

# %%
dist = cs.product_distribution(data, **params.date_range)
ax = plots.distribution(dist)
rec.figure("distribution", ax)
