"""Invariants of the ratio, checked on random small datasets (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crosssell as cs

DAY0 = pd.Timestamp("2024-01-01")
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEFINITIONS = st.fixed_dictionaries(
    {
        "basis": st.sampled_from(["sold", "held"]),
        "count": st.sampled_from(["distinct", "units"]),
        "customers": st.sampled_from(["active", "all", "buyers"]),
        "period": st.sampled_from([None, "M", "Q"]),
    }
)


@st.composite
def datasets(draw):
    """Up to 8 customers over 2024 and up to 25 purchase rows (returns and cancellations included)."""
    n = draw(st.integers(1, 8))
    signup = draw(st.lists(st.integers(0, 200), min_size=n, max_size=n))
    churn = [
        s + d if d is not None else None
        for s, d in zip(signup, draw(st.lists(st.one_of(st.none(), st.integers(1, 200)), min_size=n, max_size=n)),
                        strict=True)
    ]
    customers = pd.DataFrame(
        {
            "customer_id": [f"{i:03d}" for i in range(n)],
            "signup_date": [DAY0 + pd.Timedelta(days=s) for s in signup],
            "churn_date": [DAY0 + pd.Timedelta(days=c) if c is not None else pd.NaT for c in churn],
            "plan": draw(st.lists(st.sampled_from(["a", "b"]), min_size=n, max_size=n)),
        }
    )
    rows = []
    for _ in range(draw(st.integers(1, 25))):
        i = draw(st.integers(0, n - 1))
        when = signup[i] + draw(st.integers(0, 150))
        ends = draw(st.one_of(st.none(), st.integers(1, 120)))
        rows.append(
            {
                "customer_id": f"{i:03d}",
                "product_id": draw(st.sampled_from(["P1", "P2", "P3", "P4"])),
                "purchased_at": DAY0 + pd.Timedelta(days=when, hours=draw(st.integers(0, 23))),
                "quantity": draw(st.sampled_from([1, 1, 1, 2, -1])),
                "ended_at": DAY0 + pd.Timedelta(days=when + ends) if ends else pd.NaT,
            }
        )
    purchases = pd.DataFrame(rows)
    # a return can't end a subscription
    purchases.loc[purchases["quantity"] < 0, "ended_at"] = pd.NaT
    return customers, purchases


def _load(customers, purchases):
    return cs.from_frames(customers=customers, purchases=purchases, reference_date="2024-12-31")


@SETTINGS
@given(datasets(), DEFINITIONS)
def test_ratio_times_denominator_is_numerator(frames, definition):
    res = cs.cross_sell_ratio(_load(*frames), by="plan", **definition)
    ok = res["denominator"] > 0
    assert np.allclose(res.loc[ok, "ratio"] * res.loc[ok, "denominator"], res.loc[ok, "numerator"])
    assert res.loc[~ok, "ratio"].isna().all()
    assert (res["numerator"] >= 0).all() or definition["count"] == "units"


@SETTINGS
@given(datasets(), DEFINITIONS)
def test_row_order_does_not_matter(frames, definition):
    customers, purchases = frames
    a = cs.cross_sell_ratio(_load(customers, purchases), **definition)
    b = cs.cross_sell_ratio(
        _load(customers.sample(frac=1, random_state=1), purchases.sample(frac=1, random_state=2)), **definition
    )
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


@SETTINGS
@given(datasets(), st.sampled_from(["sold", "held"]))
def test_a_customer_with_no_purchases_lowers_the_ratio(frames, basis):
    customers, purchases = frames
    before = cs.cross_sell_ratio(_load(customers, purchases), basis=basis, customers="all")
    newcomer = pd.DataFrame({"customer_id": ["new"], "signup_date": [DAY0], "churn_date": [pd.NaT], "plan": ["a"]})
    after = cs.cross_sell_ratio(_load(pd.concat([customers, newcomer]), purchases), basis=basis, customers="all")
    assert after["denominator"].item() == before["denominator"].item() + 1
    assert after["numerator"].item() == before["numerator"].item()
    r0, r1 = before["ratio"].item(), after["ratio"].item()
    assert r1 < r0 if r0 > 0 else r1 == 0


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(datasets())
def test_csv_parquet_and_frames_give_the_same_answer(tmp_path_factory, frames):
    customers, purchases = frames
    folder = tmp_path_factory.mktemp("same")
    answers = []
    for fmt in ("csv", "parquet"):
        sub = folder / fmt
        sub.mkdir()
        for name, frame in (("customers", customers), ("purchases", purchases)):
            if fmt == "csv":
                frame.to_csv(sub / f"{name}.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")
            else:
                frame.to_parquet(sub / f"{name}.parquet", index=False)
        answers.append(cs.load(sub, reference_date="2024-12-31"))
    answers.append(_load(customers, purchases))
    results = [cs.cross_sell_ratio(d, period="M", by="plan", basis="held") for d in answers]
    for other in results[1:]:
        pd.testing.assert_frame_equal(results[0], other)


@SETTINGS
@given(datasets(), st.sampled_from(["distinct", "units"]), st.sampled_from(["active", "all", "buyers"]),
       st.sampled_from(["M", "Q"]))
def test_held_from_changes_equals_held_from_the_join(frames, count, customers, period):
    # the two ways of computing the held basis (crosssell.metrics._held_rows, used from
    # HELD_BY_CHANGES_FROM periods on, and the join of purchases with later periods) agree
    # exactly, returns, cancellations and churn included, in the ratio and in penetration (which
    # counts base products too)
    from crosssell import metrics

    data = _load(*frames)
    kw = {"period": period, "basis": "held", "customers": customers, "by": "plan"}
    saved = metrics.HELD_BY_CHANGES_FROM
    try:
        metrics.HELD_BY_CHANGES_FROM = 2
        changes = cs.cross_sell_ratio(data, count=count, **kw), cs.penetration(data, **kw)
        metrics.HELD_BY_CHANGES_FROM = 10**9
        joined = cs.cross_sell_ratio(data, count=count, **kw), cs.penetration(data, **kw)
    finally:
        metrics.HELD_BY_CHANGES_FROM = saved
    for a, b in zip(changes, joined, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
