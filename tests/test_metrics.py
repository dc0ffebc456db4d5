"""Core metrics on small hand-computed cases: every definition choice, the seed's example, returns.

The toy data (reference date 2024-03-31; BASE is the base product and never counts):

    customer  signup      churn       plan
    A         2024-01-01  -           Pro
    B         2024-01-15  2024-02-20  Basic
    C         2024-02-10  -           Pro
    D         2024-03-05  -           Basic

    row  customer product  purchased_at  qty  revenue  ended_at
    1    A        BASE     2024-01-01     1    100
    2    A        X        2024-01-05     1     10
    3    A        Y        2024-02-03     2     40
    4    A        Y        2024-03-10     1     20      (upsell of Y)
    5    B        X        2024-01-20     1     10
    6    B        Z        2024-02-01     1     30
    7    B        Z        2024-02-05    -1    -30      (B-Z fully returned)
    8    C        X        2024-02-15     1     10      2024-03-01 (cancelled)
    9    C        Y        2024-03-20     3     60
    10   D        BASE     2024-03-05     1    100
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import crosssell as cs
from crosssell.errors import ColumnNotFoundError, ParameterError, PeriodError

CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["A", "B", "C", "D"],
        "signup_date": ["2024-01-01", "2024-01-15", "2024-02-10", "2024-03-05"],
        "churn_date": [None, "2024-02-20", None, None],
        "plan": ["Pro", "Basic", "Pro", "Basic"],
    }
)
PURCHASES = pd.DataFrame(
    [
        ("A", "BASE", "2024-01-01", 1, 100, None),
        ("A", "X", "2024-01-05", 1, 10, None),
        ("A", "Y", "2024-02-03", 2, 40, None),
        ("A", "Y", "2024-03-10", 1, 20, None),
        ("B", "X", "2024-01-20", 1, 10, None),
        ("B", "Z", "2024-02-01", 1, 30, None),
        ("B", "Z", "2024-02-05", -1, -30, None),
        ("C", "X", "2024-02-15", 1, 10, "2024-03-01"),
        ("C", "Y", "2024-03-20", 3, 60, None),
        ("D", "BASE", "2024-03-05", 1, 100, None),
    ],
    columns=["customer_id", "product_id", "purchased_at", "quantity", "revenue", "ended_at"],
)
PRODUCTS = pd.DataFrame(
    {
        "product_id": ["BASE", "X", "Y", "Z"],
        "name": ["Core", "Ex", "Why", "Zed"],
        "category": ["core", "addon", "addon", "service"],
        "is_base": [True, False, False, False],
    }
)


@pytest.fixture(scope="module")
def toy():
    return cs.from_frames(
        customers=CUSTOMERS, purchases=PURCHASES, products=PRODUCTS, reference_date="2024-03-31"
    )


def ratios(frame):
    return [None if np.isnan(r) else round(r, 12) for r in frame["ratio"]]


def test_seed_example_500_addons_to_200_customers_is_2_5():
    # 100 customers buy 3 distinct add-ons, 100 buy 2: 300 + 200 = 500 add-ons / 200 customers = 2.5
    customers = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(200)], "signup_date": "2024-01-01"})
    rows = [(f"c{i:03d}", f"ADDON{j}", "2024-03-10") for i in range(200) for j in range(3 if i < 100 else 2)]
    purchases = pd.DataFrame(rows, columns=["customer_id", "product_id", "purchased_at"])
    data = cs.from_frames(customers=customers, purchases=purchases, reference_date="2024-03-31")
    res = cs.cross_sell_ratio(data, period="M")
    march = res[res["period"] == pd.Period("2024-03", "M")].iloc[0]
    assert (march["numerator"], march["denominator"], march["ratio"]) == (500, 200, 2.5)


def test_sold_distinct_active_by_month(toy):
    res = cs.cross_sell_ratio(toy, period="M")
    assert [str(p) for p in res["period"]] == ["2024-01", "2024-02", "2024-03"]
    # Jan: A-X, B-X over A, B                     -> 2/2
    # Feb: A-Y, C-X (B-Z fully returned) over A,B,C -> 2/3
    # Mar: A-Y, C-Y over A, C, D (B churned 02-20) -> 2/3
    assert res["numerator"].tolist() == [2, 2, 2]
    assert res["denominator"].tolist() == [2, 3, 3]
    assert ratios(res) == [1.0, round(2 / 3, 12), round(2 / 3, 12)]
    assert res["complete"].tolist() == [True, True, True]
    assert res.attrs["definition"]["base_products"] == ["BASE"]
    assert "BASE" in res.attrs["definition"]["text"]


def test_sold_distinct_all_time(toy):
    # pairs with a positive net: A-X, A-Y, B-X, C-X, C-Y = 5 over the 4 customers -> 1.25
    res = cs.cross_sell_ratio(toy)
    assert list(res.columns) == ["numerator", "denominator", "ratio"]
    assert (res["numerator"].item(), res["denominator"].item(), res["ratio"].item()) == (5, 4, 1.25)


def test_sold_units(toy):
    res = cs.cross_sell_ratio(toy, period="M", count="units")
    # Jan: 1 + 1 = 2 over 2; Feb: A-Y 2 + C-X 1 = 3 over 3; Mar: A-Y 1 + C-Y 3 = 4 over 3
    assert res["numerator"].tolist() == [2.0, 3.0, 4.0]
    assert ratios(res) == [1.0, 1.0, round(4 / 3, 12)]
    # all time: A-X 1 + A-Y 3 + B-X 1 + C-X 1 + C-Y 3 = 9 over 4
    assert cs.cross_sell_ratio(toy, count="units")["ratio"].item() == 2.25


def test_held_distinct_and_units(toy):
    held = cs.cross_sell_ratio(toy, period="M", basis="held")
    # end of Jan: A, B open; hold A-X, B-X                           -> 2/2
    # end of Feb: A, C open (B churned); A-X, A-Y, C-X (ends 03-01)  -> 3/2
    # end of Mar: A, C, D open; A-X, A-Y, C-Y (C-X cancelled)        -> 3/3
    assert held["numerator"].tolist() == [2, 3, 3]
    assert held["denominator"].tolist() == [2, 2, 3]
    assert ratios(held) == [1.0, 1.5, 1.0]
    units = cs.cross_sell_ratio(toy, period="M", basis="held", count="units")
    # Jan 1+1 = 2; Feb A-X 1 + A-Y 2 + C-X 1 = 4; Mar A-X 1 + A-Y 3 + C-Y 3 = 7
    assert units["numerator"].tolist() == [2.0, 4.0, 7.0]
    assert ratios(units) == [1.0, 2.0, round(7 / 3, 12)]


def test_customers_all_and_buyers(toy):
    everyone = cs.cross_sell_ratio(toy, period="M", customers="all")
    # signed up by the month's end: Jan A,B; Feb A,B,C; Mar A,B,C,D
    assert everyone["denominator"].tolist() == [2, 3, 4]
    assert ratios(everyone) == [1.0, round(2 / 3, 12), 0.5]
    buyers = cs.cross_sell_ratio(toy, period="M", customers="buyers")
    # buyers of a counted product: Jan A,B; Feb A,C (B's Z was returned); Mar A,C
    assert buyers["denominator"].tolist() == [2, 2, 2]
    assert ratios(buyers) == [1.0, 1.0, 1.0]


def test_exclude(toy):
    res = cs.cross_sell_ratio(toy, period="M", exclude=["Y"])
    # Jan A-X, B-X: 2/2; Feb C-X: 1/3; Mar nothing: 0/3
    assert res["numerator"].tolist() == [2, 1, 0]
    assert ratios(res) == [1.0, round(1 / 3, 12), 0.0]
    assert res.attrs["definition"]["exclude"] == ["Y"]


def test_by_customer_attribute(toy):
    res = cs.cross_sell_ratio(toy, period="M", by="plan")
    got = {(str(r.period), r.plan): (r.numerator, r.denominator) for r in res.itertuples()}
    # Jan: Basic B (B-X) 1/1, Pro A (A-X) 1/1; Feb: Basic B 0/1, Pro A-Y + C-X 2/2; Mar: Basic D 0/1, Pro 2/2
    assert got == {
        ("2024-01", "Basic"): (1, 1), ("2024-01", "Pro"): (1, 1),
        ("2024-02", "Basic"): (0, 1), ("2024-02", "Pro"): (2, 2),
        ("2024-03", "Basic"): (0, 1), ("2024-03", "Pro"): (2, 2),
    }


def test_by_catalog_category(toy):
    res = cs.cross_sell_ratio(toy, by="category", basis="held")
    got = {r.category: (r.numerator, r.denominator) for r in res.itertuples()}
    # held at 03-31 by A, C, D: A-X, A-Y, C-Y are all "addon"; no "service" product is held
    assert got == {"addon": (3, 3), "service": (0, 3)}


def test_segment_with_no_customers_is_nan_not_error(toy):
    customers = pd.concat(
        [CUSTOMERS, pd.DataFrame({"customer_id": ["E"], "signup_date": ["2024-03-25"], "plan": ["Enterprise"]})]
    )
    data = cs.from_frames(customers=customers, purchases=PURCHASES, products=PRODUCTS, reference_date="2024-03-31")
    res = cs.cross_sell_ratio(data, period="M", by="plan")
    ent = res[res["plan"] == "Enterprise"]
    # Enterprise exists only from March: January and February have 0 customers -> NaN
    assert ent["denominator"].tolist() == [0, 0, 1]
    assert np.isnan(ent["ratio"].iloc[0]) and np.isnan(ent["ratio"].iloc[1])
    assert ent["ratio"].iloc[2] == 0.0
    assert np.isfinite(res["ratio"].fillna(0)).all()


def test_quarter_and_year_periods(toy):
    q = cs.cross_sell_ratio(toy, period="Q")
    # one quarter: distinct pairs sold in Q1 = A-X, A-Y, B-X, C-X, C-Y = 5 over A, B, C, D
    assert [str(p) for p in q["period"]] == ["2024Q1"]
    assert (q["numerator"].item(), q["denominator"].item()) == (5, 4)
    y = cs.cross_sell_ratio(toy, period="Y")
    assert y["complete"].tolist() == [False]  # 2024 is cut short by the reference date


def test_start_end_narrow_the_periods(toy):
    res = cs.cross_sell_ratio(toy, period="M", start="2024-02-01", end="2024-02-29")
    assert [str(p) for p in res["period"]] == ["2024-02"]
    with pytest.raises(PeriodError, match="after end"):
        cs.cross_sell_ratio(toy, period="M", start="2024-03-01", end="2024-02-01")
    with pytest.raises(PeriodError, match="after the reference date"):
        cs.cross_sell_ratio(toy, period="M", start="2025-01-01")
    with pytest.raises(PeriodError, match="before the start"):
        cs.cross_sell_ratio(toy, period="M", end="2023-01-01")


def test_reference_date_cuts_the_data():
    data = cs.from_frames(customers=CUSTOMERS, purchases=PURCHASES, products=PRODUCTS, reference_date="2024-02-10")
    res = cs.cross_sell_ratio(data, period="M")
    # Feb 1-10 only: A-Y sold (C signs up on the 10th, buys X on the 15th: after) -> 1 over A, B, C
    assert res["numerator"].tolist() == [2, 1]
    assert res["denominator"].tolist() == [2, 3]
    assert res["complete"].tolist() == [True, False]
    assert data.excluded()["customers.signup_after_reference_date"] == 1  # D
    # after 02-10: row 4 (A-Y 03-10), row 8 (C-X 02-15), row 9 (C-Y 03-20) = 3; row 10 belongs to D
    assert data.excluded()["purchases.after_reference_date"] == 3
    assert data.excluded()["purchases.customer_signs_up_after_reference_date"] == 1


def test_ratio_times_denominator_is_numerator(toy):
    for kw in [{}, {"basis": "held"}, {"count": "units"}, {"customers": "all"}, {"customers": "buyers"}]:
        res = cs.cross_sell_ratio(toy, period="M", by="plan", **kw)
        ok = res["denominator"] > 0
        assert np.allclose(res.loc[ok, "ratio"] * res.loc[ok, "denominator"], res.loc[ok, "numerator"])


def test_product_distribution(toy):
    dist = cs.product_distribution(toy)
    # held at 03-31: A holds X, Y (2); C holds Y (1); D holds only BASE (0)
    assert dist[["products", "customers"]].values.tolist() == [[0, 1], [1, 1], [2, 1]]
    assert dist["share"].sum() == pytest.approx(1.0)
    sold = cs.product_distribution(toy, basis="sold", period="M")
    feb = sold[sold["period"] == pd.Period("2024-02", "M")]
    # Feb sold: A 1 (Y), B 0 (Z returned), C 1 (X)
    assert dict(zip(feb["products"], feb["customers"], strict=True)) == {0: 1, 1: 2}


def test_multi_product_rate(toy):
    res = cs.multi_product_rate(toy)
    # only A holds 2+ add-ons among A, C, D -> 1/3 with a Wilson interval around it
    assert (res["multi_product"].item(), res["customers"].item()) == (1, 3)
    assert res["rate"].item() == pytest.approx(1 / 3)
    assert res["ci_low"].item() < 1 / 3 < res["ci_high"].item()
    with pytest.raises(ParameterError):
        cs.multi_product_rate(toy, at_least=0)


def test_penetration(toy):
    pen = cs.penetration(toy).set_index("product_id")
    # held at 03-31 by the 3 open customers: X by A; Y by A and C; Z by nobody (returned)
    assert pen.loc["Y", "customers"] == 2 and pen.loc["X", "customers"] == 1
    assert "Z" not in pen.index and "BASE" not in pen.index
    assert pen.loc["Y", "share"] == pytest.approx(2 / 3)
    # every open customer holds something (A, D hold BASE; C holds Y) -> attach = customers / 3
    assert pen.loc["X", "attach_rate"] == pytest.approx(1 / 3)
    assert pen.loc["Y", "name"] == "Why"
    # penetration counts sum to the distinct held numerator
    assert pen["customers"].sum() == cs.cross_sell_ratio(toy, basis="held")["numerator"].item()


def test_arpu(toy):
    res = cs.arpu(toy, period="M")
    # Jan: A 100 + 10, B 10 = 120 over 2 -> 60; Feb: A 40, B 30 - 30, C 10 = 50 over 3; Mar: 20 + 60 + 100 over 3
    assert res["revenue"].tolist() == [120.0, 50.0, 180.0]
    assert res["arpu"].tolist() == pytest.approx([60.0, 50 / 3, 60.0])


def test_arpu_without_revenue_is_a_clear_error():
    data = cs.from_frames(customers=CUSTOMERS, purchases=PURCHASES.drop(columns="revenue"), reference_date="2024-03-31")
    with pytest.raises(ColumnNotFoundError, match="revenue"):
        cs.arpu(data)


def test_bad_arguments_are_named(toy):
    with pytest.raises(PeriodError, match="unknown period code 'W'"):
        cs.cross_sell_ratio(toy, period="W")
    with pytest.raises(ParameterError, match="basis must be one of"):
        cs.cross_sell_ratio(toy, basis="bought")
    with pytest.raises(ParameterError, match="count must be one of"):
        cs.cross_sell_ratio(toy, count="items")
    with pytest.raises(ParameterError, match="customers must be one of"):
        cs.cross_sell_ratio(toy, customers="some")
    with pytest.raises(ColumnNotFoundError, match="available: plan.*did you mean 'plan'"):
        cs.cross_sell_ratio(toy, by="Plan")
    with pytest.raises(ParameterError, match="never purchased.*'Y'"):
        cs.cross_sell_ratio(toy, exclude=["YY"])


def test_where_filters_a_segment(toy):
    pro = toy.where(plan="Pro")
    res = cs.cross_sell_ratio(pro)
    # Pro = A, C: pairs A-X, A-Y, C-X, C-Y = 4 over 2
    assert (res["numerator"].item(), res["denominator"].item()) == (4, 2)
    assert res.attrs["definition"]["filters"] == {"plan": "Pro"}
    with pytest.raises(ColumnNotFoundError, match="attributes are: plan"):
        toy.where(tier="x")


def test_customers_with_an_empty_attribute_form_their_own_segment():
    customers = CUSTOMERS.assign(plan=["Pro", None, "Pro", "Basic"])  # B has no plan
    data = cs.from_frames(customers=customers, purchases=PURCHASES, products=PRODUCTS, reference_date="2024-03-31")
    res = cs.cross_sell_ratio(data, by="plan")
    got = {r.plan: (r.numerator, r.denominator) for r in res.itertuples()}
    # all time: Pro A, C (4 pairs), Basic D (0), "(missing)" B (B-X; B-Z was returned): nobody lost
    assert got == {"(missing)": (1, 1), "Basic": (0, 1), "Pro": (4, 2)}
    assert res["denominator"].sum() == cs.cross_sell_ratio(data)["denominator"].item()
