"""Satisfaction and churn by tier, survival, the Cox models, over-selling and value.

Expected values are hand-computed (the arithmetic is in the comments), taken from published
textbook examples (sources cited), or planted by the sample generator (``truth.json``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import shared_file
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

import crosssell as cs
import crosssell.plots  # noqa: F401  (cs.plots.*)
from crosssell import engine, outcomes
from crosssell.errors import (
    CapabilityError,
    ColumnNotFoundError,
    ConvergenceWarning,
    DataQualityWarning,
    MissingTableError,
    ParameterError,
    PeriodError,
    SmallSampleWarning,
)
from crosssell.stats import risk_ratio_interval

pytestmark = pytest.mark.filterwarnings("ignore::crosssell.errors.SmallSampleWarning")


# --------------------------------------------------------------------------------------------
# a hand-made company (reference date 2024-06-30)
#
#   a: signup 01-01, active.   X 01-10; Y 02-01 cancelled 03-01, Y again 04-01; Z 05-01 (2 units)
#      and 1 more Z 05-10 (upsell)
#   b: signup 01-01, churned 04-15.  X 01-05, Y 02-10, both ended by the churn on 04-15
#   c: signup 02-01, active.   X 02-05 returned in full 02-08; Y 03-01
#   d: signup 03-01, churned 03-20.  X 03-05 ended 03-20
#   e: signup 01-15, active, no add-ons
# Everyone buys the base product BASE at signup; it never counts.


def _hand(surveys=True, churn=True, revenue=True):
    customers = pd.DataFrame({
        "customer_id": list("abcde"),
        "signup_date": ["2024-01-01", "2024-01-01", "2024-02-01", "2024-03-01", "2024-01-15"],
        "churn_date": [None, "2024-04-15", None, "2024-03-20", None],
        "plan": ["Basic", "Pro", "Basic", "Pro", "Pro"],
    })
    if not churn:
        customers = customers.drop(columns="churn_date")
    rows = [
        ("a", "BASE", "2024-01-01", 1, None, 10.0),
        ("a", "X", "2024-01-10", 1, None, 5.0),
        ("a", "Y", "2024-02-01", 1, "2024-03-01", 7.0),
        ("a", "Y", "2024-04-01", 1, None, 7.0),
        ("a", "Z", "2024-05-01", 2, None, 6.0),
        ("a", "Z", "2024-05-10", 1, None, 3.0),
        ("b", "BASE", "2024-01-01", 1, "2024-04-15", 10.0),
        ("b", "X", "2024-01-05", 1, "2024-04-15", 5.0),
        ("b", "Y", "2024-02-10", 1, "2024-04-15", 7.0),
        ("c", "BASE", "2024-02-01", 1, None, 10.0),
        ("c", "X", "2024-02-05", 1, None, 5.0),
        ("c", "X", "2024-02-08", -1, None, -5.0),
        ("c", "Y", "2024-03-01", 1, None, 7.0),
        ("d", "BASE", "2024-03-01", 1, "2024-03-20", 10.0),
        ("d", "X", "2024-03-05", 1, "2024-03-20", 5.0),
        ("e", "BASE", "2024-01-15", 1, None, 10.0),
    ]
    purchases = pd.DataFrame(rows, columns=["customer_id", "product_id", "purchased_at", "quantity", "ended_at",
                                            "revenue"])
    if not revenue:
        purchases = purchases.drop(columns="revenue")
    products = pd.DataFrame({"product_id": ["BASE", "X", "Y", "Z"], "is_base": [True, False, False, False]})
    sv = None
    if surveys:
        sv = pd.DataFrame([
            ("a", "2024-02-20", 5, "csat"), ("a", "2024-06-01", 4, "csat"), ("b", "2024-03-10", 2, "csat"),
            ("c", "2024-03-15", 3, "csat"), ("e", "2024-02-01", 10, "nps"), ("e", "2024-05-01", 6, "nps"),
            ("a", "2024-06-10", 9, "nps"), ("c", "2024-06-20", 7, "nps"),
        ], columns=["customer_id", "responded_at", "score", "kind"])
    return cs.from_frames(customers=customers, purchases=purchases, products=products, surveys=sv,
                          reference_date="2024-06-30")


@pytest.fixture(scope="module")
def hand():
    return _hand()


@pytest.fixture(scope="module")
def planted(sample_data, truth):
    """The committed sample (5,000 customers, seed 42) and what was planted in it."""
    return sample_data, truth


@pytest.fixture(scope="module")
def planted_20k():
    """20,000 generated customers: intervals narrow enough to test for bias, not just coverage."""
    from crosssell.sample import generate

    s = generate(customers=20000, seed=7)
    data = cs.from_frames(customers=s.customers, purchases=s.purchases, surveys=s.surveys, products=s.products)
    return data, s.truth


def _by_tier(frame, column, tier_col="tier"):
    return dict(zip(frame[tier_col].astype(str), frame[column], strict=True))


# --------------------------------------------------------------------------------------------
# tiers


def test_tier_labels_and_bad_bins():
    assert outcomes.tier_labels((1, 2, 3, 5)) == ["0", "1", "2", "3–4", "5+"]
    assert outcomes.tier_labels((2, 4)) == ["0–1", "2–3", "4+"]
    assert outcomes.tier_labels((1,)) == ["0", "1+"]
    # the engine's tier (used in group-bys) and pandas' (used on model rows) agree on every count
    import ibis

    counts = ibis.memtable(pd.DataFrame({"n": np.arange(0, 12)}))
    bins = (1, 2, 3, 5)
    engine_side = engine.execute(counts.select(t=outcomes._tier_case(counts.n, bins, outcomes.tier_labels(bins))))
    pandas_side = np.asarray(outcomes.tier_labels(bins))[outcomes._tier_index(np.arange(0, 12), bins)]
    assert engine_side["t"].tolist() == pandas_side.tolist() == ["0", "1", "2", "3–4", "3–4"] + ["5+"] * 7
    for bad in [(), (0, 1), (2, 2), (3, 1), ("x",), (1.5, 2)]:
        with pytest.raises(ParameterError, match="bins"):
            outcomes.tier_labels(bad)


def test_tiers_hand(hand):
    # end of 2024-02-15: a holds X and Y (Y ends 03-01), b holds X and Y, c's X was returned in
    # full (net 0), e holds nothing; d has not signed up yet.  BASE never counts.
    t = cs.tiers(hand, bins=(1, 2), as_of="2024-02-15")
    assert dict(zip(t["customer_id"], t["n_products"], strict=True)) == {"a": 2, "b": 2, "c": 0, "e": 0}
    assert dict(zip(t["customer_id"], t["tier"].astype(str), strict=True)) == {"a": "2+", "b": "2+", "c": "0", "e": "0"}
    assert list(t["tier"].cat.categories) == ["0", "1", "2+"]
    assert dict(zip(t["customer_id"], t["tenure_days"], strict=True))["a"] == 45  # 31 + 14
    # end of 03-01: a's Y ended on 03-01 (not held), c bought Y that day, d signed up that day
    t = cs.tiers(hand, bins=(1, 2), as_of="2024-03-01")
    assert dict(zip(t["customer_id"], t["n_products"], strict=True)) == {"a": 1, "b": 2, "c": 1, "d": 0, "e": 0}
    # the reference date: b and d have churned; a holds X, Y (bought again) and Z
    t = cs.tiers(hand, bins=(1, 2))
    assert dict(zip(t["customer_id"], t["n_products"], strict=True)) == {"a": 3, "c": 1, "e": 0}
    assert t.attrs["as_of"] == "2024-06-30" and "BASE" in t.attrs["definition"]
    # the same count as the metrics' "held" basis
    cp, _, _ = cs.customer_products(hand, basis="held", end="2024-03-01")
    ref = engine.execute(cp.select("customer_id", "n"))
    assert dict(zip(ref["customer_id"], ref["n"].astype(int), strict=True)) == {"a": 1, "b": 2, "c": 1, "d": 0, "e": 0}


def test_tiers_bad_dates_and_exclusions(hand):
    with pytest.raises(PeriodError, match="after the reference date"):
        cs.tiers(hand, as_of="2024-07-01")
    with pytest.raises(ParameterError, match="not a date|must be a date"):
        cs.tiers(hand, as_of="soon")
    t = cs.tiers(hand, bins=(1, 2), as_of="2024-02-15", exclude="Y")
    assert dict(zip(t["customer_id"], t["n_products"], strict=True)) == {"a": 1, "b": 1, "c": 0, "e": 0}
    with pytest.raises(ParameterError, match="never purchased"):
        cs.tiers(hand, exclude="NOPE")


# --------------------------------------------------------------------------------------------
# the engine-side counting process


def test_counting_rows_hand(hand):
    rows, dropped = outcomes._counting_rows(hand, excl=(), flags=["Y"], lag_days=0, cols=[])
    a = rows[rows["customer_id"] == "a"]
    # a: X on day 9 (01-10), Y on day 31 (02-01), Y cancelled day 60 (03-01), Y again day 91
    # (04-01), Z day 121 (05-01); followed to the reference date: day 181 (06-30)
    assert a[["__t", "__stop", "__n", "__f0"]].values.tolist() == [
        [0, 9, 0, 0], [9, 31, 1, 0], [31, 60, 2, 1], [60, 91, 1, 0], [91, 121, 2, 1], [121, 181, 3, 1]]
    assert not a["__event"].any()
    b = rows[rows["customer_id"] == "b"]
    # b: X day 4, Y day 40, churn 04-15 = day 105 (31 + 29 + 31 + 14); what ends on the churn
    # day comes after the event
    assert b[["__t", "__stop", "__n"]].values.tolist() == [[0, 4, 0], [4, 40, 1], [40, 105, 2]]
    assert b["__event"].tolist() == [False, False, True]
    assert dropped == 0
    # lagged 30 days: a's first product counts from day 39
    lagged, _ = outcomes._counting_rows(hand, excl=(), flags=[], lag_days=30, cols=[])
    assert lagged[lagged["customer_id"] == "a"]["__t"].tolist()[:2] == [0, 39]


_day = st.integers(min_value=0, max_value=120)


@st.composite
def _companies(draw):
    n = draw(st.integers(2, 6))
    start = pd.Timestamp("2024-01-01")
    cust, purch = [], []
    for i in range(n):
        s = draw(_day)
        churn = draw(st.one_of(st.none(), st.integers(s + 1, 200)))
        cust.append((f"c{i}", start + pd.Timedelta(days=s), None if churn is None else start + pd.Timedelta(days=churn)))
        last = 200 if churn is None else churn
        for _ in range(draw(st.integers(0, 5))):
            prod = draw(st.sampled_from(["P", "Q", "R", "BASE"]))
            day = draw(st.integers(s, last))
            qty = draw(st.sampled_from([1.0, 2.0, -1.0]))
            end = draw(st.one_of(st.none(), st.integers(day, 210)))
            purch.append((f"c{i}", prod, start + pd.Timedelta(days=day), qty,
                          None if end is None else start + pd.Timedelta(days=end)))
    if not purch:
        purch.append(("c0", "P", start + pd.Timedelta(days=cust[0][1].day), 1.0, None))
    dates = draw(st.lists(st.integers(0, 210), min_size=2, max_size=2, unique=True))
    return cust, purch, dates


# each example builds a DuckDB-backed data set (~1 s): few examples, and no shrinking (minutes)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(_companies())
def test_held_counts_match_metrics_and_counting_rows(company):
    """Invariant: a tier's count at a date is the metrics' "held" count at that date (returns,
    cancellations, churn, base products and all), and the counting-process interval covering
    that date carries the same count."""
    cust, purch, dates = company
    customers = pd.DataFrame(cust, columns=["customer_id", "signup_date", "churn_date"])
    purchases = pd.DataFrame(purch, columns=["customer_id", "product_id", "purchased_at", "quantity", "ended_at"])
    products = pd.DataFrame({"product_id": ["BASE", "P", "Q", "R"], "is_base": [True, False, False, False]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = cs.from_frames(customers=customers, purchases=purchases, products=products,
                              reference_date="2024-07-31")
    rows, _ = outcomes._counting_rows(data, excl=(), flags=[], lag_days=0, cols=[])
    signup = dict(zip(customers["customer_id"], customers["signup_date"], strict=True))
    first = min(customers["signup_date"].min(), purchases["purchased_at"].min())
    for d in dates:
        when = max(pd.Timestamp("2024-01-01") + pd.Timedelta(days=d), first)
        t = cs.tiers(data, as_of=when)
        cp, _, _ = cs.customer_products(data, basis="held", end=when)
        ref = engine.execute(cp.select("customer_id", "n"))
        assert dict(zip(t["customer_id"], t["n_products"], strict=True)) == {
            k: int(v) for k, v in zip(ref["customer_id"], ref["n"], strict=True)}
        for cid, n in zip(t["customer_id"], t["n_products"], strict=True):
            x = (when - signup[cid]).days  # the state at the end of day `when` covers (x, x + 1]
            r = rows[(rows["customer_id"] == cid) & (rows["__t"] <= x) & (rows["__stop"] > x)]
            if len(r):  # no row when the customer's follow-up ends that day
                assert int(r["__n"].iloc[0]) == n


# --------------------------------------------------------------------------------------------
# churn by tier


def test_churn_by_tier_hand(hand):
    # active at the end of 02-15: a, b (tier 2+), c, e (tier 0); d signs up later.  Within the
    # following 90 days (to 05-15) only b churns: 2+ = 1 of 2, 0 = 0 of 2, 1 = nobody.
    res = cs.churn_by_tier(hand, horizon="90D", as_of="2024-02-15", bins=(1, 2), min_customers=2)
    assert res["tier"].astype(str).tolist() == ["0", "1", "2+"]
    assert res["customers"].tolist() == [2, 0, 2]
    assert res["churned"].tolist() == [0, 0, 1]
    assert res["churn_rate"].iloc[2] == 0.5 and np.isnan(res["churn_rate"].iloc[1])
    assert res["small"].tolist() == [False, True, False]
    # Wilson score interval for 1 of 2 at 95 %: (p + z²/2n ± z√(p(1−p)/n + z²/4n²)) / (1 + z²/n)
    z = sps.norm.ppf(0.975)
    n, p = 2, 0.5
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert res["ci_low"].iloc[2] == pytest.approx(centre - half)
    assert res["ci_high"].iloc[2] == pytest.approx(centre + half)
    assert "observable for the whole horizon" in res.attrs["method"]
    # the default as_of is the reference date minus the horizon
    assert cs.churn_by_tier(hand, horizon="30D").attrs["as_of"] == "2024-05-31"


def test_churn_by_tier_naive_and_by(hand):
    # naive: every customer, products on their last day.  a 3 (2+), b 2 on its churn day (2+,
    # churned), c 1, d 1 on its churn day (churned), e 0.
    res = cs.churn_by_tier(hand, horizon=None, bins=(1, 2))
    assert res["customers"].tolist() == [1, 2, 2]
    assert res["churned"].tolist() == [0, 1, 1]
    assert res.attrs["method"].startswith("naive")
    by = cs.churn_by_tier(hand, horizon=None, bins=(1, 2), by="plan")
    # Basic: a (2+), c (1); Pro: b (2+, churned), d (1, churned), e (0)
    got = {(r.plan, str(r.tier)): (r.customers, r.churned) for r in by.itertuples()}
    assert got[("Basic", "2+")] == (1, 0) and got[("Pro", "2+")] == (1, 1) and got[("Pro", "1")] == (1, 1)
    assert got[("Basic", "0")] == (0, 0)  # empty combinations are listed, not dropped


def test_churn_by_tier_errors(hand):
    with pytest.raises(PeriodError, match="whole horizon"):
        cs.churn_by_tier(hand, horizon="90D", as_of="2024-05-01")
    with pytest.raises(ParameterError, match="duration"):
        cs.churn_by_tier(hand, horizon="a year")
    with pytest.raises(ParameterError, match="positive"):
        cs.churn_by_tier(hand, horizon=0)
    with pytest.raises(ParameterError, match="as_of needs a horizon"):
        cs.churn_by_tier(hand, horizon=None, as_of="2024-01-01")
    with pytest.raises(ColumnNotFoundError, match="region"):
        cs.churn_by_tier(hand, by="region")
    with pytest.raises(ParameterError, match="min_customers"):
        cs.churn_by_tier(hand, min_customers=-1)
    with pytest.raises(ParameterError, match="ci"):
        cs.churn_by_tier(hand, ci=1.5)
    with pytest.warns(SmallSampleWarning, match="fewer than min_customers=30"):
        cs.churn_by_tier(hand, horizon=None)


def test_no_churn_dates_say_so_and_satisfaction_still_works():
    data = _hand(churn=False)
    for fn in (cs.churn_by_tier, cs.survival_by_tier, cs.landmark, cs.churn_model, cs.compare_naive,
               cs.cltv_by_tier):
        with pytest.raises(MissingTableError, match="churn_date"):
            fn(data)
    sat = cs.satisfaction_by_tier(data, bins=(1, 2))
    assert sat["responses"].sum() > 0
    flags = cs.overselling(data, bins=(1, 2), min_customers=1)
    assert flags.attrs["skipped"]["tier churn"] == "no churn dates"


# --------------------------------------------------------------------------------------------
# satisfaction


def test_satisfaction_by_tier_hand(hand):
    # every response, tier held at the start of the response day (bins 1, 2):
    #   CSAT 2+: a 5 (02-20, X+Y), a 4 (06-01, X+Y+Z), b 2 (03-10, X+Y); 1: c 3 (03-15, Y)
    #   NPS  0: e 10, e 6; 2+: a 9; 1: c 7
    sat = cs.satisfaction_by_tier(hand, bins=(1, 2), responses="all", tier_at="response", min_customers=1)
    csat = sat[sat["kind"] == "csat"].set_index(sat.loc[sat["kind"] == "csat", "tier"].astype(str))
    assert csat.loc["2+", "responses"] == 3 and csat.loc["2+", "customers"] == 2
    assert csat.loc["2+", "mean_score"] == pytest.approx(11 / 3)
    assert csat.loc["2+", "satisfied_share"] == pytest.approx(2 / 3)  # 5 and 4 of 5, 4, 2
    # t interval: sd of (5, 4, 2) = √(7/3) = 1.5275, t(0.975, 2) = 4.3027
    half = sps.t.ppf(0.975, 2) * np.sqrt(7 / 3) / np.sqrt(3)
    assert csat.loc["2+", "mean_low"] == pytest.approx(11 / 3 - half)
    assert csat.loc["1", "mean_score"] == 3 and csat.loc["1", "satisfied"] == 0
    assert csat.loc["0", "responses"] == 0 and np.isnan(csat.loc["0", "mean_score"])
    nps = sat[sat["kind"] == "nps"].set_index(sat.loc[sat["kind"] == "nps", "tier"].astype(str))
    # tier 0: one promoter (10) and one detractor (6) of 2: NPS 0; SE = 100·√((p + d − (p − d)²)/n)
    # = 100·√(1/2) = 70.71
    assert nps.loc["0", "nps"] == 0 and nps.loc["0", "nps_se"] == pytest.approx(100 * np.sqrt(0.5))
    assert nps.loc["2+", "nps"] == 100 and nps.loc["1", "nps"] == 0
    assert np.isnan(nps["satisfied_share"]).all() and np.isnan(csat["nps"]).all()
    # Spearman of (count, score) over the CSAT responses: (2, 5), (3, 4), (2, 2), (1, 3)
    rho = sps.spearmanr([2, 3, 2, 1], [5, 4, 2, 3]).statistic
    assert sat.attrs["spearman"]["csat"]["estimate"] == pytest.approx(rho)


def test_satisfaction_latest_as_of(hand):
    # tier at the reference date among active customers (a: 3 → 2+, c: 1, e: 0); each one's
    # latest response of each kind: a CSAT 4 / NPS 9, c CSAT 3 / NPS 7, e NPS 6.  b has churned.
    sat = cs.satisfaction_by_tier(hand, bins=(1, 2), min_customers=1)
    got = {(r.kind, str(r.tier)): (r.responses, r.mean_score) for r in sat.itertuples() if r.responses}
    assert got == {("csat", "2+"): (1, 4.0), ("csat", "1"): (1, 3.0), ("nps", "0"): (1, 6.0),
                   ("nps", "1"): (1, 7.0), ("nps", "2+"): (1, 9.0)}
    assert _by_tier(sat[sat["kind"] == "nps"], "nps")["0"] == -100
    # as of 03-31, before b churns: a holds X only (Y was cancelled on 03-01, bought again on
    # 04-01), b X and Y, c Y.  Latest CSAT: a 5 and c 3 in tier 1, b 2 in tier 2+
    early = cs.satisfaction_by_tier(hand, bins=(1, 2), as_of="2024-03-31", min_customers=1)
    csat = early[early["kind"] == "csat"]
    assert _by_tier(csat, "responses") == {"0": 0, "1": 2, "2+": 1}
    assert _by_tier(csat, "mean_score")["1"] == 4.0 and _by_tier(csat, "mean_score")["2+"] == 2.0


def test_satisfaction_errors(hand):
    no_surveys = _hand(surveys=False)
    with pytest.raises(MissingTableError, match="surveys"):
        cs.satisfaction_by_tier(no_surveys)
    with pytest.raises(ParameterError, match="responses"):
        cs.satisfaction_by_tier(hand, responses="first")
    with pytest.raises(ParameterError, match="tier_at"):
        cs.satisfaction_by_tier(hand, tier_at="signup")
    with pytest.warns(SmallSampleWarning):
        cs.satisfaction_by_tier(hand, bins=(1, 2))
    # a response without a kind is counted and left out, never guessed
    sv = pd.DataFrame({"customer_id": ["a", "a"], "responded_at": ["2024-06-01", "2024-06-02"],
                       "score": [4, 5], "kind": ["csat", None]})
    blank = cs.from_frames(customers=pd.DataFrame({"customer_id": ["a"], "signup_date": ["2024-01-01"]}),
                           purchases=pd.DataFrame({"customer_id": ["a"], "product_id": ["X"],
                                                   "purchased_at": ["2024-01-02"]}),
                           surveys=sv, reference_date="2024-06-30")
    with pytest.warns(DataQualityWarning, match="1 response"):
        got = cs.satisfaction_by_tier(blank, min_customers=0, responses="all")
    assert got.attrs["responses_without_kind"] == 1 and got["responses"].sum() == 1
    # no surveys: the churn functions still work
    assert cs.churn_by_tier(no_surveys, horizon=None)["customers"].sum() == 5


def test_satisfaction_recovers_planted_levels(planted):
    data, truth = planted
    sat = cs.satisfaction_by_tier(data, responses="all", tier_at="response")
    csat = sat[sat["kind"] == "csat"].set_index(sat.loc[sat["kind"] == "csat", "tier"].astype(str))
    planted_mean = truth["surveys"]["csat"]["latent_mean_by_tier"]
    # planted: CSAT rises with the tier to 3–4 (latent 3.6 → 4.2) and falls at 5+ (3.7, plus the
    # pushed add-on's −0.5): the observed means follow that shape
    m = csat["mean_score"]
    assert m["0"] < m["1"] < m["2"] < m["3–4"] and m["5+"] < m["3–4"]
    assert planted_mean["5+"] < planted_mean["3–4"]
    assert sat.attrs["spearman"]["csat"]["low"] > 0  # more products, more satisfied overall


# --------------------------------------------------------------------------------------------
# survival, log-rank and Cox against the 6-MP leukaemia trial


_MP = [(6, 1), (6, 1), (6, 1), (6, 0), (7, 1), (9, 0), (10, 1), (10, 0), (11, 0), (13, 1), (16, 1), (17, 0),
       (19, 0), (20, 0), (22, 1), (23, 1), (25, 0), (32, 0), (32, 0), (34, 0), (35, 0)]
_PLACEBO = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]


@pytest.fixture(scope="module")
def leukaemia():
    """Freireich et al. (1963) remission times in weeks, as customers: the 6-MP arm holds one
    product, the placebo arm none; a relapse is a churn.  Weeks become days (×7), so ties stay
    ties.  Censored patients sign up 7·t days before the reference date, relapsing ones 40 weeks
    before it and churn 7·t days after signing up."""
    ref = pd.Timestamp("2021-01-01")
    cust, purch = [], []
    for arm, times in (("mp", _MP), ("pl", [(t, 1) for t in _PLACEBO])):
        for i, (weeks, relapse) in enumerate(times):
            cid = f"{arm}{i:02d}"
            signup = ref - pd.Timedelta(days=280 if relapse else 7 * weeks)
            churn = signup + pd.Timedelta(days=7 * weeks) if relapse else None
            cust.append((cid, signup, churn))
            if arm == "mp":
                purch.append((cid, "6MP", signup))
            else:
                purch.append((cid, "BASE", signup))
    return cs.from_frames(
        customers=pd.DataFrame(cust, columns=["customer_id", "signup_date", "churn_date"]),
        purchases=pd.DataFrame(purch, columns=["customer_id", "product_id", "purchased_at"]),
        products=pd.DataFrame({"product_id": ["BASE", "6MP"], "is_base": [True, False]}),
        reference_date=ref,
    )


def test_kaplan_meier_logrank_rmst_textbook(leukaemia):
    res = cs.survival_by_tier(leukaemia, at=None, bins=(1,), min_customers=1)
    mp = res.curves[res.curves["tier"] == "1+"]
    mp = mp[mp["time"] > 0]
    # Kaplan–Meier of the 6-MP arm (Kleinbaum & Klein, Survival Analysis: A Self-Learning Text,
    # 3rd ed., 2012, ch. 2; Freireich et al. 1963): at 6, 7, 10, 13, 16, 22, 23 weeks
    assert (mp["time"] / 7).tolist() == [6, 7, 10, 13, 16, 22, 23]
    assert mp["survival"].round(4).tolist() == [0.8571, 0.8067, 0.7529, 0.6902, 0.6275, 0.5378, 0.4482]
    assert mp["at_risk"].tolist() == [21, 17, 15, 12, 11, 7, 6]
    # log–log band at 6 weeks: Greenwood se = S·√(3/(21·18)) = 0.07636; θ = 1.96·se/(S·|ln S|)
    s, se = 18 / 21, (18 / 21) * np.sqrt(3 / (21 * 18))
    theta = sps.norm.ppf(0.975) * se / (s * abs(np.log(s)))
    assert mp["low"].iloc[0] == pytest.approx(s ** np.exp(theta))  # 0.620
    assert mp["high"].iloc[0] == pytest.approx(s ** np.exp(-theta))  # 0.952
    summary = res.summary.set_index(res.summary["tier"].astype(str))
    # medians: 23 weeks (6-MP) and 8 weeks (placebo)
    assert summary.loc["1+", "median"] == 23 * 7 and summary.loc["0", "median"] == 8 * 7
    # log-rank chi-square 16.79 on 1 df (Kleinbaum & Klein, ch. 2)
    assert res.logrank["statistic"].iloc[0] == pytest.approx(16.79, abs=0.01)
    assert res.logrank["df"].iloc[0] == 1
    # RMST to 23 weeks (the shorter arm's follow-up).  Placebo, uncensored: the mean of min(t, 23)
    # = 182/21 weeks; its SE is the plain SE of that mean (n denominator).  6-MP: the area under
    # the curve, 6·1 + 1·0.8571 + 3·0.8067 + 3·0.7529 + 3·0.6902 + 6·0.6275 + 1·0.5378 = 17.909 weeks
    assert res.tau == 161
    assert summary.loc["0", "rmst"] == pytest.approx(182 / 21 * 7)
    x = np.minimum(np.array(_PLACEBO) * 7.0, 161)
    assert summary.loc["0", "rmst_se"] == pytest.approx(np.sqrt(x.var() / 21))
    assert summary.loc["1+", "rmst"] == pytest.approx(17.909244 * 7, rel=1e-6)
    assert summary.loc["1+", "rmst_diff"] == pytest.approx((17.909244 - 182 / 21) * 7, rel=1e-6)
    assert summary.loc["1+", "diff_low"] > 0  # 6-MP keeps patients in remission longer
    assert list(res.at_risk.index) == ["0", "1+"] and res.at_risk.loc["1+", 0] == 21
    assert "SurvivalResult" in repr(res)


@pytest.mark.parametrize("ties, coef, se", [("breslow", 1.509, 0.410), ("efron", 1.572, 0.412)])
def test_cox_textbook(leukaemia, ties, coef, se):
    # placebo against 6-MP: Breslow 1.509 (se 0.410, HR 4.523; Kleinbaum & Klein ch. 3), Efron
    # 1.572 (se 0.412; R's coxph(Surv(time, cens) ~ treat, data = MASS::gehan)).  Here the
    # reference tier is placebo ("0"), so the 6-MP hazard ratio is exp(−coef).
    hr = cs.churn_model(leukaemia, bins=(1,), cohort=None, ties=ties, robust=False, min_customers=1)
    row = hr[hr["term"] == "tier[1+]"].iloc[0]
    assert row["coef"] == pytest.approx(-coef, abs=5e-4)
    assert row["se"] == pytest.approx(se, abs=5e-4)
    assert row["hazard_ratio"] == pytest.approx(np.exp(-coef), rel=1e-3)
    assert hr.attrs["customers"] == 42 and hr.attrs["events"] == 30


def test_cluster_robust_matches_statsmodels(leukaemia):
    from statsmodels.duration.hazard_regression import PHReg

    # one row per patient here, where statsmodels' own sandwich works: the two must agree
    t = np.array([w for w, _ in _MP] + _PLACEBO, float) * 7
    e = np.array([r for _, r in _MP] + [1] * 21)
    x = np.r_[np.ones(21), np.zeros(21)][:, None]
    ref = PHReg(t, x, status=e, ties="breslow").fit(groups=np.arange(42))
    hr = cs.churn_model(leukaemia, bins=(1,), cohort=None, robust=True, min_customers=1)
    row = hr[hr["term"] == "tier[1+]"].iloc[0]
    assert row["se"] == pytest.approx(float(ref.bse[0]), rel=1e-6)  # 0.367
    # the same patients cut into (start, stop] pieces give the same fit and the same robust SE
    params = pd.Series(0.0, index=["x"])
    rows = []
    for i, (ti, ei) in enumerate(zip(t, e, strict=True)):
        rows += [(i, 0.0, 35.0, 0, x[i, 0]), (i, 35.0, ti, ei, x[i, 0])] if ti > 35 else [(i, 0.0, ti, ei, x[i, 0])]
    r = np.array(rows)
    X = pd.DataFrame({"x": r[:, 4]})
    params, cov, notes, _ = outcomes._fit_cox(r[:, 2], X, r[:, 3].astype(int), entry=r[:, 1], groups=r[:, 0])
    assert params["x"] == pytest.approx(-float(ref.params[0]) * -1, rel=1e-6)
    assert np.sqrt(cov.loc["x", "x"]) == pytest.approx(float(ref.bse[0]), rel=1e-6)
    assert notes == []


# --------------------------------------------------------------------------------------------
# planted effects: time-varying, landmark, naive


def test_time_varying_recovers_planted_hazard_ratios(planted_20k):
    # Seven planted ratios are checked at once: with 95 % intervals all seven cover only ~70 % of
    # the time (0.95⁷) even without bias, so the joint check uses 99 % intervals (0.99⁷ ≈ 93 %).
    # Over 30 seeds of 5,000 customers the 95 % intervals covered 29, 29, 27 and 29 of 30 for
    # the four tiers, with geometric-mean estimates 0.753, 0.535, 0.513 and 1.349 (planted 0.75,
    # 0.55, 0.5, 1.3).
    data, truth = planted_20k
    planted_hr = truth["churn"]["hazard_ratio_by_tier"]
    hr = cs.churn_model(data, adjust="plan", products="ADV_REPORTS", ci=0.99)
    tiers = hr[hr["group"] == "tier"].set_index("level")
    for tier, value in planted_hr.items():
        if tier == "0":
            assert tiers.loc[tier, "hazard_ratio"] == 1.0
            continue
        assert tiers.loc[tier, "low"] <= value <= tiers.loc[tier, "high"], (tier, value, tiers.loc[tier])
    plans = hr[hr["group"] == "plan"].set_index("level")
    for plan, value in truth["churn"]["hazard_ratio_by_plan"].items():
        if plan != "Basic":
            assert plans.loc[plan, "low"] <= value <= plans.loc[plan, "high"]
    push = hr[hr["group"] == "product held"].iloc[0]
    assert push["low"] <= truth["churn"]["pushed_addon_hazard_ratio"] <= push["high"]
    # the naive comparison is biased in the planted direction: it flatters the tiers with many
    # add-ons (survivors accumulate products), far below both the truth and the corrected interval
    naive = cs.churn_by_tier(data, horizon=None)
    rate = _by_tier(naive, "churn_rate")
    for tier in ("3–4", "5+"):
        ratio = rate[tier] / rate["0"]
        assert ratio < planted_hr[tier] and ratio < tiers.loc[tier, "low"]
    # 5+: the truth is harm (1.3), the naive view shows a benefit
    assert rate["5+"] / rate["0"] < 1 < planted_hr["5+"]


def test_planted_effects_on_the_sample(planted):
    data, truth = planted
    planted_hr = truth["churn"]["hazard_ratio_by_tier"]
    cmp = cs.compare_naive(data, at="365D", adjust="plan", products="ADV_REPORTS")
    wide = cmp.pivot_table(index="tier", columns="method", values=["estimate", "low", "high"], observed=False)
    for tier, value in planted_hr.items():
        if tier == "0":
            continue
        assert wide.loc[tier, ("low", "time-varying")] <= value <= wide.loc[tier, ("high", "time-varying")]
        # naive below the truth for every tier with add-ons (the planted direction)
        assert wide.loc[tier, ("estimate", "naive")] < value
    assert wide.loc["5+", ("estimate", "naive")] < wide.loc["5+", ("low", "time-varying")]
    assert "look better than it is" in cmp.attrs["reading"] and "Tier " in cmp.attrs["reading"]
    assert set(cmp.attrs["methods"]) == {"naive", "landmark", "time-varying"}


def test_large_data_is_sampled_deterministically(planted):
    data, truth = planted
    hr = cs.churn_model(data, adjust="plan", max_customers=1000)
    # 1,000 of 5,000: a fifth of the customers by a hash of their id, about 1,000 of them
    assert hr.attrs["sampled"] == {"customers": truth["customers"], "fraction": 0.2}
    assert 850 <= hr.attrs["customers"] <= 1150
    assert "deterministic sample" in hr.attrs["method"]
    a, _ = outcomes._counting_rows(data, excl=(), flags=[], lag_days=0, cols=[], keep=0.2)
    assert set(a["customer_id"]) == set(outcomes._counting_rows(data, excl=(), flags=[], lag_days=0, cols=[],
                                                                 keep=0.2)[0]["customer_id"])


def test_calendar_landmark_reproduces_truth_exactly(planted):
    data, truth = planted
    lm_truth = truth["churn"]["landmark_12m"]
    # the generator's landmark is the start of landmark_date: the end of the day before
    day_before = pd.Timestamp(lm_truth["landmark_date"]) - pd.Timedelta(days=1)
    lm = cs.landmark(data, at=day_before, horizon=None, cohort=None)
    assert _by_tier(lm, "customers") == lm_truth["customers_by_tier"]
    got = _by_tier(lm, "churn_rate")
    for tier, value in lm_truth["churn_rate_by_tier"].items():
        assert got[tier] == pytest.approx(value, abs=1e-6)
    # the landmark hazard ratios (tier fixed on that day) put 5+ above 3–4, as planted
    hr = _by_tier(lm, "hazard_ratio")
    assert hr["5+"] > hr["3–4"] and hr["0"] == 1.0


def test_landmark_tenure_and_errors(hand):
    # tenure 30 days: a (01-31: X), b (01-31: X), c (03-02: Y), e (02-14: none); d churned at 19 days
    with pytest.warns(ConvergenceWarning, match="no churn"):  # nobody churns after a landmark
        lm = cs.landmark(hand, at="30D", horizon="60D", bins=(1, 2), cohort=None, min_customers=1)
    assert lm["customers"].tolist() == [1, 3, 0]
    assert np.isnan(lm["hazard_ratio"].iloc[1])
    # observable for 60 days after: landmarks on or before 05-01 - all four; b churns 04-15, 75
    # days after its landmark (outside the 60), nobody else churns
    assert lm["observable"].tolist() == [1, 3, 0] and lm["churned"].sum() == 0
    with pytest.raises(ParameterError, match="at="):
        cs.landmark(hand, at=None)
    with pytest.raises(PeriodError, match="no follow-up"):
        cs.landmark(hand, at="2024-06-30")
    with pytest.raises(ParameterError, match="reference"):
        cs.landmark(hand, at="30D", reference="9", bins=(1, 2))
    with pytest.raises(ColumnNotFoundError, match="adjust"):
        cs.landmark(hand, adjust="region")


def test_model_options_and_inestimable_tiers(hand):
    # Without X: d churns holding nothing (tier 0), b holding Y (tier 1); a reaches 2+ (Y and Z)
    # on day 121 and never churns.  Tier 2+ has no churn: not estimable, dropped with a warning.
    # At b's churn (day 105) the risk set is a, c (tier 1), e (tier 0) and b: the one tier-1
    # churn among three tier-1 customers against none of one tier-0 customer, and tier 0's only
    # churn (d, day 19) happens where everyone is in tier 0.  The tier-1 estimate therefore
    # runs off to infinity: also reported as not estimable.
    with pytest.warns(ConvergenceWarning, match="not estimable") as caught:
        hr = cs.churn_model(hand, bins=(1, 2), cohort=None, exclude="X", min_customers=1)
    text = " ".join(str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning))
    assert "tier[2+]: no churn observed" in text and "tier[1]: the estimate diverged" in text
    tiers = hr[hr["group"] == "tier"].set_index("level")
    assert np.isnan(tiers.loc["1", "hazard_ratio"]) and np.isnan(tiers.loc["2+", "hazard_ratio"])
    assert tiers.loc["0", "hazard_ratio"] == 1.0 and hr.attrs["notes"]
    # per additional product: d churns holding X, b holding X and Y, while the customers at risk
    # with them hold fewer - the estimate runs off, and says so
    with pytest.warns(ConvergenceWarning, match="n_products: the estimate diverged"):
        lin = cs.churn_model(hand, bins=(1, 2), cohort=None, count="linear", min_customers=1, robust=False)
    assert lin["term"].tolist() == ["n_products"] and np.isnan(lin["hazard_ratio"].iloc[0])
    for bad in ({"ties": "exact"}, {"count": "log"}, {"cohort": "W"}, {"lag": "soon"}, {"max_customers": 5}):
        with pytest.raises(ParameterError):
            cs.churn_model(hand, **bad)
    with pytest.raises(ParameterError, match="never purchased"):
        cs.churn_model(hand, products="NOPE")


# --------------------------------------------------------------------------------------------
# over-selling


def test_overselling_flags_the_planted_problems(planted):
    data, truth = planted
    flags = cs.overselling(data, adjust="plan", products="ADV_REPORTS", by="channel")
    flagged = flags[flags["flagged"]]
    tier_churn = flagged[flagged["check"] == "tier churn"]
    # planted: churn hazard 0.5 at 3–4 and 1.3 at 5+ (an inverted U): only 5+ is flagged
    assert tier_churn["subject"].tolist() == ["5+"]
    assert tier_churn["compared_with"].tolist() == ["3–4"]
    assert tier_churn["low"].iloc[0] > 1
    pushed = truth["pushed_addon"]["product_id"]
    cancel = flagged[flagged["check"] == "product cancellation"]
    assert cancel["subject"].tolist() == [pushed]  # most buyers cancel it within 90 days
    assert pushed in flagged.loc[flagged["check"] == "product satisfaction", "subject"].tolist()
    assert set(flags["check"]) >= {"tier churn", "tier satisfaction", "product cancellation", "product churn",
                                   "product satisfaction", "segment"}
    assert flags.attrs["flags"] and all(isinstance(e, str) for e in flags.attrs["flags"])
    with pytest.raises(ParameterError, match="method"):
        cs.overselling(data, method="vibes")
    with pytest.raises(ParameterError, match="alpha"):
        cs.overselling(data, alpha=2)
    with pytest.raises(ParameterError, match="checks"):
        cs.overselling(data, checks=["vibes"])


def test_overselling_segment_check():
    # segment A: cross-sell grows (0 → 1 add-on per customer) and CSAT falls (5 → 2) between
    # the two 180-day windows; segment B holds one add-on throughout and stays at 4.
    ref = pd.Timestamp("2024-12-31")
    cust, purch, surv = [], [], []
    for i in range(40):
        seg = "A" if i < 20 else "B"
        cid = f"{seg}{i}"
        cust.append((cid, "2024-01-01", seg))
        when = "2024-08-01" if seg == "A" else "2024-01-02"
        purch.append((cid, "ADD", when))
        surv.append((cid, "2024-05-01", 5 if seg == "A" else 4 - (i % 2)))
        surv.append((cid, "2024-11-01", 2 if seg == "A" else 4 - (i % 2)))
    data = cs.from_frames(
        customers=pd.DataFrame(cust, columns=["customer_id", "signup_date", "segment"]).assign(churn_date=None),
        purchases=pd.DataFrame(purch, columns=["customer_id", "product_id", "purchased_at"]),
        surveys=pd.DataFrame(surv, columns=["customer_id", "responded_at", "score"]).assign(kind="csat"),
        reference_date=ref,
    )
    seg = cs.overselling(data, window="180D", min_customers=10, checks="segment")
    assert set(seg["check"]) == {"segment"}
    seg = seg.set_index("subject")
    assert seg.loc["segment=A", "flagged"] and not seg.loc["segment=B", "flagged"]
    assert seg.loc["segment=A", "estimate"] == pytest.approx(-3.0)  # mean CSAT 5 → 2


# --------------------------------------------------------------------------------------------
# value: upsell and CLTV


def test_upsell_hand(hand):
    # base: 5 signups.  cross-sell: a X, Y, Y again after its cancellation, Z (2 units); b X, Y;
    # c X (later returned), Y; d X = 9 sales, 10 units.  upsell: a's second Z.  return: c's X.
    u = cs.upsell(hand).set_index("kind")
    assert u.loc["base", "sales"] == 5 and u.loc["cross-sell", "sales"] == 9
    assert u.loc["cross-sell", "units"] == 10 and u.loc["upsell", "sales"] == 1
    assert u.loc["return", "units"] == -1
    assert u.loc["cross-sell", "share_of_units"] == pytest.approx(10 / 16)  # 5 + 10 + 1 units sold
    assert u.loc["upsell", "revenue"] == 3.0 and u.loc["cross-sell", "customers"] == 4
    q = cs.upsell(hand, period="Q", by="plan")
    assert q["sales"].sum() == 16 and set(q["plan"]) == {"Basic", "Pro"}
    assert q[q["kind"] == "upsell"]["sales"].sum() == 1


def test_upsell_matches_the_generator(planted):
    data, truth = planted
    u = cs.upsell(data).set_index("kind")
    # every upsell row the generator wrote (base product included) and every return row
    assert u.loc["upsell", "sales"] == truth["upsell"]["observed_rows"]
    assert u.loc["return", "sales"] == truth["returns"]["observed_return_rows"]
    assert u.loc["base", "sales"] == truth["customers"]


def test_cltv_hand(hand):
    # landmark at tenure 0 (end of the signup day), follow-up up to 120 days
    v = cs.cltv_by_tier(hand, at="0D", tau="120D", bins=(1,), min_customers=1)
    # nobody holds an add-on at the end of their signup day: one tier, 5 customers
    assert v["customers"].tolist() == [5, 0]
    # revenue after the landmark day, within 120 days: a X 5 + Y 7 + Y again (day 91) 7 = 19
    # (Z on day 121 is out); b 5 + 7 = 12; c 5 − 5 + 7 = 7; d 5; e 0 → 43.  Months followed:
    # a, c, e 120 days; b 105 (churn); d 19 → 484 days = 15.90 months
    arpu = 43 / (484 / outcomes.DAYS_PER_MONTH)
    assert v["arpu"].iloc[0] == pytest.approx(arpu)
    # survival: d churns at 19 of 5 at risk, b at 105 of 4 → RMST = 19 + 0.8·86 + 0.6·15 = 96.8 days
    life = (19 + 0.8 * 86 + 0.6 * 15) / outcomes.DAYS_PER_MONTH
    assert v["lifetime_months"].iloc[0] == pytest.approx(life)
    half = cs.cltv_by_tier(hand, at="0D", tau="120D", bins=(1,), min_customers=1, margin=0.5)
    assert half["cltv"].iloc[0] == pytest.approx(0.5 * arpu * life)
    assert half["cltv_high"].iloc[0] - half["cltv"].iloc[0] == pytest.approx(
        (v["cltv_high"].iloc[0] - v["cltv"].iloc[0]) / 2)
    with pytest.raises(ColumnNotFoundError, match="revenue"):
        cs.cltv_by_tier(_hand(revenue=False))
    with pytest.raises(ParameterError, match="margin"):
        cs.cltv_by_tier(hand, margin=1.5)


def test_cltv_sample(planted):
    data, _ = planted
    v = cs.cltv_by_tier(data, at="365D", margin=0.7)
    assert (v["cltv_low"] <= v["cltv"]).all() and (v["cltv"] <= v["cltv_high"]).all()
    assert np.allclose(v["cltv"], 0.7 * v["arpu"] * v["lifetime_months"])
    assert (v["lifetime_months"] <= 730 / outcomes.DAYS_PER_MONTH + 1e-9).all()  # restricted to tau
    assert v.attrs["margin"] == 0.7 and "RMST" in v.attrs["method"]


def test_risk_ratio_interval_matches_statsmodels():
    from statsmodels.stats.contingency_tables import Table2x2

    # 10 of 100 against 5 of 100: RR 2, se(log) = √(1/10 − 1/100 + 1/5 − 1/100) = √0.28
    r = risk_ratio_interval(10, 100, 5, 100)
    low, high = Table2x2(np.array([[10, 90], [5, 95]])).riskratio_confint()
    assert r["estimate"] == 2 and r["se_log"] == pytest.approx(np.sqrt(0.28))
    assert (r["low"], r["high"]) == (pytest.approx(low), pytest.approx(high))
    z = risk_ratio_interval(np.array([0, 3]), np.array([10, 10]), 0, 10)
    assert np.isnan(z["estimate"]).all() and np.isnan(z["low"]).all()
    with pytest.raises(ParameterError):
        risk_ratio_interval(5, 4, 1, 10)


def test_capability_and_argument_errors(hand, tmp_path):
    path = tmp_path / "counts.csv"
    pd.DataFrame({"id": ["1", "2"], "n": [1, 3], "years": [1, 2], "left": [0, 1]}).to_csv(path, index=False)
    counts = cs.from_counts(path, customer_id="id", count="n", tenure="years", tenure_unit="years", churn="left",
                            reference_date="2024-12-31")
    with pytest.raises(CapabilityError, match="product identities"):
        cs.churn_model(counts, products="product_1")
    assert cs.churn_by_tier(counts, horizon=None, bins=(1, 2, 3))["churned"].tolist() == [0, 0, 0, 1]
    with pytest.raises(ParameterError, match="duration"):
        cs.survival_by_tier(hand, tau="forever")


# --------------------------------------------------------------------------------------------
# figures


def test_figures(leukaemia, hand):
    import matplotlib.pyplot as plt

    res = cs.survival_by_tier(leukaemia, at=None, bins=(1,), min_customers=1)
    ax = cs.plots.survival_curves(res)
    texts = [t.get_text() for t in ax.texts]
    assert "at risk" in texts and "21" in texts  # the at-risk table is drawn
    assert ax.get_xlabel() == "days since the landmark" and "Kaplan" in ax.get_title()
    assert len(ax.collections) == 2  # one band per tier
    assert any("Log-rank" in t for t in texts)
    plt.close("all")

    ax = cs.plots.tier_bars(cs.churn_by_tier(hand, horizon=None, bins=(1, 2), min_customers=2))
    assert ax.get_ylabel().startswith("churn rate") and len(ax.patches) == 3
    assert ax.patches[0].get_hatch() == "//"  # tier 0 has 1 customer (< 2): hatched
    plt.close("all")
    sat = cs.satisfaction_by_tier(hand, bins=(1, 2), responses="all", tier_at="response", min_customers=1)
    ax = cs.plots.tier_bars(sat, y="nps")
    assert ax.get_ylabel().startswith("NPS")
    plt.close("all")
    with pytest.raises(ValueError, match="y must be"):
        cs.plots.tier_bars(sat, y="joy")

    hr = cs.churn_model(leukaemia, bins=(1,), cohort=None, min_customers=1)
    ax = cs.plots.forest(hr)
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_yticklabels()] == ["tier[0]", "tier[1+]"]
    assert any(t.get_text() == "reference" for t in ax.texts)
    plt.close("all")
    with pytest.raises(ValueError, match="churn_model"):
        cs.plots.forest(sat)

    cmp = cs.compare_naive(leukaemia, bins=(1,), at="0D", horizon=None, cohort=None, min_customers=1)
    ax = cs.plots.naive_vs_corrected(cmp)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("naive") and any(lab.startswith("time-varying") for lab in labels)
    assert ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="compare_naive"):
        cs.plots.naive_vs_corrected(hr)


# --------------------------------------------------------------------------------------------
# real data


@pytest.mark.realdata
def test_bank_churn_by_products_and_overselling():
    path = shared_file("bank_churn", "Churn_Modelling.csv")
    bank = cs.from_counts(path, customer_id="CustomerId", count="NumOfProducts", tenure="Tenure",
                          tenure_unit="years", churn="Exited", reference_date="2019-12-31",
                          attributes=["Geography"])
    res = cs.churn_by_tier(bank, horizon=None, bins=(1, 2, 3, 4))
    rate = _by_tier(res, "churn_rate")
    # published: 1409/5084 = 27.7 %, 348/4590 = 7.6 %, 220/266 = 82.7 %, 60/60 = 100 %
    assert [round(100 * rate[t], 1) for t in ("1", "2", "3", "4+")] == [27.7, 7.6, 82.7, 100.0]
    assert _by_tier(res, "customers") == {"0": 0, "1": 5084, "2": 4590, "3": 266, "4+": 60}
    flags = cs.overselling(bank, method="rate", horizon=None, bins=(1, 2, 3, 4))
    flagged = flags[flags["flagged"]]
    assert flagged["subject"].tolist() == ["3", "4+"]  # over-selling from the third product on
    assert set(flagged["compared_with"]) == {"2"}
    assert flags.attrs["skipped"]["product"].startswith("no product identities")


@pytest.mark.realdata
def test_telco_naive_and_landmark_differ():
    path = shared_file("telco_churn", "WA_Fn-UseC_-Telco-Customer-Churn.csv")
    services = ["PhoneService", "MultipleLines", "OnlineSecurity", "OnlineBackup", "DeviceProtection",
                "TechSupport", "StreamingTV", "StreamingMovies"]
    telco = cs.from_wide(path, customer_id="customerID",
                         products={"InternetService": {"yes": ["DSL", "Fiber optic"]}, **{s: s for s in services}},
                         tenure="tenure", tenure_unit="months", churn="Churn", reference_date="2020-12-31",
                         attributes=["Contract"])
    cmp = cs.compare_naive(telco, bins=(1, 3, 5, 7), at="6M", horizon=None, cohort=None)
    wide = cmp.pivot_table(index="tier", columns="method", values=["estimate", "low", "high"], observed=False)
    # 3–4 services: naively 2.12 times the churn of 1–2 (732/1811 against 404/2123); among the
    # customers still there after six months, with churn counted only after that, the hazard
    # ratio is another figure, and its interval excludes the naive one
    naive = wide.loc["3–4", ("estimate", "naive")]
    assert naive == pytest.approx(732 / 1811 / (404 / 2123), rel=1e-9)
    assert not wide.loc["3–4", ("low", "landmark")] <= naive <= wide.loc["3–4", ("high", "landmark")]
    assert "lies outside" in cmp.attrs["reading"] and "landmark" in cmp.attrs["reading"]
