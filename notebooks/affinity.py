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
# # Affinity and next best products
#
# Products that go together, the order customers buy them in, next best products with an honest
# evaluation, and white space by segment. Render with `crosssell report affinity --data PATH`.

# %%
# ruff: noqa: UP045  (papermill reads Optional[...] annotations, not X | None)
from typing import Optional

import crosssell as cs
from crosssell import plots, report

report.setup_notebook()

# %% tags=["parameters"]
title: str = "Affinity and next best products"  # report title shown at the top
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
# ## Products that go together
#
# Lift between the most held products (1 = independent); only pairs significant after the
# Benjamini–Hochberg correction carry a number.

# %%
# NBVAL_CHECK_OUTPUT
pairs = cs.affinity(data)
strongest = pairs[pairs["significant"]].head(3)
rec.metric(top_pairs=strongest[["product_a", "product_b", "lift"]].to_dict(orient="records"))
print(report.Table(strongest[["product_a", "product_b", "customers_both", "lift", "lift_low", "lift_high"]]))

# %%
ax = plots.lift_heatmap(pairs)
rec.figure("lift", ax, headline=True)

# %%
rec.table("affinity", pairs, show=pairs.head(20))

# %% [markdown]
# ## Acquisition order
#
# Which product customers start with, what follows, and how long a second product takes (a
# Kaplan–Meier estimate: customers without a second product are censored, not left out).

# %%
order = cs.acquisition_order(data)
ax = plots.transition_flow(order)
rec.figure("transitions", ax)
report.note(repr(order))

# %%
rec.table("first_products", order.first)

# %%
rec.table("time_to_second", order.time_to_second)

# %%
rec.table("paths", order.paths, show=order.paths.head(15))

# %% [markdown]
# ## Next best products
#
# For each customer, what customers who hold the same products hold too; evaluated by hiding
# each customer's latest product and checking whether it comes back, against suggesting the most
# popular products.

# %%
evaluation = cs.evaluate_recommendations(data, k=3, by=by)
ax = plots.recommendation_eval(evaluation)
rec.figure("recommendations", ax)
rec.metric(recommendation_hit_rate=report.hit_rates(evaluation))
rec.table("recommendation_evaluation", evaluation)

# %%
nbp = cs.next_best_product(data, k=3, by=by)
rec.table("next_best_products", nbp, show=report.top_recommendations(nbp))

# %% [markdown]
# ## White space
#
# Product penetration per segment beside the best segment's: where cross-sell is untapped.

# %%
space = None
if by is not None:
    space = cs.whitespace(data, by=by)
    ax = plots.whitespace_heatmap(space)
    rec.figure("whitespace", ax)
rec.table("whitespace", space, empty="No segment attribute to compare by.", show=None if space is None else space.head(15))
