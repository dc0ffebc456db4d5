"""Tests of the synthetic sample: reproducibility, the data contract, and the planted effects.

The planted effects are checked on the written files with plain pandas, not with the crosssell
analysis modules, so a bug in an analysis cannot hide a bug in the generator (or the reverse).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crosssell.errors import ParameterError
from crosssell.sample import TIER_LABELS, generate, tier_label, write_sample

TABLES = ("customers", "purchases", "surveys", "products")
COLUMNS = {
    "customers": ["customer_id", "signup_date", "churn_date", "plan", "region", "channel"],
    "purchases": ["customer_id", "product_id", "purchased_at", "quantity", "revenue", "ended_at"],
    "surveys": ["customer_id", "responded_at", "score", "kind"],
    "products": ["product_id", "name", "category", "is_base"],
}
DATES = {"signup_date", "churn_date", "ended_at", "responded_at", "purchased_at"}


def read_sample(folder: Path) -> dict:
    """The written CSV files, read the way an analyst would with plain pandas."""
    out = {}
    for name in TABLES:
        path = folder / f"{name}.csv"
        header = path.read_text(encoding="utf-8").split("\n", 1)[0].split(",")
        out[name] = pd.read_csv(
            path,
            dtype={"customer_id": str, "product_id": str},
            parse_dates=[c for c in header if c in DATES],
            keep_default_na=False,
            na_values=[""],
        )
    out["truth"] = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    return out


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict:
    """The committed sample's arguments (5,000 customers, seed 42), written and read back."""
    folder = tmp_path_factory.mktemp("sample")
    written = write_sample(folder, customers=5000, seed=42)
    data = read_sample(folder)
    data["written"] = written
    data["folder"] = folder
    return data


@pytest.fixture(scope="module")
def big():
    """100,000 customers at ~10 purchase rows each: the benchmark shape."""
    t0 = time.perf_counter()
    data = generate(customers=100_000, purchases_per_customer=10)
    print(f"\ngenerate(customers=100_000, purchases_per_customer=10): "
          f"{time.perf_counter() - t0:.1f} s, {len(data.purchases):,} purchase rows")
    return data


def addons(data: dict) -> set:
    products = data["products"]
    return set(products.loc[~products.is_base, "product_id"])


def held_at(purchases: pd.DataFrame, addon_ids: set, when: pd.Timestamp) -> pd.Series:
    """Distinct add-ons each customer holds on day ``when``: bought by then, not ended, net > 0."""
    p = purchases[purchases.product_id.isin(addon_ids)]
    p = p[(p.purchased_at < when + pd.Timedelta(days=1)) & (p.ended_at.isna() | (p.ended_at > when))]
    net = p.groupby(["customer_id", "product_id"]).quantity.sum()
    return net[net > 0].reset_index().groupby("customer_id").size()


def tiers(counts: pd.Series) -> pd.Series:
    return counts.map(tier_label)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# reproducibility and files


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_seed_gives_byte_identical_files(tmp_path, fmt):
    a = write_sample(tmp_path / "a", customers=1500, seed=7, format=fmt)
    b = write_sample(tmp_path / "b", customers=1500, seed=7, format=fmt)
    names = [Path(f).name for f in a["files"]]
    assert names == [f"{t}.{fmt}" for t in TABLES] + ["truth.json"]
    assert names == [Path(f).name for f in b["files"]]
    for f in names:
        assert sha256(tmp_path / "a" / f) == sha256(tmp_path / "b" / f), f


def test_different_seed_gives_different_data(tmp_path):
    write_sample(tmp_path / "a", customers=1500, seed=7)
    write_sample(tmp_path / "b", customers=1500, seed=8)
    for name in ("customers.csv", "purchases.csv", "surveys.csv", "truth.json"):
        assert sha256(tmp_path / "a" / name) != sha256(tmp_path / "b" / name), name


def test_write_sample_reports_files_and_rows(sample):
    written = sample["written"]
    assert [Path(f).name for f in written["files"]] == [f"{t}.csv" for t in TABLES] + ["truth.json"]
    for name in TABLES:
        assert written["rows"][name] == len(sample[name])
        assert sample["truth"]["rows"][name] == len(sample[name])
    assert written["rows"]["customers"] == 5000


def test_parquet_holds_the_same_data_as_csv(tmp_path):
    write_sample(tmp_path / "c", customers=800, seed=3)
    write_sample(tmp_path / "p", customers=800, seed=3, format="parquet")
    csv = read_sample(tmp_path / "c")
    for name in TABLES:
        pq = pd.read_parquet(tmp_path / "p" / f"{name}.parquet")
        assert list(pq.columns) == COLUMNS[name]
        for col in pq.columns:
            left, right = csv[name][col], pq[col]
            if col in DATES:
                left, right = pd.to_datetime(left), pd.to_datetime(right)
                assert (left.isna() == right.isna()).all() and (left.dropna() == right.dropna()).all()
            else:
                assert left.tolist() == right.tolist(), (name, col)


def test_bad_arguments_raise_parameter_error(tmp_path):
    with pytest.raises(ParameterError):
        write_sample(tmp_path, customers=10, format="xlsx")
    with pytest.raises(ParameterError):
        generate(customers=0)
    with pytest.raises(ParameterError):
        generate(months=0)
    with pytest.raises(ParameterError):
        generate(start="not a date")


# --------------------------------------------------------------------------------------------
# the data contract


def test_frames_follow_the_contract():
    data = generate(customers=300, seed=5)
    for name in TABLES:
        frame = getattr(data, name)
        assert list(frame.columns) == COLUMNS[name]
        for col in frame.columns:
            if col in DATES:
                assert pd.api.types.is_datetime64_dtype(frame[col]), (name, col)
            elif col in ("quantity", "score"):
                assert pd.api.types.is_integer_dtype(frame[col]), (name, col)
            elif col == "revenue":
                assert pd.api.types.is_float_dtype(frame[col])
            elif col == "is_base":
                assert pd.api.types.is_bool_dtype(frame[col])
            else:
                assert pd.api.types.is_string_dtype(frame[col]), (name, col)
    assert data.reference_date == pd.Timestamp("2025-01-01")
    assert (data.purchases.revenue.round(2) == data.purchases.revenue).all()
    json.dumps(data.truth, allow_nan=False)


def test_csv_text_is_fixed_format(sample):
    folder = sample["folder"]
    date, stamp = r"\d{4}-\d{2}-\d{2}", r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"
    patterns = {
        "customers": rf"C\d{{6}},{date},({date})?,(Basic|Pro|Enterprise),[A-Za-z ]+,(web|sales|partner)",
        "purchases": rf"C\d{{6}},[A-Z_]+,{stamp},-?\d+,-?\d+\.\d\d,({date})?",
        "surveys": rf"C\d{{6}},{date},\d+,(csat|nps)",
        "products": r"[A-Z_]+,[^,]+,[A-Za-z]+,(true|false)",
    }
    for name, pattern in patterns.items():
        lines = (folder / f"{name}.csv").read_text(encoding="utf-8").splitlines()
        assert lines[0] == ",".join(COLUMNS[name])
        bad = [line for line in lines[1:] if not re.fullmatch(pattern, line)]
        assert not bad, (name, bad[:3])


def test_rows_are_sorted(sample):
    c, p, s = sample["customers"], sample["purchases"], sample["surveys"]
    assert c.customer_id.is_monotonic_increasing and c.customer_id.is_unique
    assert p.equals(p.sort_values(["customer_id", "purchased_at", "product_id"], kind="stable"))
    assert s.equals(s.sort_values(["customer_id", "responded_at"], kind="stable"))


def test_exactly_one_base_product(sample):
    products = sample["products"]
    assert products.is_base.sum() == 1
    assert products.product_id.is_unique
    assert len(addons(sample)) == 12
    assert products.category[~products.is_base].nunique() >= 3


def test_every_reference_resolves(sample):
    ids = set(sample["customers"].customer_id)
    assert set(sample["purchases"].customer_id) <= ids
    assert set(sample["surveys"].customer_id) <= ids
    assert set(sample["purchases"].product_id) <= set(sample["products"].product_id)


def test_every_customer_buys_the_base_product_at_signup(sample):
    c, p = sample["customers"], sample["purchases"]
    base = sample["products"].loc[sample["products"].is_base, "product_id"].item()
    first = p.groupby("customer_id").first()
    assert (first.product_id == base).all()
    assert (first.purchased_at.dt.normalize() == c.set_index("customer_id").signup_date).all()


def test_nothing_happens_outside_the_relationship(sample):
    c, p, s = sample["customers"], sample["purchases"], sample["surveys"]
    ref = pd.Timestamp(sample["truth"]["reference_date"])
    assert (c.signup_date < ref).all()
    assert (c.churn_date.dropna() < ref).all()
    assert (c.churn_date.dropna() > c.signup_date[c.churn_date.notna()]).all()
    pc = p.merge(c, on="customer_id")
    assert (pc.purchased_at.dt.normalize() >= pc.signup_date).all()
    assert not (pc.purchased_at >= pc.churn_date + pd.Timedelta(days=1)).any()
    assert (pc.purchased_at < ref).all()
    ended = pc[pc.ended_at.notna()]
    assert (ended.ended_at >= ended.purchased_at.dt.normalize()).all()
    assert (ended.ended_at < ref).all()
    assert not (ended.ended_at > ended.churn_date).any()
    sc = s.merge(c, on="customer_id")
    assert (sc.responded_at > sc.signup_date).all() and (sc.responded_at < ref).all()
    assert not (sc.responded_at > sc.churn_date).any()


def test_churned_customers_hold_nothing(sample):
    c, p = sample["customers"], sample["purchases"]
    churned = set(c.customer_id[c.churn_date.notna()])
    open_rows = p[p.customer_id.isin(churned) & p.ended_at.isna()]
    net = open_rows.groupby(["customer_id", "product_id"]).quantity.sum()
    assert (net == 0).all()


def test_returns_never_exceed_what_was_bought(sample):
    p = sample["purchases"]
    running = p.groupby(["customer_id", "product_id"]).quantity.cumsum()
    assert (running >= 0).all()
    returns = p[p.quantity < 0]
    assert (returns.revenue < 0).all() and (p.revenue[p.quantity > 0] > 0).all()


def test_returns_are_a_few_percent_and_mostly_full(sample):
    p = sample["purchases"]
    adds = p[p.product_id.isin(addons(sample))]
    returns = adds[adds.quantity < 0]
    sales = adds[adds.quantity > 0]
    assert 0.01 < len(returns) / len(sales) < 0.08
    # each return follows a sale of the same product 1-14 days before it
    prev = adds.groupby(["customer_id", "product_id"]).shift()
    gap = (returns.purchased_at.dt.normalize() - prev.purchased_at[returns.index].dt.normalize())
    assert gap.dt.days.between(1, 14).all()
    full = -returns.quantity.to_numpy() == prev.quantity[returns.index].to_numpy()
    assert full.mean() > 0.7


def classify(purchases: pd.DataFrame) -> pd.Series:
    """'upsell' for a positive row on a product held just before it, 'new' otherwise."""
    rows = purchases.reset_index(names="row")
    pos = rows[rows.quantity > 0]
    pairs = pos.merge(rows, on=["customer_id", "product_id"], suffixes=("", "_prev"))
    pairs = pairs[(pairs.purchased_at_prev < pairs.purchased_at)
                  & (pairs.ended_at_prev.isna() | (pairs.ended_at_prev > pairs.purchased_at))]
    held_before = pairs.groupby("row").quantity_prev.sum()
    kind = pd.Series("new", index=pos.row)
    kind[held_before[held_before > 0].index] = "upsell"
    return kind


def test_upsell_is_separable_from_cross_sell(sample):
    kind = classify(sample["purchases"])
    assert (kind == "upsell").sum() == sample["truth"]["upsell"]["observed_rows"]
    new = sample["purchases"].loc[kind.index[kind == "new"]]
    # a "new" row is a product the customer did not hold: one per sale (base or add-on)
    assert len(new) == len(sample["customers"]) + sample["truth"]["adoption"]["observed_addon_sales"]


# --------------------------------------------------------------------------------------------
# planted effects, visible with plain pandas


def test_later_signup_quarters_are_bigger(sample):
    quarters = sample["customers"].signup_date.dt.to_period("Q").value_counts().sort_index()
    assert len(quarters) == 12
    assert quarters.is_monotonic_increasing and quarters.iloc[-1] > 3 * quarters.iloc[0]


def test_add_ons_held_grow_with_tenure(sample):
    c = sample["customers"]
    ref = pd.Timestamp(sample["truth"]["reference_date"])
    active = c[c.churn_date.isna()].copy()
    held = held_at(sample["purchases"], addons(sample), ref)
    active["held"] = active.customer_id.map(held).fillna(0)
    years = ((ref - active.signup_date).dt.days // 365).clip(upper=2)
    means = active.groupby(years).held.mean()
    assert means.is_monotonic_increasing and means.iloc[-1] > means.iloc[0] + 1.5


def test_planted_pairs_have_the_top_lift(sample):
    c, truth = sample["customers"], sample["truth"]
    ref = pd.Timestamp(truth["reference_date"])
    active = set(c.customer_id[c.churn_date.isna()])
    p = sample["purchases"]
    p = p[p.product_id.isin(addons(sample)) & (p.purchased_at < ref) & p.ended_at.isna()]
    net = p.groupby(["customer_id", "product_id"]).quantity.sum()
    matrix = (net > 0).unstack(fill_value=False).reindex(sorted(active), fill_value=False)
    m = matrix.to_numpy().astype(np.int64)
    n_ab, n_a, total = m.T @ m, m.sum(axis=0), len(matrix)
    lifts = {}
    for i, a in enumerate(matrix.columns):
        for j, b in enumerate(matrix.columns):
            if i < j and n_ab[i, j] >= truth["affinity"]["top_pairs_min_n_ab"]:
                lifts[frozenset((a, b))] = n_ab[i, j] * total / (n_a[i] * n_a[j])
    top = sorted(lifts, key=lifts.get, reverse=True)[:2]
    planted = {frozenset((x["a"], x["b"])): x for x in truth["affinity"]["pairs"]}
    assert set(top) == set(planted)
    for pair, info in planted.items():
        assert lifts[pair] > 1.5
        assert lifts[pair] == pytest.approx(info["observed_lift"], abs=1e-5)
    third = sorted(lifts.values(), reverse=True)[2]
    assert min(lifts[p] for p in planted) > 1.3 * third


def test_entry_add_on_is_usually_first(sample):
    p = sample["purchases"]
    sales = p[p.product_id.isin(addons(sample)) & (p.quantity > 0)]
    first = sales.groupby("customer_id").product_id.first().value_counts(normalize=True)
    entry = sample["truth"]["adoption"]["entry_product"]
    assert first.index[0] == entry and first.iloc[0] > 1.5 * first.iloc[1]
    assert first[entry] == pytest.approx(
        sample["truth"]["adoption"]["observed_first_addon_share"][entry], abs=1e-5)


def test_pushed_add_on_is_cancelled_fast(sample):
    p = sample["purchases"]
    pushed = sample["truth"]["pushed_addon"]["product_id"]
    sold = p[p.product_id.isin(addons(sample)) & (p.quantity > 0) & p.ended_at.notna()]
    days = (sold.ended_at - sold.purchased_at.dt.normalize()).dt.days
    pushed_median = days[sold.product_id == pushed].median()
    others_median = days[sold.product_id != pushed].median()
    assert pushed_median <= 90
    assert pushed_median < 0.5 * others_median


def test_pushed_add_on_lowers_satisfaction(sample):
    p, s = sample["purchases"], sample["surveys"]
    pushed = sample["truth"]["pushed_addon"]["product_id"]
    bought = p[(p.product_id == pushed) & (p.quantity > 0)].groupby("customer_id").purchased_at.min()
    csat = s[s.kind == "csat"].copy()
    csat["after"] = csat.responded_at > csat.customer_id.map(bought)
    means = csat.groupby("after").score.mean()
    assert means[True] < means[False] - 0.2


def test_satisfaction_is_an_inverted_u_in_the_tier(sample):
    p, s, truth = sample["purchases"], sample["surveys"], sample["truth"]
    adds = p[p.product_id.isin(addons(sample))]
    pairs = s.reset_index(names="survey").merge(adds, on="customer_id")
    pairs = pairs[(pairs.purchased_at < pairs.responded_at + pd.Timedelta(days=1))
                  & (pairs.ended_at.isna() | (pairs.ended_at > pairs.responded_at))]
    net = pairs.groupby(["survey", "product_id"]).quantity.sum()
    count = net[net > 0].reset_index().groupby("survey").size()
    s = s.assign(tier=tiers(pd.Series(s.index, index=s.index).map(count).fillna(0).astype(int)))
    csat = s[s.kind == "csat"].groupby("tier").score.mean()
    assert csat["3–4"] > csat["0"] + 0.2 and csat["3–4"] > csat["5+"] + 0.2
    observed = truth["surveys"]["csat"]["observed_mean_by_tier"]
    for label in TIER_LABELS:
        assert csat[label] == pytest.approx(observed[label], abs=1e-5)
    planted = truth["surveys"]["nps"]["true_nps_by_tier"]
    assert planted["3–4"] > planted["0"] and planted["3–4"] > planted["5+"]


def test_naive_churn_by_tier_flatters_many_add_ons(sample):
    c, p, truth = sample["customers"], sample["purchases"], sample["truth"]
    adds = p[p.product_id.isin(addons(sample))]
    # ever kept = bought and not fully returned: all rows of the product net above zero
    net = adds.groupby(["customer_id", "product_id"]).quantity.sum()
    ever = net[net > 0].reset_index().groupby("customer_id").size()
    tier = tiers(c.customer_id.map(ever).fillna(0).astype(int))
    naive = c.churn_date.notna().groupby(tier).mean()
    # naively, 5+ add-ons look far better than none, though their true hazard is 1.3x
    assert naive["5+"] < 0.5 * naive["0"]
    for label in TIER_LABELS:
        assert naive[label] == pytest.approx(
            truth["churn"]["naive"]["churn_rate_by_tier"][label], abs=1e-5)
    assert truth["churn"]["hazard_ratio_by_tier"]["5+"] > 1
    assert truth["churn"]["naive"]["churn_rate_by_tier"]["5+"] < truth["churn"]["naive"][
        "churn_rate_by_tier"]["0"]


def test_twelve_month_churn_is_higher_at_5_plus_than_3_to_4(big):
    """Landmark one year before the reference date, customers with a year of tenure, by plan."""
    c, p = big.customers, big.purchases
    landmark = big.reference_date - pd.DateOffset(months=12)
    at_risk = c[(c.signup_date <= landmark - pd.Timedelta(days=365))
                & (c.churn_date.isna() | (c.churn_date > landmark))].copy()
    base = set(big.products.product_id[big.products.is_base])
    held = held_at(p, set(big.products.product_id) - base, landmark - pd.Timedelta(days=1))
    at_risk["tier"] = tiers(at_risk.customer_id.map(held).fillna(0).astype(int))
    at_risk["churned"] = at_risk.churn_date.notna()
    rates = at_risk.groupby(["plan", "tier"]).churned.mean().unstack()
    # standardise to one plan mix: plans churn differently and 5+ holders are more Enterprise
    weights = at_risk[at_risk.tier.isin(["3–4", "5+"])].plan.value_counts(normalize=True)
    standardised = rates.mul(weights, axis=0).sum()
    assert standardised["5+"] > 1.2 * standardised["3–4"]
    assert (at_risk.tier == "5+").sum() > 300


def test_truth_records_the_planted_parameters(sample):
    truth = sample["truth"]
    churn = truth["churn"]
    assert list(churn["hazard_ratio_by_tier"]) == list(TIER_LABELS)
    assert churn["hazard_ratio_by_tier"] == {"0": 1.0, "1": 0.75, "2": 0.55, "3–4": 0.5, "5+": 1.3}
    assert churn["tier_bins"]["3–4"] == [3, 4] and churn["tier_bins"]["5+"] == [5, None]
    assert set(churn["hazard_ratio_by_plan"]) == {"Basic", "Pro", "Enterprise"}
    assert churn["pushed_addon_hazard_ratio"] > 1
    assert [b["hazard"] for b in churn["baseline_monthly_hazard_by_tenure"]] == sorted(
        (b["hazard"] for b in churn["baseline_monthly_hazard_by_tenure"]), reverse=True)
    assert truth["seed"] == 42 and truth["customers"] == 5000
    assert truth["reference_date"] == "2025-01-01"
    assert len(truth["products"]) == 13 and len(truth["affinity"]["pairs"]) >= 2
    assert truth["pushed_addon"]["product_id"] == "ADV_REPORTS"
    assert truth["effects"] and truth["cohorts"]["monthly_growth_rate"] > 0
    assert set(truth["surveys"]["nps"]["probabilities_by_tier"]) == set(TIER_LABELS)
    text = (sample["folder"] / "truth.json").read_text(encoding="utf-8")
    assert text == json.dumps(truth, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------
# scale


def test_scale_smoke_100k_customers(big):
    rows_per_customer = len(big.purchases) / len(big.customers)
    assert len(big.customers) == 100_000
    assert 8 <= rows_per_customer <= 12
    assert big.truth["rows_per_customer"] == pytest.approx(rows_per_customer, abs=1e-6)


def test_purchases_per_customer_below_the_floor_warns():
    with pytest.warns(UserWarning, match="no upsell rows"):
        data = generate(customers=200, seed=1, purchases_per_customer=1)
    assert data.truth["upsell"]["observed_rows"] == 0
