"""The core metrics suite in plain pandas, the way an analyst would write it in a notebook.

Same definitions as :mod:`crosssell.metrics` (see ``baseline_sql.py`` for the list): returns net
against sales and a pair netting to zero or less up to the reference date never counts; ``sold``
counts a pair in a period when its net quantity in the period is positive, among the customers
whose relationship overlaps the period; ``held`` counts a pair at a period's end when its net
quantity of purchases made before the end and not cancelled by it is positive, among the customers
still open then; base products never count; periods run from the first signup's or purchase's
period to the reference date's.

The tables are read with ``pd.read_parquet`` and prepared once (the "as of" rules, date types);
each metric then works from those frames on its own, without caching anything between metrics
(the rule every implementation in the harness follows).  No tricks an analyst would not reach for:
default dtypes, groupby/merge/isin, a loop over the periods.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

PAIR = ["customer_id", "product_id"]


def load(folder, reference_date) -> dict:
    """Read the Parquet files and apply the reference date."""
    folder = Path(folder)
    ref = pd.Timestamp(reference_date).normalize()
    after = ref + pd.Timedelta(days=1)
    cust = pd.read_parquet(folder / "customers.parquet")
    purch = pd.read_parquet(
        folder / "purchases.parquet",
        columns=["customer_id", "product_id", "purchased_at", "quantity", "ended_at"],
    )
    products = pd.read_parquet(folder / "products.parquet")

    # Parquet dates come back as datetime.date objects: make them datetime64
    for col in ("signup_date", "churn_date"):
        cust[col] = pd.to_datetime(cust[col])
    purch["ended_at"] = pd.to_datetime(purch["ended_at"])
    purch["purchased_at"] = pd.to_datetime(purch["purchased_at"])

    # as of the reference date: later signups and purchases out, later churn/cancellation unknown
    cust = cust[cust["signup_date"] <= ref].copy()
    cust.loc[cust["churn_date"] > ref, "churn_date"] = pd.NaT
    purch = purch[purch["purchased_at"] < after].copy()
    purch.loc[purch["ended_at"] > ref, "ended_at"] = pd.NaT
    purch["quantity"] = purch["quantity"].fillna(1).astype("float64")
    base = products.loc[products["is_base"].fillna(False).astype(bool), "product_id"]
    purch["is_base"] = purch["product_id"].isin(base)
    first = min(cust["signup_date"].min(), purch["purchased_at"].min().normalize())
    return {"customers": cust, "purchases": purch, "products": products, "ref": ref, "first": first}


def _net_positive(purch: pd.DataFrame) -> pd.Series:
    """Row mask: the row's (customer, product) nets to more than zero up to the reference date."""
    return purch.groupby(PAIR)["quantity"].transform("sum") > 0


def _periods(d: dict, period: str | None) -> list[tuple]:
    """(key, start, end-exclusive) per period; the key is a pandas Period (``"all"`` for all time)."""
    after = d["ref"] + pd.Timedelta(days=1)
    if period is None:
        return [("all", d["first"], after)]
    idx = pd.period_range(pd.Period(d["first"], period), pd.Period(d["ref"], period), freq=period)
    return [(p, p.start_time.normalize(), (p + 1).start_time.normalize()) for p in idx]


def _active(cust: pd.DataFrame, start, end, basis: str) -> pd.DataFrame:
    edge = start if basis == "sold" else end
    keep = (cust["signup_date"] < end) & (cust["churn_date"].isna() | (cust["churn_date"] >= edge))
    return cust[keep]


def _held_pairs(d: dict, end: pd.Timestamp, *, base: bool) -> pd.DataFrame:
    """(customer, product) pairs held at ``end``: bought before it, not cancelled by it, netting > 0."""
    p = d["purchases"]
    if not base:
        p = p[~p["is_base"]]
    p = p[_net_positive(p)]
    p = p[(p["purchased_at"] < end) & (p["ended_at"].isna() | (p["ended_at"] >= end))]
    q = p.groupby(PAIR)["quantity"].sum()
    return q[q > 0].reset_index()[PAIR]


def _sold_counts(d: dict, period: str | None, periods) -> pd.DataFrame:
    """(period key, customer_id, n): distinct add-ons sold to the customer in the period."""
    p = d["purchases"]
    p = p[~p["is_base"]]
    p = p[_net_positive(p)]
    if period is None:
        label, start, end = periods[0]
        p = p[(p["purchased_at"] >= start) & (p["purchased_at"] < end)]
        p = p.assign(period=label)
    else:
        p = p.assign(period=p["purchased_at"].dt.to_period(period))
    q = p.groupby(["period", *PAIR])["quantity"].sum()
    q = q[q > 0].reset_index()
    return q.groupby(["period", "customer_id"]).size().rename("n").reset_index()


def _held_counts(d: dict, periods) -> pd.DataFrame:
    """(period key, customer_id, n): distinct add-ons held at the end of each period."""
    parts = []
    for label, _, end in periods:
        held = _held_pairs(d, end, base=False)
        parts.append(held.groupby("customer_id").size().rename("n").reset_index().assign(period=label))
    return pd.concat(parts, ignore_index=True)


def cross_sell_ratio(d: dict, *, period: str | None = None, by: str | None = None,
                     basis: str = "sold") -> pd.DataFrame:
    """Distinct add-ons sold (or held) per active customer, per period and segment."""
    periods = _periods(d, period)
    counts = _sold_counts(d, period, periods) if basis == "sold" else _held_counts(d, periods)
    keys = [by] if by else []
    parts = []
    for label, start, end in periods:
        active = _active(d["customers"], start, end, basis)[["customer_id", *keys]]
        n = counts.loc[counts["period"] == label, ["customer_id", "n"]]
        t = active.merge(n, on="customer_id", how="left")
        t["n"] = t["n"].fillna(0)
        if keys:
            g = t.groupby(keys)["n"].agg(numerator="sum", denominator="size").reset_index()
        else:
            g = pd.DataFrame({"numerator": [t["n"].sum()], "denominator": [len(t)]})
        parts.append(g.assign(period=str(label)))
    res = pd.concat(parts, ignore_index=True)
    if keys:
        # every (period, segment) appears, with zero customers where there are none
        values = sorted(d["customers"][by].dropna().unique(), key=str)
        grid = pd.MultiIndex.from_product([[str(p[0]) for p in periods], values], names=["period", by])
        res = res.set_index(["period", by]).reindex(grid).reset_index()
    res["numerator"] = res["numerator"].fillna(0).astype("int64")
    res["denominator"] = res["denominator"].fillna(0).astype("int64")
    res["ratio"] = res["numerator"] / res["denominator"].where(res["denominator"] > 0)
    return res[["period", *keys, "numerator", "denominator", "ratio"]]


def product_distribution(d: dict) -> pd.DataFrame:
    """Active customers at the reference date by the number of add-ons they hold."""
    _, start, end = _periods(d, None)[0]
    active = _active(d["customers"], start, end, "held")
    held = _held_pairs(d, end, base=False)
    n = held.groupby("customer_id").size()
    per_customer = n.reindex(active["customer_id"]).fillna(0).astype("int64")
    res = per_customer.value_counts().sort_index().rename_axis("products").rename("customers")
    res = res.reset_index()
    res["share"] = res["customers"] / res["customers"].sum()
    return res


def penetration(d: dict) -> pd.DataFrame:
    """Per add-on: holders among the active customers, their share, and the attach rate."""
    _, start, end = _periods(d, None)[0]
    active = _active(d["customers"], start, end, "held")
    held = _held_pairs(d, end, base=True)
    held = held[held["customer_id"].isin(active["customer_id"])]
    owners = held["customer_id"].nunique()  # holding anything, base products included
    base = set(d["products"].loc[d["products"]["is_base"].fillna(False).astype(bool), "product_id"])
    addons = held[~held["product_id"].isin(base)]
    res = addons.groupby("product_id")["customer_id"].nunique().rename("customers").reset_index()
    res["population"] = len(active)
    res["share"] = res["customers"] / res["population"]
    res["attach_rate"] = res["customers"] / owners if owners else np.nan
    return res.sort_values(["customers", "product_id"], ascending=[False, True], ignore_index=True)


def suite(d: dict) -> dict:
    """The core metrics suite, as {name: callable returning the canonical frame}."""
    return {
        "overall_ratio": lambda: cross_sell_ratio(d)[["numerator", "denominator", "ratio"]],
        "product_distribution": lambda: product_distribution(d),
        "ratio_by_cohort_q": lambda: cross_sell_ratio(d, period="Q", by="cohort"),
        "ratio_by_plan_q": lambda: cross_sell_ratio(d, period="Q", by="plan"),
        "penetration": lambda: penetration(d),
    }
