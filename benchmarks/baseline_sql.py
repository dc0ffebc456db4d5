"""The core metrics suite as hand-written DuckDB SQL: the reference crosssell is timed against.

It implements the definitions of :mod:`crosssell.metrics` (the defaults of each function)
directly in SQL over the same Parquet files, through duckdb's Python API only — no crosssell,
no Ibis, no pandas until the compact results come back:

* returns net against sales: a (customer, product) pair whose net quantity up to the reference
  date is zero or less never counts;
* ``sold`` (the ratios): a pair counts in a period when its net quantity inside the period is
  positive; the denominator is the customers whose relationship overlaps the period (signed up
  before its end, not churned before its start);
* ``held`` (distribution, penetration): a pair counts at a period's end when its net quantity
  of purchases made before the end and not cancelled (``ended_at``) by it is positive, and the
  customer is still open then; the denominator is the customers open at the period's end;
* products the catalog marks ``is_base`` never count (penetration's attach rate divides by the
  customers holding anything, base products included);
* periods run from the period of the first signup or purchase to the reference date's period;
  a (period, segment) with no customers has denominator 0 and ratio NULL (NaN);
* churn and cancellations after the reference date are not known yet; purchases and signups
  after it are left out.

Each metric is one self-contained query reading the Parquet files, as an analyst who writes SQL
would write it; nothing is cached between metrics (the same rule the other implementations follow).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

#: period code -> (date_trunc unit, step, label format)
_UNITS = {"M": ("month", "1 MONTH"), "Q": ("quarter", "3 MONTH"), "Y": ("year", "1 YEAR")}


class Handle:
    """A DuckDB connection with views over the Parquet files, and the reference date."""

    def __init__(self, con, reference_date: dt.date, attributes: list[str], base: list[str]):
        self.con = con
        self.ref = reference_date
        self.attributes = attributes
        self.base = base  # the catalog's base products, written into the queries as a list

    def df(self, sql: str):
        return self.con.execute(sql).df()


def load(folder, reference_date) -> Handle:
    """Open DuckDB and point views at the Parquet files (nothing is read yet)."""
    folder = Path(folder)
    con = duckdb.connect()
    for table in ("customers", "purchases", "products"):
        path = str(folder / f"{table}.parquet").replace("'", "''")
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
    cols = [r[0] for r in con.execute("DESCRIBE customers").fetchall()]
    attrs = [c for c in cols if c not in ("customer_id", "signup_date", "churn_date")]
    ref = dt.date.fromisoformat(str(reference_date)[:10])
    base = [r[0] for r in con.execute("SELECT product_id FROM products WHERE is_base").fetchall()]
    return Handle(con, ref, attrs, sorted(base))


# --------------------------------------------------------------------------------------------
# SQL building blocks (CTEs)


def _quoted(values) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _inputs(h: Handle, attrs=(), *, base: bool = False) -> str:
    """``cust`` and ``buys``: the tables as of the reference date.

    ``buys`` leaves the base products out, or (``base=True``) keeps them with an ``is_base`` flag.
    """
    ref = h.ref.isoformat()
    after = (h.ref + dt.timedelta(days=1)).isoformat()
    extra = "".join(f", {a}" for a in attrs)
    if not h.base:
        flag, where = "false", ""
    elif base:
        flag, where = f"product_id IN ({_quoted(h.base)})", ""
    else:
        flag, where = "false", f"AND product_id NOT IN ({_quoted(h.base)})"
    return f"""
    cust AS (
        SELECT customer_id, signup_date,
               CASE WHEN churn_date <= DATE '{ref}' THEN churn_date END AS churn_date{extra}
        FROM customers
        WHERE signup_date <= DATE '{ref}'
    ),
    buys AS (
        SELECT customer_id, product_id, purchased_at, coalesce(quantity, 1) AS quantity,
               CASE WHEN ended_at <= DATE '{ref}' THEN ended_at END AS ended_at,
               {flag} AS is_base
        FROM purchases
        WHERE purchased_at < TIMESTAMP '{after}' {where}
    )"""


def _periods(h: Handle, period: str | None) -> str:
    """``periods(pstart, pend)``: from the first signup's or purchase's period to the reference date's."""
    ref = h.ref.isoformat()
    after = (h.ref + dt.timedelta(days=1)).isoformat()
    # every purchase counts here, base products included
    first = (f"least((SELECT min(signup_date) FROM customers WHERE signup_date <= DATE '{ref}'), "
             f"(SELECT min(purchased_at) FROM purchases WHERE purchased_at < TIMESTAMP '{after}')::DATE)")
    if period is None:
        return f"periods AS (SELECT {first} AS pstart, DATE '{after}' AS pend)"
    unit, step = _UNITS[period]
    return f"""
    periods AS (
        SELECT g::DATE AS pstart, (g + INTERVAL {step})::DATE AS pend
        FROM (SELECT unnest(generate_series(date_trunc('{unit}', {first})::TIMESTAMP,
                                            TIMESTAMP '{h.ref.isoformat()}', INTERVAL {step})) AS g)
    )"""


def _counted(period: str | None, basis: str) -> str:
    """``counted(pstart, customer_id, product_id, is_base)``: the pairs that count per period."""
    if basis == "sold":
        if period is None:
            # the window starts at the first purchase or signup and ends after the reference
            # date: every purchase in ``buys`` is inside it
            slot = "(SELECT pstart FROM periods)"
        else:
            slot = f"date_trunc('{_UNITS[period][0]}', purchased_at)::DATE"
        # net inside the period > 0, and net up to the reference date > 0 (else: fully returned)
        return f"""
    kept AS (SELECT customer_id, product_id FROM buys GROUP BY ALL HAVING sum(quantity) > 0),
    sold AS (
        SELECT {slot} AS pstart, customer_id, product_id, is_base, sum(quantity) AS q
        FROM buys
        GROUP BY ALL
    ),
    counted AS (
        SELECT pstart, customer_id, product_id, is_base
        FROM sold SEMI JOIN kept USING (customer_id, product_id)
        WHERE q > 0
    )"""
    # held at each period's end: bought before it, not cancelled by it, still netting > 0
    return """
    kept AS (SELECT customer_id, product_id FROM buys GROUP BY ALL HAVING sum(quantity) > 0),
    held AS (
        SELECT p.pstart, b.customer_id, b.product_id, b.is_base, sum(b.quantity) AS q
        FROM buys b JOIN periods p
          ON b.purchased_at < p.pend AND (b.ended_at IS NULL OR b.ended_at >= p.pend)
        GROUP BY ALL
    ),
    counted AS (
        SELECT pstart, customer_id, product_id, is_base
        FROM held SEMI JOIN kept USING (customer_id, product_id)
        WHERE q > 0
    )"""


def _population(basis: str, attrs=()) -> str:
    """``pop(pstart, customer_id, attrs)``: active customers per period.

    sold: the relationship overlaps the period; held: it is open at the period's end (which also
    enforces "a churned customer holds nothing").
    """
    edge = "p.pstart" if basis == "sold" else "p.pend"
    extra = "".join(f", c.{a}" for a in attrs)
    return f"""
    pop AS (
        SELECT p.pstart, c.customer_id{extra}
        FROM cust c JOIN periods p
          ON c.signup_date < p.pend AND (c.churn_date IS NULL OR c.churn_date >= {edge})
    )"""


def _per_customer() -> str:
    """``tbl``: one row per (period, customer) of the population with ``n`` counted products."""
    return """
    per AS (SELECT pstart, customer_id, count(*) AS n FROM counted WHERE NOT is_base GROUP BY ALL),
    tbl AS (
        SELECT pop.*, coalesce(per.n, 0) AS n
        FROM pop LEFT JOIN per USING (pstart, customer_id)
    )"""


def _label(period: str | None, col: str = "pstart") -> str:
    if period is None:
        return "'all'"
    fmt = {"M": f"strftime({col}, '%Y-%m')", "Y": f"strftime({col}, '%Y')",
           "Q": f"strftime({col}, '%Y') || 'Q' || quarter({col})"}
    return fmt[period]


# --------------------------------------------------------------------------------------------
# the metrics


def cross_sell_ratio(h: Handle, *, period: str | None = None, by: str | None = None, basis: str = "sold"):
    """Distinct products per active customer, per period and segment (grid completed)."""
    attrs = [by] if by else []
    keys = ", ".join(["pstart", *attrs])
    grid_attr = f" CROSS JOIN (SELECT DISTINCT {by} FROM cust WHERE {by} IS NOT NULL)" if by else ""
    sql = f"""
    WITH {_inputs(h, attrs)},
    {_periods(h, period)},
    {_counted(period, basis)},
    {_population(basis, attrs)},
    {_per_customer()},
    res AS (SELECT {keys}, sum(n) AS numerator, count(*) AS denominator FROM tbl GROUP BY ALL),
    grid AS (SELECT {keys} FROM periods{grid_attr})
    SELECT {_label(period)} AS period, {''.join(f'{a}, ' for a in attrs)}
           coalesce(res.numerator, 0)::BIGINT AS numerator,
           coalesce(res.denominator, 0)::BIGINT AS denominator,
           res.numerator::DOUBLE / nullif(res.denominator, 0) AS ratio
    FROM grid LEFT JOIN res USING ({keys})
    ORDER BY {keys}
    """
    out = h.df(sql)
    out["ratio"] = out["ratio"].astype("float64")
    return out


def product_distribution(h: Handle):
    """Active customers at the reference date by the number of add-ons they hold."""
    sql = f"""
    WITH {_inputs(h)},
    {_periods(h, None)},
    {_counted(None, "held")},
    {_population("held")},
    {_per_customer()}
    SELECT n AS products, count(*) AS customers,
           count(*) / sum(count(*)) OVER () AS share
    FROM tbl GROUP BY n ORDER BY n
    """
    return h.df(sql)


def penetration(h: Handle):
    """Per add-on: holders among the active customers, their share, and the attach rate."""
    sql = f"""
    WITH {_inputs(h, base=True)},
    {_periods(h, None)},
    {_counted(None, "held")},
    {_population("held")},
    mine AS (SELECT c.* FROM counted c SEMI JOIN pop USING (pstart, customer_id)),
    size AS (SELECT count(*) AS population FROM pop),
    owners AS (SELECT count(DISTINCT customer_id) AS owners FROM mine)
    SELECT product_id, count(DISTINCT customer_id) AS customers, any_value(population) AS population,
           count(DISTINCT customer_id) / any_value(population) AS share,
           count(DISTINCT customer_id) / any_value(owners) AS attach_rate
    FROM mine, size, owners
    WHERE NOT is_base
    GROUP BY product_id
    ORDER BY customers DESC, product_id
    """
    return h.df(sql)


def suite(h: Handle) -> dict:
    """The core metrics suite, as {name: callable returning the canonical frame}."""
    return {
        "overall_ratio": lambda: cross_sell_ratio(h)[["numerator", "denominator", "ratio"]],
        "product_distribution": lambda: product_distribution(h),
        "ratio_by_cohort_q": lambda: cross_sell_ratio(h, period="Q", by="cohort"),
        "ratio_by_plan_q": lambda: cross_sell_ratio(h, period="Q", by="plan"),
        "penetration": lambda: penetration(h),
    }
