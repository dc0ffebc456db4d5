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
# # Churn and satisfaction
#
# Satisfaction and churn by add-on tier, corrected for tenure and survivorship, over-selling
# flags and lifetime value. Render with `crosssell report churn_satisfaction --data PATH`.

# %%
# ruff: noqa: UP045  (papermill reads Optional[...] annotations, not X | None)
from typing import Optional

import crosssell as cs
from crosssell import plots, report

report.setup_notebook()

# %% tags=["parameters"]
title: str = "Churn and satisfaction by tier"  # report title shown at the top
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
# ## Tiers
#
# Each active customer's add-on count at the reference date, grouped into the `tier_bins`.

# %%
# NBVAL_CHECK_OUTPUT
tiers = cs.tiers(data, bins=params.bins)
tier_counts = tiers.groupby("tier", observed=False).size().rename("customers").reset_index()
rec.metric(tier_customers=dict(zip(tier_counts["tier"].astype(str), tier_counts["customers"], strict=True)))
rec.table("tiers", tier_counts)

# %% [markdown]
# ## Satisfaction by tier
#
# CSAT and NPS per tier with their intervals, and the rank correlation between the number of
# products and the score.

# %%
satisfaction = None
if data.surveys is not None:
    satisfaction = cs.satisfaction_by_tier(data, bins=params.bins)
    ax = plots.tier_bars(satisfaction, y="csat", title="CSAT by add-on tier")
    rec.figure("csat_by_tier", ax)
    rec.metric(spearman=satisfaction.attrs.get("spearman"))
rec.table("satisfaction_by_tier", satisfaction, empty="No surveys in this data.")

# %%
if satisfaction is not None and (satisfaction["kind"] == "nps").any():
    ax = plots.tier_bars(satisfaction, y="nps", title="NPS by add-on tier")
    rec.figure("nps_by_tier", ax)

# %% [markdown]
# ## Churn: naive against corrected
#
# The naive comparison (products on the last day against churned-or-not) flatters cross-sell:
# customers who stay longer both accumulate products and are, by definition, the survivors. The
# landmark and time-varying estimates measure the tier before the churn they are compared with.

# %%
naive_vs_corrected = None
if data.has_churn:
    naive_vs_corrected = cs.compare_naive(data, bins=params.bins, horizon=params.horizon_text, adjust=by)
    rec.metric(churn_reading=naive_vs_corrected.attrs.get("reading"))
report.note(naive_vs_corrected.attrs.get("reading", "") if naive_vs_corrected is not None else "No churn dates in this data.")

# %%
if naive_vs_corrected is not None:
    ax = plots.naive_vs_corrected(naive_vs_corrected, title="Churn by tier: naive against corrected")
    rec.figure("naive_vs_corrected", ax, headline=True)
rec.table("naive_vs_corrected", naive_vs_corrected, empty="No churn dates in this data.")

# %%
churn = None
if data.has_churn:
    churn = cs.churn_by_tier(data, horizon=params.horizon_text, bins=params.bins)
    ax = plots.tier_bars(churn, title=f"Churn within {params.horizon} months by add-on tier")
    rec.figure("churn_by_tier", ax)
rec.table("churn_by_tier", churn, empty="No churn dates in this data.")

# %% [markdown]
# ## Survival from a landmark
#
# Kaplan–Meier curves by the tier held 90 days after signup, with the log-rank test and the
# restricted mean survival time.

# %%
survival = None
if data.has_churn:
    survival = cs.survival_by_tier(data, at="90D", bins=params.bins)
    ax = plots.survival_curves(survival)
    rec.figure("survival", ax)
    rec.metric(logrank_p=float(survival.logrank["p_value"].iloc[0]))
rec.table("survival_summary", None if survival is None else survival.summary, empty="No churn dates in this data.")

# %%
landmark = cs.landmark(data, at="90D", horizon=params.horizon_text, bins=params.bins) if data.has_churn else None
rec.table("landmark", landmark, empty="No churn dates in this data.")

# %% [markdown]
# ## Cox model with time-varying product count
#
# Hazard ratios by tier, adjusted for the `by` attribute and the signup year.

# %%
model = None
if data.has_churn:
    model = cs.churn_model(data, bins=params.bins, adjust=by)
    ax = plots.forest(model)
    rec.figure("churn_model", ax)
rec.table("churn_model", model, empty="No churn dates in this data.")

# %% [markdown]
# ## Over-selling

# %%
oversell = cs.overselling(data, bins=params.bins) if data.has_churn else None
flags = [] if oversell is None else list(oversell.attrs.get("flags", []))
rec.metric(overselling_flags=flags)
report.bullets(flags, empty="No over-selling flag.")

# %%
rec.table("overselling_checks", oversell, empty="No churn dates in this data.",
          show=None if oversell is None else oversell[oversell["flagged"]][["check", "subject", "measure", "evidence"]])

# %% [markdown]
# ## Value and upsell
#
# Customer lifetime value by tier over the next two years (no extrapolation), and sales split
# into cross-sell and upsell.

# %%
cltv = None
if data.has_churn and "revenue" in data.purchases.columns:
    cltv = cs.cltv_by_tier(data, bins=params.bins)
    ax = plots.tier_bars(cltv, y="cltv", title="Customer lifetime value (next two years) by tier")
    rec.figure("cltv_by_tier", ax)
rec.table("cltv_by_tier", cltv, empty="CLTV needs revenue and churn dates.")

# %%
rec.table("upsell", cs.upsell(data, period=params.period, **params.date_range))
