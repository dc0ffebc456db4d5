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
# # Cross-sell report
#
# The main report: the cross-sell ratio under an explicit definition, its trend and spread,
# and what goes with it. Every cell calls the `crosssell` package; run it top to bottom on the
# bundled sample, or render it for your data with
# `crosssell report --data PATH -p period M -p segment plan=Pro`.

# %%
# ruff: noqa: UP045  (papermill reads Optional[...] annotations, not X | None)
from typing import Optional

from IPython.display import display

import crosssell as cs
from crosssell import plots, report

report.setup_notebook()

# %% tags=["parameters"]
title: str = "Cross-sell report"  # report title shown at the top
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
#
# The latest complete period's cross-sell ratio with its 95 % interval, the change against the
# period before (its interval accounts for the customers both periods share), and the exact
# definition used.

# %%
# NBVAL_CHECK_OUTPUT
trend = cs.trend(data, period=params.period, basis=params.basis, target=params.target_ratio, **params.date_range)
head = report.headline(data, params, trend=trend)
rec.metric(headline=head.as_dict())
display(head)

# %% [markdown]
# ## Trend
#
# The ratio per period with its 95 % interval; a triangle marks a change from the previous period
# whose interval excludes zero, a hollow marker a period the reference date cuts short.

# %%
ax = plots.trend(trend, title=f"Cross-sell ratio per period ({params.period})")
rec.figure("trend", ax, headline=True)

# %%
rec.table("trend", trend, show=trend.assign(
    ratio=report.interval_text(trend["ratio"], trend["ci_low"], trend["ci_high"], digits=3),
    change=report.interval_text(trend["change"], trend["change_low"], trend["change_high"], digits=3),
)[["period", "complete", "customers", "numerator", "ratio", "change", "change_significant"]])

# %% [markdown]
# ## By segment
#
# The same trend for each value of the `by` attribute, each with its own interval.

# %%
by_trend = None
if by is not None:
    by_trend = cs.trend(data, period=params.period, by=by, basis=params.basis, target=params.target_ratio,
                        **params.date_range)
    ax = plots.trend(by_trend, title=f"Cross-sell ratio by {by}")
    rec.figure("trend_by_segment", ax)

# %%
rec.table(
    "trend_by_segment", by_trend, empty="No segment attribute to compare by.",
    show=None if by_trend is None else by_trend.pivot(index="period", columns=by, values="ratio"),
)

# %% [markdown]
# ## Distribution
#
# How many counted products customers hold at the end of the range, and the share holding two or
# more (with a Wilson interval).

# %%
dist = cs.product_distribution(data, basis="held", **params.date_range)
ax = plots.distribution(dist)
rec.figure("distribution", ax)

# %%
multi = cs.multi_product_rate(data, basis="held", by=by, **params.date_range)
rec.table("multi_product_rate", multi)

# %% [markdown]
# ## Penetration
#
# The share of customers who hold each product, and its attach rate (over the customers who hold
# anything).

# %%
pen = None
if data.has_product_ids:
    pen = cs.penetration(data, basis="held", **params.date_range)
    ax = plots.penetration_bars(pen)
    rec.figure("penetration", ax)

# %%
rec.table("penetration", pen, empty="Penetration needs product identities; this data has only a count per customer.")

# %% [markdown]
# ## Cohorts and maturity
#
# Signup cohorts down, calendar periods across: a young customer base lowers the ratio without
# any customer changing. The maturity curves compare cohorts at the same age.

# %%
cohorts = cs.cohort_table(data, cohort=params.period, period=params.period, **params.date_range)
ax = plots.cohort_heatmap(cohorts, title="Cross-sell ratio by signup cohort (products held)")
rec.figure("cohorts", ax)

# %%
maturity = cs.maturity(data, cohort="Y", step="M", max_age=min(params.horizon * 3, 60))
ax = plots.maturity_curves(maturity, title="Products held by months since signup, per signup year")
rec.figure("maturity", ax)

# %% [markdown]
# ### Why the ratio moved
#
# The change of the headline split into mix (customers shifting between tenure bands), the bands'
# own change, and their interaction; and whether the pooled direction holds within the bands
# (Simpson's paradox).

# %%
decomposition = None
if head.previous_period is not None:
    decomposition = cs.decompose_change(data, start=head.previous_period, end=head.period, by="tenure_band",
                                        period=params.period, basis=params.basis)
    ax = plots.decomposition(decomposition)
    rec.figure("decomposition", ax)
    rec.metric(decomposition=decomposition.attrs["summary"])

# %%
simpson = None
if head.previous_period is not None:
    simpson = cs.simpson_check(data, compare="period", strata="tenure_band", a=head.previous_period,
                               b=head.period, period=params.period, basis=params.basis)
    rec.metric(simpson_flag=bool(simpson.attrs.get("paradox", False)))
rec.table("simpson_check", simpson, empty="One period only: nothing to decompose.")

# %% [markdown]
# ## Satisfaction and churn by tier
#
# Customers grouped into tiers by the number of add-ons they hold. Satisfaction (CSAT, NPS) per
# tier, then churn: the naive comparison (products on the last day against churned-or-not) beside
# the landmark and time-varying estimates that remove survivorship bias.

# %%
satisfaction = None
if data.surveys is not None:
    satisfaction = cs.satisfaction_by_tier(data, bins=params.bins)
    ax = plots.tier_bars(satisfaction, title="Satisfaction by add-on tier")
    rec.figure("satisfaction_by_tier", ax)
rec.table(
    "satisfaction_by_tier", satisfaction, empty="No surveys in this data: satisfaction is not available.",
    show=None if satisfaction is None else satisfaction.assign(
        mean_score=report.interval_text(satisfaction["mean_score"], satisfaction["mean_low"],
                                        satisfaction["mean_high"]),
        satisfied=report.interval_text(satisfaction["satisfied_share"], satisfaction["satisfied_low"],
                                       satisfaction["satisfied_high"]),
        nps=report.interval_text(satisfaction["nps"], satisfaction["nps_low"], satisfaction["nps_high"], digits=1),
    )[["tier", "kind", "responses", "mean_score", "satisfied", "nps", "small"]],
)

# %%
naive_vs_corrected = None
if data.has_churn:
    naive_vs_corrected = cs.compare_naive(data, bins=params.bins, horizon=params.horizon_text, adjust=by)
    rec.metric(churn_reading=naive_vs_corrected.attrs.get("reading"))
    ax = plots.naive_vs_corrected(naive_vs_corrected, title="Churn by tier: naive against corrected")
    rec.figure("churn_naive_vs_corrected", ax)
rec.table(
    "churn_naive_vs_corrected", naive_vs_corrected, empty="No churn dates in this data: churn is not available.",
    show=None if naive_vs_corrected is None else naive_vs_corrected.assign(
        estimate=report.interval_text(naive_vs_corrected["estimate"], naive_vs_corrected["low"],
                                      naive_vs_corrected["high"])
    ).pivot(index="tier", columns="method", values="estimate"),
)

# %%
report.note(naive_vs_corrected.attrs.get("reading", "")) if naive_vs_corrected is not None else None

# %%
churn = None
if data.has_churn:
    churn = cs.churn_by_tier(data, horizon=params.horizon_text, bins=params.bins)
    ax = plots.tier_bars(churn, title=f"Churn within {params.horizon} months by add-on tier")
    rec.figure("churn_by_tier", ax)
rec.table("churn_by_tier", churn, empty="No churn dates in this data.", show=None if churn is None else churn.assign(
    churn_rate=report.interval_text(churn["churn_rate"], churn["ci_low"], churn["ci_high"], digits=3),
)[["tier", "customers", "churned", "churn_rate", "small"]])

# %% [markdown]
# ## Over-selling
#
# Where more cross-sell goes with more churn or less satisfaction: tiers past the best one,
# add-ons cancelled quickly or followed by lower satisfaction, segments where cross-sell grows
# while satisfaction falls. Only checks whose interval says the harm is real are flagged; the
# table of every check is saved with the report.

# %%
oversell = cs.overselling(data, bins=params.bins) if data.has_churn else None
flags = [] if oversell is None else list(oversell.attrs.get("flags", []))
rec.metric(overselling_flags=flags)
report.bullets(flags, empty="No over-selling flag.")

# %%
# the flagged checks; every check (flagged or not) is in tables/overselling_checks.csv
rec.table("overselling_checks", oversell, empty="No churn dates in this data.",
          show=None if oversell is None else oversell[oversell["flagged"]][["check", "subject", "measure", "evidence"]])

# %% [markdown]
# ## Affinity and next best products
#
# Which products customers hold together (lift: 1 means independent; only significant pairs carry
# a number), what each customer's peers hold that they do not, and how well those suggestions
# would have predicted each customer's latest product compared with simply suggesting the most
# popular ones.

# %%
pairs = None
if data.has_product_ids:
    pairs = cs.affinity(data)
    ax = plots.lift_heatmap(pairs)
    rec.figure("affinity", ax)
rec.table("affinity", pairs, empty="Affinity needs product identities.",
          show=None if pairs is None else pairs[pairs["significant"]].head(10)[[
              "product_a", "product_b", "customers_both", "confidence_a_to_b", "confidence_b_to_a", "lift",
              "p_adjusted"]])

# %%
evaluation = None
if data.has_product_ids:
    evaluation = cs.evaluate_recommendations(data, k=3)
    ax = plots.recommendation_eval(evaluation)
    rec.figure("recommendations", ax)
    rec.metric(recommendation_hit_rate=report.hit_rates(evaluation))
rec.table("recommendation_evaluation", evaluation, empty="Recommendations need product identities.")

# %%
# every active customer's next best products are saved with the report; shown: how often each
# product is the first suggestion
nbp = cs.next_best_product(data, k=3) if data.has_product_ids else None
rec.table("next_best_products", nbp, empty="Recommendations need product identities.",
          show=None if nbp is None else report.top_recommendations(nbp))

# %% [markdown]
# ## Data quality (appendix)
#
# Rows read, used and excluded per table and why, the warnings raised while loading, and the
# sha256 of every input file.

# %%
quality = report.quality_tables(data)
rec.table("data_quality", quality["rows"])

# %%
rec.table("exclusions", quality["excluded"], empty="Nothing was excluded.")

# %%
rec.table("warnings", quality["warnings"], empty="No data-quality warnings.")

# %%
rec.table("fingerprint", quality["fingerprint"], empty="The data came from frames or engine tables: no files to fingerprint.")
