"""Product affinity, acquisition order, next best product, its evaluation, whitespace.

References used below:

* mlxtend's ``apriori`` + ``association_rules`` (an independent implementation of support,
  confidence, lift, leverage and conviction) on the very same 0/1 ownership matrix;
* ``truth.json`` of the bundled sample, whose ``affinity`` section is computed by the generator
  with its own numpy code from the simulated holdings (not from the files);
* a brute-force, pure-Python leave-one-out recommender for the evaluation;
* statsmodels' ``multipletests`` for the multiple-comparison correction;
* hand arithmetic, written next to each expectation.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import SAMPLE, shared_file  # noqa: E402
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

import crosssell as cs
import crosssell.plots  # noqa: F401  (cs.plots.*)
from crosssell.affinity import _adjust_among, _min_count, _pair_counts, _rule_metrics
from crosssell.errors import (
    CapabilityError,
    ColumnNotFoundError,
    EmptyResultWarning,
    ParameterError,
    SmallSampleWarning,
)

# --------------------------------------------------------------------------------------------
# a small basket set, by hand
#
#   customer  plan   owns (sold basis)          notes
#   C1        Basic  A, B
#   C2        Basic  A, B, C
#   C3        Basic  A                          bought C and returned it: C does not count
#   C4        Pro    B, C
#   C5        Pro    C                          C cancelled (ended_at): sold yes, held no
#   C6        Pro    -                          only the base product CORE
#
#   N = 6, n_A = 3, n_B = 3, n_C = 3 (sold) / 2 (held)
#   n_AB = 2 (C1, C2), n_AC = 1 (C2), n_BC = 2 (C2, C4)

CUSTOMERS = pd.DataFrame({
    "customer_id": ["C1", "C2", "C3", "C4", "C5", "C6"],
    "signup_date": ["2024-01-01"] * 6,
    "plan": ["Basic", "Basic", "Basic", "Pro", "Pro", "Pro"],
})
PURCHASES = pd.DataFrame(
    [
        ("C1", "CORE", "2024-01-01 09:00", 1, None),
        ("C1", "A", "2024-01-02 09:00", 1, None),
        ("C1", "B", "2024-02-02 09:00", 1, None),
        ("C2", "CORE", "2024-01-01 09:00", 1, None),
        ("C2", "A", "2024-01-03 09:00", 1, None),
        ("C2", "B", "2024-01-10 09:00", 2, None),
        ("C2", "C", "2024-03-01 09:00", 1, None),
        ("C3", "CORE", "2024-01-01 09:00", 1, None),
        ("C3", "A", "2024-01-05 09:00", 1, None),
        ("C3", "C", "2024-01-06 09:00", 1, None),
        ("C3", "C", "2024-01-09 09:00", -1, None),
        ("C4", "CORE", "2024-01-01 09:00", 1, None),
        ("C4", "B", "2024-01-04 09:00", 1, None),
        ("C4", "C", "2024-01-04 09:00", 1, None),
        ("C5", "CORE", "2024-01-01 09:00", 1, None),
        ("C5", "C", "2024-01-20 09:00", 1, "2024-02-15"),
        ("C6", "CORE", "2024-01-01 09:00", 1, None),
    ],
    columns=["customer_id", "product_id", "purchased_at", "quantity", "ended_at"],
)
PRODUCTS = pd.DataFrame({
    "product_id": ["CORE", "A", "B", "C"],
    "name": ["Core", "Alpha", "Beta", "Gamma"],
    "is_base": [True, False, False, False],
})


@pytest.fixture(scope="module")
def hand():
    return cs.from_frames(customers=CUSTOMERS, purchases=PURCHASES, products=PRODUCTS,
                          reference_date="2024-03-31")


def test_hand_computed_rules(hand):
    pairs = cs.affinity(hand, min_support=0.2, basis="sold").set_index(["product_a", "product_b"])
    # min_support 0.2 of N = 6 -> at least 2 customers (1.2 rounded up); A-C (1 customer) is out
    assert list(pairs.index) == [("A", "B"), ("B", "C")]
    ab = pairs.loc[("A", "B")]
    assert (ab.customers, ab.customers_a, ab.customers_b, ab.customers_both) == (6, 3, 3, 2)
    assert ab.support == pytest.approx(2 / 6)
    assert ab.confidence_a_to_b == pytest.approx(2 / 3)
    assert ab.lift == pytest.approx(2 * 6 / (3 * 3))  # 12 / 9 = 1.333
    assert ab.leverage == pytest.approx(2 / 6 - (3 / 6) * (3 / 6))  # 0.0833
    assert ab.conviction_a_to_b == pytest.approx((1 - 3 / 6) / (1 - 2 / 3))  # 1.5
    # P(X >= 2) for X ~ Hypergeometric(N=6, K=3, n=3) = (C(3,2)·C(3,1) + C(3,3)) / C(6,3) = 10/20
    assert ab.p_value == pytest.approx(0.5)
    # Benjamini–Hochberg over the 3 candidate pairs (A-C counts as p = 1): 0.5 · 3 / 2 = 0.75
    assert ab.p_adjusted == pytest.approx(0.75)
    assert not ab.significant
    assert ab["name_a"] == "Alpha" and ab["name_b"] == "Beta"
    assert pairs.attrs["candidate_pairs"] == 3
    assert pairs.attrs["products_kept"] == 3
    # the base product never counts, the returned C of C3 neither
    bc = pairs.loc[("B", "C")]
    assert (bc.customers_b, bc.customers_both) == (3, 2)


def test_held_differs_from_sold(hand):
    # held at 2024-03-31: C5 cancelled C on 2024-02-15, so n_C = 2 (C2, C4) and B-C lift = 2·6/(3·2) = 2
    held = cs.affinity(hand, min_support=0.2, basis="held").set_index(["product_a", "product_b"])
    assert held.loc[("B", "C"), "customers_b"] == 2
    assert held.loc[("B", "C"), "lift"] == pytest.approx(2.0)
    # "ever" is "sold"
    ever = cs.affinity(hand, min_support=0.2, basis="ever")
    sold = cs.affinity(hand, min_support=0.2, basis="sold")
    pd.testing.assert_frame_equal(ever, sold)
    assert held.attrs["definition"]["basis"] == "held"


def test_segments_are_separate_analyses(hand):
    pairs = cs.affinity(hand, min_support=0.5, basis="sold", by="plan")
    # min_support 0.5 of N = 3 -> at least 2 customers in each plan
    # Basic (C1-C3): n_A = 3, n_B = 2, n_C = 1 (out); n_AB = 2 -> lift = 2·3/(3·2) = 1
    # Pro (C4-C6): n_B = 1 (out), n_C = 2: a single product, no pair
    assert pairs[["plan", "product_a", "product_b"]].values.tolist() == [["Basic", "A", "B"]]
    assert pairs["customers"].iloc[0] == 3
    assert pairs["lift"].iloc[0] == pytest.approx(1.0)
    assert {s["plan"]: s["customers"] for s in pairs.attrs["segments"]} == {"Basic": 3, "Pro": 3}


def test_min_count_matches_apriori_comparison():
    # Apriori keeps an itemset when count / N >= min_support, compared in floating point
    for n in (7, 100, 3564, 1_000_000):
        for share in (0.01, 0.1, 1 / 3, 20 / 3564, 0.3, 1.0):
            c = _min_count(share, n)
            assert c / n >= share and (c == 1 or (c - 1) / n < share)


# --------------------------------------------------------------------------------------------
# mlxtend as the reference implementation


def _mlxtend_pairs(onehot: pd.DataFrame, min_support: float) -> pd.DataFrame:
    from mlxtend.frequent_patterns import apriori, association_rules

    freq = apriori(onehot, min_support=min_support, use_colnames=True)
    if (freq["itemsets"].map(len) == 2).sum() == 0:
        return pd.DataFrame(columns=["a", "b"])
    rules = association_rules(freq, num_itemsets=len(onehot), metric="confidence", min_threshold=0.0)
    rules = rules[(rules["antecedents"].map(len) == 1) & (rules["consequents"].map(len) == 1)].copy()
    rules["a"] = rules["antecedents"].map(lambda s: next(iter(s)))
    rules["b"] = rules["consequents"].map(lambda s: next(iter(s)))
    return rules


def _assert_same_as_mlxtend(ours: pd.DataFrame, onehot: pd.DataFrame, min_support: float):
    rules = _mlxtend_pairs(onehot, min_support)
    # every two-item rule is one direction of one of our pairs, and nothing else is reported
    assert len(rules) == 2 * len(ours)
    idx = ours.set_index(["product_a", "product_b"])
    for r in rules.itertuples(index=False):
        forward = (r.a, r.b) in idx.index
        row = idx.loc[(r.a, r.b) if forward else (r.b, r.a)]
        d = "a_to_b" if forward else "b_to_a"
        assert row["support"] == pytest.approx(r.support, rel=1e-12)
        assert row[f"confidence_{d}"] == pytest.approx(r.confidence, rel=1e-12)
        assert row["lift"] == pytest.approx(r.lift, rel=1e-12)
        assert row["leverage"] == pytest.approx(r.leverage, rel=1e-9, abs=1e-15)
        if np.isinf(r.conviction):
            assert np.isinf(row[f"conviction_{d}"])
        else:
            assert row[f"conviction_{d}"] == pytest.approx(r.conviction, rel=1e-9)


def _frames_from_matrix(m: np.ndarray):
    n, k = m.shape
    customers = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(n)],
                              "signup_date": ["2024-01-01"] * n})
    rows = [(f"c{i:03d}", f"P{j}", f"2024-02-{1 + (i + j) % 27:02d}") for i in range(n) for j in range(k) if m[i, j]]
    rows += [(f"c{i:03d}", "BASE", "2024-01-01") for i in range(n)]  # everyone is a customer
    purchases = pd.DataFrame(rows, columns=["customer_id", "product_id", "purchased_at"])
    products = pd.DataFrame({"product_id": ["BASE"] + [f"P{j}" for j in range(k)],
                             "is_base": [True] + [False] * k})
    return cs.from_frames(customers=customers, purchases=purchases, products=products)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 60),
    k=st.integers(2, 8),
    density=st.floats(0.05, 0.95),
    min_support=st.floats(0.01, 1.0),
)
def test_pair_algebra_equals_mlxtend(seed, n, k, density, min_support):
    # the sparse Xᵀ·X counting and the rule metrics, without the engine (fast, many examples)
    rng = np.random.default_rng(seed)
    m = rng.random((n, k)) < density
    owners = m[m.any(axis=1)]  # the engine returns only customers who own something
    counts, kept = _pair_counts(sp.csr_matrix(owners.astype(np.int64)), n, _min_count(min_support, n))
    ours = _rule_metrics(counts, candidates=kept * (kept - 1) // 2, ci=0.95, adjust="fdr_bh", alpha=0.05)
    names = np.array([f"P{j}" for j in range(k)], dtype=object)
    ours["product_a"], ours["product_b"] = names[ours["__a"].to_numpy(int)], names[ours["__b"].to_numpy(int)]
    _assert_same_as_mlxtend(ours, pd.DataFrame(m, columns=list(names)), min_support)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(5, 40),
    k=st.integers(2, 6),
    density=st.floats(0.1, 0.9),
    min_support=st.sampled_from([0.05, 0.1, 0.2, 0.35]),
)
def test_pairs_equal_mlxtend_on_random_baskets(seed, n, k, density, min_support):
    # the same, end to end through from_frames and the engine
    rng = np.random.default_rng(seed)
    m = rng.random((n, k)) < density
    data = _frames_from_matrix(m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptyResultWarning)
        ours = cs.affinity(data, min_support=min_support, basis="sold")
    onehot = pd.DataFrame(m, columns=[f"P{j}" for j in range(k)])
    _assert_same_as_mlxtend(ours, onehot, min_support)


def _sample_held_matrix(truth) -> pd.DataFrame:
    """Who holds what at the sample's reference date, rebuilt with plain pandas from the CSVs.

    Held = not cancelled (empty ended_at) by a customer who has not churned, netting to a positive
    quantity, among (customer, product) pairs not fully returned; CORE is the base product.  The
    data end the day before truth["reference_date"], so nothing is cancelled or churned "later".
    """
    c = pd.read_csv(SAMPLE / "customers.csv", dtype=str)
    p = pd.read_csv(SAMPLE / "purchases.csv", dtype={"customer_id": str, "product_id": str})
    p = p[p["product_id"] != "CORE"]
    kept = p.groupby(["customer_id", "product_id"])["quantity"].sum() > 0
    live = p[p["ended_at"].isna()].groupby(["customer_id", "product_id"])["quantity"].sum() > 0
    held = (live & kept.reindex(live.index)).loc[lambda s: s].reset_index()
    active = c.loc[c["churn_date"].isna(), "customer_id"]
    m = pd.crosstab(held["customer_id"], held["product_id"]) > 0
    return m.reindex(active, fill_value=False).astype(bool)


def test_sample_pairs_equal_mlxtend_and_truth(sample_data, truth):
    onehot = _sample_held_matrix(truth)
    t = truth["affinity"]
    assert len(onehot) == t["observed_active_customers"]
    ours = cs.affinity(sample_data, min_support=0.01)
    assert ours["customers"].iloc[0] == t["observed_active_customers"]
    _assert_same_as_mlxtend(ours, onehot, 0.01)
    # the planted pairs, as the generator counted them from its simulated holdings
    idx = ours.set_index(["product_a", "product_b"])
    for pair in t["pairs"]:
        row = idx.loc[tuple(sorted((pair["a"], pair["b"])))]
        assert row["customers_both"] == pair["observed_n_ab"]
        assert row["lift"] == pytest.approx(pair["observed_lift"], abs=1e-6)


def test_planted_affinities_come_out_on_top(sample_data, truth):
    t = truth["affinity"]
    n = t["observed_active_customers"]
    # the generator ranks pairs owned together by at least top_pairs_min_n_ab customers
    ours = cs.affinity(sample_data, min_support=t["top_pairs_min_n_ab"] / n)
    top = [tuple(sorted((p["a"], p["b"]))) for p in t["top_pairs_observed"]]
    got = list(zip(ours["product_a"], ours["product_b"], strict=True))[: len(top)]
    assert got == top
    assert ours["lift"].head(len(top)).to_numpy() == pytest.approx([p["lift"] for p in t["top_pairs_observed"]],
                                                                   abs=1e-6)
    planted = {tuple(sorted((p["a"], p["b"]))) for p in t["pairs"]}
    assert set(got[:2]) == planted
    # and they stand out: both significant, and their intervals lie above every other pair's lift
    head, rest = ours.head(2), ours.iloc[2:]
    assert head["significant"].all()
    assert head["lift_low"].min() > rest["lift"].max()


def test_sample_by_plan(sample_data):
    pairs = cs.affinity(sample_data, by="plan")
    sizes = {s["plan"]: s["customers"] for s in pairs.attrs["segments"]}
    total = cs.affinity(sample_data)["customers"].iloc[0]
    assert sum(sizes.values()) == total
    # every plan has its own N, and in the largest plan the planted pairs still lead
    big = pairs[pairs["plan"] == max(sizes, key=sizes.get)]
    assert (big["customers"] == max(sizes.values())).all()
    assert {tuple(x) for x in big[["product_a", "product_b"]].head(2).values} == {
        ("API_PLUS", "WEBHOOKS"), ("AUDIT_LOG", "SSO")}


# --------------------------------------------------------------------------------------------
# multiple comparisons


@settings(max_examples=25, deadline=None)
@given(
    p=st.lists(st.floats(0, 1), min_size=1, max_size=20),
    extra=st.integers(0, 50),
    method=st.sampled_from(["fdr_bh", "holm", "bonferroni"]),
)
def test_adjust_among_equals_padding_with_ones(p, extra, method):
    p = np.asarray(p)
    ref = multipletests(np.concatenate([p, np.ones(extra)]), method=method)[1][: len(p)]
    np.testing.assert_allclose(_adjust_among(p, len(p) + extra, method), ref, rtol=1e-12, atol=1e-15)


def test_adjust_among_unknown_method():
    with pytest.raises(ParameterError, match="adjust must be one of"):
        _adjust_among(np.array([0.1]), 3, "sidak")


# --------------------------------------------------------------------------------------------
# acquisition order
#
#   customer  acquisitions (CORE is the base product)              churn
#   K1        X day 0,  Y day 10                                   -
#   K2        X day 0,  Z day 30                                   -
#   K3        X day 0                                              - (censored at the reference date, day 60)
#   K4        Y day 0                                              day 40 (censored there)
#   K5        X and Y at the same moment (one invoice), Z day 5   -
#
#   first products: X in K1, K2, K3 and half of K5 -> 3.5 of 5; Y in K4 and half of K5 -> 1.5
#   time to a second product (from noon of day 0): K1 10 (event), K2 30 (event), K3 60.5
#   (censored at the day after the reference date), K4 39.5 (censored at churn), K5 5 (event).
#   Kaplan–Meier: S(5) = 4/5, S(10) = 0.8·3/4 = 0.6, S(30) = 0.6·2/3 = 0.4 (K2, K4, K3 at risk),
#   so the median (first time S <= 0.5) is 30 days, and P(second by 90 days) = 1 − 0.4 = 0.6.

ORDER_CUSTOMERS = pd.DataFrame({
    "customer_id": ["K1", "K2", "K3", "K4", "K5"],
    "signup_date": ["2024-01-01"] * 5,
    "churn_date": [None, None, None, "2024-02-10", None],
})
ORDER_PURCHASES = pd.DataFrame(
    [
        ("K1", "CORE", "2024-01-01 08:00", 1),
        ("K1", "X", "2024-01-01 12:00", 1),
        ("K1", "Y", "2024-01-11 12:00", 1),
        ("K2", "X", "2024-01-01 12:00", 1),
        ("K2", "Z", "2024-01-31 12:00", 1),
        ("K3", "X", "2024-01-01 12:00", 1),
        ("K3", "W", "2024-01-02 12:00", 1),
        ("K3", "W", "2024-01-03 12:00", -1),  # returned: never acquired
        ("K4", "Y", "2024-01-01 12:00", 1),
        ("K5", "X", "2024-01-01 12:00", 1),
        ("K5", "Y", "2024-01-01 12:00", 1),
        ("K5", "Z", "2024-01-06 12:00", 1),
    ],
    columns=["customer_id", "product_id", "purchased_at", "quantity"],
)


@pytest.fixture(scope="module")
def order_data():
    products = pd.DataFrame({"product_id": ["CORE", "W", "X", "Y", "Z"], "is_base": [True] + [False] * 4})
    return cs.from_frames(customers=ORDER_CUSTOMERS, purchases=ORDER_PURCHASES, products=products,
                          reference_date="2024-03-01")


def test_acquisition_order_by_hand(order_data):
    o = cs.acquisition_order(order_data, min_customers=1)
    assert o.customers == 5
    first = o.first.set_index("product_id")
    assert first.loc["X", "customers"] == 4 and first.loc["X", "weighted"] == pytest.approx(3.5)
    assert first.loc["Y", "weighted"] == pytest.approx(1.5)
    assert first["share"].sum() == pytest.approx(1.0)
    assert "W" not in first.index  # fully returned
    tr = o.transitions.set_index(["first_product", "second_product"])
    # K5: X and Y tie at step 1, Z follows: half a customer on X -> Z and half on Y -> Z
    assert tr.loc[("X", "Z"), "customers"] == pytest.approx(1.5)  # K2 + half of K5
    assert tr.loc[("X", "(none yet)"), "customers"] == pytest.approx(1.0)  # K3
    assert tr.loc[("X", "Z"), "share_of_first"] == pytest.approx(1.5 / 3.5)
    assert tr.loc[("Y", "(none yet)"), "customers"] == pytest.approx(1.0)  # K4
    assert tr["customers"].sum() == pytest.approx(5.0)
    # observed days among those who made the move X -> Z: K2 30, K5 5 (each once) -> median 17.5
    assert tr.loc[("X", "Z"), "median_days"] == pytest.approx(17.5)
    km = o.time_to_second.set_index("first_product").loc["(any)"]
    assert (km["customers"], km["second_seen"]) == (5, 3)
    assert km["median_days"] == pytest.approx(30.0)
    assert km["second_within_90d"] == pytest.approx(0.6)
    assert km["median_low"] <= km["median_days"] <= km["median_high"] or np.isnan(km["median_high"])
    paths = o.paths.set_index("path")
    assert paths.loc["X → Y", "customers"] == 1
    assert paths.loc["X + Y → Z", "customers"] == 1
    assert paths["customers"].sum() == 5
    typical = o.typical_path
    assert typical["product_id"].tolist()[:2] == ["X", "Z"]
    assert typical["share_of_previous"].iloc[0] == pytest.approx(3.5 / 5)
    assert typical["customers"].iloc[1] == pytest.approx(1.5)
    assert "typical path: X → Z" in repr(o)


def test_acquisition_order_on_sample(sample_data, truth):
    o = cs.acquisition_order(sample_data)
    entry = truth["adoption"]["entry_product"]
    assert o.first["product_id"].iloc[0] == entry
    assert o.typical_path["product_id"].iloc[0] == entry
    # the generator counts every first add-on sale, returned ones too; a kept product differs
    # only where the first sale was returned (about 4 % of sales)
    share = o.first.set_index("product_id")["share"]
    assert share[entry] == pytest.approx(truth["adoption"]["observed_first_addon_share"][entry], abs=0.03)
    km = o.time_to_second
    ok = km["median_days"].notna()
    assert ((km.loc[ok, "median_low"] <= km.loc[ok, "median_days"])
            & (km.loc[ok, "median_days"] <= km.loc[ok, "median_high"])).all()
    assert o.transitions.groupby("first_product")["share_of_first"].sum().to_numpy() == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# next best product


def test_next_best_product_by_hand(hand):
    # sold basis, min_customers = 2.  Popularity: A 3, B 3, C 3 (C3's C was returned).
    # C3 holds A: A's holders are C1, C2, C3 (3 >= 2) -> peers {C1, C2, C3}:
    #   B owned by 2 of 3 (0.667), C by 1 of 3 (0.333)
    # C6 holds nothing: everyone (6) -> A, B, C each 3/6, ties broken by popularity then id
    recs = cs.next_best_product(hand, k=2, basis="sold", min_customers=2)
    c3 = recs[recs["customer_id"] == "C3"]
    assert c3["product_id"].astype(str).tolist() == ["B", "C"]
    assert c3["score"].to_numpy() == pytest.approx([2 / 3, 1 / 3])
    assert c3["peers"].tolist() == [3, 3]
    assert c3["lift"].iloc[0] == pytest.approx((2 / 3) / (3 / 6))
    assert c3["reason"].iloc[0] == "customers with A also have B: 67% of 3"
    c6 = recs[recs["customer_id"] == "C6"]
    assert c6["product_id"].astype(str).tolist() == ["A", "B"]
    assert c6["score"].to_numpy() == pytest.approx([0.5, 0.5])
    assert c6["based_on"].iloc[0] == ""
    assert c6["reason"].iloc[0] == "A: held by 50% of all 6 customers (the most common products not yet held)"
    # C2 owns everything: nothing left to offer
    assert "C2" not in set(recs["customer_id"])
    assert recs["customer_id"].is_monotonic_increasing
    # C4 holds B and C; rarest first: B (3) and C (3) tie, B first by id: B's holders C1, C2, C4;
    # with C: C2, C4 (2 >= 2) -> peers {C2, C4}: A owned by C2 only -> 1/2
    c4 = recs[recs["customer_id"] == "C4"]
    assert c4["product_id"].astype(str).tolist() == ["A"]
    assert c4["reason"].iloc[0] == "customers with B and C also have A: 50% of 2"


def test_next_best_product_segments_and_owned(hand):
    recs = cs.next_best_product(hand, k=3, basis="sold", by="plan", min_customers=2)
    # C6 (Pro, nothing owned): Pro peers C4, C5, C6 -> C 2/3, B 1/3
    c6 = recs[recs["customer_id"] == "C6"]
    assert c6["plan"].unique().tolist() == ["Pro"]
    assert c6["product_id"].astype(str).tolist() == ["C", "B"]
    assert c6["reason"].iloc[0] == ("C: held by 67% of the 3 customers with plan=Pro "
                                    "(the most common products not yet held)")
    # C5 (Pro, holds C): C's holders in Pro are C4 and C5 (2 >= 2) -> B owned by C4: 1/2
    c5 = recs[recs["customer_id"] == "C5"]
    assert c5["reason"].iloc[0] == "customers with C (plan=Pro) also have B: 50% of 2"
    # exclude_owned=False can suggest what a customer has (the share of peers who own it)
    mine = cs.next_best_product(hand, k=3, basis="sold", exclude_owned=False, min_customers=2)
    assert set(mine.loc[mine["customer_id"] == "C2", "product_id"].astype(str)) == {"A", "B", "C"}


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 4), m=st.integers(1, 6))
def test_recommendations_never_owned_and_ranked(seed, k, m):
    rng = np.random.default_rng(seed)
    own = rng.random((30, 5)) < 0.4
    data = _frames_from_matrix(own)
    recs = cs.next_best_product(data, k=k, basis="sold", min_customers=m)
    owned = {(f"c{i:03d}", f"P{j}") for i, j in zip(*np.nonzero(own), strict=True)}
    assert not any((c, str(p)) in owned for c, p in zip(recs["customer_id"], recs["product_id"], strict=True))
    assert recs.groupby("customer_id")["rank"].apply(lambda r: r.tolist() == list(range(1, len(r) + 1))).all()
    assert (recs.groupby("customer_id").size() <= k).all()
    assert ((recs["score"] > 0) & (recs["score"] <= 1) & (recs["peers"] >= 1)).all()
    assert (recs.groupby("customer_id")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()


def test_sample_recommends_the_planted_partner(sample_data):
    recs = cs.next_best_product(sample_data, k=3)
    holds = _sample_holdings(sample_data)
    lonely = holds[holds["WEBHOOKS"] & ~holds["API_PLUS"]].index
    assert len(lonely) >= 20
    got = recs[recs["customer_id"].isin(lonely) & (recs["product_id"] == "API_PLUS")]["customer_id"].nunique()
    assert got / len(lonely) > 0.8


def _sample_holdings(data) -> pd.DataFrame:
    from crosssell.affinity import _ownership

    own = _ownership(data, basis="held", customers="active", exclude=None, by=[], min_support=None,
                     population=True)
    return pd.DataFrame(own.X.toarray().astype(bool), index=own.customer_ids, columns=own.products)


# --------------------------------------------------------------------------------------------
# evaluation


def _brute_force_evaluation(own: dict, products: list[str], k: int, m: int):
    """Leave-one-out hit counts (recommender, popularity), the slow obvious way.

    own: customer -> {product: acquisition time}; every customer of the population is a key.
    """
    hits_model = hits_pop = evaluated = 0
    customers = list(own)
    full_pop = {p: sum(p in own[c] for c in customers) for p in products}
    for u in customers:
        if len(own[u]) < 2:
            continue
        evaluated += 1
        h = max(own[u], key=own[u].get)  # acquired last (times are distinct)
        held = set(own[u]) - {h}
        others = [c for c in customers if c != u]
        pop = {p: sum(p in own[c] for c in others) for p in products}
        peers = others
        for a in sorted(held, key=lambda p: (full_pop[p], products.index(p))):  # rarest first
            narrower = [c for c in peers if a in own[c]]
            if len(narrower) >= m:
                peers = narrower
        score = {p: sum(p in own[c] for c in peers) / len(peers) for p in products if p not in held}
        ranked = sorted((p for p in score if score[p] > 0), key=lambda p: (-score[p], -pop[p], products.index(p)))
        hits_model += h in ranked[:k]
        base = sorted((p for p in products if p not in held and pop[p] > 0), key=lambda p: (-pop[p], products.index(p)))
        hits_pop += h in base[:k]
    return hits_model, hits_pop, evaluated


def test_evaluation_is_exact_leave_one_out():
    rng = np.random.default_rng(7)
    n, kp = 60, 5
    products = [f"P{j}" for j in range(kp)]
    base_rate = np.array([0.6, 0.45, 0.3, 0.2, 0.12])
    own = {}
    rows = []
    for i in range(n):
        c = f"c{i:03d}"
        owned = rng.random(kp) < base_rate
        if owned[3]:  # P3 pulls P4 along
            owned[4] = owned[4] or rng.random() < 0.7
        days = rng.permutation(np.arange(1, 28))[:kp]
        own[c] = {products[j]: int(i * 100 + days[j]) for j in range(kp) if owned[j]}
        rows += [(c, products[j], pd.Timestamp("2024-02-01") + pd.Timedelta(minutes=int(i * 100 + days[j])))
                 for j in range(kp) if owned[j]]
        rows.append((c, "BASE", pd.Timestamp("2024-01-01")))
    customers = pd.DataFrame({"customer_id": list(own), "signup_date": ["2024-01-01"] * n})
    purchases = pd.DataFrame(rows, columns=["customer_id", "product_id", "purchased_at"])
    catalog = pd.DataFrame({"product_id": ["BASE", *products], "is_base": [True] + [False] * kp})
    data = cs.from_frames(customers=customers, purchases=purchases, products=catalog)
    for k, m in ((1, 3), (2, 5), (3, 10)):
        ev = cs.evaluate_recommendations(data, k=k, basis="sold", min_customers=m).set_index(["method", "metric"])
        hm, hp, n_eval = _brute_force_evaluation(own, products, k, m)
        assert ev.attrs["customers"] == n_eval
        assert ev.loc[("next_best_product", "hit_rate"), "successes"] == hm
        assert ev.loc[("popularity", "hit_rate"), "successes"] == hp


def test_recommender_beats_popularity_on_sample(sample_data):
    ev = cs.evaluate_recommendations(sample_data, k=3)
    hit = ev[ev["metric"] == "hit_rate"].set_index("method")
    model, base = hit.loc["next_best_product"], hit.loc["popularity"]
    assert model["n"] == base["n"] == ev.attrs["customers"] > 1000
    assert model["ci_low"] < model["estimate"] < model["ci_high"]
    # paired on the same customers: the difference's interval excludes zero
    comp = ev.attrs["comparison"]
    assert comp["difference"] == pytest.approx(model["estimate"] - base["estimate"])
    assert comp["low"] > 0 and comp["p_value"] < 0.05
    assert comp["model_only_hits"] - comp["baseline_only_hits"] == model["successes"] - base["successes"]
    prec = ev[ev["metric"] == "precision"].set_index("method")
    # one hidden product per customer and k = 3 recommendations: precision = hits / (3 · customers)
    assert prec.loc["next_best_product", "estimate"] == pytest.approx(model["successes"] / prec.loc["next_best_product", "n"])
    assert prec.loc["next_best_product", "estimate"] <= 1 / 3
    cov = ev[ev["metric"] == "coverage"]
    assert ((cov["estimate"] > 0) & (cov["estimate"] <= 1)).all()


def test_evaluation_is_reproducible_and_random_holdout(sample_data):
    a = cs.evaluate_recommendations(sample_data, k=2, holdout="random", seed=3)
    b = cs.evaluate_recommendations(sample_data, k=2, holdout="random", seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["definition"]["holdout"] == "random"


# --------------------------------------------------------------------------------------------
# whitespace
#
#   plan   customers  A owners  B owners
#   Basic  C1 C2 C3   3 (sold)  2
#   Pro    C4 C5 C6   0         1
#   A: best Basic 3/3 = 1.0; Pro's gap 1.0 -> 3 untapped.  B: best Basic 2/3; Pro gap 1/3 -> 1.
#   C: Basic 1/3 (C2), Pro 2/3 (C4, C5): best Pro; Basic gap 1/3 -> 1 untapped.


def test_whitespace_by_hand(hand):
    ws = cs.whitespace(hand, by="plan", basis="sold", min_customers=1)
    w = ws.set_index(["plan", "product_id"])
    assert w.loc[("Pro", "A"), "share"] == 0.0
    assert w.loc[("Pro", "A"), "best_segment"] == "Basic"
    assert w.loc[("Pro", "A"), "gap"] == pytest.approx(1.0)
    assert w.loc[("Pro", "A"), "untapped"] == 3
    assert w.loc[("Pro", "B"), "untapped"] == 1
    assert w.loc[("Basic", "C"), "best_share"] == pytest.approx(2 / 3)
    assert w.loc[("Basic", "C"), "untapped"] == 1
    assert np.isnan(w.loc[("Basic", "A"), "gap_low"])  # the benchmark itself
    assert w.loc[("Basic", "A"), "gap"] == 0
    assert ws["untapped"].iloc[0] == 3  # sorted by untapped
    assert (ws["share_low"] <= ws["share"]).all() and (ws["share"] <= ws["share_high"]).all()
    assert w.loc[("Basic", "A"), "name"] == "Alpha"


def test_whitespace_small_segments_flagged_not_benchmark(hand, sample_data):
    with pytest.warns(EmptyResultWarning, match="every segment of plan has fewer than min_customers=4"):
        ws = cs.whitespace(hand, by="plan", basis="sold", min_customers=4)
    assert ws.empty and "min_customers=4" in ws.attrs["reason"]
    # the sample: only Basic (about 55 % of customers) reaches 1,500; Pro and Enterprise are
    # listed, flagged, and never the benchmark
    with pytest.warns(SmallSampleWarning, match="2 segment"):
        ws = cs.whitespace(sample_data, by="plan", min_customers=1500)
    assert set(ws.loc[ws["small"], "plan"]) == {"Pro", "Enterprise"}
    assert set(ws["best_segment"]) == {"Basic"}
    assert (ws.loc[ws["small"], "untapped"] >= 0).all()


def test_whitespace_on_sample(sample_data):
    ws = cs.whitespace(sample_data, by="plan")
    pen = cs.penetration(sample_data, by="plan")
    merged = ws.merge(pen, on=["plan", "product_id"], suffixes=("", "_pen"))
    assert (merged["customers"] == merged["customers_pen"]).all()
    # adoption rises with plan (Basic < Pro < Enterprise): Enterprise leads most products
    best = ws.drop_duplicates("product_id")["best_segment"].value_counts()
    assert best.idxmax() == "Enterprise"
    assert (ws.loc[ws["plan"] == "Basic", "gap"] >= 0).all()


# --------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("value", [0, -0.1, 1.5, float("nan"), "0.1", True, None])
def test_bad_min_support(hand, value):
    with pytest.raises(ParameterError, match="min_support"):
        cs.affinity(hand, min_support=value)


@pytest.mark.parametrize("value", [0, -1, 1.5, "3", True])
def test_bad_k(hand, value):
    with pytest.raises(ParameterError, match="k must be"):
        cs.next_best_product(hand, k=value)
    with pytest.raises(ParameterError, match="k must be"):
        cs.evaluate_recommendations(hand, k=value)


def test_bad_arguments(hand):
    with pytest.raises(ParameterError, match="basis must be 'held'"):
        cs.affinity(hand, basis="owned")
    with pytest.raises(ParameterError, match="holdout must be 'last'"):
        cs.evaluate_recommendations(hand, holdout="first")
    with pytest.raises(ParameterError, match="adjust must be one of"):
        cs.affinity(hand, adjust="sidak")
    with pytest.raises(ParameterError, match="ci must be"):
        cs.affinity(hand, ci=1.5)
    with pytest.raises(ParameterError, match="alpha"):
        cs.affinity(hand, alpha=0)
    with pytest.raises(ParameterError, match="min_customers must be at least 1"):
        cs.next_best_product(hand, min_customers=0)
    with pytest.raises(ParameterError, match="steps must be"):
        cs.acquisition_order(hand, steps=0)
    with pytest.raises(ColumnNotFoundError, match="by='tier' is not a customer attribute"):
        cs.affinity(hand, by="tier")
    with pytest.raises(ParameterError, match="customer attributes only; 'name' is a catalog column"):
        cs.next_best_product(hand, by="name")
    with pytest.raises(ParameterError, match="pass by= a customer attribute"):
        cs.whitespace(hand, by=None)
    with pytest.raises(ParameterError, match="exclude names product"):
        cs.affinity(hand, exclude="NOPE")


def test_no_product_identities(hand):
    counts_only = replace(hand, has_product_ids=False)
    for f in (cs.affinity, cs.acquisition_order, cs.next_best_product, cs.evaluate_recommendations, cs.whitespace):
        with pytest.raises(CapabilityError, match="needs product identities"):
            f(counts_only)


def test_single_product_gives_empty_results_with_reason():
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"], "signup_date": ["2024-01-01"] * 3})
    purchases = pd.DataFrame({"customer_id": ["a", "b"], "product_id": ["X", "X"],
                              "purchased_at": ["2024-01-02", "2024-01-03"]})
    data = cs.from_frames(customers=customers, purchases=purchases)
    with pytest.warns(EmptyResultWarning, match="fewer than two products"):
        pairs = cs.affinity(data)
    assert pairs.empty and "lower min_support" in pairs.attrs["reason"]
    assert list(pairs.columns[:2]) == ["product_a", "product_b"]
    with pytest.warns(EmptyResultWarning, match="no customer owns two or more"):
        ev = cs.evaluate_recommendations(data)
    assert ev.empty and ev.attrs["customers"] == 0
    # one product is still a recommendation for those who lack it
    recs = cs.next_best_product(data, basis="sold")
    assert recs["customer_id"].tolist() == ["c"] and recs["product_id"].astype(str).tolist() == ["X"]
    with pytest.raises(ParameterError, match="nothing to draw in lift_heatmap: fewer than two products"):
        cs.plots.lift_heatmap(pairs)
    with pytest.raises(ParameterError, match="nothing to draw in recommendation_eval"):
        cs.plots.recommendation_eval(ev)


def test_no_pair_reaches_support(hand):
    with pytest.warns(EmptyResultWarning, match="no pair of products is owned together"):
        pairs = cs.affinity(hand, min_support=0.5, basis="sold")
    assert pairs.empty and pairs.attrs["products_kept"] == 3


def test_only_base_products():
    customers = pd.DataFrame({"customer_id": ["a", "b"], "signup_date": ["2024-01-01"] * 2})
    purchases = pd.DataFrame({"customer_id": ["a", "b"], "product_id": ["CORE", "CORE"],
                              "purchased_at": ["2024-01-02", "2024-01-03"]})
    products = pd.DataFrame({"product_id": ["CORE"], "is_base": [True]})
    data = cs.from_frames(customers=customers, purchases=purchases, products=products)
    with pytest.warns(EmptyResultWarning, match="no customer has kept a counted product"):
        o = cs.acquisition_order(data)
    assert o.customers == 0 and o.first.empty and "reason" in o.definition
    with pytest.warns(EmptyResultWarning, match="nothing to recommend"):
        assert cs.next_best_product(data).empty
    with pytest.raises(ParameterError, match="nothing to draw in transition_flow"):
        cs.plots.transition_flow(o)


# --------------------------------------------------------------------------------------------
# figures


def test_lift_heatmap_annotates_only_significant(sample_data):
    pairs = cs.affinity(sample_data)
    ax = cs.plots.lift_heatmap(pairs, top=12)
    shown = {t.get_text() for t in ax.get_xticklabels()}
    sub = pairs[pairs["product_a"].isin(shown) & pairs["product_b"].isin(shown)]
    texts = [t.get_text() for t in ax.texts]
    numbers = [t for t in texts if t.replace(".", "", 1).isdigit()]
    assert len(numbers) == 2 * int(sub["significant"].sum())  # both halves of the symmetric matrix
    assert sub["significant"].sum() < len(sub)  # some pairs are not significant and stay blank
    assert ax.get_title() and ax.get_xlabel() == "product"
    assert any("Benjamini–Hochberg" in t for t in texts)
    with pytest.raises(ParameterError, match="one segment at a time"):
        cs.plots.lift_heatmap(cs.affinity(sample_data, by="plan"))
    ax = cs.plots.lift_heatmap(cs.affinity(sample_data, by="plan"), segment="Pro")
    assert len(ax.get_xticklabels()) >= 2
    with pytest.raises(ParameterError, match="top must be"):
        cs.plots.lift_heatmap(pairs, top=1)
    with pytest.raises(ParameterError, match="draws the DataFrame returned by crosssell.affinity"):
        cs.plots.lift_heatmap(pairs.to_dict())


def test_other_figures(sample_data):
    o = cs.acquisition_order(sample_data)
    ax = cs.plots.transition_flow(o, top=5)
    labels = [t.get_text() for t in ax.texts]
    assert any(t.startswith("(none yet)") for t in labels) and any(t.startswith("other") for t in labels)
    ax = cs.plots.transition_flow(o.transitions, show_none=False)
    assert not any(t.get_text().startswith("(none yet)") for t in ax.texts)
    ws = cs.whitespace(sample_data, by="plan")
    ax = cs.plots.whitespace_heatmap(ws, value="gap", top=5)
    assert len(ax.get_xticklabels()) == 5 and ax.get_ylabel() == "plan"
    with pytest.raises(ParameterError, match="value must be 'share' or 'gap'"):
        cs.plots.whitespace_heatmap(ws, value="lift")
    ev = cs.evaluate_recommendations(sample_data)
    ax = cs.plots.recommendation_eval(ev)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["hit rate@3", "precision@3", "catalog coverage"]
    assert ax.get_ylabel() == "share (0–1)"
    with pytest.raises(ParameterError, match="needs the columns"):
        cs.plots.recommendation_eval(ws)


# --------------------------------------------------------------------------------------------
# real data: Online Retail (stock codes as products, invoice lines as purchases)

NOT_PRODUCTS = ["POST", "DOT", "M", "m", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS"]


@pytest.mark.realdata
@pytest.mark.slow
def test_online_retail_end_to_end(tmp_path):
    path = shared_file("online_retail", "OnlineRetail.csv.gz")
    # the first 60,000 invoice lines (December 2010 to mid-January 2011) keep this test quick;
    # the full log is timed in the report
    log = pd.read_csv(path, nrows=60_000, dtype=str)
    log.to_csv(tmp_path / "log.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = cs.from_transactions(
            tmp_path / "log.csv", customer_id="CustomerID", product_id="StockCode", timestamp="InvoiceDate",
            quantity="Quantity", price="UnitPrice", invoice="InvoiceNo", attributes=["Country"],
            product_name="Description", exclude_products=NOT_PRODUCTS,
        )
    pairs = cs.affinity(data, basis="sold", min_support=0.02)
    assert pairs.attrs["products_kept"] > 100 and len(pairs) > 100
    # the top pair recounted with pandas from the log: customers who kept both stock codes
    a, b = pairs[["product_a", "product_b"]].iloc[0]
    # cancellations carry negative quantities in the log and net against the sales
    lines = log.dropna(subset=["CustomerID"]).assign(q=lambda f: f["Quantity"].astype(float))
    net = lines.groupby(["CustomerID", "StockCode"])["q"].sum()
    kept = net[net > 0].reset_index()
    owners = kept.groupby("StockCode")["CustomerID"].apply(set)
    n = int(pairs["customers"].iloc[0])
    both = len(owners[a] & owners[b])
    assert pairs["customers_both"].iloc[0] == both
    assert pairs["lift"].iloc[0] == pytest.approx(both * n / (len(owners[a]) * len(owners[b])))
    order = cs.acquisition_order(data)
    assert order.first["share"].sum() == pytest.approx(1.0)
    recs = cs.next_best_product(data, basis="sold", k=3)
    assert recs["customer_id"].nunique() == n
    ev = cs.evaluate_recommendations(data, basis="sold", k=3)
    hit = ev[ev["metric"] == "hit_rate"].set_index("method")["estimate"]
    assert hit["next_best_product"] > hit["popularity"]
    ws = cs.whitespace(data, by="Country", basis="sold")
    assert not ws.loc[ws["small"], "best_segment"].isin(ws.loc[ws["small"], "Country"]).any()
    cs.plots.lift_heatmap(pairs)
    cs.plots.transition_flow(order)
