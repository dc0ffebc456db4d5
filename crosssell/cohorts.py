"""Cohorts, segments and trends: which customers carry the cross-sell ratio, how it grows as they
age, and whether a change is real.

* :func:`cohort_table` — signup cohort × calendar period (ratio, multi-product rate, active
  customers or retention), long and ``.pivot``-ready.
* :func:`maturity` — the ratio by age since signup for each cohort, so cohorts are compared at
  the same tenure, with a pooled curve and its interval.
* :func:`trend` — the ratio per period with a confidence interval, the period-over-period change
  with its own interval, and the distance to a target.
* :func:`decompose_change` — the change between two periods split into a mix effect (customers
  shifting between groups), a within-group effect and their interaction, summing exactly to the
  change.
* :func:`simpson_check` — flags a pooled comparison that points the other way from most of its
  strata.

Segments.  ``by=`` takes customer attributes, one catalog column (``category``: the ratio counts
only that category's products, over all the population's customers) and two attributes derived
per (customer, period):

* ``tenure_band`` — months from signup to the period's last day, in bands (default
  ``0-3m, 3-6m, 6-12m, 12-24m, 24m+``; change them with ``tenure_bands=``);
* ``cohort`` — the signup period (``cohort="Q"``: the signup quarter).

A customer attribute with one of these names takes precedence over the derived one.  Customers
whose (text) attribute is empty form a ``"(missing)"`` group instead of disappearing.  Groups are
never hidden: every result has ``customers`` and a ``small_segment`` flag (``customers <
min_customers``); a group with no customers has a count of zero and NaN ratios.

Intervals.  The ratio of a period is the mean of the customers' product counts, so its interval
is the delta-method (here: the mean's) interval from per-group moments ``(N, Σn, Σn²)`` that the
engine aggregates; customer rows never leave it.  Two consecutive periods share most of their
customers, so the change's interval accounts for the covariance of the two periods' means, from
the moments of the shared customers (:func:`crosssell.stats.overlap_difference_interval`);
treating them as independent would make it several times too wide.
"""

from __future__ import annotations

import contextlib
import numbers
from dataclasses import dataclass, replace

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from . import engine, stats
from .data import MISSING, CrossSellData, _suggest
from .errors import ColumnNotFoundError, ParameterError, PeriodError
from .metrics import (
    PERIOD_CODES,
    Definition,
    _as_list,
    _choice,
    _exclusions,
    _finish,
    _numerator_rows,
    _period_code,
    _periods_table,
    _population,
    _ratio,
    _split_by,
    periods,
)

__all__ = [
    "cohort_table",
    "maturity",
    "trend",
    "decompose_change",
    "simpson_check",
    "DERIVED",
    "TENURE_BANDS",
]

#: attributes derived per (customer, period), usable in ``by=`` beside the customer attributes
DERIVED = ("tenure_band", "cohort")
#: default tenure band edges in months: 0-3m, 3-6m, 6-12m, 12-24m, 24m+
TENURE_BANDS = (3, 6, 12, 24)
COHORT_METRICS = ("ratio", "multi_product_rate", "active_customers", "retention")
DECOMPOSITIONS = ("three-way", "shapley")

NOT_IN_CATALOG = "(not in catalog)"
MIN_CUSTOMERS = 30

_DELTA_TEXT = (
    "delta method: the ratio is the mean of the customers' product counts; t interval from the "
    "per-group moments (N, Σn, Σn²) aggregated in the engine"
)
_CHANGE_TEXT = (
    "change = this period's ratio minus the previous period's, normal interval whose variance "
    "subtracts twice the covariance of the two means, estimated from the customers present in "
    "both periods (i.i.d. customers; not an independence approximation)"
)


# --------------------------------------------------------------------------------------------
# arguments


@dataclass(frozen=True)
class _Groups:
    """A parsed ``by=``: customer attributes, one catalog column, derived attributes."""

    names: tuple[str, ...]
    cust: tuple[str, ...] = ()
    prod: str | None = None
    derived: tuple[str, ...] = ()

    def plus(self, *names: str) -> _Groups:
        return replace(self, names=(*names, *self.names), derived=(*names, *self.derived))


def _groups(data: CrossSellData, by, *, catalog: bool = True, what: str = "by") -> _Groups:
    names = _as_list(by)
    for name in names:
        if not isinstance(name, str):
            raise ParameterError(f"{what} must name columns (strings), got {name!r}")
    if len(set(names)) != len(names):
        raise ParameterError(f"{what} names a column twice: {names}")
    derived = tuple(n for n in names if n in DERIVED and n not in data.attributes)
    rest = [n for n in names if n not in derived]
    known = [*data.attributes, *data.product_attributes, *(d for d in DERIVED if d not in data.attributes)]
    for name in rest:
        if name not in data.attributes and name not in data.product_attributes:
            raise ColumnNotFoundError(
                f"{what}={name!r} is not a customer attribute, a catalog column or a derived "
                f"attribute; available: {', '.join(known)}{_suggest(name, known)}"
            )
    cust, prod = _split_by(data, rest)
    if prod and not catalog:
        raise ParameterError(
            f"{what}={prod[0]!r} is a catalog column; it splits products, not customers, so it "
            f"cannot be used here; use a customer attribute or one of {', '.join(DERIVED)}"
        )
    return _Groups(tuple(names), tuple(cust), prod[0] if prod else None, derived)


def _check_bands(bands) -> tuple[int, ...]:
    try:
        edges = tuple(int(b) for b in bands)
        whole = all(float(b) == int(b) for b in bands)
    except (TypeError, ValueError):
        raise ParameterError(f"tenure_bands must be month edges such as (3, 6, 12, 24), got {bands!r}") from None
    if not whole:
        raise ParameterError(f"tenure_bands must be whole months, got {bands!r}")
    if not edges or edges[0] <= 0 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise ParameterError(f"tenure_bands must be increasing positive month edges, got {bands!r}")
    return edges


def _band_labels(edges: tuple[int, ...]) -> list[str]:
    lows = (0, *edges)
    return [f"{lo}-{hi}m" for lo, hi in zip(lows, edges, strict=False)] + [f"{edges[-1]}m+"]


def _check_min(min_customers) -> int:
    if isinstance(min_customers, bool) or not isinstance(min_customers, numbers.Integral) or min_customers < 0:
        raise ParameterError(f"min_customers must be a non-negative integer, not {min_customers!r}")
    return int(min_customers)


def _need_period(period, what: str) -> str:
    if period is None:
        raise PeriodError(f"{what} needs a period code: 'M' (month), 'Q' (quarter) or 'Y' (year)")
    return _period_code(period)


def _as_period(value, code: str, name: str) -> pd.Period:
    if isinstance(value, pd.Period):
        if value.freqstr != pd.Period("2000-01-01", code).freqstr:
            raise PeriodError(f"{name}={value} is a {value.freqstr} period, but period={code!r}")
        return value
    try:
        return pd.Period(value, freq=code)
    except (TypeError, ValueError):
        pass
    try:
        return pd.Period(pd.Timestamp(value), freq=code)
    except (TypeError, ValueError):
        raise PeriodError(f"{name}={value!r} is not a period or a date (e.g. '2024Q1' or '2024-03-31')") from None


def _locate(frame: pd.DataFrame, p: pd.Period, name: str) -> int:
    hit = np.flatnonzero((frame["period"] == p).to_numpy())
    if not len(hit):
        raise PeriodError(
            f"{name}={p} is outside the data, which covers {frame['period'].iloc[0]} to "
            f"{frame['period'].iloc[-1]}"
        )
    return int(hit[0])


# --------------------------------------------------------------------------------------------
# the engine side: one row per (period, customer[, catalog value]) with the group columns


def _categories(data: CrossSellData, defn: Definition, num: ir.Table, col: str) -> ir.Table:
    """Values of a catalog column among counted products (base and excluded products left out)."""
    seen = num.select(col).distinct()
    cat = data.products
    drop = [*data.base_products(), *defn.exclude]
    if drop:
        cat = cat.filter(~cat.product_id.isin(drop))
    listed = cat.select(**{col: ibis.coalesce(cat[col].cast("string"), ibis.literal(NOT_IN_CATALOG))})
    return ibis.union(seen, listed.distinct(), distinct=True)


def _step_index(d: ir.Value, code: str) -> ir.Value:
    """A date's month / quarter / year as a running integer, to count steps between two dates."""
    if code == "M":
        return d.year() * 12 + d.month()
    if code == "Q":
        return d.year() * 4 + d.quarter()
    return d.year()


def _units(
    data: CrossSellData,
    defn: Definition,
    frame: pd.DataFrame,
    groups: _Groups,
    *,
    cohort: str = "Q",
    bands: tuple[int, ...] = TENURE_BANDS,
    age: str | None = None,
    numerator: bool = True,
) -> ir.Table:
    """One row per (period, customer[, catalog value]) of the population: ``__pidx``,
    ``customer_id``, the group columns, ``n`` (the customer's counted products) and ``age``
    (steps since the signup step) when ``age`` is a period code.

    Built on the definition's own building blocks in :mod:`crosssell.metrics`
    (``_population``, ``_numerator_rows``), so the ratio it gives is exactly
    :func:`crosssell.cross_sell_ratio`'s.
    """
    ptab = _periods_table(frame)
    derive = bool(groups.derived) or age is not None
    src = data
    if derive:
        # carry the signup date through the population itself rather than joining customers again
        src = replace(data, customers=data.customers.mutate(__signup=data.customers.signup_date))
    pop = _population(src, defn, ptab, [*groups.cust, *(["__signup"] if derive else [])])
    if "tenure_band" in groups.derived or age is not None:
        pop = pop.join(ptab, "__pidx")
    cols = {"__pidx": pop["__pidx"], "customer_id": pop.customer_id}
    for c in groups.cust:
        v = pop[c]
        # an empty text attribute is a group of its own, not a customer who vanishes
        cols[c] = v.fill_null(MISSING) if v.type().is_string() else v
    if derive:
        s = pop["__signup"]
        if "tenure_band" in groups.derived:
            # whole months from signup to the period's last day
            last = pop["__pend"] - ibis.interval(days=1)
            months = (
                (last.year() - s.year()) * 12
                + (last.month() - s.month())
                - ibis.ifelse(last.day() < s.day(), 1, 0)
            )
            labels = _band_labels(bands)
            cols["tenure_band"] = ibis.cases(
                *[(months < edge, ibis.literal(lab)) for edge, lab in zip(bands, labels, strict=False)],
                else_=ibis.literal(labels[-1]),
            )
        if "cohort" in groups.derived:
            cols["cohort"] = s.truncate(PERIOD_CODES[cohort][0]).cast("date")
        if age is not None:
            cols["age"] = _step_index(pop["__pstart"], age) - _step_index(s, age)
    t = pop.select(**cols)
    prod_by = [groups.prod] if groups.prod else []
    if numerator:
        num = _numerator_rows(data, defn, ptab, defn.period is None, prod_by)
        keys = ["__pidx", "customer_id", *prod_by]
        per = num.group_by(keys).aggregate(__n=num.v.sum())
        if prod_by:
            # every customer of the population has a count (maybe 0) for every category
            t = t.cross_join(_categories(data, defn, num, groups.prod))
        t = t.left_join(per, keys).select(*[t[c] for c in t.columns], n=per["__n"].fill_null(0.0))
    else:
        t = t.mutate(n=ibis.literal(0.0))
    return t


def _moments(t: ir.Table, keys: list[str], *, at_least: int | None = None) -> pd.DataFrame:
    aggs = {"customers": t.count(), "numerator": t.n.sum(), "sum_nn": (t.n * t.n).sum()}
    if at_least is not None:
        aggs["multi"] = ibis.ifelse(t.n >= at_least, 1, 0).sum()
    res = engine.execute(t.group_by(keys).aggregate(**aggs))
    for c in ("numerator", "sum_nn", "multi"):
        if c in res.columns:
            res[c] = res[c].astype("float64").fillna(0.0)
    res["customers"] = res["customers"].astype("int64")
    return res


def _moments_with_pairs(t: ir.Table, names: list[str]) -> pd.DataFrame:
    """Per (period, group) moments, and the moments of the customers who were in the same group
    in the previous period (``n_both``, ``s1`` = Σ previous n, ``s2`` = Σ n, ``s12`` = Σ n·previous n).

    One window over each customer's periods finds the previous one; a single aggregation then
    gives both, so the per-customer rows are read once and never joined with themselves.
    Window partitions treat empty attributes as equal, so those customers pair up too.
    """
    w = ibis.window(group_by=["customer_id", *names], order_by="__pidx")
    t = t.mutate(__pp=t["__pidx"].lag().over(w), __pn=t.n.lag().over(w))
    both = (t["__pp"] == t["__pidx"] - 1).fill_null(False)
    res = engine.execute(
        t.group_by(["__pidx", *names]).aggregate(
            customers=t.count(),
            numerator=t.n.sum(),
            sum_nn=(t.n * t.n).sum(),
            n_both=ibis.ifelse(both, 1, 0).sum(),
            s1=ibis.ifelse(both, t["__pn"], 0.0).sum(),
            s2=ibis.ifelse(both, t.n, 0.0).sum(),
            s12=ibis.ifelse(both, t.n * t["__pn"], 0.0).sum(),
        )
    )
    for c in ("numerator", "sum_nn", "s1", "s2", "s12"):
        res[c] = res[c].astype("float64").fillna(0.0)
    for c in ("customers", "n_both"):
        res[c] = res[c].astype("int64")
    return res


# --------------------------------------------------------------------------------------------
# the pandas side: group domains, complete grids


def _sort_values(values) -> list:
    vals = list(values)
    try:
        return sorted(vals, key=lambda v: (pd.isna(v), v))
    except TypeError:
        return sorted(vals, key=lambda v: (pd.isna(v), str(v)))


def _domains(data, groups: _Groups, res: pd.DataFrame, *, bands, cohort_values=None) -> dict[str, list]:
    """All values of each group column: the attribute's values over every customer, all tenure
    bands, all cohorts of the range, every counted category."""
    out = {}
    for name in groups.names:
        if name in groups.cust:
            v = engine.execute(data.customers.select(name).distinct())[name]
            if data.customers[name].type().is_string():
                v = v.fillna(MISSING)
            out[name] = _sort_values(v.unique())
        elif name == "tenure_band":
            out[name] = _band_labels(bands)
        elif name == "cohort":
            out[name] = list(cohort_values) if cohort_values is not None else _sort_values(res[name].unique())
        else:
            out[name] = _sort_values(res[name].dropna().unique())
    return out


def _complete(res: pd.DataFrame, levels: dict[str, list], fill: dict) -> pd.DataFrame:
    """Every combination of ``levels``; the missing ones with ``fill`` (counts 0, sums 0)."""
    names = list(levels)
    grid = pd.MultiIndex.from_product([levels[n] for n in names], names=names).to_frame(index=False)
    for n in names:
        if n in res.columns and len(res) and grid[n].dtype != res[n].dtype:
            with contextlib.suppress(TypeError, ValueError):
                grid[n] = grid[n].astype(res[n].dtype)
    out = grid.merge(res, on=names, how="left")
    for col, value in fill.items():
        out[col] = out[col].fillna(value)
    return out


def _first_signup(data: CrossSellData) -> pd.Timestamp:
    first = engine.execute(data.customers.aggregate(m=data.customers.signup_date.min()))["m"].iloc[0]
    return pd.Timestamp(first)


def _cohort_range(data: CrossSellData, code: str, last: pd.Timestamp) -> pd.PeriodIndex:
    lo = pd.Period(_first_signup(data), code)
    hi = pd.Period(last, code)
    return pd.period_range(lo, max(lo, hi), freq=code)


def _to_periods(res: pd.DataFrame, col: str, code: str) -> None:
    if col in res.columns:
        res[col] = pd.PeriodIndex(pd.to_datetime(res[col]), freq=code) if len(res) else pd.PeriodIndex([], freq=code)


def _finalise_groups(res: pd.DataFrame, groups: _Groups, bands) -> pd.DataFrame:
    if "tenure_band" in groups.derived and "tenure_band" in res.columns:
        res["tenure_band"] = pd.Categorical(res["tenure_band"], categories=_band_labels(bands), ordered=True)
    return res


def _mean_ci(res: pd.DataFrame, ci: float) -> pd.DataFrame:
    m = stats.mean_from_moments(
        n=res["customers"].to_numpy(), sum_y=res["numerator"].to_numpy(), sum_yy=res["sum_nn"].to_numpy(), ci=ci
    )
    res["ratio"] = _ratio(res["numerator"], res["customers"])
    res["se"], res["ci_low"], res["ci_high"] = m["se"], m["low"], m["high"]
    return res


def _numerator_dtype(res: pd.DataFrame, defn: Definition) -> None:
    if defn.count == "distinct":
        res["numerator"] = res["numerator"].round().astype("int64")


def _definition(defn: Definition, data, **extra) -> dict:
    out = defn.as_dict(data)
    out.update(extra)
    return out


# --------------------------------------------------------------------------------------------
# cohort table


def cohort_table(
    data: CrossSellData,
    *,
    cohort: str = "Q",
    period: str = "Q",
    metric: str = "ratio",
    basis: str = "held",
    count: str = "distinct",
    customers: str = "active",
    by=None,
    exclude=None,
    start=None,
    end=None,
    at_least: int = 2,
    tenure_bands=TENURE_BANDS,
    min_customers: int = MIN_CUSTOMERS,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Signup cohort × calendar period, in long format ready for ``.pivot`` and a heatmap.

    Parameters
    ----------
    data : CrossSellData
        From :func:`crosssell.load` or :func:`crosssell.from_frames`.
    cohort : {"M", "Q", "Y"}
        Customers are grouped by the month, quarter or year of their signup.
    period : {"M", "Q", "Y"}
        Calendar periods across the table.
    metric : {"ratio", "multi_product_rate", "active_customers", "retention"}
        ``ratio``: counted products per customer of the population (with a delta-method
        interval).  ``multi_product_rate``: share of the population with at least ``at_least``
        products (Wilson interval).  ``active_customers``: how many of the cohort's customers
        are in the population (``customers="active"``: not churned; ``"buyers"``: bought in the
        period).  ``retention``: that number over the cohort's customers signed up by the
        period's end (Wilson interval).
    basis, count, customers, exclude :
        The ratio's definition, as in :func:`crosssell.cross_sell_ratio`.
    by : str or list of str, optional
        Further split by customer attributes, one catalog column or ``tenure_band``.
    start, end : date-like, optional
        Keep only the periods overlapping ``[start, end]`` (cohorts stay complete).
    at_least : int, default 2
        Products that make a customer "multi-product".
    tenure_bands : sequence of int
        Month edges of ``tenure_band`` when it is in ``by``.
    min_customers : int, default 30
        Cells with fewer customers are flagged in ``small_segment`` (never hidden).
    ci : float, default 0.95
        Confidence level of the intervals.

    Returns
    -------
    DataFrame
        ``cohort`` and ``period`` (pandas Periods), ``complete`` (the period is not cut short by
        the reference date), ``age`` (periods since the cohort's first period), the ``by``
        columns, ``customers``, ``numerator``, the metric's column (named after it) and, except
        for ``active_customers``, ``ci_low``/``ci_high``; ``small_segment``.  One row per cohort
        and period from the cohort's first period on; a cell with no customers has ``customers``
        0 and NaN.  ``attrs["value"]`` names the metric's column, ``attrs["definition"]`` the
        definition.

    Raises
    ------
    PeriodError
        An unknown cohort or period code, or ``start``/``end`` outside the data.
    ColumnNotFoundError
        A ``by`` column that does not exist (the message lists those that do).
    ParameterError
        An unknown metric or definition option.

    Examples
    --------
    >>> import crosssell as cs
    >>> data = cs.load(cs.sample_path())
    >>> tab = cs.cohort_table(data, cohort="Y", period="Y")
    >>> tab[["cohort", "period", "customers", "ratio"]].head(2).columns.tolist()
    ['cohort', 'period', 'customers', 'ratio']
    >>> grid = tab.pivot(index="cohort", columns="period", values="ratio")  # for a heatmap
    """
    cohort = _period_code(cohort)
    period = _need_period(period, "cohort_table")
    _choice("metric", metric, COHORT_METRICS)
    if metric == "retention" and customers == "all":
        raise ParameterError(
            "retention with customers='all' is always 1; use customers='active' (not churned) "
            "or 'buyers' (bought in the period)"
        )
    bands = _check_bands(tenure_bands)
    min_customers = _check_min(min_customers)
    groups = _groups(data, by)
    if "cohort" in groups.names:
        raise ParameterError("by='cohort' is already the table's rows; leave it out of by")
    if groups.prod and metric in ("active_customers", "retention"):
        raise ParameterError(f"{metric} counts customers, so it cannot be split by the catalog column {groups.prod!r}")
    kind = "distinct" if metric != "ratio" else count
    defn = Definition(basis, kind, customers, period, _exclusions(data, exclude))
    frame = periods(data, period, start=start, end=end)
    g = groups.plus("cohort")
    keys = ["__pidx", "cohort", *groups.names]
    if metric in ("ratio", "multi_product_rate"):
        t = _units(data, defn, frame, g, cohort=cohort, bands=bands)
        res = _moments(t, keys, at_least=at_least if metric == "multi_product_rate" else None)
        fill = {"customers": 0, "numerator": 0.0, "sum_nn": 0.0, "multi": 0.0}
    else:
        inside = _moments(_units(data, defn, frame, g, cohort=cohort, bands=bands, numerator=False), keys)
        every = replace(defn, customers="all")
        signed = _moments(_units(data, every, frame, g, cohort=cohort, bands=bands, numerator=False), keys)
        res = signed[keys + ["customers"]].merge(
            inside[keys + ["customers"]].rename(columns={"customers": "numerator"}), on=keys, how="left"
        )
        fill = {"customers": 0, "numerator": 0.0}
    _to_periods(res, "cohort", cohort)
    cohorts = _cohort_range(data, cohort, frame["period_end"].iloc[-1] - pd.Timedelta(days=1))
    levels = {"__pidx": list(range(len(frame))), "cohort": list(cohorts)}
    levels.update(_domains(data, groups, res, bands=bands))
    res = _complete(res, levels, {k: v for k, v in fill.items() if k in res.columns})
    res["customers"] = res["customers"].astype("int64")
    res = res.merge(frame.reset_index(names="__pidx")[["__pidx", "period", "complete"]], on="__pidx")
    res["age"] = [p.ordinal - pd.Period(c.start_time, period).ordinal for p, c in zip(res["period"], res["cohort"], strict=True)]
    res = res[res["age"] >= 0].copy()
    interval = ["ci_low", "ci_high"]
    if metric == "ratio":
        res = _mean_ci(res, ci)
        _numerator_dtype(res, defn)
        value, text = "ratio", defn.text(data.base_products())
        method = _DELTA_TEXT
    elif metric == "multi_product_rate":
        res["numerator"] = res["multi"].round().astype("int64")
        res["multi_product_rate"] = _ratio(res["numerator"], res["customers"])
        res["ci_low"], res["ci_high"] = stats.wilson_interval(res["numerator"].to_numpy(), res["customers"].to_numpy(), ci=ci)
        value = "multi_product_rate"
        text = f"share of {defn.denominator_text} with at least {at_least} counted products"
        method = "Wilson score interval"
    else:
        res["numerator"] = res["numerator"].round().astype("int64")
        pop = defn.denominator_text
        if metric == "active_customers":
            res["active_customers"] = res["numerator"]
            interval = []
            value, text, method = "active_customers", f"number of the cohort's {pop}", None
        else:
            res["retention"] = _ratio(res["numerator"], res["customers"])
            res["ci_low"], res["ci_high"] = stats.wilson_interval(res["numerator"].to_numpy(), res["customers"].to_numpy(), ci=ci)
            value = "retention"
            text = f"{pop} / the cohort's customers signed up by the period's end"
            method = "Wilson score interval"
    res["small_segment"] = res["customers"] < min_customers
    res = _finalise_groups(res, groups, bands)
    cols = ["cohort", "period", "complete", "age", *groups.names, "customers", "numerator", value, *interval, "small_segment"]
    res = res[cols].sort_values(["cohort", "period", *groups.names], kind="stable")
    return _finish(
        res, data, defn, value=value, metric={"name": metric, "text": text}, cohort=cohort,
        min_customers=min_customers, ci=ci, interval_method=method,
    )


# --------------------------------------------------------------------------------------------
# maturity curves


def maturity(
    data: CrossSellData,
    *,
    cohort: str = "Q",
    step: str = "M",
    max_age: int | None = None,
    basis: str = "held",
    count: str = "distinct",
    customers: str = "active",
    by=None,
    exclude=None,
    tenure_bands=TENURE_BANDS,
    min_customers: int = MIN_CUSTOMERS,
    ci: float = 0.95,
) -> pd.DataFrame:
    """The ratio by age since signup, per cohort and pooled: cohorts compared at the same tenure.

    A customer's age 0 is the calendar month (``step="M"``) or quarter (``"Q"``) of their
    signup, age 1 the next one, and so on; each age is measured with the ratio's definition in
    that calendar step (``basis="held"``: held at its end).  Only steps the reference date does
    not cut short are used, so every age is fully observed.  (A customer who signs up on the
    30th has one day of "month 0" — the usual calendar-month convention of cohort analysis.)

    Parameters
    ----------
    data : CrossSellData
    cohort : {"M", "Q", "Y"}
        Signup period that groups customers into cohorts.
    step : {"M", "Q", "Y"}
        Unit of age.
    max_age : int, optional
        Oldest age shown (in steps).
    basis, count, customers, exclude :
        The ratio's definition, as in :func:`crosssell.cross_sell_ratio`.
    by : str or list of str, optional
        Split each curve further (customer attributes, one catalog column, ``tenure_band``
        is not allowed here: age already is tenure).
    min_customers : int, default 30
        Points with fewer customers are flagged in ``small_segment``.
    ci : float, default 0.95

    Returns
    -------
    DataFrame
        ``cohort`` (Period; NaT on the pooled rows), ``pooled`` (bool), ``age``, the ``by``
        columns, ``customers``, ``numerator``, ``ratio``, ``se``, ``ci_low``, ``ci_high``,
        ``complete`` (the whole cohort has reached this age; NA when pooled) and
        ``small_segment``.  The pooled curve is over all customers of that age; at high ages only
        the oldest cohorts contribute to it.

    Examples
    --------
    >>> import crosssell as cs
    >>> curves = cs.maturity(cs.load(cs.sample_path()), cohort="Y", max_age=12)
    >>> int(curves["age"].max())
    12
    """
    cohort = _period_code(cohort)
    step = _need_period(step, "maturity")
    bands = _check_bands(tenure_bands)
    min_customers = _check_min(min_customers)
    if max_age is not None and (
        isinstance(max_age, bool) or not isinstance(max_age, numbers.Integral) or max_age < 0
    ):
        raise ParameterError(f"max_age must be a non-negative integer (steps since signup), not {max_age!r}")
    groups = _groups(data, by)
    if "cohort" in groups.names or "tenure_band" in groups.derived:
        raise ParameterError("maturity is already by cohort and age; leave cohort and tenure_band out of by")
    defn = Definition(basis, count, customers, step, _exclusions(data, exclude))
    frame = periods(data, step)
    frame = frame[frame["complete"]].reset_index(drop=True)
    if frame.empty:
        raise PeriodError(f"no complete {PERIOD_CODES[step][2]} before the reference date {data.reference_date.date()}")
    t = _units(data, defn, frame, groups.plus("cohort"), cohort=cohort, bands=bands, age=step)
    if max_age is not None:
        t = t.filter(t.age <= int(max_age))
    per = _moments(t, ["cohort", "age", *groups.names])
    # moments add up: the pooled curve is the sum over cohorts, no second pass over the customers
    pooled = per.groupby(["age", *groups.names], dropna=False, observed=True, as_index=False)[
        ["customers", "numerator", "sum_nn"]
    ].sum()
    _to_periods(per, "cohort", cohort)
    last = pd.Period(frame["period"].iloc[-1].start_time, step).ordinal
    cohorts = _cohort_range(data, cohort, frame["period_end"].iloc[-1] - pd.Timedelta(days=1))
    # the oldest age anyone can have reached: from the first signup's step, not its cohort's start
    earliest = pd.Period(_first_signup(data), step).ordinal
    top = max(0, last - earliest)
    if max_age is not None:
        top = min(top, int(max_age))
    ages = list(range(top + 1))
    doms = _domains(data, groups, per, bands=bands)
    fill = {"customers": 0, "numerator": 0.0, "sum_nn": 0.0}
    per = _complete(per, {"cohort": list(cohorts), "age": ages, **doms}, fill)
    first = np.array([max(pd.Period(c.start_time, step).ordinal, earliest) for c in per["cohort"]])
    final = np.array([pd.Period(c.end_time.normalize(), step).ordinal for c in per["cohort"]])
    per = per[first + per["age"].to_numpy() <= last].copy()
    per["complete"] = pd.array(final[per.index] + per["age"].to_numpy() <= last, dtype="boolean")
    per["pooled"] = False
    pooled = _complete(pooled, {"age": ages, **doms}, fill)
    pooled["cohort"] = pd.PeriodIndex([pd.NaT] * len(pooled), freq=cohort)
    pooled["complete"] = pd.array([pd.NA] * len(pooled), dtype="boolean")
    pooled["pooled"] = True
    res = pd.concat([per, pooled], ignore_index=True)
    res["customers"] = res["customers"].astype("int64")
    res = _mean_ci(res, ci)
    _numerator_dtype(res, defn)
    res["small_segment"] = res["customers"] < min_customers
    cols = ["cohort", "pooled", "age", *groups.names, "customers", "numerator", "ratio", "se", "ci_low", "ci_high",
            "complete", "small_segment"]
    res = res[cols].sort_values(["pooled", "cohort", *groups.names, "age"], kind="stable")
    return _finish(
        res, data, defn, cohort=cohort, step=step, min_customers=min_customers, ci=ci,
        interval_method=_DELTA_TEXT,
        age_definition=(
            f"age 0 is the signup {PERIOD_CODES[step][2]}; age k is the k-th calendar "
            f"{PERIOD_CODES[step][2]} after it (complete {PERIOD_CODES[step][2]}s only)"
        ),
    )


# --------------------------------------------------------------------------------------------
# trend with intervals


def trend(
    data: CrossSellData,
    *,
    period: str = "Q",
    by=None,
    ci: float = 0.95,
    target: float | None = None,
    basis: str = "sold",
    count: str = "distinct",
    customers: str = "active",
    exclude=None,
    start=None,
    end=None,
    cohort: str = "Q",
    tenure_bands=TENURE_BANDS,
    min_customers: int = MIN_CUSTOMERS,
) -> pd.DataFrame:
    """The ratio per period with its interval, the change from the previous period, and the gap
    to a target.

    Parameters
    ----------
    data : CrossSellData
    period : {"M", "Q", "Y"}
    by : str or list of str, optional
        Customer attributes, one catalog column, ``tenure_band`` or ``cohort``: one trend per
        group, each with its own intervals.
    ci : float, default 0.95
        Confidence level of every interval.
    target : float, optional
        A target ratio: adds ``target``, ``gap_to_target`` and ``vs_target``.
    basis, count, customers, exclude :
        The ratio's definition, as in :func:`crosssell.cross_sell_ratio` (same defaults, so
        ``ratio`` equals its ratio).
    start, end : date-like, optional
        Keep only the periods overlapping ``[start, end]``.
    cohort : {"M", "Q", "Y"}
        Granularity of ``cohort`` when it is in ``by``.
    tenure_bands : sequence of int
        Month edges of ``tenure_band`` when it is in ``by``.
    min_customers : int, default 30
        Groups with fewer customers are flagged in ``small_segment``.

    Returns
    -------
    DataFrame
        ``period``, ``complete``, the ``by`` columns, ``customers``, ``numerator``, ``ratio``,
        ``se``, ``ci_low``, ``ci_high``; ``change`` (from the previous period), ``change_low``,
        ``change_high``, ``change_p_value``, ``change_significant`` (the interval excludes
        zero; NA for the first period shown and where a side has fewer than 2 customers); with
        a target: ``target``, ``gap_to_target``
        (``target − ratio``: how far there is still to go) and ``vs_target`` (``"above"`` /
        ``"below"`` when the whole interval is, else ``"within interval"``); ``small_segment``.
        ``attrs["interval_method"]`` and ``attrs["change_method"]`` say how intervals were made.

    Notes
    -----
    The ratio of a period is the mean over its customers of their counted products ``n``, so
    the delta-method interval of the ratio of sums Σn / N is the mean's interval, computed
    from ``(N, Σn, Σn²)``.  Consecutive periods share most customers and ``n`` is correlated
    across periods, so the change's variance is ``se₁² + se₂² − 2·Cov``, with the covariance
    from the shared customers' moments (:func:`crosssell.stats.overlap_difference_interval`).

    Examples
    --------
    >>> import crosssell as cs
    >>> tr = cs.trend(cs.load(cs.sample_path()), period="Y", target=0.5)
    >>> bool((tr["ci_low"] <= tr["ratio"]).all() and (tr["ratio"] <= tr["ci_high"]).all())
    True
    """
    period = _need_period(period, "trend")
    cohort = _period_code(cohort)
    bands = _check_bands(tenure_bands)
    min_customers = _check_min(min_customers)
    if target is not None and (isinstance(target, bool) or not isinstance(target, numbers.Real) or not np.isfinite(target)):
        raise ParameterError(f"target must be a number (a ratio such as 1.5), not {target!r}")
    groups = _groups(data, by)
    defn = Definition(basis, count, customers, period, _exclusions(data, exclude))
    frame = periods(data, period, start=start, end=end)
    names = list(groups.names)
    t = _units(data, defn, frame, groups, cohort=cohort, bands=bands)
    res = _moments_with_pairs(t, names)  # pair moments keyed by the later period
    cohorts = None
    if "cohort" in groups.derived:
        _to_periods(res, "cohort", cohort)
        cohorts = _cohort_range(data, cohort, frame["period_end"].iloc[-1] - pd.Timedelta(days=1))
    fill = {"customers": 0, "numerator": 0.0, "sum_nn": 0.0, "n_both": 0, "s1": 0.0, "s2": 0.0, "s12": 0.0}
    levels = {"__pidx": list(range(len(frame))), **_domains(data, groups, res, bands=bands, cohort_values=cohorts)}
    res = _complete(res, levels, fill)
    res["customers"] = res["customers"].astype("int64")
    res = _mean_ci(res, ci)
    # change from the previous period of the same group
    prev = res[["__pidx", *names, "customers", "numerator", "sum_nn"]].copy()
    prev["__pidx"] = prev["__pidx"] + 1
    res = res.merge(prev, on=["__pidx", *names], how="left", suffixes=("", "_prev"))
    has_prev = res["customers_prev"].notna().to_numpy()
    d = stats.overlap_difference_interval(
        n1=res["customers_prev"].fillna(0).to_numpy(), sum_y1=res["numerator_prev"].fillna(0).to_numpy(),
        sum_yy1=res["sum_nn_prev"].fillna(0).to_numpy(), n2=res["customers"].to_numpy(),
        sum_y2=res["numerator"].to_numpy(), sum_yy2=res["sum_nn"].to_numpy(),
        n_both=res["n_both"].to_numpy(), sum_y1_both=res["s1"].to_numpy(), sum_y2_both=res["s2"].to_numpy(),
        sum_y1y2_both=res["s12"].to_numpy(), ci=ci,
    )
    res["change"] = np.where(has_prev, d["estimate"], np.nan)
    res["change_low"] = np.where(has_prev, d["low"], np.nan)
    res["change_high"] = np.where(has_prev, d["high"], np.nan)
    res["change_p_value"] = np.where(has_prev, d["p_value"], np.nan)
    sig = pd.array(np.asarray(d["excludes_zero"], dtype=bool), dtype="boolean")
    sig[~(has_prev & np.isfinite(res["change_low"].to_numpy()))] = pd.NA
    res["change_significant"] = sig
    _numerator_dtype(res, defn)
    extra_cols = []
    if target is not None:
        res["target"] = float(target)
        res["gap_to_target"] = float(target) - res["ratio"]
        verdict = np.select(
            [res["ci_low"] > target, res["ci_high"] < target, res["ci_low"].notna()],
            ["above", "below", "within interval"],
            default="",
        )
        res["vs_target"] = pd.Series(verdict, index=res.index, dtype=object).replace("", None)
        extra_cols = ["target", "gap_to_target", "vs_target"]
    res["small_segment"] = res["customers"] < min_customers
    res = res.merge(frame.reset_index(names="__pidx")[["__pidx", "period", "complete"]], on="__pidx")
    res = _finalise_groups(res, groups, bands)
    cols = ["period", "complete", *names, "customers", "numerator", "ratio", "se", "ci_low", "ci_high",
            "change", "change_low", "change_high", "change_p_value", "change_significant", *extra_cols,
            "small_segment"]
    res = res[cols].sort_values([*names, "period"], kind="stable")
    return _finish(
        res, data, defn, ci=ci, target=target, min_customers=min_customers,
        interval_method=_DELTA_TEXT, change_method=_CHANGE_TEXT,
    )


# --------------------------------------------------------------------------------------------
# why it moved: mix / within / interaction


def _decompose(g: pd.DataFrame, method: str = "three-way") -> tuple[pd.DataFrame, dict]:
    """Split the change of a pooled ratio into mix, within-group and interaction parts.

    ``g`` has one row per group with ``customers_start``, ``numerator_start``,
    ``customers_end`` and ``numerator_end``.  With shares ``s`` and group ratios ``r``:
    ``R_end − R_start = Σ (s₁−s₀) r₀ [mix] + Σ s₀ (r₁−r₀) [within] + Σ (s₁−s₀)(r₁−r₀)
    [interaction]`` (``method="three-way"``), or with midpoint weights and no interaction
    (``"shapley"``).  A group present in one period only takes the other period's ratio as its
    own, so entering or leaving is pure mix.
    """
    _choice("method", method, DECOMPOSITIONS)
    out = g.copy()
    c0 = out["customers_start"].to_numpy(dtype="float64")
    c1 = out["customers_end"].to_numpy(dtype="float64")
    y0 = out["numerator_start"].to_numpy(dtype="float64")
    y1 = out["numerator_end"].to_numpy(dtype="float64")
    n0, n1 = c0.sum(), c1.sum()
    summary = {"method": method}
    if n0 <= 0 or n1 <= 0:
        nan = np.full(len(out), np.nan)
        for col in ("share_start", "share_end", "ratio_start", "ratio_end", "mix", "within", "interaction", "contribution"):
            out[col] = nan
        summary.update({k: np.nan for k in ("ratio_start", "ratio_end", "change", "mix", "within", "interaction")})
        return out, summary
    s0, s1 = c0 / n0, c1 / n1
    r0, r1 = _ratio(y0, c0), _ratio(y1, c1)
    r0f = np.where(np.isnan(r0), r1, r0)
    r1f = np.where(np.isnan(r1), r0, r1)
    both_empty = np.isnan(r0f)
    r0f, r1f = np.where(both_empty, 0.0, r0f), np.where(both_empty, 0.0, r1f)
    ds, dr = s1 - s0, r1f - r0f
    if method == "three-way":
        mix, within, inter = ds * r0f, s0 * dr, ds * dr
    else:
        mix, within, inter = ds * (r0f + r1f) / 2.0, dr * (s0 + s1) / 2.0, np.zeros(len(out))
    out["share_start"], out["share_end"] = s0, s1
    out["ratio_start"], out["ratio_end"] = r0, r1
    out["mix"], out["within"], out["interaction"] = mix, within, inter
    out["contribution"] = mix + within + inter
    rs, re = y0.sum() / n0, y1.sum() / n1
    summary.update(
        ratio_start=float(rs), ratio_end=float(re), change=float(re - rs),
        mix=float(mix.sum()), within=float(within.sum()), interaction=float(inter.sum()),
    )
    return out, summary


def decompose_change(
    data: CrossSellData,
    *,
    start,
    end,
    by="tenure_band",
    period: str = "Q",
    method: str = "three-way",
    basis: str = "sold",
    count: str = "distinct",
    customers: str = "active",
    exclude=None,
    cohort: str = "Q",
    tenure_bands=TENURE_BANDS,
    min_customers: int = MIN_CUSTOMERS,
) -> pd.DataFrame:
    """Why the ratio moved between two periods: mix, within-group change and their interaction.

    The pooled ratio is a share-weighted average of group ratios, ``R = Σ s_g r_g``.  Its change
    from ``start`` to ``end`` splits exactly into

    * **mix** ``Σ (s_end − s_start) · r_start``: customers shifting between groups (a wave of new
      customers, who start with fewer products, lowers the ratio with no group changing);
    * **within** ``Σ s_start · (r_end − r_start)``: the groups' own ratios moving;
    * **interaction** ``Σ (s_end − s_start)(r_end − r_start)``: both at once.

    ``method="shapley"`` uses the two periods' average shares and ratios as weights instead, which
    leaves no interaction.  A group present in one period only (a new cohort) is all mix.

    Parameters
    ----------
    data : CrossSellData
    start, end : period or date-like
        The two periods compared (``"2023Q4"``, ``"2024-12-31"`` — the period containing it).
    by : str or list of str, default "tenure_band"
        The groups: ``tenure_band``, ``cohort`` or any customer attributes (combined when
        several).  A catalog column is refused: it does not split customers.
    period : {"M", "Q", "Y"}
    method : {"three-way", "shapley"}
    basis, count, customers, exclude :
        The ratio's definition, as in :func:`crosssell.cross_sell_ratio` (same defaults).
    cohort : {"M", "Q", "Y"}
        Granularity of ``cohort`` groups.
    tenure_bands : sequence of int
        Month edges of the tenure bands.
    min_customers : int, default 30

    Returns
    -------
    DataFrame
        One row per group: the ``by`` columns, ``customers_start``, ``customers_end``,
        ``share_start``, ``share_end``, ``ratio_start``, ``ratio_end``, ``mix``, ``within``,
        ``interaction``, ``contribution`` (their sum) and ``small_segment`` (in either
        period).  ``attrs["summary"]`` has ``ratio_start``, ``ratio_end``, ``change``, ``mix``,
        ``within`` and ``interaction``; ``mix + within + interaction == change`` to rounding.

    Examples
    --------
    >>> import crosssell as cs
    >>> parts = cs.decompose_change(cs.load(cs.sample_path()), start="2024Q3", end="2024Q4",
    ...                             by="cohort")
    >>> s = parts.attrs["summary"]
    >>> abs(s["mix"] + s["within"] + s["interaction"] - s["change"]) < 1e-12
    True
    """
    period = _need_period(period, "decompose_change")
    cohort = _period_code(cohort)
    bands = _check_bands(tenure_bands)
    min_customers = _check_min(min_customers)
    _choice("method", method, DECOMPOSITIONS)
    groups = _groups(data, by, catalog=False)
    if not groups.names:
        raise ParameterError("decompose_change needs groups: by='tenure_band', 'cohort' or a customer attribute")
    p0, p1 = _as_period(start, period, "start"), _as_period(end, period, "end")
    if p0 > p1:
        raise PeriodError(f"start {p0} is after end {p1}")
    if p0 == p1:
        raise PeriodError(f"start and end are the same period ({p0}); there is no change to explain")
    frame = periods(data, period)
    i0, i1 = _locate(frame, p0, "start"), _locate(frame, p1, "end")
    sub = frame.iloc[[i0, i1]].reset_index(drop=True)
    defn = Definition(basis, count, customers, period, _exclusions(data, exclude))
    names = list(groups.names)
    t = _units(data, defn, sub, groups, cohort=cohort, bands=bands)
    res = _moments(t, ["__pidx", *names])
    if "cohort" in names:
        _to_periods(res, "cohort", cohort)
    cohorts = _cohort_range(data, cohort, sub["period_end"].iloc[-1] - pd.Timedelta(days=1)) if "cohort" in names else None
    levels = {"__pidx": [0, 1], **_domains(data, groups, res, bands=bands, cohort_values=cohorts)}
    res = _complete(res, levels, {"customers": 0, "numerator": 0.0, "sum_nn": 0.0})
    a = res[res["__pidx"] == 0][[*names, "customers", "numerator"]]
    b = res[res["__pidx"] == 1][[*names, "customers", "numerator"]]
    g = a.merge(b, on=names, suffixes=("_start", "_end"))
    out, summary = _decompose(g, method)
    out["customers_start"] = out["customers_start"].astype("int64")
    out["customers_end"] = out["customers_end"].astype("int64")
    out["small_segment"] = (out["customers_start"] < min_customers) | (out["customers_end"] < min_customers)
    out = _finalise_groups(out, groups, bands)
    summary.update(start=str(p0), end=str(p1), by=names)
    cols = [*names, "customers_start", "customers_end", "share_start", "share_end", "ratio_start", "ratio_end",
            "mix", "within", "interaction", "contribution", "small_segment"]
    out = out[cols].sort_values(names, kind="stable")
    return _finish(out, data, defn, summary=summary, min_customers=min_customers)


# --------------------------------------------------------------------------------------------
# Simpson's paradox


def _simpson(
    frame: pd.DataFrame,
    *,
    compare: str,
    strata: list[str],
    a,
    b,
    numerator: str,
    denominator: str,
    min_customers: int,
) -> tuple[pd.DataFrame, dict]:
    """The pooled and per-stratum comparison of ``b`` against ``a`` (rates = Σnum / Σden)."""
    lab = frame[compare].astype(str)
    a_s, b_s = str(a), str(b)
    present = set(lab.unique())
    for name, v in (("a", a_s), ("b", b_s)):
        if v not in present:
            raise ParameterError(
                f"{name}={v!r} is not a value of {compare!r}; values: {', '.join(sorted(present)[:20])}"
            )
    if a_s == b_s:
        raise ParameterError(f"a and b are the same value ({a_s!r}); compare two different ones")
    f = frame.assign(__side=lab.map({a_s: "a", b_s: "b"}))
    f = f[f["__side"].notna()]
    g = f.groupby([*strata, "__side"], dropna=False, observed=True)[[numerator, denominator]].sum()
    g = g.unstack("__side")
    out = pd.DataFrame(index=g.index)
    for side in ("a", "b"):
        num = g[(numerator, side)] if (numerator, side) in g.columns else pd.Series(0.0, index=g.index)
        den = g[(denominator, side)] if (denominator, side) in g.columns else pd.Series(0.0, index=g.index)
        out[f"customers_{side}"] = den.fillna(0).astype("float64")
        out[f"numerator_{side}"] = num.fillna(0).astype("float64")
        out[f"rate_{side}"] = _ratio(out[f"numerator_{side}"], out[f"customers_{side}"])
    out = out.reset_index()
    out["difference"] = out["rate_b"] - out["rate_a"]
    pa_ = out["numerator_a"].sum() / out["customers_a"].sum() if out["customers_a"].sum() > 0 else np.nan
    pb_ = out["numerator_b"].sum() / out["customers_b"].sum() if out["customers_b"].sum() > 0 else np.nan
    pooled = pb_ - pa_
    sign = np.sign(out["difference"].to_numpy())
    psign = np.sign(pooled) if np.isfinite(pooled) else np.nan
    out["direction"] = np.select([np.isnan(sign), sign > 0, sign < 0], ["not comparable", "b higher", "b lower"], "equal")
    agrees = pd.array([pd.NA] * len(out), dtype="boolean")
    comparable = ~np.isnan(sign) & (sign != 0)
    if np.isfinite(psign) and psign != 0:
        agrees[comparable] = sign[comparable] == psign
    out["agrees_with_pooled"] = agrees
    out["small_segment"] = (out["customers_a"] < min_customers) | (out["customers_b"] < min_customers)
    n_agree = int((agrees == True).sum())  # noqa: E712 - nullable boolean
    n_oppose = int((agrees == False).sum())  # noqa: E712
    # standardised comparison: each stratum's difference, weighted by its share of both groups
    w = (out["customers_a"] + out["customers_b"]).where(comparable | (sign == 0), 0.0)
    adjusted = float((w * out["difference"].fillna(0)).sum() / w.sum()) if w.sum() > 0 else np.nan
    majority = bool(np.isfinite(psign) and psign != 0 and n_oppose > n_agree)
    # a reversal also shows in the standardised comparison; when only small strata disagree, the
    # size-weighted strata still point the pooled way and it is no paradox
    reversed_adjusted = bool(majority and np.isfinite(adjusted) and np.sign(adjusted) == -psign)
    paradox = majority and reversed_adjusted

    def _label(row) -> str:
        return ", ".join(f"{s}={row[s]}" for s in strata)

    opposing = [_label(r) for _, r in out[(agrees == False).to_numpy(dtype=bool, na_value=False)].iterrows()]  # noqa: E712
    word = {1.0: "higher", -1.0: "lower"}
    if not np.isfinite(pooled):
        message = f"no pooled comparison: {a_s!r} or {b_s!r} has no customers"
    elif paradox:
        message = (
            f"Simpson's paradox: pooled, {b_s} is {word[psign]} than {a_s} by {abs(pooled):.4g}, but in "
            f"{n_oppose} of {n_agree + n_oppose} comparable strata it is {word[-psign]} "
            f"({'; '.join(opposing)}); the pooled figure reflects the mix of strata. Stratum-weighted "
            f"difference: {adjusted:+.4g}."
        )
    elif majority:
        message = (
            f"no reversal overall: pooled, {b_s} is {word[psign]} than {a_s} by {abs(pooled):.4g}; "
            f"{n_oppose} of {n_agree + n_oppose} comparable strata point the other way "
            f"({'; '.join(opposing)}), but weighted by their size the strata agree with the pooled "
            f"direction (stratum-weighted difference {adjusted:+.4g}): the larger strata drive it."
        )
    else:
        message = (
            f"no reversal: pooled, {b_s} is {word.get(psign, 'equal to')} {'than ' + a_s if psign else a_s} "
            f"and {n_agree} of {n_agree + n_oppose} comparable strata agree"
            + (f" (opposing: {'; '.join(opposing)})" if opposing else "")
            + f". Stratum-weighted difference: {adjusted:+.4g}."
        )
    summary = {
        "compare": compare, "a": a_s, "b": b_s, "strata": list(strata),
        "pooled_a": float(pa_), "pooled_b": float(pb_), "pooled_difference": float(pooled),
        "adjusted_difference": adjusted, "strata_agree": n_agree, "strata_oppose": n_oppose,
        "strata_not_comparable": int(np.isnan(sign).sum()), "majority_opposes": majority,
        "paradox": paradox,
        "opposing_strata": opposing, "message": message,
    }
    return out, summary


def simpson_check(
    frame_or_data,
    *,
    compare: str,
    strata,
    a=None,
    b=None,
    numerator: str | None = None,
    denominator: str | None = None,
    period: str | None = None,
    at=None,
    basis: str = "sold",
    count: str = "distinct",
    customers: str = "active",
    exclude=None,
    cohort: str = "Q",
    tenure_bands=TENURE_BANDS,
    min_customers: int = MIN_CUSTOMERS,
) -> pd.DataFrame:
    """Flag a pooled comparison that points the other way from most of its strata.

    Compares ``b`` against ``a`` — two periods, two segments, or two product tiers against an
    outcome — pooled and within each stratum, and flags Simpson's paradox when the pooled
    difference has the opposite sign from the majority of the strata that can be compared *and*
    from the stratum-weighted (standardised) difference.  When most strata disagree but the
    larger ones agree, ``majority_opposes`` is True and ``paradox`` False: a few small strata
    moving the other way is not a reversal of the overall direction.

    Parameters
    ----------
    frame_or_data : DataFrame or CrossSellData
        A frame: any table of additive counts with columns ``compare``, ``strata``,
        ``numerator`` and ``denominator`` — e.g. :func:`crosssell.cross_sell_ratio` split
        ``by`` two attributes, or churned customers per (tier, tenure band) for "products vs an
        outcome".  Data: the cross-sell ratio is computed here, per ``compare`` and ``strata``.
    compare : str
        The column whose two values are compared; with data, ``"period"`` compares two
        periods, otherwise a customer attribute or a derived one (``cohort``, ``tenure_band``).
    strata : str or list of str
        The column(s) defining strata (combined when several).
    a, b : optional
        The two values of ``compare`` (``b − a`` is the difference).  Optional when
        ``compare`` has exactly two values.
    numerator, denominator : str, optional
        Frame only: the count columns (default ``numerator`` and ``denominator``, or
        ``customers`` when there is no ``denominator``).
    period : {"M", "Q", "Y"}, optional
        Data only: the period granularity (required for ``compare="period"``); None measures
        segments over all the data.
    at : period or date-like, optional
        Data only, segment comparisons with ``period``: the period to measure (default the last
        complete one).
    basis, count, customers, exclude, cohort, tenure_bands :
        Data only: the ratio's definition and derived attributes, as in :func:`trend`.
    min_customers : int, default 30
        Strata with fewer customers on either side are flagged in ``small_segment``.

    Returns
    -------
    DataFrame
        One row per stratum: the strata columns, ``customers_a``, ``numerator_a``, ``rate_a``,
        the same for ``b``, ``difference`` (``rate_b − rate_a``), ``direction``,
        ``agrees_with_pooled`` (NA when not comparable), ``small_segment``.
        ``attrs["summary"]``: the pooled rates and difference, the stratum-weighted
        (standardised: each comparable stratum's difference weighted by its customers on both
        sides) difference, counts of agreeing/opposing strata, ``majority_opposes``,
        ``paradox`` (bool), ``opposing_strata`` (which strata point the other way) and a
        one-sentence ``message``.

    Examples
    --------
    >>> import crosssell as cs
    >>> check = cs.simpson_check(cs.load(cs.sample_path()), compare="period", a="2023Q4",
    ...                          b="2024Q4", period="Q", strata="cohort", cohort="Y")
    >>> sorted(check.attrs["summary"])[:3]
    ['a', 'adjusted_difference', 'b']
    """
    min_customers = _check_min(min_customers)
    strata = _as_list(strata)
    if not strata:
        raise ParameterError("strata must name at least one column")
    if compare in strata:
        raise ParameterError(f"{compare!r} cannot be both compared and a stratum")
    if isinstance(frame_or_data, pd.DataFrame):
        frame = frame_or_data
        cols = list(frame.columns)
        numerator = numerator or "numerator"
        denominator = denominator or ("denominator" if "denominator" in cols else "customers")
        for name in (compare, *strata, numerator, denominator):
            if name not in cols:
                raise ColumnNotFoundError(
                    f"the frame has no column {name!r}; columns: {', '.join(map(str, cols))}{_suggest(name, cols)}"
                )
        a, b = _two_values(frame[compare], compare, a, b)
        out, summary = _simpson(frame, compare=compare, strata=strata, a=a, b=b, numerator=numerator,
                                denominator=denominator, min_customers=min_customers)
        out.attrs.update(frame.attrs)
        out.attrs["summary"] = summary
        out.attrs["min_customers"] = min_customers
        return out
    if not isinstance(frame_or_data, CrossSellData):
        raise ParameterError(f"simpson_check takes a DataFrame or CrossSellData, not {type(frame_or_data).__name__}")
    if numerator is not None or denominator is not None:
        raise ParameterError("numerator= and denominator= name a frame's columns; with data the ratio's own are used")
    data = frame_or_data
    cohort = _period_code(cohort)
    bands = _check_bands(tenure_bands)
    defn_period = None if period is None else _period_code(period)
    if compare == "period":
        if defn_period is None:
            raise PeriodError("compare='period' needs period='M', 'Q' or 'Y'")
        if a is None or b is None:
            raise ParameterError("compare='period' needs the two periods: a= and b=")
        pa_, pb_ = _as_period(a, defn_period, "a"), _as_period(b, defn_period, "b")
        frame = periods(data, defn_period)
        idx = [_locate(frame, pa_, "a"), _locate(frame, pb_, "b")]
        if idx[0] == idx[1]:
            raise ParameterError(f"a and b are the same period ({pa_}); compare two different ones")
        a, b = str(pa_), str(pb_)
        groups = _groups(data, strata, catalog=False, what="strata")
    else:
        frame = periods(data, defn_period)
        if defn_period is not None:
            if at is None:
                done = np.flatnonzero(frame["complete"].to_numpy())
                idx = [int(done[-1]) if len(done) else len(frame) - 1]
            else:
                idx = [_locate(frame, _as_period(at, defn_period, "at"), "at")]
        else:
            idx = [0]
        groups = _groups(data, [compare, *strata], catalog=False, what="compare/strata")
    sub = frame.iloc[idx].reset_index(drop=True)
    defn = Definition(basis, count, customers, defn_period, _exclusions(data, exclude))
    names = list(groups.names)
    t = _units(data, defn, sub, groups, cohort=cohort, bands=bands)
    res = _moments(t, ["__pidx", *names])
    if "cohort" in names:
        _to_periods(res, "cohort", cohort)
    res = _finalise_groups(res, groups, bands)
    if compare == "period":
        res["period"] = sub["period"].astype(str).to_numpy()[res["__pidx"].to_numpy()]
    else:
        a, b = _two_values(res[compare], compare, a, b)
    out, summary = _simpson(res, compare=compare, strata=strata, a=a, b=b, numerator="numerator",
                            denominator="customers", min_customers=min_customers)
    for side in ("a", "b"):
        out[f"customers_{side}"] = out[f"customers_{side}"].astype("int64")
        if defn.count == "distinct":
            out[f"numerator_{side}"] = out[f"numerator_{side}"].round().astype("int64")
    return _finish(out, data, defn, summary=summary, min_customers=min_customers)


def _two_values(col: pd.Series, compare: str, a, b):
    if a is not None and b is not None:
        return a, b
    values = _sort_values(col.dropna().astype(str).unique())
    if len(values) != 2 or (a is not None or b is not None):
        raise ParameterError(
            f"name the two values of {compare!r} to compare with a= and b=; values: {', '.join(values[:20])}"
        )
    return values[0], values[1]
