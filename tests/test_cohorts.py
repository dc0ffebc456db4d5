"""Cohort tables, maturity curves, trend intervals, mix decomposition and Simpson's check.

Hand-computed expectations on small frames (arithmetic in comments), invariants with hypothesis,
a seeded coverage test of the intervals on data drawn from a known model, planted effects of the
sample generator, and the real Online Retail log.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import frames, shared_file
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

import crosssell as cs
import crosssell.plots  # noqa: F401  (cs.plots)
from crosssell import stats
from crosssell.cohorts import _decompose, _simpson
from crosssell.errors import ColumnNotFoundError, ParameterError, PeriodError

# --------------------------------------------------------------------------------------------
# a hand-made data set
#
# customers     signup       churn        plan
#   A           2024-01-10   -            Basic
#   B           2024-02-15   -            Pro
#   C           2024-04-05   -            Basic
#   D           2024-05-20   2024-08-10   Pro
# purchases: A buys CORE (base) at signup, X 01-20, Y 05-02, Z 08-01; B buys X 03-01 and Z 03-10
# (cancelled 06-15); C buys Y 04-20, X 07-07 and returns that X 07-09 (nets to zero: never
# counts); D buys Z 06-01.  Reference date 2024-09-30 (so 2024Q3 is complete).
#
# held at each quarter's end (active = not churned by then):
#   Q1 (04-01): A {X}, B {X, Z}                  -> 3 / 2 = 1.5
#   Q2 (07-01): A {X, Y}, B {X}, C {Y}, D {Z}    -> 5 / 4 = 1.25
#   Q3 (10-01): A {X, Y, Z}, B {X}, C {Y}        -> 5 / 3   (D churned 08-10)
# sold inside each quarter (active = relationship overlaps it):
#   Q1: A {X}, B {X, Z}                          -> 3 / 2 = 1.5
#   Q2: A {Y}, B {}, C {Y}, D {Z}                -> 3 / 4 = 0.75
#   Q3: A {Z}, B {}, C {} (X nets to 0), D {}    -> 1 / 4 = 0.25


@pytest.fixture(scope="module")
def hand():
    customers = [
        ("A", "2024-01-10", None, "Basic"),
        ("B", "2024-02-15", None, "Pro"),
        ("C", "2024-04-05", None, "Basic"),
        ("D", "2024-05-20", "2024-08-10", "Pro"),
    ]
    purchases = [
        ("A", "CORE", "2024-01-10", 1.0, None),
        ("A", "X", "2024-01-20", 1.0, None),
        ("A", "Y", "2024-05-02", 1.0, None),
        ("A", "Z", "2024-08-01", 1.0, None),
        ("B", "X", "2024-03-01", 1.0, None),
        ("B", "Z", "2024-03-10", 1.0, "2024-06-15"),
        ("C", "Y", "2024-04-20", 1.0, None),
        ("C", "X", "2024-07-07", 1.0, None),
        ("C", "X", "2024-07-09", -1.0, None),
        ("D", "Z", "2024-06-01", 1.0, None),
    ]
    products = pd.DataFrame(
        {"product_id": ["CORE", "X", "Y", "Z"], "name": ["Core", "Ex", "Why", "Zed"],
         "category": ["base", "one", "one", "two"], "is_base": [True, False, False, False]}
    )
    return frames(customers, purchases, products=products, reference_date="2024-09-30")


def q(label):
    return pd.Period(label, "Q")


# --------------------------------------------------------------------------------------------
# cohort table


def test_cohort_table_ratio_by_hand(hand):
    tab = cs.cohort_table(hand, cohort="Q", period="Q", min_customers=2)
    got = {(str(r.cohort), str(r.period)): (r.customers, r.numerator, r.ratio) for r in tab.itertuples()}
    # nobody signs up in 2024Q3: that cohort is there, with no customers and no ratio
    assert got.pop(("2024Q3", "2024Q3"))[:2] == (0, 0) and np.isnan(tab["ratio"].iloc[-1])
    # cohort 2024Q1 = A, B; cohort 2024Q2 = C, D (held at each quarter's end, see the header)
    assert got == {
        ("2024Q1", "2024Q1"): (2, 3, 1.5),   # A 1 + B 2
        ("2024Q1", "2024Q2"): (2, 3, 1.5),   # A 2 + B 1 (Z cancelled 06-15)
        ("2024Q1", "2024Q3"): (2, 4, 2.0),   # A 3 + B 1
        ("2024Q2", "2024Q2"): (2, 2, 1.0),   # C 1 + D 1
        ("2024Q2", "2024Q3"): (1, 1, 1.0),   # C 1; D churned
    }
    assert tab["age"].tolist() == [0, 1, 2, 0, 1, 0]
    assert tab["small_segment"].tolist() == [False, False, False, False, True, True]  # 1 < 2, 0 < 2
    # delta-method (t) interval of cell (2024Q1, 2024Q3): values 3 and 1, mean 2, sd √2, se 1,
    # t(0.975, 1 df) = 12.706 -> 2 ± 12.706
    cell = tab[(tab.cohort == q("2024Q1")) & (tab.period == q("2024Q3"))].iloc[0]
    assert cell.ci_low == pytest.approx(2 - sps.t.ppf(0.975, 1) * 1.0)
    assert cell.ci_high == pytest.approx(2 + 12.7062047, rel=1e-7)
    assert tab.attrs["value"] == "ratio" and "held at the period's end" in tab.attrs["definition"]["text"]
    grid = tab.pivot(index="cohort", columns="period", values="ratio")
    assert grid.shape == (3, 3) and np.isnan(grid.loc[q("2024Q2"), q("2024Q1")])


def test_cohort_table_sums_to_the_overall_ratio(hand):
    # every population customer belongs to exactly one cohort, so the cohorts add up to the ratio
    tab = cs.cohort_table(hand, cohort="M", period="Q")
    per = tab.groupby("period")[["numerator", "customers"]].sum()
    ref = cs.cross_sell_ratio(hand, period="Q", basis="held").set_index("period")
    assert per["numerator"].tolist() == ref["numerator"].tolist() == [3, 5, 5]
    assert per["customers"].tolist() == ref["denominator"].tolist() == [2, 4, 3]


def test_cohort_with_no_signups_is_zero_and_nan(hand):
    # monthly cohorts: January (A), February (B), April (C), May (D) — nobody signs up in March
    tab = cs.cohort_table(hand, cohort="M", period="Q")
    march = tab[tab.cohort == pd.Period("2024-03", "M")]
    assert march["period"].astype(str).tolist() == ["2024Q1", "2024Q2", "2024Q3"]  # March is in Q1: age 0
    assert (march["customers"] == 0).all() and march["ratio"].isna().all()
    assert march["small_segment"].all()


def test_cohort_table_other_metrics(hand):
    def table(**kw):  # leave out the empty cohort 2024Q3 (tested above)
        tab = cs.cohort_table(hand, cohort="Q", period="Q", **kw)
        return tab[tab.cohort < q("2024Q3")]

    multi = table(metric="multi_product_rate")
    # at least 2 held: (Q1,Q1) B; (Q1,Q2) A; (Q1,Q3) A; (Q2,Q2) none; (Q2,Q3) none
    assert multi["numerator"].tolist() == [1, 1, 1, 0, 0]
    assert multi["multi_product_rate"].tolist() == [0.5, 0.5, 0.5, 0.0, 0.0]
    low, high = stats.wilson_interval(1, 2)
    assert multi["ci_low"].iloc[0] == pytest.approx(low) and multi["ci_high"].iloc[0] == pytest.approx(high)

    ret = table(metric="retention")
    # cohort 2024Q2 at 2024Q3: C active, D churned -> 1 of 2
    assert ret["customers"].tolist() == [2, 2, 2, 2, 2]
    assert ret["numerator"].tolist() == [2, 2, 2, 2, 1]
    assert ret["retention"].tolist() == [1.0, 1.0, 1.0, 1.0, 0.5]

    active = table(metric="active_customers")
    assert active["active_customers"].tolist() == [2, 2, 2, 2, 1]
    assert "ci_low" not in active.columns

    buyers = table(metric="retention", basis="sold", customers="buyers")
    # bought a counted product in the quarter: Q1: A, B; Q2: A (cohort Q1), C, D (cohort Q2);
    # Q3: A (cohort Q1) — C's X was returned in full, so C is no buyer
    assert buyers["numerator"].tolist() == [2, 1, 1, 2, 0]


def test_cohort_table_by_attribute_and_category(hand):
    tab = cs.cohort_table(hand, cohort="Q", period="Q", by="plan")
    cell = tab[(tab.cohort == q("2024Q2")) & (tab.period == q("2024Q3"))].set_index("plan")
    # cohort 2024Q2 at Q3: C (Basic) holds Y; D (Pro) churned -> Pro has no customers: 0 and NaN
    assert cell.loc["Basic", "customers"] == 1 and cell.loc["Basic", "ratio"] == 1.0
    assert cell.loc["Pro", "customers"] == 0 and np.isnan(cell.loc["Pro", "ratio"])
    cat = cs.cohort_table(hand, cohort="Q", period="Q", by="category")
    assert set(cat["category"]) == {"one", "two"}  # the base product's category never counts
    c = cat[(cat.cohort == q("2024Q1")) & (cat.period == q("2024Q3"))].set_index("category")
    # A holds X, Y (one) and Z (two); B holds X (one): "one" 3 / 2, "two" 1 / 2
    assert c.loc["one", "ratio"] == 1.5 and c.loc["two", "ratio"] == 0.5


# --------------------------------------------------------------------------------------------
# maturity


def test_maturity_by_hand(hand):
    m = cs.maturity(hand, cohort="Q", step="M", min_customers=1)
    curve = m[m.cohort == q("2024Q1")].set_index("age")
    # A (Jan): 1 1 1 1 2 2 2 3 3 held at the end of Jan..Sep; B (Feb): 0 2 2 2 1 1 1 1 at the end
    # of Feb..Sep (X and Z bought in March, Z cancelled in June).  Age 8 is A's September only.
    assert curve["ratio"].tolist() == [0.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 2.0, 3.0]
    assert curve["customers"].tolist() == [2] * 8 + [1]
    # fully observed up to age 6: the cohort's last signup month (March) + 6 = September
    assert curve["complete"].tolist() == [True] * 7 + [False] * 2
    q2 = m[m.cohort == q("2024Q2")].set_index("age")
    # C (Apr): 1 at every age; D (May): 0 at age 0, 1 at ages 1-2, churned in August (age 3)
    assert q2["ratio"].tolist() == [0.5, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert q2["customers"].tolist() == [2, 2, 2, 1, 1, 1]
    pooled = m[m.pooled].set_index("age")
    # age 0: A 1, B 0, C 1, D 0 -> 0.5; age 1: A 1, B 2, C 1, D 1 -> 1.25; age 3: A 1, B 2, C 1 -> 4/3
    assert pooled.loc[0, "ratio"] == 0.5 and pooled.loc[1, "ratio"] == 1.25
    assert pooled.loc[3, "ratio"] == pytest.approx(4 / 3)
    assert pooled.loc[8, "customers"] == 1 and pooled["cohort"].isna().all()
    # nobody signed up in 2024Q3: its ages 0-2 (Jul-Sep) are there with zero customers
    empty = m[m.cohort == q("2024Q3")]
    assert empty["age"].tolist() == [0, 1, 2] and (empty["customers"] == 0).all() and empty["ratio"].isna().all()
    assert int(cs.maturity(hand, max_age=2)["age"].max()) == 2


# --------------------------------------------------------------------------------------------
# trend


def test_trend_matches_cross_sell_ratio_and_hand_interval(hand):
    tr = cs.trend(hand, period="Q")
    ref = cs.cross_sell_ratio(hand, period="Q")
    assert tr["ratio"].tolist() == ref["ratio"].tolist() == [1.5, 0.75, 0.25]
    # Q2 -> Q3 (sold): the same 4 customers, n = (1, 0, 1, 1) then (1, 0, 0, 0): the change's
    # variance is the paired one, var(d)/4 with d = (0, 0, -1, -1): var(d) = (2 - 4·0.25)/3 = 1/3
    row = tr[tr.period == q("2024Q3")].iloc[0]
    assert row.change == pytest.approx(-0.5)
    half = sps.norm.ppf(0.975) * np.sqrt(1 / 3 / 4)
    assert row.change_low == pytest.approx(-0.5 - half) and row.change_high == pytest.approx(-0.5 + half)
    assert bool(row.change_significant) is False  # -0.5 ± 0.566 includes 0
    assert pd.isna(tr["change_significant"].iloc[0]) and np.isnan(tr["change"].iloc[0])
    assert "delta method" in tr.attrs["interval_method"] and "covariance" in tr.attrs["change_method"]


def test_trend_held_partial_overlap_by_hand(hand):
    tr = cs.trend(hand, period="Q", basis="held")
    row = tr[tr.period == q("2024Q3")].iloc[0]
    # Q2: (A2, B1, C1, D1): N 4, Σ 5, Σ² 7 -> mean 1.25, var (7 - 25/4)/3 = 0.25, se² = 0.0625
    # Q3: (A3, B1, C1):     N 3, Σ 5, Σ² 11 -> mean 5/3, var (11 - 25/3)/2 = 4/3, se² = 4/9
    # shared A, B, C: Σy1 = 4, Σy2 = 5, Σy1y2 = 6 + 1 + 1 = 8
    # cross = 8 - 1.25·5 - (5/3)·4 + 1.25·(5/3)·3 = 4/3; cov = (4/3) / √(4·3·3·2) = (4/3)/√72
    var = 0.0625 + 4 / 9 - 2 * (4 / 3) / np.sqrt(72)
    assert row.change == pytest.approx(5 / 3 - 1.25)
    assert row.change_high - row.change == pytest.approx(sps.norm.ppf(0.975) * np.sqrt(var))


def test_trend_target_and_groups(hand):
    tr = cs.trend(hand, period="Q", target=1.0, by="plan", min_customers=2)
    basic = tr[tr.plan == "Basic"].set_index("period")
    # Basic = A (and C from Q2): sold Q1 A{X} 1/1; Q2 A{Y}, C{Y} 2/2; Q3 A{Z} 1/2
    assert basic["ratio"].tolist() == [1.0, 1.0, 0.5]
    assert basic["gap_to_target"].tolist() == [0.0, 0.0, 0.5]
    assert basic["small_segment"].tolist() == [True, False, False]
    assert set(tr["vs_target"].dropna()) <= {"above", "below", "within interval"}
    # one customer in Q1: no interval, so no verdict against the target
    assert basic.loc[q("2024Q1"), "vs_target"] is None


def test_trend_by_tenure_band_and_empty_groups(hand):
    tr = cs.trend(hand, period="Q", basis="held", by="tenure_band")
    assert list(tr["tenure_band"].cat.categories) == ["0-3m", "3-6m", "6-12m", "12-24m", "24m+"]
    q1 = tr[tr.period == q("2024Q1")].set_index("tenure_band")
    # at 2024-03-31: A has 2 full months (Jan 10 -> Mar 10), B 1: both 0-3m
    assert q1.loc["0-3m", "customers"] == 2 and q1.loc["0-3m", "ratio"] == 1.5
    assert q1.loc["24m+", "customers"] == 0 and np.isnan(q1.loc["24m+", "ratio"])


# --------------------------------------------------------------------------------------------
# decomposition


def test_decomposition_by_hand(hand):
    parts = cs.decompose_change(hand, start="2024Q2", end="2024Q3", basis="held")
    s = parts.attrs["summary"]
    # tenure at 06-30: A 5 m, B 4 m (3-6m); C 2 m, D 1 m (0-3m).  At 09-30: A 8, B 7 (6-12m), C 5 (3-6m)
    # Q2: 0-3m C1 D1 -> share .5, ratio 1; 3-6m A2 B1 -> share .5, ratio 1.5
    # Q3: 3-6m C1 -> share 1/3, ratio 1; 6-12m A3 B1 -> share 2/3, ratio 2
    # mix = (0-.5)·1 + (1/3-.5)·1.5 + (2/3-0)·2 = -.5 - .25 + 4/3 = 7/12 (new bands take their own ratio)
    # within = .5·(1-1.5) = -.25; interaction = (1/3-.5)·(1-1.5) = 1/12; total 5/3 - 5/4 = 5/12
    assert s["mix"] == pytest.approx(7 / 12) and s["within"] == pytest.approx(-0.25)
    assert s["interaction"] == pytest.approx(1 / 12) and s["change"] == pytest.approx(5 / 12)
    band = parts.set_index("tenure_band")
    assert band.loc["3-6m", "mix"] == pytest.approx(-0.25) and band.loc["24m+", "contribution"] == 0
    shap = cs.decompose_change(hand, start="2024Q2", end="2024Q3", basis="held", method="shapley").attrs["summary"]
    # midpoint weights: mix = -.5·1 + (-1/6)·1.25 + (2/3)·2 = .625; within = -.5·(.5+1/3)/2 = -5/24
    assert shap["mix"] == pytest.approx(0.625) and shap["within"] == pytest.approx(-5 / 24)
    assert shap["interaction"] == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 500), st.floats(0, 8), st.integers(0, 500), st.floats(0, 8)),
        min_size=1, max_size=12,
    ),
    st.sampled_from(["three-way", "shapley"]),
)
def test_decomposition_sums_exactly(rows, method):
    # (customers, products per customer) of each group in both periods
    g = pd.DataFrame(rows, columns=["customers_start", "r0", "customers_end", "r1"])
    g["numerator_start"] = np.round(g["customers_start"] * g.pop("r0"))
    g["numerator_end"] = np.round(g["customers_end"] * g.pop("r1"))
    out, s = _decompose(g, method)
    if g["customers_start"].sum() == 0 or g["customers_end"].sum() == 0:
        assert np.isnan(s["change"])
        return
    assert abs(s["mix"] + s["within"] + s["interaction"] - s["change"]) < 1e-12
    assert abs(out["contribution"].sum() - s["change"]) < 1e-12
    # a group empty in both periods contributes nothing
    assert (out.loc[(g.customers_start == 0) & (g.customers_end == 0), "contribution"] == 0).all()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 200), st.floats(0, 5)), min_size=2, max_size=8), st.floats(0.2, 5))
def test_decomposition_special_cases(groups, factor):
    # the same mix in both periods -> no mix effect and no interaction
    c = np.array([g[0] for g in groups])
    r0 = np.array([g[1] for g in groups])
    g = pd.DataFrame({"customers_start": c, "numerator_start": r0 * c, "customers_end": 3 * c,
                      "numerator_end": 3 * c * r0 * factor})
    _, s = _decompose(g)
    assert abs(s["mix"]) < 1e-12 and abs(s["interaction"]) < 1e-12
    # the same group ratios in both periods -> everything is mix
    h = pd.DataFrame({"customers_start": c, "numerator_start": r0 * c, "customers_end": c[::-1],
                      "numerator_end": r0 * c[::-1]})
    _, s = _decompose(h)
    assert abs(s["within"]) < 1e-12 and abs(s["interaction"]) < 1e-12


# --------------------------------------------------------------------------------------------
# Simpson's paradox


def test_simpson_kidney_stones():
    # Charig et al. (1986), BMJ 292:879, as used in every textbook account of the paradox:
    # treatment A succeeds in 81/87 small and 192/263 large stones (273/350 = 78%), B in 234/270
    # and 55/80 (289/350 = 83%): B is better pooled and worse in both strata.
    frame = pd.DataFrame({
        "treatment": ["A", "A", "B", "B"], "size": ["small", "large", "small", "large"],
        "success": [81, 192, 234, 55], "patients": [87, 263, 270, 80],
    })
    out = cs.simpson_check(frame, compare="treatment", strata="size", numerator="success",
                           denominator="patients", a="A", b="B")
    s = out.attrs["summary"]
    assert s["paradox"] is True
    assert s["pooled_difference"] == pytest.approx(289 / 350 - 273 / 350)
    d = out.set_index("size")["difference"]
    assert d["small"] == pytest.approx(234 / 270 - 81 / 87) and d["large"] == pytest.approx(55 / 80 - 192 / 263)
    assert sorted(s["opposing_strata"]) == ["size=large", "size=small"]
    assert "Simpson's paradox" in s["message"]
    # a and b may be left out when there are two values; swapping them keeps the verdict
    swapped = cs.simpson_check(frame, compare="treatment", strata="size", numerator="success",
                               denominator="patients", a="B", b="A").attrs["summary"]
    assert swapped["paradox"] is True and swapped["pooled_difference"] == pytest.approx(-s["pooled_difference"])


def test_simpson_on_data_by_hand():
    # Q1: Basic b1..b4 buy 1 product each (1.0), Pro p1 buys 4 (4.0): pooled 8/5 = 1.6
    # Q2: b2..b4 churned in March; b1 buys nothing (0.0); p1 buys 3, p2 and p3 (new) 3 each (3.0):
    # pooled 9/4 = 2.25 — up, while both plans went down.
    cust = [(f"b{i}", "2024-01-05", "2024-03-15" if i > 1 else None, "Basic") for i in range(1, 5)]
    cust += [("p1", "2024-01-05", None, "Pro"), ("p2", "2024-04-05", None, "Pro"), ("p3", "2024-04-05", None, "Pro")]
    buys = [(f"b{i}", "P1", "2024-02-01", 1.0, None) for i in range(1, 5)]
    buys += [("p1", f"P{j}", "2024-02-01", 1.0, None) for j in range(1, 5)]
    buys += [("p1", f"P{j}", "2024-05-01", 1.0, None) for j in range(5, 8)]
    buys += [(p, f"P{j}", "2024-05-01", 1.0, None) for p in ("p2", "p3") for j in range(1, 4)]
    data = frames(cust, buys, reference_date="2024-06-30")
    out = cs.simpson_check(data, compare="period", a="2024Q1", b="2024Q2", period="Q", strata="plan")
    s = out.attrs["summary"]
    assert (s["pooled_a"], s["pooled_b"]) == (1.6, 2.25)
    assert out.set_index("plan")["difference"].to_dict() == {"Basic": -1.0, "Pro": -1.0}
    assert s["paradox"] is True and s["strata_oppose"] == 2
    # standardised: both strata fell by 1, weighted by 5 + 4 customers -> -1
    assert s["adjusted_difference"] == pytest.approx(-1.0)
    # the same comparison from a cross_sell_ratio frame gives the same verdict
    frame = cs.cross_sell_ratio(data, period="Q", by="plan")
    again = cs.simpson_check(frame, compare="period", strata="plan", a="2024Q1", b="2024Q2").attrs["summary"]
    assert again["paradox"] is True and again["pooled_b"] == 2.25
    # segments: Basic vs Pro within tenure bands, over all the data
    seg = cs.simpson_check(data, compare="plan", strata="tenure_band")
    assert seg.attrs["summary"]["a"] == "Basic" and seg.attrs["summary"]["b"] == "Pro"


def test_simpson_small_opposing_strata_are_no_reversal():
    # b is higher pooled; two small strata go down a little, one big stratum goes up a lot:
    # most strata oppose (2 of 3) but the size-weighted difference agrees with the pooled one
    frame = pd.DataFrame({
        "g": ["a", "b"] * 3, "s": ["big", "big", "s1", "s1", "s2", "s2"],
        "numerator": [100, 200, 10, 9, 10, 9], "customers": [100, 100, 10, 10, 10, 10],
    })
    out, s = _simpson(frame, compare="g", strata=["s"], a="a", b="b", numerator="numerator",
                      denominator="customers", min_customers=5)
    # pooled a 120/120 = 1, b 218/120; weighted: (200·1 + 20·(-0.1) + 20·(-0.1)) / 240 = 196/240
    assert s["majority_opposes"] is True and s["paradox"] is False
    assert s["adjusted_difference"] == pytest.approx(196 / 240)
    assert s["message"].startswith("no reversal overall") and "s1" in s["message"]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 100), st.integers(0, 300), st.integers(1, 100), st.integers(0, 300)),
                min_size=1, max_size=6))
def test_simpson_is_symmetric(strata):
    rows = [("a", i, na, ca) for i, (ca, na, _, _) in enumerate(strata)]
    rows += [("b", i, nb, cb) for i, (_, _, cb, nb) in enumerate(strata)]
    frame = pd.DataFrame(rows, columns=["g", "s", "numerator", "customers"])
    kw = dict(compare="g", strata=["s"], numerator="numerator", denominator="customers", min_customers=0)
    out, s = _simpson(frame, a="a", b="b", **kw)
    back, t = _simpson(frame, a="b", b="a", **kw)
    # swapping the sides negates every difference and keeps the verdict
    assert t["paradox"] == s["paradox"] and t["majority_opposes"] == s["majority_opposes"]
    assert t["pooled_difference"] == pytest.approx(-s["pooled_difference"], abs=1e-12)
    assert back["difference"].to_numpy() == pytest.approx(-out["difference"].to_numpy(), abs=1e-12)
    # a paradox needs the strata to point, on balance, the other way
    if s["paradox"]:
        assert s["strata_oppose"] > s["strata_agree"]
        assert np.sign(s["adjusted_difference"]) == -np.sign(s["pooled_difference"])


def test_simpson_no_reversal_and_not_comparable():
    frame = pd.DataFrame({"g": ["a", "b", "a", "b", "b"], "s": [1, 1, 2, 2, 3],
                          "numerator": [1, 2, 1, 3, 5], "customers": [10, 10, 10, 10, 10]})
    out, s = _simpson(frame, compare="g", strata=["s"], a="a", b="b", numerator="numerator",
                      denominator="customers", min_customers=5)
    assert s["paradox"] is False and s["strata_agree"] == 2 and s["strata_not_comparable"] == 1
    assert out["direction"].tolist() == ["b higher", "b higher", "not comparable"]
    assert pd.isna(out["agrees_with_pooled"].iloc[2])


# --------------------------------------------------------------------------------------------
# the change interval: a statistic appended to crosssell.stats


def test_overlap_difference_reduces_to_known_cases():
    rng = np.random.default_rng(3)
    y1, y2 = rng.poisson(2, 40).astype(float), rng.poisson(3, 55).astype(float)
    # disjoint groups: exactly difference_interval
    m1 = stats.mean_from_moments(n=40, sum_y=y1.sum(), sum_yy=(y1**2).sum())
    m2 = stats.mean_from_moments(n=55, sum_y=y2.sum(), sum_yy=(y2**2).sum())
    ind = stats.difference_interval(m1["estimate"], m1["se"], m2["estimate"], m2["se"])
    got = stats.overlap_difference_interval(n1=40, sum_y1=y1.sum(), sum_yy1=(y1**2).sum(), n2=55,
                                            sum_y2=y2.sum(), sum_yy2=(y2**2).sum(), n_both=0, sum_y1_both=0,
                                            sum_y2_both=0, sum_y1y2_both=0)
    assert got["se"] == pytest.approx(ind["se"], rel=1e-12) and got["low"] == pytest.approx(ind["low"])
    # the same customers in both: the paired standard error sd(d)/√n
    z = y1 + rng.poisson(1, 40)
    paired = stats.overlap_difference_interval(n1=40, sum_y1=y1.sum(), sum_yy1=(y1**2).sum(), n2=40,
                                               sum_y2=z.sum(), sum_yy2=(z**2).sum(), n_both=40,
                                               sum_y1_both=y1.sum(), sum_y2_both=z.sum(),
                                               sum_y1y2_both=(y1 * z).sum())
    assert paired["se"] == pytest.approx((z - y1).std(ddof=1) / np.sqrt(40), rel=1e-12)
    with pytest.raises(ParameterError, match="n_both"):
        stats.overlap_difference_interval(n1=3, sum_y1=1, sum_yy1=1, n2=3, sum_y2=1, sum_yy2=1, n_both=4,
                                          sum_y1_both=1, sum_y2_both=1, sum_y1y2_both=1)


def test_change_interval_agrees_with_customer_bootstrap(sample_data):
    # independent reference: resample customers (with both periods' values) and recompute the
    # change of the ratio; the delta-method standard error must agree within 10%
    t, frame, _ = cs.customer_products(sample_data, period="Q", basis="held", start="2024-07-01")
    rows = t.to_pandas()
    wide = rows.pivot_table(index="customer_id", columns="__pidx", values="n", aggfunc="sum")
    arr = np.column_stack([wide[0].notna(), wide[0].fillna(0), wide[1].notna(), wide[1].fillna(0)]).astype(float)

    def change(a):
        return a[:, 3].sum() / a[:, 2].sum() - a[:, 1].sum() / a[:, 0].sum()

    boot = stats.bootstrap_interval(arr, change, n_boot=800, seed=11)
    tr = cs.trend(sample_data, period="Q", basis="held", start="2024-07-01")
    row = tr.iloc[1]
    assert row.change == pytest.approx(boot["estimate"], rel=1e-12)
    se = (row.change_high - row.change_low) / (2 * sps.norm.ppf(0.975))
    assert se == pytest.approx(boot["se"], rel=0.10)
    # and treating the quarters as independent would about double it (it is 2.1 times here)
    naive = stats.difference_interval(tr["ratio"].iloc[0], tr["se"].iloc[0], tr["ratio"].iloc[1], tr["se"].iloc[1])
    assert naive["se"] > 1.6 * se


# --------------------------------------------------------------------------------------------
# coverage on repeated draws from a known model


def test_interval_coverage_on_a_known_model():
    # 300 independent small "companies" of 50 customers, stacked as a segment so that one call
    # computes all their intervals.  Each customer holds each of 5 add-ons with p = 0.3 by the end
    # of 2024Q1, and buys each one not yet held with q = 0.25 in Q2, so the true ratios are
    # 5·0.3 = 1.5 and 1.5 + 3.5·0.25 = 2.375, the true change 0.875, and a customer's two counts
    # are strongly correlated.
    rng = np.random.default_rng(20240601)
    reps, n, p, qq = 300, 50, 0.3, 0.25
    q1_days = pd.date_range("2024-01-01", "2024-03-31")
    q2_days = pd.date_range("2024-04-01", "2024-06-30")
    ids = [f"r{r}c{i}" for r in range(reps) for i in range(n)]
    held1 = rng.random((len(ids), 5)) < p
    bought2 = (rng.random((len(ids), 5)) < qq) & ~held1
    ci, pj = np.nonzero(held1)
    c2, p2 = np.nonzero(bought2)
    purchases = pd.DataFrame({
        "customer_id": np.array(ids)[np.r_[ci, c2]],
        "product_id": np.array([f"P{j}" for j in range(5)])[np.r_[pj, p2]],
        "purchased_at": np.r_[rng.choice(q1_days, ci.size), rng.choice(q2_days, c2.size)],
    })
    customers = pd.DataFrame({"customer_id": ids, "signup_date": "2023-12-01",
                              "company": [i // n for i in range(len(ids))]})
    data = cs.from_frames(customers=customers, purchases=purchases, reference_date="2024-06-30")
    tr = cs.trend(data, period="Q", basis="held", by="company", start="2024-01-01")
    q1, q2 = tr[tr.period == q("2024Q1")], tr[tr.period == q("2024Q2")]
    cover1 = ((q1.ci_low <= 1.5) & (1.5 <= q1.ci_high)).mean()
    cover2 = ((q2.ci_low <= 2.375) & (2.375 <= q2.ci_high)).mean()
    cover_change = ((q2.change_low <= 0.875) & (0.875 <= q2.change_high)).mean()
    # binomial sd of a 95% coverage over 300 draws is 1.3 points: allow about ±2.5 sd
    for cover in (cover1, cover2, cover_change):
        assert 0.915 <= cover <= 0.985, (cover1, cover2, cover_change)
    # ignoring that the quarters share customers would make the change's interval far too wide
    naive = stats.difference_interval(q1["ratio"].to_numpy(), q1["se"].to_numpy(), q2["ratio"].to_numpy(),
                                      q2["se"].to_numpy())
    assert ((naive["low"] <= 0.875) & (0.875 <= naive["high"])).mean() > 0.995


# --------------------------------------------------------------------------------------------
# the sample's planted effects


def test_sample_cohort_sizes_match_truth(sample_data, truth):
    ret = cs.cohort_table(sample_data, cohort="Q", period="Q", metric="retention")
    last = ret[ret.period == ret.period.max()].set_index(ret[ret.period == ret.period.max()].cohort.astype(str))
    # by the last period every cohort has fully signed up: its "customers" are its signups
    assert last["customers"].to_dict() == truth["cohorts"]["signups_by_quarter"]


def test_sample_growing_cohorts_are_a_negative_mix_effect(sample_data):
    # each quarter a new, bigger cohort arrives with few add-ons: by cohort, the mix effect of
    # every quarter-on-quarter change of 2024 is negative while the cohorts' own ratios rise
    for start, end in (("2023Q4", "2024Q1"), ("2024Q1", "2024Q2"), ("2024Q2", "2024Q3"), ("2024Q3", "2024Q4")):
        s = cs.decompose_change(sample_data, start=start, end=end, by="cohort").attrs["summary"]
        assert s["mix"] < 0 < s["within"], (start, end, s)
        assert abs(s["mix"] + s["within"] + s["interaction"] - s["change"]) < 1e-12


def test_sample_change_is_tenure_mix_not_calendar(sample_data):
    # the generator plants adoption by tenure and plan, and nothing by calendar time: within
    # monthly tenure bands the held ratio hardly moves in a year, and the change is the base aging
    parts = cs.decompose_change(sample_data, start="2023Q4", end="2024Q4", by="tenure_band", basis="held",
                                tenure_bands=range(1, 36))
    s = parts.attrs["summary"]
    assert s["change"] > 0.25
    assert s["mix"] > 0.85 * s["change"]
    assert abs(s["within"]) < 0.1 * s["change"]


def test_sample_maturity_rises_with_tenure(sample_data):
    m = cs.maturity(sample_data, cohort="Y", step="M", max_age=24)
    pooled = m[m.pooled].set_index("age")
    # adoption rises with tenure (truth["adoption"]["tenure_multiplier"]): held add-ons at 18
    # months are well above those at 6, which are above those at 1, intervals apart
    assert pooled.loc[18, "ci_low"] > pooled.loc[6, "ci_high"] > 0
    assert pooled.loc[6, "ci_low"] > pooled.loc[1, "ci_high"]
    assert pooled.loc[0, "ratio"] == 0  # add-ons are bought from the month after signup
    # cohorts compared at the same age agree (no calendar effect planted): 2022 vs 2023 at 12 m
    at12 = m[(~m.pooled) & (m.age == 12)].set_index(m[(~m.pooled) & (m.age == 12)].cohort.astype(str))
    d = stats.difference_interval(at12.loc["2022", "ratio"], at12.loc["2022", "se"], at12.loc["2023", "ratio"],
                                  at12.loc["2023", "se"])
    assert d["low"] < 0 < d["high"]


# --------------------------------------------------------------------------------------------
# real data: the UCI Online Retail log


@pytest.mark.realdata
@pytest.mark.slow
def test_online_retail_cohorts():
    path = shared_file("online_retail", "OnlineRetail.csv.gz")
    data = cs.from_transactions(
        path, customer_id="CustomerID", product_id="StockCode", timestamp="InvoiceDate",
        quantity="Quantity", price="UnitPrice", invoice="InvoiceNo",
    )
    # the README of ../shared/data: 135,080 lines lack a CustomerID (excluded and counted)
    assert data.excluded()["purchases.no_customer_id"] == 135_080

    # an independent reference in plain pandas: cohort = month of the customer's first line;
    # a buyer in a month has a (customer, stock code) whose net quantity is positive that month
    # and overall (returns net against sales)
    raw = pd.read_csv(path, usecols=["StockCode", "Quantity", "InvoiceDate", "CustomerID"],
                      dtype={"StockCode": str, "CustomerID": str})
    lines = raw.dropna(subset=["CustomerID"]).assign(month=lambda f: pd.to_datetime(f.InvoiceDate).dt.to_period("M"))
    first = lines.groupby("CustomerID")["month"].min()
    kept = lines.groupby(["CustomerID", "StockCode"]).Quantity.sum().loc[lambda x: x > 0].index
    sold = lines.groupby(["CustomerID", "StockCode", "month"]).Quantity.sum().loc[lambda x: x > 0].reset_index()
    sold = sold[pd.MultiIndex.from_frame(sold[["CustomerID", "StockCode"]]).isin(kept)]
    sold["cohort"] = sold["CustomerID"].map(first)
    ref = sold.groupby(["cohort", "month"]).CustomerID.nunique()
    size = first.value_counts()

    ret = cs.cohort_table(data, cohort="M", period="M", basis="sold", customers="buyers", metric="retention")
    got = ret.set_index(["cohort", "period"])
    assert got["customers"].to_dict() == {k: size.get(k[0], 0) for k in got.index}
    assert got["numerator"].to_dict() == {k: int(ref.get(k, 0)) for k in got.index}
    dec = got.loc[pd.Period("2010-12", "M")]
    # 948 customers first seen in December 2010; 332 of them buy again in January (35%)
    assert dec["customers"].iloc[0] == 948 and dec["retention"].iloc[1] == pytest.approx(332 / 948)

    tr = cs.trend(data, period="M", basis="sold", customers="buyers")
    month = sold.groupby("month").agg(pairs=("StockCode", "size"), buyers=("CustomerID", "nunique"))
    assert tr["ratio"].to_numpy() == pytest.approx((month["pairs"] / month["buyers"]).to_numpy(), rel=1e-12)
    s = cs.decompose_change(data, period="M", start="2011-10", end="2011-11", by="cohort", cohort="Q",
                            basis="sold", customers="buyers").attrs["summary"]
    assert abs(s["mix"] + s["within"] + s["interaction"] - s["change"]) < 1e-12
    m = cs.maturity(data, cohort="Q", step="M", basis="sold", customers="buyers")
    assert m["age"].max() == 11  # December 2010 to November 2011, the last complete month


# --------------------------------------------------------------------------------------------
# bad input


def test_bad_periods(hand):
    with pytest.raises(PeriodError, match="unknown period code 'W'"):
        cs.cohort_table(hand, period="W")
    with pytest.raises(PeriodError, match="unknown period code"):
        cs.cohort_table(hand, cohort="week")
    with pytest.raises(PeriodError, match="needs a period code"):
        cs.trend(hand, period=None)
    with pytest.raises(PeriodError, match="needs a period code"):
        cs.maturity(hand, step=None)
    with pytest.raises(PeriodError, match="after end"):
        cs.trend(hand, start="2024-06-01", end="2024-02-01")
    with pytest.raises(PeriodError, match="after the reference date"):
        cs.trend(hand, start="2030-01-01")
    with pytest.raises(PeriodError, match="start 2024Q3 is after end 2024Q2"):
        cs.decompose_change(hand, start="2024Q3", end="2024Q2")
    with pytest.raises(PeriodError, match="same period"):
        cs.decompose_change(hand, start="2024Q2", end="2024-06-30")
    with pytest.raises(PeriodError, match="outside the data, which covers 2024Q1 to 2024Q3"):
        cs.decompose_change(hand, start="2023Q1", end="2024Q2")
    with pytest.raises(PeriodError, match="not a period or a date"):
        cs.decompose_change(hand, start="soon", end="2024Q2")
    with pytest.raises(PeriodError, match="period='M'"):
        cs.decompose_change(hand, start=pd.Period("2024Q1"), end="2024-05", period="M")
    with pytest.raises(PeriodError, match="compare='period' needs period"):
        cs.simpson_check(hand, compare="period", strata="plan", a="2024Q1", b="2024Q2")
    with pytest.raises(PeriodError, match="outside the data"):
        cs.simpson_check(hand, compare="period", strata="plan", a="2020Q1", b="2024Q2", period="Q")


def test_unknown_columns_name_the_available_ones(hand):
    with pytest.raises(ColumnNotFoundError, match=r"'region'.*available: plan, name, category, tenure_band, cohort"):
        cs.trend(hand, by="region")
    with pytest.raises(ColumnNotFoundError, match="did you mean 'plan'"):
        cs.cohort_table(hand, by="plna")
    with pytest.raises(ColumnNotFoundError, match="tenure_band"):
        cs.decompose_change(hand, start="2024Q1", end="2024Q2", by="tenure")
    with pytest.raises(ColumnNotFoundError, match="the frame has no column 'size'"):
        cs.simpson_check(pd.DataFrame({"g": [1], "numerator": [1], "customers": [1]}), compare="g", strata="size")


def test_bad_parameters(hand):
    with pytest.raises(ParameterError, match="metric must be one of"):
        cs.cohort_table(hand, metric="arpu")
    with pytest.raises(ParameterError, match="always 1"):
        cs.cohort_table(hand, metric="retention", customers="all")
    with pytest.raises(ParameterError, match="already the table's rows"):
        cs.cohort_table(hand, by="cohort")
    with pytest.raises(ParameterError, match="counts customers"):
        cs.cohort_table(hand, metric="retention", by="category")
    with pytest.raises(ParameterError, match="twice"):
        cs.trend(hand, by=["plan", "plan"])
    with pytest.raises(ParameterError, match="min_customers"):
        cs.trend(hand, min_customers=-1)
    with pytest.raises(ParameterError, match="target must be a number"):
        cs.trend(hand, target="high")
    with pytest.raises(ParameterError, match="tenure_bands must be increasing"):
        cs.trend(hand, by="tenure_band", tenure_bands=(6, 3))
    with pytest.raises(ParameterError, match="tenure_bands must be month edges"):
        cs.trend(hand, tenure_bands="soon")
    with pytest.raises(ParameterError, match="whole months"):
        cs.trend(hand, tenure_bands=(1.5, 6))
    with pytest.raises(ParameterError, match="max_age"):
        cs.maturity(hand, max_age=-2)
    with pytest.raises(ParameterError, match="leave cohort and tenure_band out"):
        cs.maturity(hand, by="tenure_band")
    with pytest.raises(ParameterError, match="catalog column"):
        cs.decompose_change(hand, start="2024Q1", end="2024Q2", by="category")
    with pytest.raises(ParameterError, match="needs groups"):
        cs.decompose_change(hand, start="2024Q1", end="2024Q2", by=None)
    with pytest.raises(ParameterError, match="method must be one of"):
        cs.decompose_change(hand, start="2024Q1", end="2024Q2", method="oaxaca")
    with pytest.raises(ParameterError, match="basis must be one of"):
        cs.trend(hand, basis="owned")


def test_more_bad_input(hand):
    with pytest.raises(ParameterError, match="must name columns"):
        cs.trend(hand, by=["plan", 3])
    early = frames([("A", "2024-01-10", None, "Basic")], [("A", "X", "2024-01-12", 1.0, None)],
                   reference_date="2024-01-20")
    with pytest.raises(PeriodError, match="no complete month before the reference date 2024-01-20"):
        cs.maturity(early)
    with pytest.raises(ColumnNotFoundError, match="missing columns: cohort, period, ratio"):
        cs.plots.cohort_heatmap(pd.DataFrame({"a": [1]}))
    with pytest.raises(ColumnNotFoundError, match="missing columns: ci_low, ci_high"):
        cs.plots.trend(pd.DataFrame({"period": [q("2024Q1")], "ratio": [1.0]}))
    with pytest.raises(ParameterError, match="split by plan"):
        cs.plots.maturity_curves(cs.maturity(hand, by="plan"))


def test_bad_simpson_input(hand):
    frame = pd.DataFrame({"g": ["a", "b", "c"], "s": [1, 1, 1], "numerator": [1, 2, 3], "customers": [5, 5, 5]})
    with pytest.raises(ParameterError, match="name the two values of 'g'.*a, b, c"):
        cs.simpson_check(frame, compare="g", strata="s")
    with pytest.raises(ParameterError, match="b='z' is not a value of 'g'"):
        cs.simpson_check(frame, compare="g", strata="s", a="a", b="z")
    with pytest.raises(ParameterError, match="same value"):
        cs.simpson_check(frame, compare="g", strata="s", a="a", b="a")
    with pytest.raises(ParameterError, match="both compared and a stratum"):
        cs.simpson_check(frame, compare="g", strata=["g"])
    with pytest.raises(ParameterError, match="at least one column"):
        cs.simpson_check(frame, compare="g", strata=[])
    with pytest.raises(ParameterError, match="DataFrame or CrossSellData"):
        cs.simpson_check([1, 2], compare="g", strata="s")
    with pytest.raises(ParameterError, match="name a frame's columns"):
        cs.simpson_check(hand, compare="plan", strata="tenure_band", numerator="x")
    with pytest.raises(ParameterError, match="needs the two periods"):
        cs.simpson_check(hand, compare="period", strata="plan", period="Q", a="2024Q1")
    with pytest.raises(ParameterError, match="same period"):
        cs.simpson_check(hand, compare="period", strata="plan", period="Q", a="2024Q1", b="2024-02-01")
    with pytest.raises(ParameterError, match="catalog column"):
        cs.simpson_check(hand, compare="plan", strata="category")


def test_cross_sell_ratio_flags_small_segments(hand):
    res = cs.cross_sell_ratio(hand, period="Q", by="plan", min_customers=2)
    # Basic: A (Q1), A + C (Q2, Q3); Pro: B (Q1), B + D (Q2, Q3) -> Q1 groups have 1 customer
    assert res["small_segment"].tolist() == [True, True, False, False, False, False]
    assert res.attrs["min_customers"] == 2
    assert "small_segment" not in cs.cross_sell_ratio(hand, period="Q").columns
    with pytest.raises(ParameterError, match="min_customers"):
        cs.cross_sell_ratio(hand, min_customers=-3)


def test_missing_attribute_values_form_their_own_group():
    # customer C has no plan: it is counted in a "(missing)" group, not dropped
    cust = [("A", "2024-01-01", None, "Basic"), ("B", "2024-01-01", None, "Pro"), ("C", "2024-01-01", None, None)]
    buys = [("A", "X", "2024-01-05", 1.0, None), ("C", "X", "2024-01-05", 1.0, None), ("C", "Y", "2024-01-06", 1.0, None)]
    data = frames(cust, buys, reference_date="2024-03-31")
    tr = cs.trend(data, period="Q", by="plan").set_index("plan")
    assert tr.loc["(missing)", "customers"] == 1 and tr.loc["(missing)", "numerator"] == 2
    assert tr["customers"].sum() == 3


# --------------------------------------------------------------------------------------------
# figures: checked through their artists


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_cohort_heatmap_artists(hand):
    tab = cs.cohort_table(hand, cohort="Q", period="Q", min_customers=2)
    ax = cs.plots.cohort_heatmap(tab)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2024Q1", "2024Q2", "2024Q3"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["2024Q1", "2024Q2", "2024Q3"]  # 2024Q3 empty
    assert ax.get_ylabel() == "signup cohort (quarter)" and ax.get_xlabel() == "calendar quarter"
    # 5 filled cells annotated; 1 small cell (cohort 2024Q2 at 2024Q3, 1 customer) hatched
    assert sorted(t.get_text() for t in ax.texts if _is_number(t.get_text())) == [
        "1.00", "1.00", "1.50", "1.50", "2.00"]
    assert sum(1 for p in ax.patches if p.get_hatch()) == 1
    assert ax.figure.axes[-1].get_ylabel() == "cross-sell ratio (products per customer)"  # colour bar
    assert any("Cross-sell ratio = " in t.get_text() for t in ax.texts)  # the definition caption
    ax2 = cs.plots.cohort_heatmap(cs.cohort_table(hand, cohort="Q", period="Q", metric="retention"), x="age")
    assert ax2.get_xlabel() == "age (quarters since the cohort's first)"
    with pytest.raises(ParameterError, match="filter it to one segment"):
        cs.plots.cohort_heatmap(cs.cohort_table(hand, by="plan"))
    with pytest.raises(ParameterError, match="x must be"):
        cs.plots.cohort_heatmap(tab, x="cohort")


def test_maturity_curves_artists(hand):
    m = cs.maturity(hand, cohort="Q", step="M")
    ax = cs.plots.maturity_curves(m)
    # 3 cohorts (2024Q1, 2024Q2, the empty 2024Q3) + the pooled line; one interval band
    assert len(ax.get_lines()) == 4
    assert ax.get_lines()[-1].get_label() == "pooled (all cohorts)"
    assert len(ax.collections) == 1
    assert ax.get_xlabel() == "age (months since the signup month)"
    assert ax.get_ylabel() == "cross-sell ratio (products per customer)"
    ax = cs.plots.maturity_curves(m, cohorts=["2024Q1"], pooled=False)
    assert len(ax.get_lines()) == 1 and not ax.collections
    with pytest.raises(ParameterError, match="none of the cohorts"):
        cs.plots.maturity_curves(m, cohorts=["1999Q1"])


def test_trend_plot_artists(hand):
    tr = cs.trend(hand, period="Q", target=1.0)
    ax = cs.plots.trend(tr)
    labels = [ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    assert labels == ["cross-sell ratio", "target 1"]
    assert len(ax.collections) == 1  # the interval band
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2024Q1", "2024Q2", "2024Q3"]
    assert ax.get_xlabel() == "calendar quarter" and ax.get_ylabel() == "cross-sell ratio (products per customer)"
    # the caption sits under the rotated tick labels and the axis label, not over them
    r = ax.figure.canvas.get_renderer()
    note = next(t for t in ax.texts if t.get_text().startswith("Cross-sell ratio ="))
    under = min([t.get_window_extent(r).y0 for t in ax.get_xticklabels()] + [ax.xaxis.label.get_window_extent(r).y0])
    assert note.get_window_extent(r).y1 < under
    byplan = cs.plots.trend(cs.trend(hand, period="Q", by="plan"))
    assert [ln.get_label() for ln in byplan.get_lines() if not ln.get_label().startswith("_")] == ["Basic", "Pro"]
    assert len(byplan.collections) == 2
    with pytest.raises(ParameterError, match="keep one column"):
        cs.plots.trend(cs.trend(hand, period="Q", by=["plan", "tenure_band"]))


def test_decomposition_plot_adds_up(hand):
    parts = cs.decompose_change(hand, start="2024Q2", end="2024Q3", basis="held")
    ax = cs.plots.decomposition(parts)
    bars = ax.patches
    assert len(bars) == 5  # start, mix, within, interaction, end
    s = parts.attrs["summary"]
    # each step starts where the previous ended; the last floating bar ends at the end ratio
    level = s["ratio_start"]
    for bar, v in zip(bars[1:4], (s["mix"], s["within"], s["interaction"]), strict=True):
        assert bar.get_height() == pytest.approx(abs(v))
        assert bar.get_y() == pytest.approx(min(level, level + v))
        level += v
    assert level == pytest.approx(bars[4].get_height()) and bars[4].get_height() == pytest.approx(5 / 3)
    assert [t.get_text() for t in ax.get_xticklabels()][1:4] == ["mix", "within groups", "interaction"]
    shap = cs.plots.decomposition(cs.decompose_change(hand, start="2024Q2", end="2024Q3", method="shapley"))
    assert len(shap.patches) == 4
    with pytest.raises(ParameterError, match="decompose_change"):
        cs.plots.decomposition(pd.DataFrame())
