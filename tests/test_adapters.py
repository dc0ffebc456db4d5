"""Adapters: wide exports, product counts and transaction logs mapped onto the data contract.

Hand-computed cases check each rule (the arithmetic is in the comments), hypothesis checks the
invariants on random inputs, and the three public datasets in ../shared/data reproduce their
known facts and an independent pandas computation from the raw files.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, SAMPLE, shared_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell import engine
from crosssell.adapters import read_mapping
from crosssell.errors import (
    CapabilityError,
    DataQualityWarning,
    DataValidationError,
    ParameterError,
)

EXAMPLES = ROOT / "data" / "examples"
PROPERTY = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def table(expr) -> pd.DataFrame:
    return engine.execute(expr)


def customers_of(data) -> pd.DataFrame:
    return table(data.customers).sort_values("customer_id").set_index("customer_id")


# --------------------------------------------------------------------------------------------
# wide


WIDE = pd.DataFrame(
    {
        "id": ["a", "b", "c"],
        "months": [3, 12, 1.5],
        "Phone": ["Yes", "No", "yes "],
        "TV": ["Yes", "No internet service", "No"],
        "Line": ["Fiber optic", "No", "DSL"],
        "Left": ["No", "Yes", "0"],
        "plan": ["Pro", "Basic", "Pro"],
    }
)
WIDE_PRODUCTS = {"Phone": {}, "TV": "television", "Line": {"yes": ["DSL", "Fiber optic"]}}


def wide(frame=WIDE, **kw):
    args = dict(customer_id="id", products=WIDE_PRODUCTS, tenure="months", churn="Left",
                reference_date="2024-03-31")
    return cs.from_wide(frame, **{**args, **kw})


@pytest.fixture(scope="module")
def wide_data():
    return wide()


def test_wide_builds_customers_and_held_products(wide_data):
    data = wide_data
    cust = customers_of(data)
    # a: 2024-03-31 - 3 calendar months; b: churned (flag) at the reference date, minus 12
    # months; c: 1.5 months is not whole -> round(1.5 * 30.436875 = 45.66) = 46 days back
    assert cust["signup_date"].tolist() == [pd.Timestamp(d) for d in ("2023-12-31", "2023-03-31", "2024-02-14")]
    assert cust["churn_date"].isna().tolist() == [True, False, True]
    assert cust.loc["b", "churn_date"] == pd.Timestamp("2024-03-31")
    assert data.attributes == ("plan",)
    held = table(data.purchases).groupby("customer_id")["product_id"].apply(sorted).to_dict()
    assert held == {"a": ["Line", "Phone", "television"], "c": ["Line", "Phone"]}
    # products are dated at signup: the export only knows what is held
    p = table(data.purchases).merge(cust.reset_index(), on="customer_id")
    assert (p["purchased_at"] == p["signup_date"]).all()
    assert set(data.definitions) == {"churn", "signup", "purchases"}
    assert "reference date" in data.definitions["churn"]


def test_wide_ratio_held_at_the_reference_date(wide_data):
    data = wide_data
    held = cs.cross_sell_ratio(data, basis="held")
    # b churned at the reference date and holds nothing: (3 + 2) products / 2 active customers
    assert held[["numerator", "denominator"]].iloc[0].tolist() == [5, 2]
    assert held["ratio"].iloc[0] == 2.5
    everyone = cs.cross_sell_ratio(data, customers="all")
    assert everyone["ratio"].iloc[0] == pytest.approx(5 / 3)
    dist = cs.product_distribution(data, customers="all", basis="sold")
    assert dict(zip(dist["products"], dist["customers"], strict=True)) == {0: 1, 2: 1, 3: 1}


def test_wide_base_products_are_held_but_not_counted():
    data = wide(base=["Phone"])
    assert data.base_products() == ["Phone"]
    held = cs.cross_sell_ratio(data, basis="held")
    assert held["numerator"].iloc[0] == 3  # a: television + Line, c: Line


def test_wide_tenure_in_years_weeks_and_days():
    frame = pd.DataFrame({"id": ["x", "y", "z"], "t": [1, 2, 0], "P": ["yes", "no", "1"]})
    years = customers_of(cs.from_wide(frame, customer_id="id", products=["P"], tenure="t",
                                      tenure_unit="years", reference_date="2024-02-29"))
    # calendar years: 2024-02-29 minus one year is 2023-02-28 (no 29 February in 2023)
    assert years["signup_date"].tolist() == [pd.Timestamp("2023-02-28"), pd.Timestamp("2022-02-28"),
                                             pd.Timestamp("2024-02-29")]
    weeks = customers_of(cs.from_wide(frame, customer_id="id", products=["P"], tenure="t",
                                      tenure_unit="weeks", reference_date="2024-02-29"))
    assert weeks["signup_date"].tolist() == [pd.Timestamp("2024-02-22"), pd.Timestamp("2024-02-15"),
                                             pd.Timestamp("2024-02-29")]
    days = cs.from_wide(frame, customer_id="id", products=["P"], tenure="t", tenure_unit="days",
                        reference_date="2024-02-29")
    assert customers_of(days)["signup_date"].tolist() == [pd.Timestamp("2024-02-28"), pd.Timestamp("2024-02-27"),
                                                          pd.Timestamp("2024-02-29")]
    assert not days.has_churn  # no churn column given


def test_wide_churned_on_dates_the_flag():
    data = wide(churned_on="2024-03-01")
    cust = customers_of(data)
    # b left on 2024-03-01 after 12 months: signup 2023-03-01
    assert cust.loc["b", "churn_date"] == pd.Timestamp("2024-03-01")
    assert cust.loc["b", "signup_date"] == pd.Timestamp("2023-03-01")
    with pytest.raises(ParameterError, match="after the reference date"):
        wide(churned_on="2024-04-01")


def test_wide_with_signup_and_churn_date_columns():
    frame = pd.DataFrame({"id": ["a", "b"], "since": ["2023-01-10", "2023-06-01"], "until": ["", "2024-01-15"],
                          "P": ["Y", "N"], "Q": ["true", "true"]})
    data = cs.from_wide(frame, customer_id="id", products=["P", "Q"], signup_date="since", churn_date="until")
    cust = customers_of(data)
    assert cust["churn_date"].isna().tolist() == [True, False]
    # no tenure: the reference date is the latest date seen (b's churn)
    assert data.reference_date == pd.Timestamp("2024-01-15")
    assert cs.cross_sell_ratio(data, customers="all")["numerator"].iloc[0] == 3


def test_wide_values_outside_the_vocabulary_are_listed():
    frame = WIDE.assign(TV=["Maybe", "Maybe", "?"], Line=["DSL", "No", "Fiber optic"])
    with pytest.raises(DataValidationError) as err:
        wide(frame, products=["Phone", "TV", "Line"])
    problems = {p.column: p for p in err.value.problems}
    assert set(problems) == {"TV", "Line"}
    assert problems["TV"].count == 3
    assert "'Maybe' (2 rows), '?' (1 row)" in problems["TV"].message
    assert problems["Line"].examples == ("DSL", "Fiber optic")
    assert "products={'Line': {'yes': [...]" in str(err.value)


def test_wide_extra_vocabulary_and_missing_cells():
    frame = WIDE.assign(Phone=["Sí", None, "no"])
    with pytest.raises(DataValidationError, match=r"'Sí' \(1 row\), \(empty\) \(1 row\)"):
        wide(frame)
    data = wide(frame, yes=["sí"], missing="no")
    held = table(data.purchases)
    assert sorted(held.loc[held["product_id"] == "Phone", "customer_id"]) == ["a"]


def test_wide_churn_flag_outside_the_vocabulary():
    with pytest.raises(DataValidationError) as err:
        wide(WIDE.assign(Left=["No", "Gone", "2"]))
    (problem,) = err.value.problems
    assert (problem.table, problem.column, problem.count) == ("customers", "Left", 2)
    assert "missing='no'" not in problem.message  # that option is for product cells


def test_wide_mapping_naming_absent_columns_lists_the_columns():
    with pytest.raises(DataValidationError) as err:
        wide(customer_id="ID", products=["Phone", "TVs"], churn="Churn")
    text = str(err.value)
    assert [p.column for p in err.value.problems] == ["ID", "TVs", "Churn"]
    assert "columns found: id, months, Phone, TV, Line, Left, plan" in text
    assert "did you mean 'TV'" in text
    with pytest.raises(DataValidationError, match="attributes names the column 'region'"):
        wide(attributes=["plan", "region"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reference_date": None}, "reference_date is required with tenure"),
        ({"signup_date": "months"}, "give tenure .* or signup_date"),
        ({"tenure_unit": "quarters"}, "tenure_unit must be one of"),
        ({"products": []}, "products must name the product columns"),
        ({"products": "Phone"}, "products must name the product columns"),
        ({"products": {"Phone": {"yes": ["Y"], "colour": "red"}}}, "unknown option"),
        ({"products": {"Phone": "P", "TV": "P"}}, "given to more than one column"),
        ({"base": ["Radio"]}, "not among the products"),
        ({"missing": "maybe"}, "missing must be one of"),
        ({"churned_on": "2024-01-01", "churn": None}, "needs churn="),
        ({"churn_date": "months"}, "not both"),
        ({"attributes": {"plan": "ratio"}}, "reserved"),
    ],
)
def test_wide_parameter_errors(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        wide(**kwargs)


def test_wide_bad_tenures_are_listed():
    frame = WIDE.assign(months=["3", "-1", "soon"])
    with pytest.raises(DataValidationError) as err:
        wide(frame)
    (problem,) = err.value.problems
    assert problem.count == 2 and set(problem.examples) == {"-1", "soon"}
    with pytest.raises(DataValidationError, match="missing tenures"):
        wide(WIDE.assign(months=[3, None, 1]))


def test_wide_from_a_csv_file_keeps_text_ids(tmp_path):
    frame = WIDE.assign(id=["007", "008", "010"])
    frame.to_csv(tmp_path / "export.csv", index=False)
    data = wide(str(tmp_path / "export.csv"))
    assert sorted(customers_of(data).index) == ["007", "008", "010"]
    assert data.sources["customers"] == str(tmp_path / "export.csv")
    assert set(data.fingerprint()) == {"customers", "purchases"}
    # a folder with one data file needs no file name; with two it must be named
    assert len(customers_of(wide(str(tmp_path)))) == 3
    frame.to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(ParameterError, match="holds 2 data files"):
        wide(str(tmp_path))
    with pytest.raises(ParameterError, match="did you mean 'export.csv'"):
        wide(str(tmp_path), file="exports.csv")
    assert len(customers_of(wide(str(tmp_path), file="export.csv"))) == 3


# --------------------------------------------------------------------------------------------
# counts


BANK = pd.DataFrame({"id": [1, 2, 3, 4], "years": [2, 5, 1, 3], "n": [1, 2, 4, 0], "Exited": [0, 0, 1, 0],
                     "Geography": ["FR", "ES", "FR", "DE"]})


def counts(frame=BANK, **kw):
    args = dict(customer_id="id", count="n", tenure="years", tenure_unit="years", churn="Exited",
                reference_date="2024-12-31")
    return cs.from_counts(frame, **{**args, **kw})


@pytest.fixture(scope="module")
def bank_counts():
    return counts()


def test_counts_become_anonymous_products(bank_counts):
    data = bank_counts
    assert data.has_product_ids is False
    assert data.products_list() == ["product_1", "product_2", "product_3", "product_4"]
    dist = cs.product_distribution(data, customers="all", basis="sold")
    assert dict(zip(dist["products"], dist["customers"], strict=True)) == {0: 1, 1: 1, 2: 1, 4: 1}
    ratio = cs.cross_sell_ratio(data, customers="all")
    assert ratio["ratio"].iloc[0] == pytest.approx((1 + 2 + 4 + 0) / 4)
    # held at the reference date: customer 3 (4 products) churned then -> (1 + 2 + 0) / 3
    assert cs.cross_sell_ratio(data, basis="held")["ratio"].iloc[0] == pytest.approx(1.0)
    assert customers_of(data).loc["3", "churn_date"] == pd.Timestamp("2024-12-31")
    assert data.attributes == ("Geography",)


@pytest.mark.parametrize("question", ["penetration", "affinity", "acquisition_order", "next_best_product",
                                      "evaluate_recommendations", "whitespace"])
def test_counts_refuse_questions_that_need_product_identities(bank_counts, question):
    with pytest.raises(CapabilityError, match="product identities"):
        getattr(cs, question)(bank_counts)


def test_counts_base_products():
    data = counts(base=1)
    assert data.base_products() == ["product_1"]
    # every customer's first product is the base: (0 + 1 + 3 + 0) / 4
    assert cs.cross_sell_ratio(data, customers="all")["ratio"].iloc[0] == pytest.approx(1.0)
    with pytest.raises(ParameterError, match="whole number"):
        counts(base=-1)


def test_counts_bad_values_are_listed():
    with pytest.raises(DataValidationError) as err:
        counts(BANK.assign(n=["1", "2.5", "-1", "many"]))
    (problem,) = err.value.problems
    assert problem.count == 3 and set(problem.examples) == {"2.5", "-1", "many"}
    with pytest.raises(DataValidationError, match=r"missing product counts \(customer ids shown\)"):
        counts(BANK.assign(n=[1, None, 2, 3]))
    with pytest.raises(DataValidationError, match="count names the column 'NumOfProducts'"):
        counts(count="NumOfProducts")


# --------------------------------------------------------------------------------------------
# transactions


LOG = pd.DataFrame(
    [
        # invoice, customer, product, qty, when, price, country, description
        ("100", "A", "X", 2, "2024-01-05 10:00", 5.0, "UK", "Mug"),
        ("100", "A", "Y", 1, "2024-01-05 10:00", 10.0, "UK", "Plate"),
        ("C101", "A", "Y", 1, "2024-01-20 09:00", 10.0, "FR", "Plate"),  # cancellation, positive qty
        ("102", "B", "X", 3, "2024-02-01 12:00", 5.0, "DE", "mug?"),
        ("103", None, "X", 1, "2024-02-02 12:00", 5.0, "UK", "Mug"),  # no customer
        ("104", "B", "POST", 1, "2024-02-01 12:00", 15.0, "DE", "Postage"),  # not a product
        ("105", "C", "Z", 1, "2024-08-01 08:00", 2.0, "UK", "Bowl"),
        ("106", "B", "Z", 1, "2024-09-15 08:00", 2.0, "DE", "Bowl"),  # after the reference date
    ],
    columns=["Invoice", "Customer", "SKU", "Qty", "When", "Price", "Country", "Description"],
)


def transactions(log=LOG, **kw):
    args = dict(customer_id="Customer", product_id="SKU", timestamp="When", quantity="Qty", price="Price",
                invoice="Invoice", churn_after="90D", exclude_products=["POST"], reference_date="2024-09-01",
                attributes=["Country"], product_name="Description")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return cs.from_transactions(log, **{**args, **kw})


@pytest.fixture(scope="module")
def retail():
    return transactions()


def test_transactions_count_what_they_exclude(retail):
    data = retail
    info = data.quality["tables"]["purchases"]
    assert info["rows_read"] == 8
    assert info["excluded"] == {"no_customer_id": 1, "after_reference_date": 1, "not_a_product": 1}
    assert info["notes"]["cancellation_lines"] == 1
    summary = data.summary().set_index("table")
    assert summary.loc["purchases", "rows_used"] == 5


def test_transactions_net_cancellations_against_sales(retail):
    data = retail
    lines = table(data.purchases).sort_values(["customer_id", "purchased_at", "product_id"])
    cancel = lines[lines["purchased_at"] == pd.Timestamp("2024-01-20 09:00")]
    assert cancel[["quantity", "revenue"]].iloc[0].tolist() == [-1.0, -10.0]
    # A's Y nets to 1 - 1 = 0, so only X counts for A; B has X, C has Z: 3 products / 3 customers
    ratio = cs.cross_sell_ratio(data)
    assert ratio[["numerator", "denominator"]].iloc[0].tolist() == [3, 3]
    # revenue: A 2*5 + 10 - 10 = 10, B 3*5 = 15, C 2 -> 27 / 3 customers
    assert cs.arpu(data)["arpu"].iloc[0] == pytest.approx(9.0)


def test_transactions_inactivity_churn_is_censored_at_the_reference_date(retail):
    data = retail
    cust = customers_of(data)
    assert cust["signup_date"].tolist() == [pd.Timestamp(d) for d in ("2024-01-05", "2024-02-01", "2024-08-01")]
    # A's last purchase 2024-01-05 (the cancellation is not a purchase) + 90 days = 2024-04-04;
    # B's 2024-02-01 + 90 = 2024-05-01; C's 2024-08-01 + 90 = 2024-10-30 is after the
    # reference date 2024-09-01: still a customer
    assert cust["churn_date"].tolist()[:2] == [pd.Timestamp("2024-04-04"), pd.Timestamp("2024-05-01")]
    assert pd.isna(cust.loc["C", "churn_date"])
    assert "90 days" in data.definitions["churn"] and "censored" in data.definitions["churn"]
    assert not transactions(churn_after=None).has_churn


def test_transactions_attributes_and_product_names():
    with pytest.warns(DataQualityWarning, match="more than one 'Country'"):
        data = cs.from_transactions(LOG, customer_id="Customer", product_id="SKU", timestamp="When",
                                    attributes=["Country"], product_name="Description")
    # A bought in the UK first, then cancelled from France: the first line's value is kept
    assert customers_of(data)["Country"].to_dict() == {"A": "UK", "B": "DE", "C": "UK"}
    names = table(data.products).set_index("product_id")["name"].to_dict()
    assert names["X"] == "Mug"  # "Mug" twice, "mug?" once: the most frequent description


def test_transactions_date_format(retail):
    us = LOG.assign(When=["1/5/2024 10:00", "1/5/2024 10:00", "1/20/2024 9:00", "2/1/2024 12:00",
                          "2/2/2024 12:00", "2/1/2024 12:00", "8/1/2024 8:00", "9/15/2024 8:00"])
    with pytest.raises(DataValidationError) as err:
        transactions(us)
    (problem,) = err.value.problems
    assert "no parsable timestamps" in problem.message and "date_format=" in problem.message
    # examples are the first distinct values in sort order
    assert problem.count == 8 and problem.examples[:2] == ("1/20/2024 9:00", "1/5/2024 10:00")
    parsed = transactions(us, date_format="%m/%d/%Y %H:%M")
    pd.testing.assert_frame_equal(table(parsed.purchases), table(retail.purchases))
    with pytest.raises(DataValidationError, match="the format '%d.%m.%Y' matches none"):
        transactions(us, date_format="%d.%m.%Y")


def test_transactions_bad_values_are_listed():
    bad = LOG.assign(When=LOG["When"].where(LOG.index != 1, "yesterday").where(LOG.index != 2, ""),
                     Qty=LOG["Qty"].astype(str).where(LOG.index != 3, "three"))
    with pytest.raises(DataValidationError) as err:
        transactions(bad)
    assert sorted((p.column, p.count) for p in err.value.problems) == [("Qty", 1), ("When", 1), ("When", 1)]
    text = str(err.value)
    assert "timestamps that do not parse" in text and "'yesterday'" in text
    assert "lines without a timestamp" in text and "line 4" in text  # row 2 + header + 1-based
    assert "quantities that are not numbers" in text and "'three'" in text


def test_transactions_from_parquet_with_typed_timestamps(retail, tmp_path):
    # Parquet keeps types: timestamps arrive as timestamps, quantities as integers
    LOG.assign(When=pd.to_datetime(LOG["When"])).to_parquet(tmp_path / "log.parquet")
    data = transactions(str(tmp_path / "log.parquet"))
    pd.testing.assert_frame_equal(table(data.purchases), table(retail.purchases))
    assert data.quality["tables"]["purchases"]["excluded"] == retail.quality["tables"]["purchases"]["excluded"]


@pytest.mark.parametrize("value", ["6M", 0, -5, "1.5D", True])
def test_transactions_churn_after_must_be_whole_days(value):
    with pytest.raises(ParameterError, match="churn_after"):
        transactions(churn_after=value)


def test_transactions_parameter_and_mapping_errors():
    with pytest.raises(ParameterError, match="not both"):
        transactions(revenue="Price")
    with pytest.raises(DataValidationError, match="invoice names the column 'InvoiceNo'"):
        transactions(invoice="InvoiceNo")
    with pytest.raises(DataValidationError, match="empty"):
        transactions(LOG.iloc[:0])


# --------------------------------------------------------------------------------------------
# properties


@st.composite
def wide_frames(draw):
    n = draw(st.integers(1, 8))
    k = draw(st.integers(1, 4))
    vocab = ["Yes", "No", "1", "0", "yes", "No internet service", "No phone service", " TRUE ", "f"]
    cells = draw(st.lists(st.lists(st.sampled_from(vocab), min_size=k, max_size=k), min_size=n, max_size=n))
    frame = pd.DataFrame(cells, columns=[f"S{j}" for j in range(k)])
    frame.insert(0, "id", [f"c{i}" for i in range(n)])
    frame["tenure"] = draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
    frame["churn"] = draw(st.lists(st.sampled_from(["Yes", "No"]), min_size=n, max_size=n))
    return frame


def _has(value: str) -> bool:
    return value.strip().lower() in ("yes", "1", "true")


@PROPERTY
@given(wide_frames())
def test_wide_counts_every_yes_cell(frame):
    products = [c for c in frame.columns if c.startswith("S")]
    held = frame[products].map(_has)
    if not held.to_numpy().any():
        with pytest.raises(DataValidationError, match="no customer holds a product"):
            cs.from_wide(frame, customer_id="id", products=products, tenure="tenure", churn="churn",
                         reference_date="2024-06-30")
        return
    data = cs.from_wide(frame, customer_id="id", products=products, tenure="tenure", churn="churn",
                        reference_date="2024-06-30")
    everyone = cs.cross_sell_ratio(data, customers="all")
    assert everyone["numerator"].iloc[0] == held.to_numpy().sum()
    assert everyone["denominator"].iloc[0] == len(frame)
    # at the reference date only those who did not churn hold anything
    stay = (frame["churn"] == "No").to_numpy()
    at_ref = cs.cross_sell_ratio(data, basis="held")
    assert at_ref["numerator"].iloc[0] == held.to_numpy()[stay].sum()
    assert at_ref["denominator"].iloc[0] == stay.sum()
    dist = cs.product_distribution(data, customers="all", basis="sold")
    expected = held.sum(axis=1).value_counts().sort_index()
    assert dict(zip(dist["products"], dist["customers"], strict=True)) == expected.to_dict()


@PROPERTY
@given(st.lists(st.integers(0, 6), min_size=1, max_size=12))
def test_counts_distribution_is_the_counts(values):
    frame = pd.DataFrame({"id": range(len(values)), "n": values, "since": "2023-01-01"})
    if not any(values):
        with pytest.raises(DataValidationError, match="every product count is 0"):
            cs.from_counts(frame, customer_id="id", count="n", signup_date="since")
        return
    data = cs.from_counts(frame, customer_id="id", count="n", signup_date="since")
    dist = cs.product_distribution(data, customers="all", basis="sold")
    assert dict(zip(dist["products"], dist["customers"], strict=True)) == pd.Series(values).value_counts().to_dict()
    ratio = cs.cross_sell_ratio(data, customers="all")
    assert ratio["ratio"].iloc[0] == pytest.approx(np.mean(values))


@st.composite
def logs(draw):
    n = draw(st.integers(1, 25))
    rows = []
    for i in range(n):
        cancel = draw(st.booleans())
        rows.append({
            "inv": ("C" if cancel else "") + str(1000 + i),
            "cust": draw(st.sampled_from(["a", "b", "c", "d", None])),
            "sku": draw(st.sampled_from(["p1", "p2", "p3"])),
            "qty": draw(st.integers(1, 3)),
            "day": pd.Timestamp("2024-01-01") + pd.Timedelta(days=draw(st.integers(0, 200))),
        })
    frame = pd.DataFrame(rows)
    frame["day"] = frame["day"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return frame


@PROPERTY
@given(logs())
def test_transactions_count_pairs_with_positive_net_quantity(log):
    known = log.dropna(subset=["cust"])
    if known.empty:
        with pytest.raises(DataValidationError, match="empty"):
            cs.from_transactions(log, customer_id="cust", product_id="sku", timestamp="day", quantity="qty",
                                 invoice="inv")
        return
    data = cs.from_transactions(log, customer_id="cust", product_id="sku", timestamp="day", quantity="qty",
                                invoice="inv")
    signed = np.where(known["inv"].str.startswith("C"), -known["qty"], known["qty"])
    net = known.assign(q=signed).groupby(["cust", "sku"])["q"].sum()
    ratio = cs.cross_sell_ratio(data, customers="all")
    # every line lies inside the one all-time window: a pair counts when it nets above zero
    assert ratio["numerator"].iloc[0] == int((net > 0).sum())
    assert ratio["denominator"].iloc[0] == known["cust"].nunique()
    assert data.quality["tables"]["purchases"]["excluded"]["no_customer_id"] == log["cust"].isna().sum()


# --------------------------------------------------------------------------------------------
# mapping files


def test_mapping_files_are_valid():
    for name, adapter in (("telco", "wide"), ("bank", "counts"), ("online_retail", "transactions")):
        assert read_mapping(EXAMPLES / f"{name}.yml")["adapter"] == adapter
    # YAML 1.1 reads a `yes:` key as True; the mapping gets its name back
    telco = read_mapping(EXAMPLES / "telco.yml")
    assert telco["products"]["InternetService"] == {"yes": ["DSL", "Fiber optic"]}


def test_load_with_a_mapping_file(tmp_path):
    WIDE.to_csv(tmp_path / "export.csv", index=False)
    spec = tmp_path / "wide.yml"
    spec.write_text(
        "adapter: wide\nfile: export.csv\ncustomer_id: id\ntenure: months\nchurn: Left\n"
        "reference_date: '2024-03-31'\nproducts:\n  Phone: {}\n  TV: television\n"
        "  Line: {yes: [DSL, Fiber optic]}\n"
    )
    data = cs.load(tmp_path, mapping=spec)
    pd.testing.assert_frame_equal(customers_of(data), customers_of(wide()))
    # the reference date given to load wins over the mapping's
    later = cs.load(tmp_path, mapping=str(spec), reference_date="2024-04-30")
    assert customers_of(later).loc["a", "signup_date"] == pd.Timestamp("2024-01-30")
    with pytest.raises(ParameterError, match="columns= renames"):
        cs.load(tmp_path, mapping=spec, columns={"id": "customer_id"})
    with pytest.raises(ParameterError, match="on_orphans does not apply"):
        cs.load(tmp_path, mapping=spec, on_orphans="drop")


def test_load_with_the_tables_mapping_is_plain_load(sample_data):
    data = cs.load(SAMPLE, mapping={"adapter": "tables"})
    pd.testing.assert_frame_equal(data.summary(), sample_data.summary())
    assert data.attributes == sample_data.attributes


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"adapter": "sheet"}, "adapter must be one of wide, counts, transactions, tables"),
        ({"adapter": "wide", "customer": "id"}, r"unknown option\(s\) 'customer'.*did you mean 'customer_id'"),
        ({"adapter": "tables", "file": "x.csv"}, "unknown option"),
        (["adapter", "wide"], "must be a YAML file path or a dict"),
    ],
)
def test_bad_mappings(spec, message):
    with pytest.raises(ParameterError, match=message):
        read_mapping(spec)


def test_bad_mapping_files(tmp_path):
    with pytest.raises(ParameterError, match="not found"):
        read_mapping(tmp_path / "absent.yml")
    (tmp_path / "broken.yml").write_text("adapter: wide\n  products: [a, b\n")
    with pytest.raises(ParameterError, match="not valid YAML"):
        read_mapping(tmp_path / "broken.yml")
    (tmp_path / "list.yml").write_text("- adapter\n- wide\n")
    with pytest.raises(ParameterError, match="must hold a mapping"):
        read_mapping(tmp_path / "list.yml")


# --------------------------------------------------------------------------------------------
# the public datasets (../shared/data)


@pytest.mark.realdata
def test_telco_known_facts():
    path = shared_file("telco_churn", "WA_Fn-UseC_-Telco-Customer-Churn.csv")
    data = cs.load(path.parent, mapping=EXAMPLES / "telco.yml")
    cust = table(data.customers)
    assert len(cust) == 7043
    assert cust["churn_date"].notna().sum() == 1869
    # independent reference: count the services held per customer with pandas from the raw file
    raw = pd.read_csv(path, dtype=str)
    services = ["PhoneService", "MultipleLines", "OnlineSecurity", "OnlineBackup", "DeviceProtection",
                "TechSupport", "StreamingTV", "StreamingMovies"]
    held = raw[services].eq("Yes").sum(axis=1) + raw["InternetService"].isin(["DSL", "Fiber optic"])
    dist = cs.product_distribution(data, customers="all", basis="sold")
    assert dict(zip(dist["products"], dist["customers"], strict=True)) == held.value_counts().to_dict()
    pen = cs.penetration(data, customers="all", basis="sold").set_index("product_id")
    assert pen.loc["PhoneService", "customers"] == (raw["PhoneService"] == "Yes").sum()
    # signup = reference date - tenure months: 72 months before 2018-01-31
    assert cust["signup_date"].min() == pd.Timestamp("2012-01-31")


@pytest.mark.realdata
def test_bank_known_facts():
    path = shared_file("bank_churn", "Churn_Modelling.csv")
    data = cs.load(path.parent, mapping=EXAMPLES / "bank.yml")
    table_, _, _ = cs.customer_products(data, customers="all", basis="sold")
    per = table(table_)
    assert len(per) == 10000
    exit_rate = per.assign(left=per["churn_date"].notna()).groupby("n")["left"].mean()
    # the known "more is not always better" pattern: 27.7% / 7.6% / 82.7% / 100%
    assert exit_rate.round(3).tolist() == [0.277, 0.076, 0.827, 1.0]
    assert exit_rate.index.tolist() == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(CapabilityError):
        cs.penetration(data)
    assert set(data.attributes) >= {"region", "age", "active_member"}


@pytest.mark.realdata
def test_online_retail_known_facts():
    path = shared_file("online_retail", "OnlineRetail.csv.gz")
    with pytest.warns(DataQualityWarning, match="more than one 'Country'"):
        data = cs.load(path.parent, mapping=EXAMPLES / "online_retail.yml")
    info = data.quality["tables"]["purchases"]
    assert info["rows_read"] == 541909
    assert info["excluded"]["no_customer_id"] == 135080
    cust = table(data.customers)
    assert len(cust) == 4372
    assert data.reference_date == pd.Timestamp("2011-12-09")
    # independent reference from the raw file with pandas
    raw = pd.read_csv(path, dtype={"CustomerID": "string", "InvoiceNo": "string", "StockCode": "string"},
                      parse_dates=["InvoiceDate"])
    known = raw.dropna(subset=["CustomerID"])
    assert info["excluded"]["not_a_product"] == known["StockCode"].isin(_non_products()).sum()
    # netting: a (customer, stock code) counts when its quantity, cancellations included, nets above 0
    goods = known[~known["StockCode"].isin(_non_products())]
    net = goods.groupby(["CustomerID", "StockCode"])["Quantity"].sum()
    ratio = cs.cross_sell_ratio(data)
    assert ratio["numerator"].iloc[0] == (net > 0).sum()
    assert ratio["denominator"].iloc[0] == 4372
    # churn: last line with a positive quantity + 180 days on or before 2011-12-09
    last = known[known["Quantity"] > 0].groupby("CustomerID")["InvoiceDate"].max().dt.normalize()
    first = known.groupby("CustomerID")["InvoiceDate"].min().dt.normalize()
    last = last.reindex(first.index).fillna(first)
    churned = (last + pd.Timedelta(days=180) <= pd.Timestamp("2011-12-09")).sum()
    assert cust["churn_date"].notna().sum() == churned


def _non_products() -> list[str]:
    return read_mapping(EXAMPLES / "online_retail.yml")["exclude_products"]


def test_examples_readme_exists():
    text = (EXAMPLES / "README.md").read_text()
    for name in ("telco.yml", "bank.yml", "online_retail.yml"):
        assert name in text
    assert Path(EXAMPLES / "online_retail.yml").is_file()
