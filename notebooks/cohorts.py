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
# # Cohorts and maturity
#
# Cohort tables, maturity curves and why the ratio moved: mix against real change, and
# Simpson's paradox. Render with `crosssell report cohorts --data PATH`.

# %%
# ruff: noqa: UP045  (papermill reads Optional[...] annotations, not X | None)
from typing import Optional

from IPython.display import display

import crosssell as cs
from crosssell import plots, report

report.setup_notebook()

# %% tags=["parameters"]
title: str = "Cohorts and maturity"  # report title shown at the top
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
# ## Headline

# %%
# NBVAL_CHECK_OUTPUT
trend = cs.trend(data, period=params.period, basis=params.basis, target=params.target_ratio, **params.date_range)
head = report.headline(data, params, trend=trend)
rec.metric(headline=head.as_dict())
display(head)

# %% [markdown]
# ## Trend by tenure
#
# The ratio per period for each tenure band: a ratio that only grows because customers age is not
# a cross-sell improvement.

# %%
by_tenure = cs.trend(data, period=params.period, by="tenure_band", basis=params.basis, **params.date_range)
ax = plots.trend(by_tenure, title="Cross-sell ratio by tenure band")
rec.figure("trend_by_tenure", ax, headline=True)

# %%
rec.table("trend_by_tenure", by_tenure,
          show=by_tenure.pivot(index="period", columns="tenure_band", values="ratio"))

# %% [markdown]
# ## Cohort tables
#
# Signup cohorts down, calendar periods across: products held per customer, the share holding
# two or more, and how many of each cohort are still customers.

# %%
cohort_ratio = cs.cohort_table(data, cohort=params.period, period=params.period, **params.date_range)
ax = plots.cohort_heatmap(cohort_ratio, title="Products held per customer, by signup cohort")
rec.figure("cohort_ratio", ax)

# %%
cohort_multi = cs.cohort_table(data, cohort=params.period, period=params.period, metric="multi_product_rate",
                               **params.date_range)
ax = plots.cohort_heatmap(cohort_multi, title="Share holding two or more products, by signup cohort")
rec.figure("cohort_multi_product", ax)

# %%
cohort_retention = cs.cohort_table(data, cohort=params.period, period=params.period, metric="retention",
                                   **params.date_range)
ax = plots.cohort_heatmap(cohort_retention, title="Share of each cohort still a customer")
rec.figure("cohort_retention", ax)

# %%
rec.table("cohort_ratio", cohort_ratio,
          show=cohort_ratio.pivot(index="cohort", columns="period", values="ratio"))

# %% [markdown]
# ## Maturity
#
# Cohorts compared at the same age since signup, and the pooled curve with its interval; then the
# same curve for each value of the `by` attribute.

# %%
maturity = cs.maturity(data, cohort="Y", step="M", max_age=min(params.horizon * 3, 60))
ax = plots.maturity_curves(maturity, title="Products held by months since signup, per signup year")
rec.figure("maturity", ax)

# %%
maturity_by = None
if by is not None:
    maturity_by = cs.maturity(data, cohort="Y", step="M", max_age=min(params.horizon * 3, 60), by=by)
    pooled = maturity_by[maturity_by["pooled"]]
    rec.table("maturity_by_segment", maturity_by,
              show=pooled.pivot(index="age", columns=by, values="ratio").iloc[::3])
else:
    report.note("No segment attribute to compare by.")

# %% [markdown]
# ## Why the ratio moved
#
# The latest change split into mix and within-group change, by tenure band and by signup cohort,
# and a check that the pooled direction holds within the `by` segments (Simpson's paradox).

# %%
decomposition = None
if head.previous_period is not None:
    decomposition = cs.decompose_change(data, start=head.previous_period, end=head.period, by="tenure_band",
                                        period=params.period, basis=params.basis)
    ax = plots.decomposition(decomposition)
    rec.figure("decomposition_tenure", ax)
    rec.metric(decomposition_tenure=decomposition.attrs["summary"])
rec.table("decomposition_tenure", decomposition, empty="One period only: nothing to decompose.")

# %%
by_cohort = None
if head.previous_period is not None:
    by_cohort = cs.decompose_change(data, start=head.previous_period, end=head.period, by="cohort",
                                    period=params.period, basis=params.basis)
    ax = plots.decomposition(by_cohort)
    rec.figure("decomposition_cohort", ax)
rec.table("decomposition_cohort", by_cohort, empty="One period only: nothing to decompose.")

# %%
simpson = None
if head.previous_period is not None and by is not None:
    simpson = cs.simpson_check(data, compare="period", strata=by, a=head.previous_period, b=head.period,
                               period=params.period, basis=params.basis)
rec.table("simpson_check", simpson, empty="Nothing to compare: one period, or no segment attribute.")

# %% [markdown]
# ## Data quality (appendix)

# %%
quality = report.quality_tables(data)
rec.table("data_quality", quality["rows"])

# %%
rec.table("exclusions", quality["excluded"], empty="Nothing was excluded.")
