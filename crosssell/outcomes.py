"""Outcomes: satisfaction and churn by cross-sell tier, without fooling yourself.

"Do customers with more products churn less and like us more?" is easy to answer wrongly.
Customers who stay longer accumulate products *and* are, by definition, the survivors, so a naive
comparison (products a customer has now against whether they have left) flatters cross-sell.
This module gives the naive answer beside answers that handle tenure:

* :func:`tiers` — each customer's product count and tier at a date;
* :func:`satisfaction_by_tier` — CSAT mean and share satisfied, NPS, Spearman correlation;
* :func:`churn_by_tier` — churn within a horizon among customers followed for all of it;
* :func:`survival_by_tier` — Kaplan–Meier curves from a landmark, log-rank test, RMST;
* :func:`landmark` — tier measured at a landmark, churn counted only after it;
* :func:`churn_model` — Cox model with the product count as a time-varying covariate;
* :func:`compare_naive` — the naive and the corrected estimates in one table, with a reading;
* :func:`overselling` — tiers, products and segments where more cross-sell goes with more
  churn or less satisfaction;
* :func:`cltv_by_tier` and :func:`upsell` — value by tier, upsell kept apart from cross-sell.

Products and counts follow :mod:`crosssell.metrics`: a customer *holds* a product at the end of a
day when its purchases up to that day, less those cancelled (``ended_at``) by then, net to a
positive quantity; base products (catalog ``is_base``), ``exclude`` and (customer, product)
pairs returned in full never count; a churned customer holds nothing.  Tiers are intervals of that count: ``bins=(1, 2, 3, 5)`` gives the
tiers ``"0"``, ``"1"``, ``"2"``, ``"3–4"`` and ``"5+"``.

Table work (who holds what when, the counting-process rows of the Cox model) runs in the engine;
only one row per customer (or per response, or per interval of the time-varying model) comes back
to pandas for the statistics, which use statsmodels (``SurvfuncRight``, ``survdiff``, ``PHReg``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import stats as _sps

from . import engine
from .data import CrossSellData
from .errors import (
    CapabilityError,
    ColumnNotFoundError,
    ConvergenceWarning,
    DataQualityWarning,
    MissingTableError,
    ParameterError,
    PeriodError,
    SmallSampleWarning,
)
from .metrics import (
    PERIOD_CODES,
    _counted,
    _exclusions,
    _periods_table,
    _split_by,
    periods,
)
from .stats import (
    adjust_pvalues,
    difference_interval,
    mean_from_moments,
    nps_interval,
    phreg,
    ratio_of_sums,
    risk_ratio_interval,
    rmst,
    spearman_interval,
    wilson_interval,
    z_value,
)

__all__ = [
    "DEFAULT_BINS",
    "SurvivalResult",
    "tiers",
    "tier_labels",
    "satisfaction_by_tier",
    "churn_by_tier",
    "survival_by_tier",
    "landmark",
    "churn_model",
    "compare_naive",
    "overselling",
    "cltv_by_tier",
    "upsell",
]

#: lower edges of the tiers: "0", "1", "2", "3–4", "5+"
DEFAULT_BINS = (1, 2, 3, 5)
DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_YEAR = 365.25
_EPOCH = pd.Timestamp("1970-01-01")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dwmy])\s*$", re.IGNORECASE)
_UNIT_DAYS = {"d": 1.0, "w": 7.0, "m": DAYS_PER_MONTH, "y": DAYS_PER_YEAR}
#: a log hazard ratio (or its standard error) beyond this (a ratio of 22,000) is a diverged fit
_MAX_LOG_HR = 10.0


# --------------------------------------------------------------------------------------------
# arguments


def _duration(value, name: str, *, allow_zero: bool = True) -> int:
    """A duration in whole days: ``"365D"``, ``"12W"``, ``"6M"`` (months of 30.44 days),
    ``"2Y"``, a number of days or a :class:`pandas.Timedelta`."""
    days = None
    if isinstance(value, bool):
        days = None
    elif isinstance(value, int | np.integer | float | np.floating):
        days = float(value)
    elif isinstance(value, pd.Timedelta):
        days = value / pd.Timedelta(days=1)
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            days = float(m.group(1)) * _UNIT_DAYS[m.group(2).lower()]
    if days is None or not np.isfinite(days):
        raise ParameterError(
            f"{name} must be a duration such as '365D', '12W', '6M', '2Y' or a number of days, "
            f"not {value!r}"
        )
    days = int(round(days))
    if days < 0 or (days == 0 and not allow_zero):
        raise ParameterError(f"{name} must be {'positive' if not allow_zero else '0 or more'}, not {value!r}")
    return days


def _is_duration(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | np.integer | float | np.floating | pd.Timedelta):
        return True
    return isinstance(value, str) and bool(_DURATION.match(value))


def _day(ts: pd.Timestamp) -> int:
    """Days since 1970-01-01, the engine's ``epoch_days``."""
    return int((pd.Timestamp(ts).normalize() - _EPOCH).days)


def _from_day(day) -> pd.Timestamp:
    return _EPOCH + pd.Timedelta(days=int(day))


def _as_of(data: CrossSellData, value, name: str = "as_of") -> pd.Timestamp:
    """A date on or before the reference date."""
    if value is None:
        return data.reference_date.normalize()
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        ts = pd.NaT
    if pd.isna(ts):
        raise ParameterError(f"{name} must be a date such as '2024-06-30', not {value!r}")
    ts = ts.normalize()
    if ts > data.reference_date:
        raise PeriodError(
            f"{name} {ts.date()} is after the reference date {data.reference_date.date()}; "
            "nothing after it is known"
        )
    return ts


def _check_bins(bins) -> tuple[int, ...]:
    try:
        out = tuple(int(b) for b in bins)
    except (TypeError, ValueError):
        raise ParameterError(f"bins must be increasing whole numbers such as (1, 2, 3, 5), not {bins!r}") from None
    if not out or any(b != float(x) for b, x in zip(out, bins, strict=True)):
        raise ParameterError(f"bins must be increasing whole numbers such as (1, 2, 3, 5), not {bins!r}")
    if out[0] < 1 or any(b >= c for b, c in zip(out, out[1:], strict=False)):
        raise ParameterError(
            f"bins must be strictly increasing whole numbers starting at 1 or more (the lower edge "
            f"of each tier), not {bins!r}"
        )
    return out


def tier_labels(bins=DEFAULT_BINS) -> list[str]:
    """The readable tier labels of ``bins``, lowest first.

    The counts below the first edge form the first tier.

    Examples
    --------
    >>> tier_labels((1, 2, 3, 5))
    ['0', '1', '2', '3–4', '5+']
    >>> tier_labels((2, 4))
    ['0–1', '2–3', '4+']
    """
    b = _check_bins(bins)
    labels = ["0" if b[0] == 1 else f"0–{b[0] - 1}"]
    for lo, nxt in zip(b, b[1:], strict=False):
        labels.append(str(lo) if nxt - 1 == lo else f"{lo}–{nxt - 1}")
    labels.append(f"{b[-1]}+")
    return labels


def _tier_index(n, bins) -> np.ndarray:
    """Index into :func:`tier_labels` of each count (pandas/numpy side)."""
    return np.searchsorted(np.asarray(bins, dtype=float), np.asarray(n, dtype=float), side="right")


def _tier_case(n: ir.NumericValue, bins, labels) -> ir.StringValue:
    """The tier label of a count (engine side; the same edges as :func:`_tier_index`)."""
    branches = [(n < bins[0], labels[0])]
    branches += [(n < bins[i + 1], labels[i + 1]) for i in range(len(bins) - 1)]
    return ibis.cases(*branches, else_=labels[-1])


def _tier_dtype(bins) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(tier_labels(bins), ordered=True)


def _check_ci(ci) -> float:
    z_value(ci)  # raises ParameterError for a bad level
    return float(ci)


def _check_min(min_customers) -> int:
    if isinstance(min_customers, bool) or not isinstance(min_customers, int | np.integer) or min_customers < 0:
        raise ParameterError(f"min_customers must be a whole number, 0 or more, not {min_customers!r}")
    return int(min_customers)


def _require_churn(data: CrossSellData, purpose: str) -> None:
    if not data.has_churn:
        raise MissingTableError(
            f"{purpose} needs churn dates (customers.churn_date), and this data has none; map the "
            "column holding the date a customer left with columns={'YourColumn': 'churn_date'}, "
            "or build the data with an adapter that derives churn (a churn flag, inactivity)"
        )


def _attributes(data: CrossSellData, names, purpose: str) -> list[str]:
    if names is None:
        return []
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name not in data.attributes:
            raise ColumnNotFoundError(
                f"{purpose}: {name!r} is not a customer attribute; the attributes are: "
                f"{', '.join(data.attributes) or 'none'}"
            )
    return names


def _by(data: CrossSellData, by) -> list[str]:
    cust, prod = _split_by(data, by)
    if prod:
        raise ParameterError(f"tiers are per customer: group by customer attributes, not {prod}")
    return cust


def _products_flags(data: CrossSellData, products) -> list[str]:
    if products is None:
        return []
    items = [products] if isinstance(products, str) else [str(p) for p in products]
    if items and not data.has_product_ids:
        raise CapabilityError("products= needs product identities, and this data only has a product count")
    known = set(data.products_list())
    unknown = [p for p in items if p not in known]
    if unknown:
        raise ParameterError(f"products names product(s) never purchased: {unknown}; known: {sorted(known)[:10]}")
    return items


def _cohort_unit(cohort) -> str | None:
    if cohort is None:
        return None
    if cohort not in PERIOD_CODES:
        raise ParameterError(f"cohort must be 'M', 'Q', 'Y' or None, not {cohort!r}")
    return cohort


def _small(frame: pd.DataFrame, min_customers: int, what: str, column: str = "customers") -> pd.DataFrame:
    """Flag groups under ``min_customers`` in ``small``; warn about the non-empty ones."""
    frame["small"] = frame[column] < min_customers
    small = frame[frame["small"] & (frame[column] > 0)]
    if len(small):
        keys = [c for c in frame.columns if c in ("tier",) or c in frame.attrs.get("by", [])]
        names = ", ".join(
            f"{'/'.join(str(r[k]) for k in keys)} ({int(r[column])})" for _, r in small.head(8).iterrows()
        )
        warnings.warn(
            f"{what}: {len(small)} group(s) have fewer than min_customers={min_customers} "
            f"{column}: {names}; they are kept and flagged in the 'small' column",
            SmallSampleWarning,
            stacklevel=3,
        )
    return frame


def _finish(frame: pd.DataFrame, data: CrossSellData, **attrs) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame.attrs["reference_date"] = str(data.reference_date.date())
    frame.attrs["filters"] = dict(data.filters)
    frame.attrs["excluded"] = data.excluded()
    frame.attrs["base_products"] = data.base_products()
    for k, v in attrs.items():
        frame.attrs[k] = v
    return frame


def _count_text(bins, exclude, data) -> str:
    base = data.base_products()
    skip = sorted(set(base) | set(exclude))
    labels = ", ".join(tier_labels(bins))
    return (
        "tier = distinct products held (net of returns and cancellations"
        + (f"; not counted: {', '.join(skip)}" if skip else "")
        + f"), in tiers {labels}"
    )


# --------------------------------------------------------------------------------------------
# engine-side building blocks


def _customer_days(data: CrossSellData, cols=()) -> ir.Table:
    """Customers with their signup (``__s``) and churn (``__c``, null if active) as epoch days."""
    c = data.customers
    return c.select(
        "customer_id", *cols, __s=c.signup_date.epoch_days(), __c=c.churn_date.epoch_days()
    )


def _kept(data: CrossSellData, exclude: tuple) -> ir.Table:
    """Counted purchases of the (customer, product) pairs that are not fully returned.

    As in :mod:`crosssell.metrics`, a pair whose purchases net to zero or less by the reference
    date never counts, sold or held (bought in March and returned in April: not held at the end
    of March either).
    """
    p = _counted(data, exclude)
    net = p.group_by(["customer_id", "product_id"]).aggregate(__net=p.quantity.sum())
    return p.semi_join(net.filter(net["__net"] > 0), ["customer_id", "product_id"])


def _held_at(data: CrossSellData, points: ir.Table, exclude: tuple, flags=()) -> ir.Table:
    """Products held at the end of a day, per point.

    ``points`` has a unique key ``__k``, ``customer_id`` and ``__day`` (epoch day).  A product is
    held when its purchases dated on or before the day, less those cancelled (``ended_at``) on or
    before it, net to a positive quantity: the "held" basis of :mod:`crosssell.metrics` at a
    period whose end is the next day.  An optional ``__endday`` moves the cancellation cutoff
    (the naive "last day" of a churned customer counts what they held when the day began, and
    churn cancels everything on its day).  Returns ``points`` with ``__n`` (distinct products held)
    and, per product in ``flags``, ``__f0``, ``__f1`` … (1 when held).  Fully returned pairs never
    count (see :func:`_kept`).
    """
    p = _kept(data, exclude)
    p = p.select(
        "customer_id", "product_id", "quantity",
        __pd=p.purchased_at.cast("date").epoch_days(), __ed=p.ended_at.epoch_days(),
    )
    endday = points["__endday"] if "__endday" in points.columns else points["__day"]
    pts = points.select("__k", "customer_id", "__day", __cut=endday)
    j = p.join(pts, "customer_id")
    j = j.filter((j["__pd"] <= j["__day"]) & (j["__ed"].isnull() | (j["__ed"] > j["__cut"])))
    per = j.group_by(["__k", "product_id"]).aggregate(__q=j.quantity.sum())
    per = per.filter(per["__q"] > 0)
    aggs = {"__n": per.count()}
    for i, f in enumerate(flags):
        aggs[f"__f{i}"] = ibis.ifelse(per.product_id == f, 1, 0).sum()
    out = per.group_by("__k").aggregate(**aggs)
    fills = {"__n": out["__n"].fill_null(0)}
    fills.update({f"__f{i}": out[f"__f{i}"].fill_null(0) for i in range(len(flags))})
    return points.left_join(out, "__k").select(*points.columns, **fills)


def _execute(expr) -> pd.DataFrame:
    return engine.execute(expr)


def _landmark_points(data, at, cols=(), *, horizon_days=None):
    """Customers active at their landmark, with ``__day`` (the landmark) and follow-up columns.

    ``at`` is a duration (tenure landmark: signup + at), a date (calendar landmark) or None
    (naive: from signup, tier at the end of the relationship).
    """
    ref = _day(data.reference_date)
    c = _customer_days(data, cols)
    if at is None:
        # naive: the whole relationship; the tier is what the customer held on their last day
        pts = c.mutate(__k=c.customer_id, __day=ibis.coalesce(c["__c"], ref),
                       __endday=ibis.coalesce(c["__c"] - 1, ref), __l=c["__s"])
        kind = "naive"
    elif _is_duration(at):
        a = _duration(at, "at")
        pts = c.mutate(__k=c.customer_id, __day=c["__s"] + a, __l=c["__s"] + a)
        pts = pts.filter((pts["__l"] < ref) & (pts["__c"].isnull() | (pts["__c"] > pts["__l"])))
        kind = "tenure"
    else:
        d = _day(_as_of(data, at, "at"))
        if d >= ref:
            raise PeriodError(
                f"the landmark {_from_day(d).date()} leaves no follow-up before the reference date "
                f"{data.reference_date.date()}"
            )
        pts = c.mutate(__k=c.customer_id, __day=ibis.literal(d, "int64"), __l=ibis.literal(d, "int64"))
        pts = pts.filter((pts["__s"] <= d) & (pts["__c"].isnull() | (pts["__c"] > d)))
        kind = "calendar"
    end = ibis.literal(ref, "int64")
    if horizon_days is not None:
        end = ibis.least(end, pts["__l"] + horizon_days)
    stop = ibis.ifelse(pts["__c"].notnull() & (pts["__c"] <= end), pts["__c"], end)
    pts = pts.mutate(
        __time=stop - pts["__l"],
        __event=pts["__c"].notnull() & (pts["__c"] <= end),
        __full=(pts["__l"] + (horizon_days or 0)) <= ref,
    )
    return pts, kind


def _landmark_text(kind, at, data) -> str:
    if kind == "naive":
        return ("naive: every customer from signup; tier = products held on the customer's last day "
                "(the churn date, or the reference date)")
    if kind == "tenure":
        return (f"landmark at tenure {_duration(at, 'at')} days: customers still active then, tier = "
                "products held that day, churn counted only after it")
    return (f"landmark on {_as_of(data, at, 'at').date()}: customers active then, tier = products "
            "held that day, churn counted only after it")


# --------------------------------------------------------------------------------------------
# tiers


def tiers(data: CrossSellData, *, bins=DEFAULT_BINS, as_of=None, exclude=None) -> pd.DataFrame:
    """Each active customer's product count and tier at a date.

    Parameters
    ----------
    data : CrossSellData
    bins : sequence of int, default (1, 2, 3, 5)
        Lower edges of the tiers; counts below the first edge form the first tier.  The default
        gives ``"0"``, ``"1"``, ``"2"``, ``"3–4"``, ``"5+"``.
    as_of : date-like, optional
        The date (end of day); default the reference date.  Customers signed up by then and not
        churned by then are included.
    exclude : str or list of str, optional
        Products that do not count (catalog ``is_base`` products never count).

    Returns
    -------
    DataFrame
        One row per customer: ``customer_id``, ``signup_date``, ``tenure_days``, the segment
        attributes, ``n_products`` and ``tier`` (an ordered categorical).

    Examples
    --------
    >>> import crosssell as cs
    >>> t = cs.tiers(cs.load(cs.sample_path()))
    >>> list(t["tier"].cat.categories)
    ['0', '1', '2', '3–4', '5+']
    """
    bins = _check_bins(bins)
    excl = _exclusions(data, exclude)
    when = _as_of(data, as_of)
    d = _day(when)
    c = _customer_days(data, data.attributes)
    pts = c.filter((c["__s"] <= d) & (c["__c"].isnull() | (c["__c"] > d)))
    pts = pts.mutate(__k=pts.customer_id, __day=ibis.literal(d, "int64"))
    held = _held_at(data, pts, excl)
    out = _execute(held.select("customer_id", *data.attributes, "__s", "__n"))
    out = out.sort_values("customer_id", kind="stable")
    res = pd.DataFrame({
        "customer_id": out["customer_id"].astype(str).to_numpy(),
        "signup_date": pd.to_datetime(out["__s"].to_numpy(dtype="int64"), unit="D"),
        "tenure_days": (d - out["__s"].to_numpy(dtype="int64")),
    })
    for a in data.attributes:
        res[a] = out[a].to_numpy()
    n = out["__n"].to_numpy(dtype="int64")
    res["n_products"] = n
    labels = tier_labels(bins)
    res["tier"] = pd.Categorical.from_codes(_tier_index(n, bins), dtype=_tier_dtype(bins))
    return _finish(
        res, data, as_of=str(when.date()), bins=list(bins), labels=labels,
        definition=f"{_count_text(bins, excl, data)}; held at the end of {when.date()} by "
                   "customers active then",
    )


def _grid(frame: pd.DataFrame, by: list[str], bins, data, fill: dict) -> pd.DataFrame:
    """Every (segment, tier) combination, the empty ones with zero counts."""
    labels = tier_labels(bins)
    if by:
        seg = _execute(data.customers.select(*by).distinct())
        seg = pd.concat([seg, frame[by]]).drop_duplicates() if len(frame) else seg
        grid = seg.merge(pd.DataFrame({"tier": labels}), how="cross")
    else:
        grid = pd.DataFrame({"tier": labels})
    frame = frame.astype({"tier": str}) if len(frame) else frame.assign(tier=pd.Series(dtype=str))
    out = grid.merge(frame, on=[*by, "tier"], how="left")
    for k, v in fill.items():
        out[k] = out[k].fillna(v)
    out["tier"] = pd.Categorical(out["tier"], dtype=_tier_dtype(bins))
    return out.sort_values([*by, "tier"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# churn by tier


def churn_by_tier(
    data: CrossSellData,
    *,
    horizon="365D",
    as_of=None,
    bins=DEFAULT_BINS,
    by=None,
    exclude=None,
    min_customers: int = 30,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Churn rate per tier within a horizon, with Wilson intervals.

    With a ``horizon``, the tier is measured at ``as_of`` (default: the reference date minus the
    horizon) among the customers active then, and a customer counts as churned when they leave
    within the following ``horizon``.  Only customers observable for the whole horizon are
    counted, so nobody is half-followed: ``as_of + horizon`` must not pass the reference date.
    This measures the tier before the outcome, but tenure still differs between tiers; see
    :func:`landmark` and :func:`churn_model` for comparisons that hold tenure fixed.

    With ``horizon=None`` the comparison is the naive one: every customer, their products on
    their last day as a customer, and whether they had churned by the reference date.  It is
    what a one-row-per-customer export gives (and what published figures often are), and it is
    biased by survivorship: :func:`compare_naive` puts it beside the corrected estimates.

    Parameters
    ----------
    data : CrossSellData
    horizon : duration or None, default "365D"
        ``"365D"``, ``"12M"``, ``"1Y"``, a number of days; None for the naive comparison.
    as_of : date-like, optional
        When the tier is measured (horizon only).
    bins : sequence of int, default (1, 2, 3, 5)
        Lower edges of the tiers (see :func:`tiers`).
    by : str or list of str, optional
        Customer attributes to split by (look for Simpson's paradox: a tier gap that changes
        sign within segments).
    exclude : str or list of str, optional
        Products that do not count.
    min_customers : int, default 30
        Groups with fewer customers are kept and flagged in ``small`` (with a
        :class:`~crosssell.errors.SmallSampleWarning`).
    ci : float, default 0.95

    Returns
    -------
    DataFrame
        ``by`` columns, ``tier``, ``customers``, ``churned``, ``churn_rate``, ``ci_low``,
        ``ci_high``, ``small``.  ``attrs["method"]`` says how it was computed.

    Examples
    --------
    >>> import crosssell as cs
    >>> data = cs.load(cs.sample_path())
    >>> cs.churn_by_tier(data, horizon="180D")[["tier", "customers", "churn_rate"]]  # doctest: +SKIP
    """
    _require_churn(data, "churn_by_tier")
    bins = _check_bins(bins)
    excl = _exclusions(data, exclude)
    by = _by(data, by)
    ci = _check_ci(ci)
    min_customers = _check_min(min_customers)
    ref = _day(data.reference_date)
    c = _customer_days(data, by)
    if horizon is None:
        if as_of is not None:
            raise ParameterError("as_of needs a horizon; horizon=None is the naive comparison over all time")
        # the last day as a customer: what was held when it began, plus that day's purchases
        pts = c.mutate(__k=c.customer_id, __day=ibis.coalesce(c["__c"], ref),
                       __endday=ibis.coalesce(c["__c"] - 1, ref), __churned=c["__c"].notnull())
        method = ("naive: every customer; tier = products held on their last day as a customer; "
                  "churn = churned by the reference date. Biased by survivorship: long-tenured "
                  "customers have had time to add products and are, by definition, still here")
        when = None
    else:
        h = _duration(horizon, "horizon", allow_zero=False)
        when = _as_of(data, as_of) if as_of is not None else data.reference_date - pd.Timedelta(days=h)
        d = _day(when)
        if d + h > ref:
            raise PeriodError(
                f"as_of {when.date()} plus the horizon of {h} days passes the reference date "
                f"{data.reference_date.date()}: customers could not be followed for the whole "
                f"horizon; use as_of on or before {_from_day(ref - h).date()}"
            )
        pts = c.filter((c["__s"] <= d) & (c["__c"].isnull() | (c["__c"] > d)))
        pts = pts.mutate(
            __k=pts.customer_id, __day=ibis.literal(d, "int64"),
            __churned=pts["__c"].notnull() & (pts["__c"] <= d + h),
        )
        method = (f"customers active at the end of {when.date()}, tier = products held then; churn = "
                  f"left within the following {h} days (by {_from_day(d + h).date()}); every customer "
                  "is observable for the whole horizon (no censoring)")
    held = _held_at(data, pts, excl)
    t = held.mutate(tier=_tier_case(held["__n"], bins, tier_labels(bins)))
    res = _execute(
        t.group_by([*by, "tier"]).aggregate(
            customers=t.count(), churned=ibis.ifelse(t["__churned"], 1, 0).sum()
        )
    )
    res = _grid(res, by, bins, data, {"customers": 0, "churned": 0})
    res["customers"] = res["customers"].astype("int64")
    res["churned"] = res["churned"].astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        res["churn_rate"] = np.where(res["customers"] > 0, res["churned"] / res["customers"].where(res["customers"] > 0, 1), np.nan)
    low, high = wilson_interval(res["churned"].to_numpy(), res["customers"].to_numpy(), ci=ci)
    res["ci_low"], res["ci_high"] = low, high
    res.attrs["by"] = by
    res = _small(res, min_customers, "churn_by_tier")
    res = res[[*by, "tier", "customers", "churned", "churn_rate", "ci_low", "ci_high", "small"]]
    return _finish(
        res, data, by=by, method=method, horizon_days=None if horizon is None else _duration(horizon, "horizon"),
        as_of=None if when is None else str(when.date()), bins=list(bins), ci=ci,
        definition=_count_text(bins, excl, data), interval="Wilson score interval",
    )


# --------------------------------------------------------------------------------------------
# satisfaction by tier


def satisfaction_by_tier(
    data: CrossSellData,
    *,
    bins=DEFAULT_BINS,
    as_of=None,
    responses: str = "latest",
    tier_at: str = "as_of",
    by=None,
    exclude=None,
    min_customers: int = 30,
    ci: float = 0.95,
) -> pd.DataFrame:
    """CSAT and NPS per tier, with intervals, and the rank correlation of count and score.

    Parameters
    ----------
    data : CrossSellData
        Needs the surveys table.
    bins : sequence of int, default (1, 2, 3, 5)
    as_of : date-like, optional
        Responses given on or before this date are used (default: the reference date).
    responses : {"latest", "all"}
        Each customer's latest response of each kind, or every response.  With ``"all"`` a
        customer who answers often weighs more, and the intervals treat responses as
        independent.
    tier_at : {"as_of", "response"}
        Measure the tier at ``as_of`` (customers active then) or when each response was given
        (products held at the start of the response day; churned customers' responses count).
    by : str or list of str, optional
        Customer attributes to split by.
    exclude : str or list of str, optional
    min_customers : int, default 30
        Minimum responses per group; smaller groups are flagged in ``small``.
    ci : float, default 0.95

    Returns
    -------
    DataFrame
        One row per (``by``, ``tier``, ``kind``): ``responses``, ``customers``, ``mean_score``
        with ``mean_low``/``mean_high`` (t interval), for CSAT ``satisfied`` (share scoring 4–5)
        with a Wilson interval, for NPS ``promoters``, ``detractors`` and ``nps`` (% promoters −
        % detractors) with its closed-form standard error ``nps_se`` and interval; ``small``.
        Counts that do not apply to a kind (``satisfied`` for NPS, ``promoters`` for CSAT) are
        missing.
        ``attrs["spearman"]`` holds, per kind, the Spearman correlation between product count
        and score with its interval.

    Raises
    ------
    MissingTableError
        When the data has no surveys.

    Examples
    --------
    >>> import crosssell as cs
    >>> sat = cs.satisfaction_by_tier(cs.load(cs.sample_path()), responses="all", tier_at="response")
    >>> sorted(sat["kind"].unique())
    ['csat', 'nps']
    """
    surveys = data.require("surveys", "satisfaction_by_tier")
    bins = _check_bins(bins)
    excl = _exclusions(data, exclude)
    by = _by(data, by)
    ci = _check_ci(ci)
    min_customers = _check_min(min_customers)
    if responses not in ("latest", "all"):
        raise ParameterError(f"responses must be 'latest' or 'all', not {responses!r}")
    if tier_at not in ("as_of", "response"):
        raise ParameterError(f"tier_at must be 'as_of' or 'response', not {tier_at!r}")
    when = _as_of(data, as_of)
    d = _day(when)
    s = surveys.select("customer_id", "kind", "score", __r=surveys.responded_at.epoch_days())
    s = s.filter(s["__r"] <= d)
    c = _customer_days(data, by)
    if tier_at == "as_of":
        active = c.filter((c["__s"] <= d) & (c["__c"].isnull() | (c["__c"] > d)))
        s = s.join(active.select("customer_id", *by), "customer_id")
    else:
        s = s.join(c.select("customer_id", *by), "customer_id")
    if responses == "latest":
        w = ibis.window(group_by=["customer_id", "kind"], order_by=[ibis.desc(s["__r"]), ibis.desc(s.score)])
        s = s.mutate(__rank=ibis.row_number().over(w))
        s = s.filter(s["__rank"] == 0).drop("__rank")
    s = s.mutate(__k=ibis.row_number())
    day = ibis.literal(d, "int64") if tier_at == "as_of" else s["__r"] - 1
    s = s.mutate(__day=day)
    held = _held_at(data, s, excl)
    # one row per response comes back (responses are few next to purchases); the per-tier
    # moments and the rank correlation are computed from them
    pairs = _execute(held.select(*by, "customer_id", "kind", "__n", "score"))
    unknown = int(pairs["kind"].isna().sum())
    if unknown:  # a blank kind in a surveys file that has the column: counted, never guessed
        warnings.warn(f"satisfaction_by_tier: {unknown} response(s) have no kind (csat or nps) and are "
                      "left out; they are counted in attrs['responses_without_kind']",
                      DataQualityWarning, stacklevel=2)
        pairs = pairs[pairs["kind"].notna()]
    pairs["tier"] = np.asarray(tier_labels(bins), dtype=object)[_tier_index(pairs["__n"], bins)]
    sc = pairs["score"].astype(float)
    pairs = pairs.assign(sum_y=sc, sum_yy=sc * sc, satisfied=(sc >= 4).astype("int64"),
                         promoters=(sc >= 9).astype("int64"), detractors=(sc <= 6).astype("int64"))
    keys = [*by, "tier", "kind"]
    if len(pairs):
        res = pairs.groupby(keys, as_index=False, dropna=False).agg(
            responses=("score", "size"), customers=("customer_id", "nunique"), sum_y=("sum_y", "sum"),
            sum_yy=("sum_yy", "sum"), satisfied=("satisfied", "sum"), promoters=("promoters", "sum"),
            detractors=("detractors", "sum"))
    else:
        res = pd.DataFrame(columns=[*keys, "responses", "customers", "sum_y", "sum_yy", "satisfied",
                                    "promoters", "detractors"])
    kinds = sorted(set(res["kind"].dropna())) or ["csat"]
    parts = []
    for kind in kinds:
        part = _grid(res[res["kind"] == kind].drop(columns="kind"), by, bins, data,
                     {"responses": 0, "customers": 0, "sum_y": 0.0, "sum_yy": 0.0, "satisfied": 0,
                      "promoters": 0, "detractors": 0})
        part.insert(len(by) + 1, "kind", kind)
        parts.append(part)
    res = pd.concat(parts, ignore_index=True)
    for col in ("responses", "customers", "satisfied", "promoters", "detractors"):
        res[col] = res[col].astype("int64")
    m = mean_from_moments(n=res["responses"].to_numpy(), sum_y=res["sum_y"].to_numpy(float),
                          sum_yy=res["sum_yy"].to_numpy(float), ci=ci)
    res["mean_score"], res["mean_low"], res["mean_high"] = m["estimate"], m["low"], m["high"]
    is_csat = (res["kind"] == "csat").to_numpy()
    n = res["responses"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n > 0, res["satisfied"] / np.where(n > 0, n, 1), np.nan)
    lo, hi = wilson_interval(res["satisfied"].to_numpy(), n, ci=ci)
    res["satisfied_share"] = np.where(is_csat, share, np.nan)
    res["satisfied_low"] = np.where(is_csat, lo, np.nan)
    res["satisfied_high"] = np.where(is_csat, hi, np.nan)
    npsr = nps_interval(res["promoters"].to_numpy(), res["detractors"].to_numpy(), n, ci=ci)
    is_nps = ~is_csat
    for col, key in (("nps", "estimate"), ("nps_se", "se"), ("nps_low", "low"), ("nps_high", "high")):
        res[col] = np.where(is_nps, npsr[key], np.nan)
    # counts that do not apply to a kind are missing, not zero
    for col, applies in (("satisfied", is_csat), ("promoters", is_nps), ("detractors", is_nps)):
        res[col] = res[col].astype("Int64").mask(~applies)
    res.attrs["by"] = by
    res = _small(res, min_customers, "satisfaction_by_tier", column="responses")
    spear = {}
    for kind in kinds:
        sub = pairs[pairs["kind"] == kind]
        r = spearman_interval(sub["__n"].to_numpy(float), sub["score"].to_numpy(float), ci=ci)
        spear[kind] = {k: (float(v) if v is not None else None) for k, v in r.items()}
    cols = [*by, "tier", "kind", "responses", "customers", "mean_score", "mean_low", "mean_high",
            "satisfied", "satisfied_share", "satisfied_low", "satisfied_high", "promoters", "detractors",
            "nps", "nps_se", "nps_low", "nps_high", "small"]
    res = res[cols]
    tier_when = (f"held at the end of {when.date()} by customers active then" if tier_at == "as_of"
                 else "held at the start of the response day")
    return _finish(
        res, data, by=by, spearman=spear, ci=ci, bins=list(bins), as_of=str(when.date()),
        responses_without_kind=unknown,
        method=(f"{'each customer’s latest response of each kind' if responses == 'latest' else 'every response'} "
                f"given on or before {when.date()}; tier = products {tier_when}. CSAT: mean with a t "
                "interval, satisfied = 4–5 with a Wilson interval; NPS = % promoters (9–10) − % "
                "detractors (0–6) with its closed-form standard error; Spearman with a Fisher-z interval"),
        definition=_count_text(bins, excl, data),
    )


# --------------------------------------------------------------------------------------------
# survival


@dataclass
class SurvivalResult:
    """Kaplan–Meier curves by tier, their summary and the tests.

    Attributes
    ----------
    curves : DataFrame
        ``tier``, ``time`` (days from the landmark), ``survival``, ``low``, ``high`` (pointwise
        log–log interval), ``at_risk``, ``events``; a row at time 0 with survival 1 per tier.
    summary : DataFrame
        Per tier: ``customers``, ``events``, ``median`` (days) with ``median_low``/``median_high``,
        ``rmst`` (restricted mean survival time up to ``tau``, days) and ``rmst_se``, the RMST
        difference against the reference tier (``rmst_diff``, ``diff_low``, ``diff_high``,
        ``diff_p``), ``small``.
    logrank : DataFrame
        One row: ``statistic`` (chi-square), ``df``, ``p_value``.
    at_risk : DataFrame
        Customers still at risk per tier (rows) at each time (columns).
    tau : int
        The RMST horizon in days.
    method : str
        Who is followed from when, and how.
    """

    curves: pd.DataFrame
    summary: pd.DataFrame
    logrank: pd.DataFrame
    at_risk: pd.DataFrame
    tau: int
    method: str
    reference: str
    attrs: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        lr = self.logrank.iloc[0]
        return (f"<SurvivalResult {len(self.summary)} tiers; log-rank chi2={lr['statistic']:.2f} "
                f"(df={int(lr['df'])}, p={lr['p_value']:.3g}); RMST to {self.tau} days>")


def _km(time: np.ndarray, event: np.ndarray):
    from statsmodels.duration.survfunc import SurvfuncRight

    return SurvfuncRight(time.astype(float), event.astype(int))


def _km_band(sf, z: float):
    """Pointwise log–log interval (Kalbfleisch & Prentice), as R's ``conf.type="log-log"``."""
    s = np.asarray(sf.surv_prob, dtype=float)
    se = np.asarray(sf.surv_prob_se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ls = np.log(s)
        theta = z * se / (s * np.abs(ls))
        low = s ** np.exp(theta)
        high = s ** np.exp(-theta)
    one = s >= 1.0
    low = np.where(one, 1.0, low)
    high = np.where(one, 1.0, high)
    zero = s <= 0.0
    low = np.where(zero, 0.0, low)
    high = np.where(zero, 0.0, high)
    return low, high


def _rmst_se(sf, tau: float) -> float:
    """Standard error of the Kaplan–Meier RMST up to ``tau`` (Klein & Moeschberger, 4.5).

    ``Var = Σ_{t_j ≤ tau} A_j² d_j / (Y_j (Y_j − d_j))`` with ``A_j`` the area under the curve
    between ``t_j`` and ``tau``; a term whose risk set empties (``Y_j = d_j``) adds 0, as in
    the R package survRM2.
    """
    t = np.asarray(sf.surv_times, dtype=float)
    s = np.asarray(sf.surv_prob, dtype=float)
    d = np.asarray(sf.n_events, dtype=float)
    y = np.asarray(sf.n_risk, dtype=float)
    keep = t <= tau
    t, s, d, y = t[keep], s[keep], d[keep], y[keep]
    if not len(t):
        return 0.0
    # area from each event time to tau: the curve is s_j on [t_j, t_{j+1})
    edges = np.append(t, tau)
    pieces = s * np.diff(edges)
    area = np.cumsum(pieces[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(y > d, d / (y * (y - d)), 0.0)
    return float(np.sqrt(np.sum(area * area * w)))


def _nice_step(tmax: float) -> int:
    for step in (7, 14, 30, 60, 90, 180, 365, 730, 1461):
        if tmax / step <= 8:
            return step
    return int(np.ceil(tmax / 8))


def _follow(data, at, bins, excl, cols=(), horizon_days=None, flags=()):
    pts, kind = _landmark_points(data, at, cols, horizon_days=horizon_days)
    held = _held_at(data, pts, excl, flags)
    keep = ["customer_id", *cols, "__s", "__l", "__time", "__event", "__full", "__n",
            *[f"__f{i}" for i in range(len(flags))]]
    frame = _execute(held.select(*keep))
    frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    frame["tier"] = pd.Categorical.from_codes(_tier_index(frame["__n"], bins), dtype=_tier_dtype(bins))
    return frame, kind


def survival_by_tier(
    data: CrossSellData,
    *,
    at="90D",
    bins=DEFAULT_BINS,
    exclude=None,
    tau=None,
    reference=None,
    times=None,
    min_customers: int = 30,
    ci: float = 0.95,
) -> SurvivalResult:
    """Kaplan–Meier survival by tier from a landmark, with the log-rank test and RMST.

    Customers are followed from the landmark (``at``) until they churn or the reference date
    (censored).  The tier is fixed at the landmark, so it is measured before any of the churn
    it is compared with.

    Parameters
    ----------
    data : CrossSellData
    at : duration, date or None, default "90D"
        A tenure (``"90D"``: each customer's own landmark, 90 days after signup, among those
        still active then), a calendar date (customers active on it), or None for the naive
        view (from signup, tier = products held on the last day, which survivors have had time
        to accumulate: shown for comparison, not for conclusions).
    bins : sequence of int, default (1, 2, 3, 5)
    exclude : str or list of str, optional
    tau : duration, optional
        RMST horizon; default the shortest of the tiers' longest follow-ups, so every curve is
        observed up to it.
    reference : str, optional
        The tier RMST differences are taken against (default: the lowest tier with customers).
    times : sequence of int, optional
        Times (days) of the at-risk table; default evenly spaced, "nice" steps.
    min_customers : int, default 30
    ci : float, default 0.95

    Returns
    -------
    SurvivalResult

    Examples
    --------
    >>> import crosssell as cs
    >>> res = cs.survival_by_tier(cs.load(cs.sample_path()), at="90D")
    >>> list(res.logrank.columns)
    ['statistic', 'df', 'p_value']
    """
    from statsmodels.duration.survfunc import survdiff

    _require_churn(data, "survival_by_tier")
    bins = _check_bins(bins)
    excl = _exclusions(data, exclude)
    ci = _check_ci(ci)
    z = z_value(ci)
    min_customers = _check_min(min_customers)
    frame, kind = _follow(data, at, bins, excl)
    frame = frame[frame["__time"] > 0]
    labels = tier_labels(bins)
    present = [lab for lab in labels if (frame["tier"] == lab).any()]
    if not present:
        raise PeriodError("no customer has any follow-up after the landmark; choose an earlier landmark")
    reference = _reference_tier(reference, present, labels)
    if tau is None:
        tau_days = int(min(frame.loc[frame["tier"] == lab, "__time"].max() for lab in present))
    else:
        tau_days = _duration(tau, "tau", allow_zero=False)
    curves, rows = [], []
    fits = {}
    for lab in labels:
        sub = frame[frame["tier"] == lab]
        row = {"tier": lab, "customers": len(sub), "events": int(sub["__event"].sum())}
        if len(sub):
            sf = _km(sub["__time"].to_numpy(), sub["__event"].to_numpy())
            fits[lab] = sf
            low, high = _km_band(sf, z)
            curves.append(pd.DataFrame({
                "tier": lab,
                "time": np.concatenate([[0.0], sf.surv_times]),
                "survival": np.concatenate([[1.0], sf.surv_prob]),
                "low": np.concatenate([[1.0], low]),
                "high": np.concatenate([[1.0], high]),
                "at_risk": np.concatenate([[len(sub)], sf.n_risk]).astype("int64"),
                "events": np.concatenate([[0], sf.n_events]).astype("int64"),
            }))
            row["median"] = _median(sf)
            row["median_low"], row["median_high"] = _median_ci(sf, ci)  # NaN when not reached
            row["rmst"] = float(rmst(sf.surv_times, sf.surv_prob, tau_days))
            row["rmst_se"] = _rmst_se(sf, tau_days)
        rows.append(row)
    summary = pd.DataFrame(rows)
    for col in ("median", "median_low", "median_high", "rmst", "rmst_se"):
        if col not in summary:
            summary[col] = np.nan
    ref_row = summary[summary["tier"] == reference].iloc[0]
    diff = difference_interval(ref_row["rmst"], ref_row["rmst_se"], summary["rmst"].to_numpy(float),
                               summary["rmst_se"].to_numpy(float), ci=ci)
    summary["rmst_diff"], summary["diff_low"], summary["diff_high"] = diff["estimate"], diff["low"], diff["high"]
    summary["diff_p"] = diff["p_value"]
    summary.loc[summary["tier"] == reference, ["diff_low", "diff_high", "diff_p"]] = np.nan
    summary["tier"] = pd.Categorical(summary["tier"], dtype=_tier_dtype(bins))
    summary.attrs["by"] = []
    summary = _small(summary, min_customers, "survival_by_tier")
    curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(
        columns=["tier", "time", "survival", "low", "high", "at_risk", "events"])
    curves["tier"] = pd.Categorical(curves["tier"], dtype=_tier_dtype(bins))
    # log-rank over the tiers with customers
    if len(present) > 1:
        stat, p = survdiff(frame["__time"].to_numpy(float), frame["__event"].to_numpy(int),
                           frame["tier"].astype(str).to_numpy())
        logrank = pd.DataFrame({"statistic": [float(stat)], "df": [len(present) - 1], "p_value": [float(p)]})
    else:
        logrank = pd.DataFrame({"statistic": [np.nan], "df": [0], "p_value": [np.nan]})
    tmax = float(frame["__time"].max())
    if times is None:
        step = _nice_step(tmax)
        times = list(range(0, int(tmax) + 1, step))
    else:
        times = [_duration(t, "times") for t in times]
    tv = frame["__time"].to_numpy()
    at_risk = pd.DataFrame(
        {t: [int(((frame["tier"] == lab).to_numpy() & (tv >= t)).sum()) for lab in labels] for t in times},
        index=pd.Index(labels, name="tier"),
    )
    at_risk.columns.name = "days"
    method = (_landmark_text(kind, at, data) + "; followed until churn or the reference date "
              f"{data.reference_date.date()} (censored). Kaplan–Meier with log–log pointwise "
              f"intervals; log-rank test across tiers; RMST up to {tau_days} days")
    attrs = {"reference_date": str(data.reference_date.date()), "filters": dict(data.filters),
             "definition": _count_text(bins, excl, data), "ci": ci, "bins": list(bins)}
    for part in (curves, summary, logrank, at_risk):
        part.attrs.update(attrs, method=method)
    return SurvivalResult(curves=curves, summary=summary.reset_index(drop=True), logrank=logrank,
                          at_risk=at_risk, tau=tau_days, method=method, reference=reference, attrs=attrs)


def _median(sf) -> float:
    s = np.asarray(sf.surv_prob)
    t = np.asarray(sf.surv_times)
    below = np.flatnonzero(s <= 0.5)
    return float(t[below[0]]) if len(below) else np.nan


def _median_ci(sf, ci: float):
    """Brookmeyer–Crowley interval of the median (statsmodels, log-log transform)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lo, hi = sf.quantile_ci(0.5, alpha=1 - ci, method="cloglog")
        lo, hi = float(lo), float(hi)
        return (lo if np.isfinite(lo) else np.nan), (hi if np.isfinite(hi) else np.nan)
    except Exception:  # too few events for an interval: report none rather than fail
        return np.nan, np.nan


def _reference_tier(reference, present, labels):
    if reference is None:
        return present[0]
    if str(reference) not in labels:
        raise ParameterError(f"reference must be one of the tiers {labels}, not {reference!r}")
    if str(reference) not in present:
        raise ParameterError(f"the reference tier {reference!r} has no customers; tiers with customers: {present}")
    return str(reference)


# --------------------------------------------------------------------------------------------
# Cox models


def _dummies(values: pd.Series, reference: str | None = None):
    """Levels (as text) and one 0/1 column per level other than the reference.

    The reference is ``reference`` when given, else the most frequent level.  Factorised once,
    so a few hundred thousand rows take milliseconds.
    """
    codes, uniques = pd.factorize(values.astype("string").fillna("(missing)"), sort=True)
    uniques = [str(u) for u in uniques]
    if reference is None:
        reference = uniques[int(np.bincount(codes).argmax())] if len(uniques) else None
    out = []
    for i, lev in enumerate(uniques):
        if lev != reference:
            out.append((lev, (codes == i).astype(float)))
    return out


def _design(frame: pd.DataFrame, *, tier_col, labels, reference, adjust, cohort_col, flags, count):
    """The covariate matrix: tier dummies (or the count), attribute and cohort dummies, flags."""
    cols, info = {}, []
    if count == "linear":
        cols["n_products"] = frame["__n"].to_numpy(float)
        info.append(("n_products", "count", "per product"))
    else:
        tiers = frame[tier_col]
        codes = tiers.cat.codes.to_numpy() if isinstance(tiers.dtype, pd.CategoricalDtype) else None
        cats = list(tiers.cat.categories) if codes is not None else None
        for lab in labels:
            if lab == reference:
                continue
            col = (codes == cats.index(lab)) if codes is not None else (tiers.astype(str) == lab).to_numpy()
            cols[f"tier[{lab}]"] = col.astype(float)
            info.append((f"tier[{lab}]", "tier", lab))
    for a in adjust:  # each level against the most frequent one
        for lev, col in _dummies(frame[a]):
            cols[f"{a}[{lev}]"] = col
            info.append((f"{a}[{lev}]", a, lev))
    if cohort_col is not None:  # each cohort against the first
        first = str(frame[cohort_col].min()) if len(frame) else None
        for lev, col in _dummies(frame[cohort_col], reference=first):
            cols[f"cohort[{lev}]"] = col
            info.append((f"cohort[{lev}]", "cohort", lev))
    for i, f in enumerate(flags):
        cols[f"holds[{f}]"] = (frame[f"__f{i}"].to_numpy(float) > 0).astype(float)
        info.append((f"holds[{f}]", "product held", f))
    return pd.DataFrame(cols, index=frame.index), info


def _cohort_labels(signup_days: pd.Series, unit: str) -> pd.Series:
    """The signup period of each row as text ("2023", "2023Q2", "2023-05"), computed once per
    distinct signup day."""
    days = signup_days.to_numpy(dtype="int64")
    uniq, inv = np.unique(days, return_inverse=True)
    idx = pd.PeriodIndex(pd.to_datetime(uniq, unit="D"), freq=PERIOD_CODES[unit][1]).astype(str)
    return pd.Series(np.asarray(idx, dtype=object)[inv], index=signup_days.index)


def _fit_cox(stop, exog: pd.DataFrame, event, *, entry=None, groups=None, ties="breslow", robust=True):
    """Fit ``PHReg``; return (params, cov, notes, result) with inestimable terms NaN.

    Columns that are constant, or dummies whose group never sees an event, have no finite
    estimate: they are dropped before the fit (a dummy's rows too, so they are not pooled with
    the reference) and reported in ``notes``; what is estimable is returned.  With ``robust``
    the covariance is the cluster-robust sandwich over ``groups`` (:func:`_robust_cov`); when it
    is not finite the model-based one is used instead, with a note.
    """
    notes = []
    X = exog
    ev = np.asarray(event, dtype=int)
    keep, drop_rows = [], np.zeros(len(X), dtype=bool)
    for col in X.columns:
        x = X[col].to_numpy()
        dummy = bool(np.isin(x, (0.0, 1.0)).all())
        if np.ptp(x) == 0:
            notes.append(f"{col}: no variation, not estimable")
        elif dummy and ev[x == 1].sum() == 0:
            notes.append(f"{col}: no churn observed in this group, hazard ratio not estimable")
            drop_rows |= x == 1
        else:
            keep.append(col)
    params = pd.Series(np.nan, index=X.columns)
    cov = pd.DataFrame(np.nan, index=X.columns, columns=X.columns)
    sel = ~drop_rows
    if not keep or ev[sel].sum() == 0:
        notes.append("no churn to model")
        return params, cov, notes, None
    Xk = X.loc[sel, keep].to_numpy(float)
    t1 = np.asarray(stop, dtype=float)[sel]
    t0 = np.zeros(len(t1)) if entry is None else np.asarray(entry, dtype=float)[sel]
    args = {"status": ev[sel], "ties": ties}
    if entry is not None:
        # statsmodels keeps a row in the risk set at a failure time equal to its entry time (the
        # Stata convention); counting-process rows (start, stop] must leave it out, or a customer
        # whose count changes on a churn day would sit in that risk set twice.  Nudging the entry
        # just past it gives R's (start, stop] convention exactly (times are whole days).
        args["entry"] = t0 + 1e-6
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = phreg(t1, Xk, **args).fit()
        except (np.linalg.LinAlgError, ValueError) as exc:
            notes.append(f"the model could not be fitted ({exc})")
            return params, cov, notes, None
    for w in caught:
        if "converge" in str(w.message).lower() or "singular" in str(w.message).lower():
            notes.append(f"the optimizer reported: {w.message}")
    b = np.asarray(res.params, dtype=float)
    vcov = np.asarray(res.cov_params(), dtype=float)
    if robust and groups is not None:
        rob = _robust_cov(t0, t1, ev[sel], Xk, b, vcov, np.asarray(groups)[sel])
        if np.all(np.isfinite(rob)):
            vcov = rob
        else:
            notes.append("cluster-robust standard errors could not be computed; model-based errors used")
    params[keep] = b
    cov.loc[keep, keep] = vcov
    # a group in which churn happens always (or never) within the risk sets it shares with the
    # reference drives its coefficient to ±infinity: the optimizer stops somewhere huge
    se = np.sqrt(np.where(np.diag(vcov) >= 0, np.diag(vcov), np.nan))
    off = (np.abs(b) > _MAX_LOG_HR) | ~np.isfinite(se) | (se > _MAX_LOG_HR)
    for col in np.asarray(keep)[off]:
        notes.append(f"{col}: the estimate diverged (churn happens only in, or never in, this group where "
                     "it can be compared), not estimable")
        params[col] = np.nan
        cov.loc[col, :] = np.nan
        cov.loc[:, col] = np.nan
    return params, cov, notes, res


def _robust_cov(start, stop, event, X, beta, bread, groups) -> np.ndarray:
    """Cluster-robust (Lin & Wei 1989) covariance of a Breslow Cox fit on ``(start, stop]`` rows.

    The score residual of row ``i`` is ``δ_i (x_i − x̄(t_i)) − r_i Σ_j (x_i − x̄(t_j)) dΛ_j`` over
    the event times ``t_j`` in ``(start_i, stop_i]``, with ``r = exp(xβ)``, ``x̄`` the
    risk-weighted covariate mean and ``dΛ_j = d_j / Σ_{risk set} r``.  The sum over event times
    is a difference of cumulative sums, so the whole computation is vectorised (statsmodels'
    own version loops in Python and returns NaN for rows that are at risk at no event time,
    which every counting-process data set has).  ``bread`` is the model-based covariance.  With
    Efron ties the Breslow residuals are used; they differ by the order of the tied events over
    the size of the risk set.
    """
    lin = X @ beta
    r = np.exp(lin - lin.max())  # a common factor cancels in x̄ and in r_i dΛ_j
    times = np.unique(stop[event == 1])
    d = np.bincount(np.searchsorted(times, stop[event == 1]), minlength=len(times)).astype(float)
    # risk set at t: start < t <= stop; sums of r and r*x over it via sorted cumulative sums
    order_stop = np.argsort(stop)
    order_start = np.argsort(start)
    cs_r_stop = np.concatenate([np.cumsum(r[order_stop][::-1])[::-1], [0.0]])
    cs_x_stop = np.vstack([np.cumsum((r[:, None] * X)[order_stop][::-1], axis=0)[::-1], np.zeros(X.shape[1])])
    cs_r_start = np.concatenate([np.cumsum(r[order_start][::-1])[::-1], [0.0]])
    cs_x_start = np.vstack([np.cumsum((r[:, None] * X)[order_start][::-1], axis=0)[::-1], np.zeros(X.shape[1])])
    i_stop = np.searchsorted(stop[order_stop], times, side="left")  # stop >= t
    i_start = np.searchsorted(start[order_start], times, side="left")  # start >= t (not at risk)
    s0 = cs_r_stop[i_stop] - cs_r_start[i_start]
    s1 = cs_x_stop[i_stop] - cs_x_start[i_start]
    xbar = s1 / s0[:, None]
    dlam = d / s0
    H = np.concatenate([[0.0], np.cumsum(dlam)])
    G = np.vstack([np.zeros(X.shape[1]), np.cumsum(xbar * dlam[:, None], axis=0)])
    k1 = np.searchsorted(times, stop, side="right")  # event times <= stop
    k0 = np.searchsorted(times, start, side="right")  # event times <= start
    dH = H[k1] - H[k0]
    dG = G[k1] - G[k0]
    resid = -r[:, None] * (X * dH[:, None] - dG)
    ev = event == 1
    j = np.searchsorted(times, stop[ev])
    resid[ev] += X[ev] - xbar[j]
    codes = pd.factorize(groups)[0]
    U = np.zeros((codes.max() + 1, X.shape[1]))
    np.add.at(U, codes, resid)
    meat = U.T @ U
    return bread @ meat @ bread


def _hr_frame(params, cov, info, ci) -> pd.DataFrame:
    z = z_value(ci)
    se = np.sqrt(np.diag(cov.to_numpy(float)))
    b = params.to_numpy(float)
    with np.errstate(invalid="ignore", over="ignore"):
        p = 2 * _sps.norm.sf(np.abs(b / se))
        out = pd.DataFrame({
            "term": [i[0] for i in info],
            "group": [i[1] for i in info],
            "level": [i[2] for i in info],
            "coef": b,
            "se": se,
            "hazard_ratio": np.exp(b),
            "low": np.exp(b - z * se),
            "high": np.exp(b + z * se),
            "p_value": p,
        })
    return out


def _warn_notes(notes, what):
    if notes:
        warnings.warn(f"{what}: " + "; ".join(notes), ConvergenceWarning, stacklevel=3)


def _counting_rows(data, *, excl, flags, lag_days, cols, keep=None):
    """Counting-process rows ``(start, stop]`` per customer with the count held in each.

    Built in the engine: per (customer, product) the net quantity is accumulated day by day
    (purchases add, cancellations subtract), the days on which the product starts or stops
    being held are kept, and their running sum per customer is the count.  Time is days since
    signup; the count held at the end of day ``D`` applies to ``(D − signup, D − signup + 1]``
    (optionally ``lag_days`` later), so it is always measured before the churn it is compared
    with.  Each customer is followed until churn (event) or the reference date (censored).
    ``keep`` (a fraction) keeps a deterministic sample of customers, by a hash of their id.
    """
    ref = _day(data.reference_date)
    p = _kept(data, excl)
    ev1 = p.select("customer_id", "product_id", __d=p.purchased_at.cast("date").epoch_days() + lag_days,
                   __delta=p.quantity)
    q = p.filter(p.ended_at.notnull())
    ev2 = q.select("customer_id", "product_id", __d=q.ended_at.epoch_days() + lag_days, __delta=-q.quantity)
    ev = ev1.union(ev2, distinct=False)
    days = ev.group_by(["customer_id", "product_id", "__d"]).aggregate(__delta=ev["__delta"].sum())
    w = ibis.cumulative_window(group_by=["customer_id", "product_id"], order_by="__d")
    days = days.mutate(__h=ibis.ifelse(days["__delta"].sum().over(w) > 0, 1, 0))
    w2 = ibis.window(group_by=["customer_id", "product_id"], order_by="__d")
    days = days.mutate(__chg=days["__h"] - days["__h"].lag().over(w2).fill_null(0))
    ch = days.filter(days["__chg"] != 0)
    aggs = {"__dn": ch["__chg"].sum()}
    for i, f in enumerate(flags):
        aggs[f"__df{i}"] = ibis.ifelse(ch.product_id == f, ch["__chg"], 0).sum()
    cday = ch.group_by(["customer_id", "__d"]).aggregate(**aggs)
    c = _customer_days(data, cols)
    c = c.mutate(__end=ibis.coalesce(c["__c"], ref) - c["__s"], __churned=c["__c"].notnull())
    cust = c.filter(c["__end"] > 0)
    if keep is not None and keep < 1:
        cust = cust.filter((cust.customer_id.hash().abs() % 1_000_000) < int(round(keep * 1_000_000)))
    j = cday.join(cust.select("customer_id", "__s"), "customer_id")
    wc = ibis.cumulative_window(group_by="customer_id", order_by="__d")
    nf = len(flags)
    j = j.mutate(__t=ibis.greatest(j["__d"] - j["__s"], 0), __n=j["__dn"].sum().over(wc),
                 **{f"__f{i}": j[f"__df{i}"].sum().over(wc) for i in range(nf)})
    last = j.group_by(["customer_id", "__t"]).aggregate(
        __n=j["__n"].argmax(j["__d"]), **{f"__f{i}": j[f"__f{i}"].argmax(j["__d"]) for i in range(nf)},
        __prio=ibis.literal(1, "int64"),
    )
    base = cust.select(
        "customer_id", __t=ibis.literal(0, "int64"), __n=ibis.literal(0, "int64"),
        **{f"__f{i}": ibis.literal(0, "int64") for i in range(nf)}, __prio=ibis.literal(0, "int64"),
    )
    last = last.select("customer_id", __t=last["__t"].cast("int64"), __n=last["__n"].cast("int64"),
                       **{f"__f{i}": last[f"__f{i}"].cast("int64") for i in range(nf)},
                       __prio=last["__prio"])
    allr = last.union(base, distinct=False)
    allr = allr.group_by(["customer_id", "__t"]).aggregate(
        __n=allr["__n"].argmax(allr["__prio"]),
        **{f"__f{i}": allr[f"__f{i}"].argmax(allr["__prio"]) for i in range(nf)},
    )
    allr = allr.join(cust, "customer_id")
    allr = allr.filter(allr["__t"] < allr["__end"])
    wl = ibis.window(group_by="customer_id", order_by="__t")
    allr = allr.mutate(__stop=ibis.coalesce(allr["__t"].lead().over(wl), allr["__end"]))
    allr = allr.mutate(__event=(allr["__stop"] == allr["__end"]) & allr["__churned"])
    rows = _execute(allr.select("customer_id", *cols, "__s", "__t", "__stop", "__event", "__n",
                                *[f"__f{i}" for i in range(nf)]))
    rows = rows.sort_values(["customer_id", "__t"], kind="stable").reset_index(drop=True)
    dropped = int(_execute(c.aggregate(n=ibis.ifelse(c["__end"] <= 0, 1, 0).sum()))["n"].iloc[0] or 0)
    return rows, dropped


def _model_rows(data, *, bins, excl, flags, lag_days, adjust, cohort, keep=None):
    rows, dropped = _counting_rows(data, excl=excl, flags=flags, lag_days=lag_days, cols=adjust, keep=keep)
    rows["tier"] = pd.Categorical.from_codes(_tier_index(rows["__n"], bins), dtype=_tier_dtype(bins))
    if cohort is not None:
        rows["__cohort"] = _cohort_labels(rows["__s"], cohort)
    return rows, dropped


def _merge_runs(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Merge a customer's consecutive intervals whose covariates are equal (fewer rows to fit)."""
    if rows.empty:
        return rows
    same = rows["customer_id"].eq(rows["customer_id"].shift())
    for k in keys:
        col = rows[k].astype(str) if isinstance(rows[k].dtype, pd.CategoricalDtype) else rows[k]
        same &= col.eq(col.shift())
    run = (~same).cumsum().to_numpy()
    first = rows.groupby(run, sort=False).head(1).reset_index(drop=True)
    last = rows.groupby(run, sort=False).tail(1).reset_index(drop=True)
    first["__stop"] = last["__stop"].to_numpy()
    first["__event"] = last["__event"].to_numpy()
    first["__n"] = last["__n"].to_numpy()
    return first


def _tv_fit(data, *, bins, exclude, adjust, cohort, products, lag, ties, robust, count, reference,
            max_customers=None):
    excl = _exclusions(data, exclude)
    adjust = _attributes(data, adjust, "adjust")
    flags = _products_flags(data, products)
    cohort = _cohort_unit(cohort)
    lag_days = _duration(lag, "lag")
    if ties not in ("efron", "breslow"):
        raise ParameterError(f"ties must be 'efron' or 'breslow', not {ties!r}")
    if count not in ("tier", "linear"):
        raise ParameterError(f"count must be 'tier' or 'linear', not {count!r}")
    keep, total = None, None
    if max_customers is not None:
        if isinstance(max_customers, bool) or not isinstance(max_customers, int | np.integer) or max_customers < 100:
            raise ParameterError(f"max_customers must be a whole number of at least 100, or None, not {max_customers!r}")
        total = int(_execute(data.customers.aggregate(n=data.customers.count()))["n"].iloc[0])
        if total > max_customers:
            keep = max_customers / total
    rows, dropped = _model_rows(data, bins=bins, excl=excl, flags=flags, lag_days=lag_days,
                                adjust=adjust, cohort=cohort, keep=keep)
    if count == "tier":
        rows = _merge_runs(rows, ["tier", *[f"__f{i}" for i in range(len(flags))]])
    rows.attrs["sampled"] = None if keep is None else {"customers": total, "fraction": keep}
    labels = tier_labels(bins)
    exposure = (rows["__stop"] - rows["__t"]).to_numpy(float)
    present = [lab for lab in labels if exposure[(rows["tier"] == lab).to_numpy()].sum() > 0]
    if not present:
        raise PeriodError("no customer has any follow-up: nothing to model")
    reference = _reference_tier(reference, present, labels)
    X, info = _design(rows, tier_col="tier", labels=present, reference=reference, adjust=adjust,
                      cohort_col="__cohort" if cohort else None, flags=flags, count=count)
    codes = pd.factorize(rows["customer_id"])[0]
    params, cov, notes, res = _fit_cox(rows["__stop"], X, rows["__event"], entry=rows["__t"],
                                       groups=codes, ties=ties, robust=robust)
    return rows, dropped, X, info, params, cov, notes, res, reference, excl, flags, adjust, cohort, lag_days


def churn_model(
    data: CrossSellData,
    *,
    bins=DEFAULT_BINS,
    adjust=None,
    cohort: str | None = "Y",
    products=None,
    exclude=None,
    lag="0D",
    count: str = "tier",
    reference=None,
    ties: str = "breslow",
    robust: bool = True,
    max_customers: int | None = 200_000,
    min_customers: int = 30,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Cox model of churn with the product count as a time-varying covariate.

    Each customer's history is cut into intervals over which their count is constant
    (counting-process rows, built in the engine), so a customer contributes time to a tier only
    while they are in it: adding products later cannot make their earlier survival look like
    the effect of those products (the survivorship bias of the naive comparison).  Time is
    tenure (days since signup), so the baseline hazard absorbs how churn changes with tenure;
    plan or segment (``adjust``) and signup cohort enter as covariates.

    Parameters
    ----------
    data : CrossSellData
    bins : sequence of int, default (1, 2, 3, 5)
    adjust : str or list of str, optional
        Customer attributes to adjust for (e.g. ``"plan"``); each level against the most
        frequent one.
    cohort : {"Y", "Q", "M"} or None, default "Y"
        Adjust for the signup year (quarter, month), against the first.
    products : str or list of str, optional
        Products whose holding enters as its own time-varying indicator (e.g. an add-on that
        is pushed to customers who do not need it).
    exclude : str or list of str, optional
    lag : duration, default "0D"
        Use the count held this long before (guards against customers cancelling add-ons on
        their way out).
    count : {"tier", "linear"}
        Tier dummies against ``reference``, or one hazard ratio per additional product.
    reference : str, optional
        The reference tier (default: the lowest tier with follow-up).
    ties : {"efron", "breslow"}
    robust : bool, default True
        Cluster-robust (by customer) standard errors; model-based ones if they cannot be
        computed (with a :class:`~crosssell.errors.ConvergenceWarning`).
    max_customers : int or None, default 200,000
        Above this many customers the model is fitted on a deterministic sample of about this
        many (by a hash of ``customer_id``; ``attrs["sampled"]`` says so): the intervals are
        already narrow, and the fit's time grows with the rows.  None fits everyone.
    min_customers : int, default 30
        Tiers reached by fewer customers are flagged in ``small``.
    ci : float, default 0.95

    Returns
    -------
    DataFrame
        One row per term: ``term``, ``group`` ("tier", the attribute, "cohort", "product
        held"), ``level``, ``coef``, ``se``, ``hazard_ratio``, ``low``, ``high``, ``p_value``,
        and for tiers ``customers`` (who spent time in it), ``events``, ``exposure_days``,
        ``small``.  The reference tier is a row with hazard ratio 1.  ``attrs`` hold the
        method, the number of customers, intervals and events.

    Examples
    --------
    >>> import crosssell as cs
    >>> hr = cs.churn_model(cs.load(cs.sample_path()), adjust="plan", products="ADV_REPORTS")
    >>> hr.loc[hr["group"] == "tier", ["level", "hazard_ratio", "low", "high"]]  # doctest: +SKIP
    """
    _require_churn(data, "churn_model")
    bins = _check_bins(bins)
    ci = _check_ci(ci)
    min_customers = _check_min(min_customers)
    (rows, dropped, X, info, params, cov, notes, _res, reference, excl, flags, adjust, cohort,
     lag_days) = _tv_fit(data, bins=bins, exclude=exclude, adjust=adjust, cohort=cohort,
                         products=products, lag=lag, ties=ties, robust=robust, count=count,
                         reference=reference, max_customers=max_customers)
    _warn_notes(notes, "churn_model")
    out = _hr_frame(params, cov, info, ci)
    labels = tier_labels(bins)
    exposure = (rows["__stop"] - rows["__t"]).astype(float)
    stats_ = pd.DataFrame({
        "level": labels,
        "customers": [int(rows.loc[rows["tier"] == lab, "customer_id"].nunique()) for lab in labels],
        "events": [int(rows.loc[rows["tier"] == lab, "__event"].sum()) for lab in labels],
        "exposure_days": [float(exposure[rows["tier"] == lab].sum()) for lab in labels],
    })
    if count == "tier":
        ref_row = pd.DataFrame({"term": [f"tier[{reference}]"], "group": ["tier"], "level": [reference],
                                "coef": [0.0], "se": [np.nan], "hazard_ratio": [1.0], "low": [np.nan],
                                "high": [np.nan], "p_value": [np.nan]})
        tiers_part = pd.concat([ref_row, out[out["group"] == "tier"]], ignore_index=True)
        tiers_part = tiers_part.merge(stats_, on="level", how="left")
        order = {lab: i for i, lab in enumerate(labels)}
        tiers_part = tiers_part.sort_values("level", key=lambda s: s.map(order), kind="stable")
        tiers_part = tiers_part[tiers_part["exposure_days"] > 0]
        tiers_part.attrs["by"] = []
        tiers_part = _small(tiers_part, min_customers, "churn_model")
        out = pd.concat([tiers_part, out[out["group"] != "tier"]], ignore_index=True)
    n_events = int(rows["__event"].sum())
    method = (
        "Cox proportional hazards on tenure (days since signup) with the number of products held "
        f"as a time-varying covariate ({'tiers against ' + reference if count == 'tier' else 'per additional product'})"
        + (f", lagged {lag_days} days" if lag_days else "")
        + (f"; adjusted for {', '.join(adjust)}" if adjust else "")
        + (f"; signup cohort ({PERIOD_CODES[cohort][2]})" if cohort else "")
        + (f"; holding {', '.join(flags)}" if flags else "")
        + f"; {ties} ties; {'cluster-robust' if robust else 'model-based'} standard errors"
        + (f"; fitted on a deterministic sample of {rows['customer_id'].nunique():,} of "
           f"{rows.attrs['sampled']['customers']:,} customers" if rows.attrs.get("sampled") else "")
    )
    return _finish(
        out, data, method=method, customers=int(rows["customer_id"].nunique()), intervals=len(rows),
        events=n_events, reference=reference, no_follow_up=dropped, notes=notes, ci=ci,
        sampled=rows.attrs.get("sampled"),
        bins=list(bins), definition=_count_text(bins, excl, data), by=[],
    )


# --------------------------------------------------------------------------------------------
# landmark


def landmark(
    data: CrossSellData,
    *,
    at="90D",
    horizon="365D",
    bins=DEFAULT_BINS,
    adjust=None,
    cohort: str | None = "Y",
    products=None,
    exclude=None,
    reference=None,
    min_customers: int = 30,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Churn by the tier held at a landmark, counted only after it.

    Fixing the tier at the landmark (a tenure such as 90 days, or a calendar date) among the
    customers still active then removes the survivorship bias: nobody's tier is measured after
    their churn, and, for a tenure landmark, every customer is compared at the same tenure.

    Parameters
    ----------
    data : CrossSellData
    at : duration or date, default "90D"
        Tenure landmark (each customer's signup + at) or a calendar date (end of day).
    horizon : duration or None, default "365D"
        Churn within this long after the landmark.  None follows customers to the reference
        date.
    bins, exclude, reference, min_customers, ci
        As in :func:`churn_model`.
    adjust, cohort, products
        Covariates of the landmark Cox model, as in :func:`churn_model`.

    Returns
    -------
    DataFrame
        Per tier: ``customers`` (active at the landmark), ``observable`` (landmark + horizon on
        or before the reference date), ``churned`` (of those, within the horizon),
        ``churn_rate`` with Wilson ``rate_low``/``rate_high``, and the hazard ratio against the
        reference tier from a Cox model on time since the landmark that uses every customer
        (censored at the horizon or the reference date): ``events`` (the churn it counts),
        ``hazard_ratio``, ``hr_low``, ``hr_high``, ``p_value``; ``small``.  With ``horizon=None`` ``observable`` is every
        customer and ``churn_rate`` the share churned by the reference date.

    Examples
    --------
    >>> import crosssell as cs
    >>> lm = cs.landmark(cs.load(cs.sample_path()), at="90D", horizon="365D")
    >>> lm.columns[:4].tolist()
    ['tier', 'customers', 'observable', 'churned']
    """
    _require_churn(data, "landmark")
    bins = _check_bins(bins)
    excl = _exclusions(data, exclude)
    ci = _check_ci(ci)
    min_customers = _check_min(min_customers)
    if at is None:
        raise ParameterError("landmark needs at= (a tenure such as '90D' or a date)")
    adjust = _attributes(data, adjust, "adjust")
    flags = _products_flags(data, products)
    cohort = _cohort_unit(cohort)
    h = None if horizon is None else _duration(horizon, "horizon", allow_zero=False)
    frame, kind = _follow(data, at, bins, excl, cols=adjust, horizon_days=h, flags=flags)
    labels = tier_labels(bins)
    full = frame["__full"].to_numpy(bool) if h is not None else np.ones(len(frame), bool)
    rows = []
    for lab in labels:
        sel = (frame["tier"] == lab).to_numpy()
        obs = sel & full
        rows.append({"tier": lab, "customers": int(sel.sum()), "observable": int(obs.sum()),
                     "churned": int(frame["__event"].to_numpy(bool)[obs].sum()),
                     "events": int(frame["__event"].to_numpy(bool)[sel].sum())})
    res = pd.DataFrame(rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        res["churn_rate"] = np.where(res["observable"] > 0, res["churned"] / res["observable"].clip(lower=1), np.nan)
    lo, hi = wilson_interval(res["churned"].to_numpy(), res["observable"].to_numpy(), ci=ci)
    res["rate_low"], res["rate_high"] = lo, hi
    res = res[["tier", "customers", "observable", "churned", "churn_rate", "rate_low", "rate_high", "events"]]
    fit = frame[frame["__time"] > 0]
    present = [lab for lab in labels if (fit["tier"] == lab).any()]
    res["hazard_ratio"] = np.nan
    res["hr_low"] = np.nan
    res["hr_high"] = np.nan
    res["p_value"] = np.nan
    notes = []
    if present:
        ref_tier = _reference_tier(reference, present, labels)
        if cohort is not None:
            fit = fit.assign(__cohort=_cohort_labels(fit["__s"], cohort))
        X, info = _design(fit, tier_col="tier", labels=[lab for lab in labels if lab in present],
                          reference=ref_tier, adjust=adjust, cohort_col="__cohort" if cohort else None,
                          flags=flags, count="tier")
        params, cov, notes, _ = _fit_cox(fit["__time"], X, fit["__event"], ties="breslow", robust=False)
        hr = _hr_frame(params, cov, info, ci)
        hr = hr[hr["group"] == "tier"].set_index("level")
        for col, src in (("hazard_ratio", "hazard_ratio"), ("hr_low", "low"), ("hr_high", "high"),
                         ("p_value", "p_value")):
            res[col] = res["tier"].map(hr[src]).astype(float)
        res.loc[res["tier"] == ref_tier, "hazard_ratio"] = 1.0
    else:
        ref_tier = None
    _warn_notes(notes, "landmark")
    res["tier"] = pd.Categorical(res["tier"], dtype=_tier_dtype(bins))
    res.attrs["by"] = []
    res = _small(res, min_customers, "landmark")
    follow = (f"churn within {h} days after it (rates: customers observable for all {h} days)"
              if h is not None else "churn up to the reference date")
    method = (_landmark_text(kind, at, data) + f"; {follow}. Hazard ratios: Cox model on time since "
              f"the landmark against tier {ref_tier}"
              + (f", adjusted for {', '.join(adjust)}" if adjust else "")
              + (f", signup cohort ({PERIOD_CODES[cohort][2]})" if cohort else "")
              + (f", holding {', '.join(flags)}" if flags else "")
              + "; censored at the horizon or the reference date")
    return _finish(res, data, method=method, reference=ref_tier, horizon_days=h, notes=notes, ci=ci,
                   bins=list(bins), definition=_count_text(bins, excl, data), by=[])


# --------------------------------------------------------------------------------------------
# naive vs corrected


def compare_naive(
    data: CrossSellData,
    *,
    bins=DEFAULT_BINS,
    at="90D",
    horizon="365D",
    adjust=None,
    cohort: str | None = "Y",
    products=None,
    exclude=None,
    reference=None,
    min_customers: int = 30,
    ci: float = 0.95,
) -> pd.DataFrame:
    """The naive tier comparison beside the landmark and time-varying estimates.

    * **naive**: churn-rate ratio against the reference tier, tier = products on the last day
      as a customer, churn = churned by the reference date (:func:`churn_by_tier` with
      ``horizon=None``), with a Katz log interval;
    * **landmark**: hazard ratio from :func:`landmark` (tier at ``at``, churn after it);
    * **time-varying**: hazard ratio from :func:`churn_model`.

    Returns
    -------
    DataFrame
        ``tier``, ``method``, ``measure``, ``estimate``, ``low``, ``high``, ``customers``,
        ``events``, ``small``; ``attrs["reading"]`` says in one sentence how far apart the
        naive and corrected answers are and why.

    Examples
    --------
    >>> import crosssell as cs
    >>> cmp = cs.compare_naive(cs.load(cs.sample_path()), adjust="plan")
    >>> cmp.attrs["reading"]  # doctest: +SKIP
    """
    _require_churn(data, "compare_naive")
    bins = _check_bins(bins)
    ci = _check_ci(ci)
    labels = tier_labels(bins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        naive = churn_by_tier(data, horizon=None, bins=bins, exclude=exclude, min_customers=min_customers, ci=ci)
        lm = landmark(data, at=at, horizon=horizon, bins=bins, adjust=adjust, cohort=cohort, products=products,
                      exclude=exclude, reference=reference, min_customers=min_customers, ci=ci)
        tv = churn_model(data, bins=bins, adjust=adjust, cohort=cohort, products=products, exclude=exclude,
                         reference=reference, min_customers=min_customers, ci=ci)
    present = naive.loc[naive["customers"] > 0, "tier"].astype(str).tolist()
    ref_tier = _reference_tier(reference, present, labels)
    ref = naive[naive["tier"] == ref_tier].iloc[0]
    rr = risk_ratio_interval(naive["churned"].to_numpy(), naive["customers"].to_numpy(),
                             int(ref["churned"]), int(ref["customers"]), ci=ci)
    parts = [pd.DataFrame({
        "tier": naive["tier"].astype(str), "method": "naive", "measure": "churn-rate ratio",
        "estimate": rr["estimate"], "low": rr["low"], "high": rr["high"],
        "customers": naive["customers"], "events": naive["churned"],
    })]
    parts.append(pd.DataFrame({
        "tier": lm["tier"].astype(str), "method": "landmark", "measure": "hazard ratio",
        "estimate": lm["hazard_ratio"], "low": lm["hr_low"], "high": lm["hr_high"],
        "customers": lm["customers"], "events": lm["events"],
    }))
    t = tv[tv["group"] == "tier"]
    parts.append(pd.DataFrame({
        "tier": t["level"].astype(str), "method": "time-varying", "measure": "hazard ratio",
        "estimate": t["hazard_ratio"], "low": t["low"], "high": t["high"],
        "customers": t["customers"], "events": t["events"],
    }))
    out = pd.concat(parts, ignore_index=True)
    out.loc[(out["tier"] == ref_tier) & (out["method"] == "naive"), ["low", "high"]] = np.nan
    out["customers"] = out["customers"].fillna(0).astype("int64")
    out["events"] = out["events"].fillna(0).astype("int64")
    out["small"] = out["customers"] < min_customers
    out["tier"] = pd.Categorical(out["tier"], dtype=_tier_dtype(bins))
    out["method"] = pd.Categorical(out["method"], categories=["naive", "landmark", "time-varying"], ordered=True)
    out = out.sort_values(["tier", "method"], kind="stable").reset_index(drop=True)
    reading = _reading(out, ref_tier, tv.attrs.get("reference"))
    methods = {
        "naive": naive.attrs["method"],
        "landmark": lm.attrs["method"],
        "time-varying": tv.attrs["method"],
    }
    return _finish(out, data, reading=reading, methods=methods, reference=ref_tier, ci=ci, bins=list(bins),
                   definition=_count_text(bins, _exclusions(data, exclude), data))


def _fmt(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.2f}"


def _reading(out: pd.DataFrame, ref_tier: str, tv_ref) -> str:
    """One sentence on the gap between the naive and the corrected (time-varying) estimates."""
    wide = out.pivot_table(index="tier", columns="method", values=["estimate", "low", "high"], observed=False,
                           aggfunc="first")
    best, gap = None, -1.0
    for tier in wide.index:
        if str(tier) == ref_tier:
            continue
        try:
            a = wide.loc[tier, ("estimate", "naive")]
            b = wide.loc[tier, ("estimate", "time-varying")]
        except KeyError:
            continue
        if np.isfinite(a) and np.isfinite(b) and a > 0 and b > 0:
            g = abs(np.log(a) - np.log(b))
            small = out[(out["tier"] == tier) & (out["method"] == "time-varying")]["small"]
            if len(small) and bool(small.iloc[0]):
                g *= 0.5  # prefer a tier with enough customers to say something
            if g > gap:
                best, gap = tier, g
    if best is None:
        return "Not enough churn in the tiers to compare the naive and corrected estimates."
    a = wide.loc[best, ("estimate", "naive")]
    lm = wide.loc[best, ("estimate", "landmark")] if ("estimate", "landmark") in wide.columns else np.nan
    lml, lmh = wide.loc[best, ("low", "landmark")], wide.loc[best, ("high", "landmark")]
    b, bl, bh = (wide.loc[best, (k, "time-varying")] for k in ("estimate", "low", "high"))
    said = [f"the naive churn-rate ratio is {_fmt(a)}"]
    if np.isfinite(lm):
        said.append(f"the landmark hazard ratio {_fmt(lm)} [{_fmt(lml)}, {_fmt(lmh)}]")
    else:
        said.append("the landmark has no estimate for this tier (too few customers reach it by the landmark)")
    said.append(f"the time-varying hazard ratio {_fmt(b)} [{_fmt(bl)}, {_fmt(bh)}]")
    head = f"Tier {best} against tier {ref_tier}: " + ", ".join(said[:-1]) + " and " + said[-1]
    outside = np.isfinite(bl) and np.isfinite(bh) and not (bl <= a <= bh)
    lm_differs = np.isfinite(lml) and np.isfinite(lmh) and not (lml <= a <= lmh)
    if outside or lm_differs:
        hits = [(w, est) for w, est, hit in (("the time-varying interval", b, outside),
                                              ("the landmark interval", lm, lm_differs)) if hit]
        where = " and ".join(w for w, _ in hits)
        below = {a < est for _, est in hits}
        if len(below) > 1:
            why = ("on different sides, so the answer depends on how tenure is handled (the tier at "
                   "the landmark, or as it changes): read neither naively")
        elif below == {True}:
            why = ("the naive comparison makes cross-sell look better than it is, because customers who "
                   "stay longer both accumulate products and are, by definition, the survivors")
        else:
            why = ("the naive comparison makes this tier look worse than it is once tenure is taken "
                   "into account")
        return f"{head}; the naive estimate lies outside {where}: {why}."
    return f"{head}; the naive estimate lies within the corrected intervals, so tenure does not change the answer here."


# --------------------------------------------------------------------------------------------
# upsell vs cross-sell


def _sales_rows(data: CrossSellData, exclude: tuple, *, include_base: bool = True) -> ir.Table:
    """Every purchase row classified as ``base``, ``cross-sell``, ``upsell`` or ``return``.

    A positive row is an *upsell* when the customer already held the product just before it
    (earlier purchases net of returns and cancellations are positive), *cross-sell* when not,
    and *base* when not held and the product is a base product.  Cancellations (``ended_at``)
    take effect at the start of their day; rows at the same moment are ordered larger first.
    """
    p = data.purchases
    if exclude:
        p = p.filter(~p.product_id.isin(list(exclude)))
    base = data.base_products()
    p = p.mutate(__row=ibis.row_number())
    sales = p.select("customer_id", "product_id", "__row", __ts=p.purchased_at.cast("timestamp"), __delta=p.quantity,
                     __ord=ibis.literal(1, "int64"))
    q = p.filter(p.ended_at.notnull())
    ends = q.select("customer_id", "product_id", "__row", __ts=q.ended_at.cast("timestamp"),
                    __delta=-q.quantity, __ord=ibis.literal(0, "int64"))
    ev = sales.union(ends, distinct=False)
    w = ibis.cumulative_window(group_by=["customer_id", "product_id"],
                               order_by=[ev["__ts"], ev["__ord"], ibis.desc(ev["__delta"]), ev["__row"]])
    ev = ev.mutate(__before=ev["__delta"].sum().over(w) - ev["__delta"])
    ev = ev.filter(ev["__ord"] == 1).select("__row", "__before")
    j = p.join(ev, "__row")
    is_base = j.product_id.isin(base) if base else ibis.literal(False)
    kind = ibis.cases(
        (j.quantity < 0, "return"),
        (j["__before"] > 1e-9, "upsell"),
        (is_base, "base"),
        else_="cross-sell",
    )
    return j.mutate(kind=kind)


def upsell(
    data: CrossSellData,
    *,
    period: str | None = None,
    by=None,
    exclude=None,
    start=None,
    end=None,
) -> pd.DataFrame:
    """Sales split into cross-sell (a product the customer did not hold) and upsell (more of one
    they did), with base-product sales and returns apart.

    Parameters
    ----------
    data : CrossSellData
    period : {"M", "Q", "Y"} or None
        Split by calendar period of the purchase (None: all time).
    by : str or list of str, optional
        Customer attributes.
    exclude : str or list of str, optional
        Products left out entirely.
    start, end : date-like, optional
        Keep only the periods that overlap ``[start, end]``.

    Returns
    -------
    DataFrame
        (``period``,) ``by``, ``kind`` (``"base"``, ``"cross-sell"``, ``"upsell"``,
        ``"return"``), ``sales`` (purchase rows), ``units``, ``customers`` (distinct), ``revenue``
        (when the data has it) and ``share_of_units`` (of the sold units — base, cross-sell and
        upsell — in the group).

    Examples
    --------
    >>> import crosssell as cs
    >>> u = cs.upsell(cs.load(cs.sample_path()))
    >>> sorted(u["kind"])
    ['base', 'cross-sell', 'return', 'upsell']
    """
    excl = _exclusions(data, exclude)
    by = _by(data, by)
    rows = _sales_rows(data, excl)
    if by:
        rows = rows.join(data.customers.select("customer_id", *by), "customer_id")
    frame = periods(data, period, start=start, end=end)
    ptab = _periods_table(frame)
    if period is None:
        rows = rows.cross_join(ptab)
        rows = rows.filter((rows.purchased_at >= ptab["__pstart"].cast("timestamp"))
                           & (rows.purchased_at < ptab["__pend"].cast("timestamp")))
    else:
        unit = PERIOD_CODES[period][0]
        rows = rows.mutate(__pstart=rows.purchased_at.truncate(unit).cast("date"))
        rows = rows.join(ptab, "__pstart")
    aggs = {"sales": rows.count(), "units": rows.quantity.sum(), "customers": rows.customer_id.nunique()}
    has_rev = "revenue" in data.purchases.columns
    if has_rev:
        aggs["revenue"] = rows.revenue.fill_null(0).sum()
    res = _execute(rows.group_by(["__pidx", *by, "kind"]).aggregate(**aggs))
    kinds = ["base", "cross-sell", "upsell", "return"]
    keys = ["__pidx", *by]
    combos = res[keys].drop_duplicates() if len(res) else pd.DataFrame({"__pidx": np.arange(len(frame))})
    grid = combos.merge(pd.DataFrame({"kind": kinds}), how="cross")
    res = grid.merge(res, on=[*keys, "kind"], how="left")
    res = res.fillna({"sales": 0, "units": 0.0, "customers": 0, **({"revenue": 0.0} if has_rev else {})})
    res["sales"] = res["sales"].astype("int64")
    res["customers"] = res["customers"].astype("int64")
    # units sold (base, cross-sell and upsell; returns left out) per period and segment
    tot = res["units"].where(res["kind"] != "return", 0.0).groupby([res[k] for k in keys]).transform("sum").to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        res["share_of_units"] = np.where((res["kind"] != "return") & (tot > 0), res["units"] / np.where(tot > 0, tot, 1), np.nan)
    res = res.merge(frame.reset_index(names="__pidx")[["__pidx", "period"]], on="__pidx", how="left")
    res["kind"] = pd.Categorical(res["kind"], categories=kinds, ordered=True)
    lead = ["period"] if period is not None else []
    res = res.sort_values([*(["__pidx"] if period else []), *by, "kind"], kind="stable")
    cols = [*lead, *by, "kind", "sales", "units", "customers", *(["revenue"] if has_rev else []), "share_of_units"]
    return _finish(
        res[cols], data, by=by,
        method=("a sale is cross-sell when the customer did not hold the product just before it, upsell "
                "when they did (more units of a product already held), base when it is a base product "
                "not yet held; returns (negative quantities) apart"),
    )


# --------------------------------------------------------------------------------------------
# over-selling


def overselling(
    data: CrossSellData,
    *,
    bins=DEFAULT_BINS,
    method: str = "hazard",
    horizon="365D",
    adjust=None,
    cohort: str | None = "Y",
    products=None,
    exclude=None,
    cancel_within="90D",
    after="180D",
    window="365D",
    by=None,
    checks=None,
    min_customers: int = 30,
    alpha: float = 0.05,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Where does more cross-sell go with more churn or less satisfaction?

    Four checks, each reported with its estimate and interval, flagged when the interval says
    the harm is real:

    * **tier churn**: for each tier above the best (lowest-churn) tier below it, its churn
      against that best tier — hazard ratio from :func:`churn_model` (``method="hazard"``) or
      the difference of churn rates from :func:`churn_by_tier` (``method="rate"``, with
      ``horizon``; ``horizon=None`` is the naive comparison, the only one a snapshot export
      allows).  An inverted U — churn falling with the first products and rising past a point —
      flags the tiers past it.
    * **tier satisfaction**: mean CSAT (and NPS) of each tier against the best tier below it.
    * **product**: per add-on, the share of its new sales cancelled within ``cancel_within``,
      the share whose buyer churned within it, and CSAT in the ``after`` days following the
      purchase, each against all other add-ons (p-values adjusted across products,
      Benjamini–Hochberg).
    * **segment**: per value of ``by`` (default: every customer attribute), the change in
      products held per customer and in mean CSAT between the previous and the latest
      ``window``; flagged when cross-sell grows while satisfaction falls.

    Parameters
    ----------
    data : CrossSellData
    bins : sequence of int, default (1, 2, 3, 5)
    method : {"hazard", "rate"}
    horizon : duration or None, default "365D"
        For ``method="rate"``.
    adjust, cohort, products
        Covariates of the hazard model (see :func:`churn_model`).
    exclude : str or list of str, optional
    cancel_within, after, window : durations
    by : str or list of str, optional
    checks : list of str, optional
        Run only these of ``"tier churn"``, ``"tier satisfaction"``, ``"product"`` and
        ``"segment"`` (default: all that the data supports).
    min_customers : int, default 30
        Tiers and products with fewer customers are reported but never flagged.
    alpha : float, default 0.05
        Flag when the (adjusted) p-value is below it and the harm goes the stated way.
    ci : float, default 0.95

    Returns
    -------
    DataFrame
        ``check``, ``subject``, ``compared_with``, ``measure``, ``estimate``, ``low``, ``high``,
        ``p_value`` (Benjamini–Hochberg adjusted within each check), ``n``, ``flagged``,
        ``evidence``.  ``attrs["flags"]`` lists the flagged
        evidence sentences; ``attrs["skipped"]`` the checks the data could not support.

    Examples
    --------
    >>> import crosssell as cs
    >>> flags = cs.overselling(cs.load(cs.sample_path()), adjust="plan")
    >>> flags.loc[flags["flagged"], ["check", "subject"]]  # doctest: +SKIP
    """
    bins = _check_bins(bins)
    ci = _check_ci(ci)
    if not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise ParameterError(f"alpha must be between 0 and 1, not {alpha!r}")
    if method not in ("hazard", "rate"):
        raise ParameterError(f"method must be 'hazard' or 'rate', not {method!r}")
    min_customers = _check_min(min_customers)
    excl = _exclusions(data, exclude)
    every = ("tier churn", "tier satisfaction", "product", "segment")
    wanted = set(every) if checks is None else {checks} if isinstance(checks, str) else set(checks)
    if wanted - set(every):
        raise ParameterError(f"checks must be among {list(every)}, not {sorted(wanted - set(every))}")
    parts, skipped = [], {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        if "tier churn" not in wanted:
            pass
        elif data.has_churn:
            parts.append(_tier_churn_check(data, bins=bins, method=method, horizon=horizon, adjust=adjust,
                                           cohort=cohort, products=products, exclude=exclude,
                                           min_customers=min_customers, alpha=alpha, ci=ci))
        else:
            skipped["tier churn"] = "no churn dates"
        if "tier satisfaction" not in wanted:
            pass
        elif data.surveys is not None:
            parts.append(_tier_satisfaction_check(data, bins=bins, exclude=exclude, min_customers=min_customers,
                                                  alpha=alpha, ci=ci))
        else:
            skipped["tier satisfaction"] = "no surveys"
        if "product" not in wanted:
            pass
        elif data.has_product_ids:
            parts.append(_product_check(data, excl=excl, cancel_within=cancel_within, after=after,
                                        min_customers=min_customers, alpha=alpha, ci=ci))
        else:
            skipped["product"] = "no product identities (a product count only)"
        if "segment" not in wanted:
            pass
        elif data.surveys is not None:
            parts.append(_segment_check(data, by=by, excl=excl, window=window, alpha=alpha, ci=ci,
                                        min_customers=min_customers))
        else:
            skipped["segment"] = "no surveys"
    cols = ["check", "subject", "compared_with", "measure", "estimate", "low", "high", "p_value", "n",
            "flagged", "evidence"]
    parts = [p for p in parts if len(p)]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    out = out[cols]
    out["flagged"] = out["flagged"].astype(bool)
    flags = out.loc[out["flagged"], "evidence"].tolist()
    return _finish(out, data, flags=flags, skipped=skipped, alpha=alpha, ci=ci, bins=list(bins),
                   method=("tier checks compare each tier with the best tier below it; product checks "
                           "compare each add-on with all other add-ons (Benjamini–Hochberg adjusted); "
                           "segment checks compare the latest window with the one before"))


def _family(rows: list[dict], alpha: float) -> pd.DataFrame:
    """Benjamini–Hochberg over one check's comparisons: a flag needs the adjusted p-value too."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    padj = adjust_pvalues(frame["p_value"].to_numpy(float))
    frame["p_value"] = padj
    frame["flagged"] = frame["flagged"].astype(bool) & (padj < alpha)  # NaN compares False
    return frame


def _best_below(values: list[float], better_low: bool) -> list[int | None]:
    """Index of the best tier strictly below each tier (None for the first)."""
    out, best = [], None
    for i, v in enumerate(values):
        out.append(best)
        if np.isfinite(v) and (best is None or (v < values[best] if better_low else v > values[best])):
            best = i
    return out


def _tier_churn_check(data, *, bins, method, horizon, adjust, cohort, products, exclude, min_customers,
                      alpha, ci):
    z = z_value(ci)
    rows = []
    if method == "hazard":
        (trows, _d, _X, info, params, cov, notes, _r, reference, *_rest) = _tv_fit(
            data, bins=bins, exclude=exclude, adjust=adjust, cohort=cohort, products=products, lag="0D",
            ties="breslow", robust=True, count="tier", reference=None, max_customers=200_000)
        _warn_notes(notes, "overselling")
        labels = [lab for lab in tier_labels(bins)
                  if (trows["tier"] == lab).any() and (lab == reference or f"tier[{lab}]" in params.index)]
        coef = {lab: (0.0 if lab == reference else params[f"tier[{lab}]"]) for lab in labels}
        cust = {lab: int(trows.loc[trows["tier"] == lab, "customer_id"].nunique()) for lab in labels}
        vals = [coef[lab] for lab in labels]
        for i, b in enumerate(_best_below(vals, better_low=True)):
            if b is None:
                continue
            k, r = labels[i], labels[b]
            tk, tr = f"tier[{k}]", f"tier[{r}]"
            var = (cov.loc[tk, tk] if k != reference else 0.0) + (cov.loc[tr, tr] if r != reference else 0.0)
            if k != reference and r != reference:
                var -= 2 * cov.loc[tk, tr]
            d = coef[k] - coef[r]
            se = float(np.sqrt(var)) if np.isfinite(var) and var >= 0 else np.nan
            p = float(2 * _sps.norm.sf(abs(d / se))) if se and np.isfinite(se) else np.nan
            est, lo, hi = np.exp(d), np.exp(d - z * se), np.exp(d + z * se)
            flagged = bool(np.isfinite(lo) and lo > 1 and p < alpha and cust[k] >= min_customers)
            rows.append({
                "check": "tier churn", "subject": k, "compared_with": r, "measure": "hazard ratio",
                "estimate": est, "low": lo, "high": hi, "p_value": p, "n": cust[k], "flagged": flagged,
                "evidence": (f"tier {k} churns at {est:.2f}x the hazard of tier {r} [{lo:.2f}, {hi:.2f}] "
                             "(time-varying Cox)"),
            })
    else:
        res = churn_by_tier(data, horizon=horizon, bins=bins, exclude=exclude, min_customers=min_customers, ci=ci)
        res = res[res["customers"] > 0].reset_index(drop=True)
        how = ("naive: products on the last day, churned by the reference date" if horizon is None
               else f"churn within {res.attrs['horizon_days']} days of {res.attrs['as_of']}")
        labels = res["tier"].astype(str).tolist()
        rate = res["churn_rate"].to_numpy(float)
        n = res["customers"].to_numpy()
        se = np.sqrt(rate * (1 - rate) / n)
        for i, b in enumerate(_best_below(list(rate), better_low=True)):
            if b is None:
                continue
            d = difference_interval(rate[b], se[b], rate[i], se[i], ci=ci)
            flagged = bool(d["low"] > 0 and d["p_value"] < alpha and n[i] >= min_customers)
            rows.append({
                "check": "tier churn", "subject": labels[i], "compared_with": labels[b],
                "measure": "churn-rate difference", "estimate": d["estimate"], "low": d["low"],
                "high": d["high"], "p_value": d["p_value"], "n": int(n[i]), "flagged": flagged,
                "evidence": (f"tier {labels[i]} churns {rate[i]:.1%} against {rate[b]:.1%} in tier "
                             f"{labels[b]}: {d['estimate'] * 100:+.1f} points "
                             f"[{d['low'] * 100:+.1f}, {d['high'] * 100:+.1f}] ({how})"),
            })
    return _family(rows, alpha)


def _tier_satisfaction_check(data, *, bins, exclude, min_customers, alpha, ci):
    sat = satisfaction_by_tier(data, bins=bins, exclude=exclude, responses="all", tier_at="response",
                               min_customers=min_customers, ci=ci)
    z = z_value(ci)
    rows = []
    for kind, col, unit in (("csat", "mean_score", "mean CSAT"), ("nps", "nps", "NPS")):
        sub = sat[(sat["kind"] == kind) & (sat["responses"] > 0)].reset_index(drop=True)
        if len(sub) < 2:
            continue
        labels = sub["tier"].astype(str).tolist()
        est = sub[col].to_numpy(float)
        if kind == "csat":
            se = (sub["mean_high"] - sub["mean_low"]).to_numpy(float) / (2 * z)
        else:
            se = sub["nps_se"].to_numpy(float)
        n = sub["responses"].to_numpy()
        for i, b in enumerate(_best_below(list(est), better_low=False)):
            if b is None:
                continue
            d = difference_interval(est[b], se[b], est[i], se[i], ci=ci)
            flagged = bool(d["high"] < 0 and d["p_value"] < alpha and n[i] >= min_customers)
            rows.append({
                "check": "tier satisfaction", "subject": labels[i], "compared_with": labels[b],
                "measure": f"{unit} difference", "estimate": d["estimate"], "low": d["low"], "high": d["high"],
                "p_value": d["p_value"], "n": int(n[i]), "flagged": flagged,
                "evidence": (f"{unit} in tier {labels[i]} is {est[i]:.2f} against {est[b]:.2f} in tier "
                             f"{labels[b]}: {d['estimate']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"),
            })
    return _family(rows, alpha)


def _product_check(data, *, excl, cancel_within, after, min_customers, alpha, ci):
    n_days = _duration(cancel_within, "cancel_within", allow_zero=False)
    a_days = _duration(after, "after", allow_zero=False)
    ref = _day(data.reference_date)
    base = set(data.base_products())
    sales = _sales_rows(data, excl)
    sales = sales.filter(sales.kind == "cross-sell")
    c = _customer_days(data)
    s = sales.join(c, "customer_id")
    s = s.mutate(__p=s.purchased_at.cast("date").epoch_days(), __e=s.ended_at.epoch_days())
    s = s.filter(s["__p"] + n_days <= ref)  # observable for the whole window
    cancelled = (s["__e"].notnull() & (s["__e"] <= s["__p"] + n_days)
                 & (s["__c"].isnull() | (s["__e"] < s["__c"])))
    churned = s["__c"].notnull() & (s["__c"] <= s["__p"] + n_days)
    per = _execute(s.group_by("product_id").aggregate(
        sales=s.count(), buyers=s.customer_id.nunique(),
        cancelled=ibis.ifelse(cancelled, 1, 0).sum(), churned=ibis.ifelse(churned, 1, 0).sum(),
    ))
    per = per[~per["product_id"].isin(base)].reset_index(drop=True)
    rows = []
    if len(per) >= 2 and data.has_churn is not None:
        tot = per[["sales", "cancelled", "churned"]].sum()
        for what, col, label in (("product cancellation", "cancelled", f"cancelled within {n_days} days"),
                                 ("product churn", "churned", f"followed by the buyer's churn within {n_days} days")):
            if col == "churned" and not data.has_churn:
                continue
            n = per["sales"].to_numpy(float)
            x = per[col].to_numpy(float)
            n_o, x_o = tot["sales"] - n, tot[col] - x
            p1 = np.where(n > 0, x / np.maximum(n, 1), np.nan)
            p0 = np.where(n_o > 0, x_o / np.maximum(n_o, 1), np.nan)
            d = difference_interval(p0, np.sqrt(p0 * (1 - p0) / np.maximum(n_o, 1)), p1,
                                    np.sqrt(p1 * (1 - p1) / np.maximum(n, 1)), ci=ci)
            padj = adjust_pvalues(np.asarray(d["p_value"], dtype=float))
            for i, r in per.iterrows():
                flagged = bool(d["low"][i] > 0 and padj[i] < alpha and r["buyers"] >= min_customers)
                rows.append({
                    "check": what, "subject": r["product_id"], "compared_with": "other add-ons",
                    "measure": f"share {label.replace('followed by the buyer', 'buyer')}, difference", "estimate": d["estimate"][i], "low": d["low"][i],
                    "high": d["high"][i], "p_value": padj[i], "n": int(r["sales"]), "flagged": flagged,
                    "evidence": (f"{p1[i]:.1%} of {int(r['sales'])} new sales of {r['product_id']} were "
                                 f"{label}, "
                                 f"against {p0[i]:.1%} for other add-ons: {d['estimate'][i] * 100:+.1f} points "
                                 f"[{d['low'][i] * 100:+.1f}, {d['high'][i] * 100:+.1f}]"),
                })
    # satisfaction after the purchase
    if data.surveys is not None:
        sv = data.surveys
        sv = sv.filter(sv.kind == "csat").select("customer_id", "score", __r=sv.responded_at.epoch_days())
        sb = _sales_rows(data, excl)
        sb = sb.filter(sb.kind == "cross-sell")
        sb = sb.select("customer_id", "product_id", __p=sb.purchased_at.cast("date").epoch_days())
        j = sb.join(sv, "customer_id")
        j = j.filter((j["__r"] > j["__p"]) & (j["__r"] <= j["__p"] + a_days))
        j = j.select("customer_id", "product_id", "__r", "score").distinct()
        agg = _execute(j.group_by("product_id").aggregate(
            n=j.count(), customers=j.customer_id.nunique(), sum_y=j.score.sum(), sum_yy=(j.score * j.score).sum()))
        agg = agg[~agg["product_id"].isin(base)].reset_index(drop=True)
        if len(agg) >= 2:
            tot = agg[["n", "sum_y", "sum_yy"]].sum()
            m1 = mean_from_moments(n=agg["n"].to_numpy(float), sum_y=agg["sum_y"].to_numpy(float),
                                   sum_yy=agg["sum_yy"].to_numpy(float), ci=ci)
            m0 = mean_from_moments(n=(tot["n"] - agg["n"]).to_numpy(float),
                                   sum_y=(tot["sum_y"] - agg["sum_y"]).to_numpy(float),
                                   sum_yy=(tot["sum_yy"] - agg["sum_yy"]).to_numpy(float), ci=ci)
            d = difference_interval(m0["estimate"], m0["se"], m1["estimate"], m1["se"], ci=ci)
            p_raw = np.asarray(d["p_value"], dtype=float)
            padj = adjust_pvalues(np.where(np.isfinite(p_raw), p_raw, np.nan))
            for i, r in agg.iterrows():
                flagged = bool(d["high"][i] < 0 and padj[i] < alpha and r["customers"] >= min_customers)
                rows.append({
                    "check": "product satisfaction", "subject": r["product_id"], "compared_with": "other add-ons",
                    "measure": f"mean CSAT within {a_days} days after purchase, difference",
                    "estimate": d["estimate"][i], "low": d["low"][i], "high": d["high"][i], "p_value": padj[i],
                    "n": int(r["n"]), "flagged": flagged,
                    "evidence": (f"CSAT within {a_days} days after buying {r['product_id']} averages "
                                 f"{m1['estimate'][i]:.2f} ({int(r['n'])} responses) against "
                                 f"{m0['estimate'][i]:.2f} after other add-ons: {d['estimate'][i]:+.2f} "
                                 f"[{d['low'][i]:+.2f}, {d['high'][i]:+.2f}]"),
                })
    return pd.DataFrame(rows)


def _segment_check(data, *, by, excl, window, alpha, ci, min_customers):
    w = _duration(window, "window", allow_zero=False)
    ref = _day(data.reference_date)
    by = list(data.attributes) if by is None else _by(data, by)
    rows = []
    if not by:
        return pd.DataFrame(rows)
    # one row per (customer, window end) with the count held, and one per CSAT response with
    # its window: two queries, whatever the number of attributes
    c = _customer_days(data, by)
    parts = []
    for i, d in enumerate((ref - w, ref)):
        pts = c.filter((c["__s"] <= d) & (c["__c"].isnull() | (c["__c"] > d)))
        parts.append(pts.mutate(__w=ibis.literal(i, "int64"), __day=ibis.literal(d, "int64"),
                                __k=pts.customer_id.concat(ibis.literal(f"|{i}"))))
    pts = parts[0].union(parts[1], distinct=False)
    held = _execute(_held_at(data, pts, excl).select(*by, "__w", "__n"))
    sv = data.surveys
    sv = sv.filter((sv.kind == "csat") & (sv.responded_at.epoch_days() > ref - 2 * w))
    sv = sv.select("customer_id", "score", __w=ibis.ifelse(sv.responded_at.epoch_days() > ref - w, 1, 0))
    sat = _execute(sv.join(c.select("customer_id", *by), "customer_id").select(*by, "__w", "score"))

    def moments(frame, attr, col, lev, win):
        sub = frame.loc[(frame[attr].astype(str) == lev) & (frame["__w"] == win), col].to_numpy(float)
        if not len(sub):
            return {"estimate": np.nan, "se": np.nan, "n": 0}
        m = mean_from_moments(n=float(len(sub)), sum_y=float(sub.sum()), sum_yy=float((sub * sub).sum()), ci=ci)
        return {**m, "n": len(sub)}

    for attr in by:
        levels = sorted(set(held[attr].dropna().astype(str)) | set(sat[attr].dropna().astype(str)))
        if len(levels) > 50:  # an identifier-like attribute: no segment story to tell
            continue
        for lev in levels:
            x0, x1 = moments(held, attr, "__n", lev, 0), moments(held, attr, "__n", lev, 1)
            s0, s1 = moments(sat, attr, "score", lev, 0), moments(sat, attr, "score", lev, 1)
            dx = difference_interval(x0["estimate"], x0["se"], x1["estimate"], x1["se"], ci=ci)
            ds = difference_interval(s0["estimate"], s0["se"], s1["estimate"], s1["se"], ci=ci)
            p = max(dx["p_value"], ds["p_value"]) if np.isfinite(dx["p_value"]) and np.isfinite(ds["p_value"]) else np.nan
            flagged = bool(dx["low"] > 0 and ds["high"] < 0 and p < alpha
                           and min(s0["n"], s1["n"]) >= min_customers)
            rows.append({
                "check": "segment", "subject": f"{attr}={lev}", "compared_with": f"the {w} days before",
                "measure": f"mean CSAT change over the latest {w} days", "estimate": ds["estimate"],
                "low": ds["low"], "high": ds["high"], "p_value": p, "n": int(s1["n"]), "flagged": flagged,
                "evidence": (f"{attr}={lev}: products held per customer went from {_fmt(x0['estimate'])} to "
                             f"{_fmt(x1['estimate'])} ({dx['estimate']:+.2f} [{dx['low']:+.2f}, {dx['high']:+.2f}]) "
                             f"while mean CSAT went from {_fmt(s0['estimate'])} to {_fmt(s1['estimate'])} "
                             f"({ds['estimate']:+.2f} [{ds['low']:+.2f}, {ds['high']:+.2f}])"),
            })
    return _family(rows, alpha)


# --------------------------------------------------------------------------------------------
# value


def cltv_by_tier(
    data: CrossSellData,
    *,
    at="90D",
    tau="730D",
    margin: float = 1.0,
    bins=DEFAULT_BINS,
    exclude=None,
    min_customers: int = 30,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Customer lifetime value by tier: margin × ARPU × expected lifetime (RMST).

    Customers are grouped by the tier they hold at the landmark ``at`` and followed for up to
    ``tau``.  ARPU is their revenue per customer-month while followed (all revenue, base
    products and returns included, as :func:`crosssell.arpu`); the expected lifetime is the
    Kaplan–Meier restricted mean survival time up to ``tau``, in months.  The value is the
    expected margin over the next ``tau``, not to infinity: no curve is extrapolated.

    Parameters
    ----------
    data : CrossSellData
        Needs a revenue column.
    at : duration or date, default "90D"
    tau : duration, default "730D"
    margin : float, default 1.0
        Share of revenue that is margin.
    bins, exclude, min_customers, ci

    Returns
    -------
    DataFrame
        ``tier``, ``customers``, ``events``, ``arpu`` (per month) with ``arpu_low``/``arpu_high``
        (delta method), ``lifetime_months`` with ``lifetime_low``/``lifetime_high``, ``cltv``
        with ``cltv_low``/``cltv_high`` (delta method), ``small``.

    Examples
    --------
    >>> import crosssell as cs
    >>> v = cs.cltv_by_tier(cs.load(cs.sample_path()), margin=0.7)
    >>> v.columns[:4].tolist()
    ['tier', 'customers', 'events', 'arpu']
    """
    _require_churn(data, "cltv_by_tier")
    if "revenue" not in data.purchases.columns:
        raise ColumnNotFoundError(
            "cltv_by_tier needs a revenue column in purchases, and there is none; columns: "
            + ", ".join(data.purchases.columns)
        )
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 < margin <= 1:
        raise ParameterError(f"margin must be a share between 0 (exclusive) and 1, not {margin!r}")
    bins = _check_bins(bins)
    excl = _exclusions(data, exclude)
    ci = _check_ci(ci)
    z = z_value(ci)
    min_customers = _check_min(min_customers)
    tau_days = _duration(tau, "tau", allow_zero=False)
    pts, kind = _landmark_points(data, at, horizon_days=tau_days)
    held = _held_at(data, pts, excl)
    p = data.purchases
    p = p.select("customer_id", "revenue", __pd=p.purchased_at.cast("date").epoch_days())
    j = p.join(held.select("customer_id", "__l", "__time"), "customer_id")
    j = j.filter((j["__pd"] > j["__l"]) & (j["__pd"] <= j["__l"] + j["__time"]))
    rev = j.group_by("customer_id").aggregate(__rev=j.revenue.fill_null(0).sum())
    t = held.left_join(rev, "customer_id").select(
        held.customer_id, held["__n"], held["__time"], held["__event"], __rev=rev["__rev"].fill_null(0.0))
    frame = _execute(t)
    frame = frame[frame["__time"] > 0]
    frame["tier"] = pd.Categorical.from_codes(_tier_index(frame["__n"], bins), dtype=_tier_dtype(bins))
    frame["__months"] = frame["__time"] / DAYS_PER_MONTH
    rows = []
    for lab in tier_labels(bins):
        sub = frame[frame["tier"] == lab]
        row = {"tier": lab, "customers": len(sub), "events": int(sub["__event"].sum())}
        if len(sub):
            y, x = sub["__rev"].to_numpy(float), sub["__months"].to_numpy(float)
            r = ratio_of_sums(n=len(sub), sum_y=y.sum(), sum_x=x.sum(), sum_yy=(y * y).sum(),
                              sum_xx=(x * x).sum(), sum_xy=(x * y).sum(), ci=ci)
            sf = _km(sub["__time"].to_numpy(), sub["__event"].to_numpy())
            life = float(rmst(sf.surv_times, sf.surv_prob, tau_days)) / DAYS_PER_MONTH
            life_se = _rmst_se(sf, tau_days) / DAYS_PER_MONTH
            value = margin * r["estimate"] * life
            value_se = margin * np.sqrt((life * r["se"]) ** 2 + (r["estimate"] * life_se) ** 2)
            row.update(arpu=r["estimate"], arpu_low=r["low"], arpu_high=r["high"], lifetime_months=life,
                       lifetime_low=life - z * life_se, lifetime_high=min(life + z * life_se, tau_days / DAYS_PER_MONTH),
                       cltv=value, cltv_low=value - z * value_se, cltv_high=value + z * value_se)
        rows.append(row)
    res = pd.DataFrame(rows)
    cols = ["tier", "customers", "events", "arpu", "arpu_low", "arpu_high", "lifetime_months", "lifetime_low",
            "lifetime_high", "cltv", "cltv_low", "cltv_high"]
    for col in cols:
        if col not in res:
            res[col] = np.nan
    res = res[cols]
    res["tier"] = pd.Categorical(res["tier"], dtype=_tier_dtype(bins))
    res.attrs["by"] = []
    res = _small(res, min_customers, "cltv_by_tier")
    return _finish(
        res, data, margin=margin, tau_days=tau_days, ci=ci, bins=list(bins),
        definition=_count_text(bins, excl, data),
        method=(_landmark_text(kind, at, data) + f"; ARPU = revenue per customer-month while followed (up "
                f"to {tau_days} days); lifetime = Kaplan–Meier RMST up to {tau_days} days, in months; "
                f"CLTV = {margin:g} × ARPU × lifetime (delta-method intervals)"),
    )
