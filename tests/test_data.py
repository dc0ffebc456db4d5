"""The data contract: loading from CSV, CSV.GZ, Parquet and frames; every validation error path."""

from __future__ import annotations

import gzip
import warnings

import pandas as pd
import pytest

import crosssell as cs
from crosssell.errors import (
    DataQualityWarning,
    DataValidationError,
    MissingTableError,
    ParameterError,
)

CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["007", "008", "009"],
        "signup_date": ["2024-01-01", "2024-01-05", "2024-02-01"],
        "churn_date": ["", "2024-03-01", ""],
        "plan": ["Pro", "Basic", "Pro"],
    }
)
PURCHASES = pd.DataFrame(
    {
        "customer_id": ["007", "007", "008", "009"],
        "product_id": ["X", "Y", "X", "Y"],
        "purchased_at": ["2024-01-03", "2024-02-03 10:00:00", "2024-01-09", "2024-02-11"],
        "quantity": ["1", "2", "1", "1"],
        "revenue": ["10.5", "20", "10.5", "10"],
    }
)


def write(folder, customers=CUSTOMERS, purchases=PURCHASES, fmt="csv", **extra):
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"customers": customers, "purchases": purchases, **extra}
    for name, frame in tables.items():
        if fmt == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        elif fmt == "csv.gz":
            with gzip.open(folder / f"{name}.csv.gz", "wt") as fh:
                frame.to_csv(fh, index=False)
        else:
            frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def problems_of(exc_info) -> list[str]:
    return [str(p) for p in exc_info.value.problems]


# -- loading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet"])
def test_load_formats_agree_and_ids_stay_strings(tmp_path, fmt):
    data = cs.load(write(tmp_path / fmt, fmt=fmt))
    cust = data.customers.to_pandas().sort_values("customer_id")
    assert cust["customer_id"].tolist() == ["007", "008", "009"]  # leading zeros kept
    assert str(cust["signup_date"].dtype).startswith("datetime64")
    assert data.attributes == ("plan",)
    assert data.reference_date == pd.Timestamp("2024-03-01")  # the latest date: 008's churn
    res = cs.cross_sell_ratio(data)
    # 007: X, Y; 008: X; 009: Y -> 4 pairs over 3 customers
    assert (res["numerator"].item(), res["denominator"].item()) == (4, 3)


def test_integer_ids_in_frames_become_strings():
    customers = CUSTOMERS.assign(customer_id=[7, 8, 9])
    purchases = PURCHASES.assign(customer_id=[7.0, 7.0, 8.0, 9.0])  # floats, as after a merge with gaps
    data = cs.from_frames(customers=customers, purchases=purchases)
    assert sorted(data.purchases.to_pandas()["customer_id"].unique()) == ["7", "8", "9"]


def test_column_mapping_flat_and_per_table(tmp_path):
    customers = CUSTOMERS.rename(columns={"customer_id": "CustomerID", "signup_date": "Joined"})
    purchases = PURCHASES.rename(columns={"customer_id": "CustomerID", "product_id": "SKU"})
    folder = write(tmp_path, customers, purchases)
    flat = cs.load(folder, columns={"CustomerID": "customer_id", "Joined": "signup_date", "SKU": "product_id"})
    nested = cs.load(
        folder,
        columns={
            "customers": {"CustomerID": "customer_id", "Joined": "signup_date"},
            "purchases": {"CustomerID": "customer_id", "SKU": "product_id"},
        },
    )
    for data in (flat, nested):
        assert cs.cross_sell_ratio(data)["numerator"].item() == 4
        assert data.customers.to_pandas()["customer_id"].str.startswith("00").all()


def test_optional_tables_and_kind_inference(tmp_path):
    surveys = pd.DataFrame({"customer_id": ["007", "008"], "responded_at": ["2024-02-01", "2024-02-02"], "score": [9, 3]})
    products = pd.DataFrame({"product_id": ["X", "Y"], "name": ["Ex", "Why"], "is_base": ["yes", "no"]})
    data = cs.load(write(tmp_path, surveys=surveys, products=products))
    # a score above 5 means the 0-10 NPS scale
    assert set(data.surveys.to_pandas()["kind"]) == {"nps"}
    assert data.base_products() == ["X"]
    # X is the base product: only Y counts -> 007-Y, 009-Y = 2 over 3
    assert cs.cross_sell_ratio(data)["numerator"].item() == 2


def test_missing_optional_table_is_a_clear_error(tmp_path):
    data = cs.load(write(tmp_path))
    with pytest.raises(MissingTableError, match="needs the surveys table"):
        data.require("surveys", "satisfaction by tier")


def test_reference_date_excludes_and_counts(tmp_path):
    with pytest.warns(DataQualityWarning, match="after the reference date"):
        data = cs.load(write(tmp_path), reference_date="2024-01-31")
    # purchases after 01-31: 007-Y (02-03) and 009-Y (02-11); customer 009 signs up 02-01
    excluded = data.excluded()
    assert excluded["customers.signup_after_reference_date"] == 1
    assert excluded["purchases.after_reference_date"] == 1
    assert excluded["purchases.customer_signs_up_after_reference_date"] == 1
    summary = data.summary().set_index("table")
    assert summary.loc["purchases", "rows_read"] == 4 and summary.loc["purchases", "rows_used"] == 2
    # churn on 03-01 is after the reference date: not known yet
    assert data.customers.to_pandas()["churn_date"].isna().all()


def test_purchases_before_signup_are_a_warning_and_kept():
    purchases = PURCHASES.assign(purchased_at=["2023-12-25", "2024-02-03", "2024-01-09", "2024-02-11"])
    with pytest.warns(DataQualityWarning, match=r"before the customer's signup date \(kept\) \(1 row\); e\.g\. '007'"):
        data = cs.from_frames(customers=CUSTOMERS, purchases=purchases)
    assert data.purchases.count().to_pyarrow().as_py() == 4


def test_orphans_error_by_default_and_drop_counts():
    purchases = PURCHASES.assign(customer_id=["007", "zzz", "008", "yyy"])
    with pytest.raises(DataValidationError) as err:
        cs.from_frames(customers=CUSTOMERS, purchases=purchases)
    assert "purchases.customer_id: rows for customers that are not in the customers table" in str(err.value)
    assert "(2 rows); e.g." in str(err.value) and "'zzz'" in str(err.value)
    with pytest.warns(DataQualityWarning):
        data = cs.from_frames(customers=CUSTOMERS, purchases=purchases, on_orphans="drop")
    assert data.excluded() == {"purchases.unknown_customer": 2}
    with pytest.raises(ParameterError, match="on_orphans"):
        cs.from_frames(customers=CUSTOMERS, purchases=PURCHASES, on_orphans="keep")


# -- every validation error, and all of them at once ------------------------------------------


def test_missing_column_names_found_columns_and_suggests():
    customers = CUSTOMERS.rename(columns={"signup_date": "SignupDate"})
    with pytest.raises(DataValidationError) as err:
        cs.from_frames(customers=customers, purchases=PURCHASES.drop(columns="product_id"))
    text = str(err.value)
    assert "customers.signup_date: required column 'signup_date' is missing" in text
    assert "columns found: customer_id, SignupDate, churn_date, plan" in text
    assert "did you mean 'SignupDate'" in text
    assert "purchases.product_id: required column 'product_id' is missing" in text


def test_mapping_naming_an_absent_column():
    with pytest.raises(DataValidationError, match=r"mapping\.CustID: the column mapping names 'CustID', which is in no table"):
        cs.from_frames(customers=CUSTOMERS, purchases=PURCHASES, columns={"CustID": "customer_id"})


def test_all_problems_are_listed_together():
    customers = CUSTOMERS.assign(
        customer_id=["007", "007", None],  # a duplicate and a missing id
        signup_date=["2024-01-01", "soon", "2024-02-01"],  # an unparsable date
        churn_date=["2023-12-01", "", ""],  # churn before signup
    )
    purchases = PURCHASES.assign(quantity=["1", "two", "1", "1"], revenue=["10", "20", "x", "10"])
    with pytest.raises(DataValidationError) as err:
        cs.from_frames(customers=customers, purchases=purchases)
    text = "\n".join(problems_of(err))
    assert "customers.signup_date: values that are not a date (1 row); e.g. 'soon'" in text
    assert "customers.customer_id: missing values" in text and "line 4" in text
    assert "customers.customer_id: duplicate customer ids (1 ids) (2 rows); e.g. '007'" in text
    assert "customers.churn_date: churn date before signup date (1 row); e.g. '007'" in text
    assert "purchases.quantity: values that are not a number (1 row); e.g. 'two'" in text
    assert "purchases.revenue: values that are not a number (1 row); e.g. 'x'" in text
    assert "purchases.customer_id: rows for customers that are not in the customers table" in text
    assert str(err.value).startswith("7 problems in the input data")


def test_empty_tables(tmp_path):
    folder = write(tmp_path, CUSTOMERS.iloc[:0], PURCHASES.iloc[:0])
    with pytest.raises(DataValidationError) as err:
        cs.load(folder)
    assert "customers: the table is empty" in str(err.value)
    assert "purchases: the table is empty" in str(err.value)


def test_missing_table_files(tmp_path):
    tmp_path.joinpath("customers.csv").write_text("customer_id,signup_date\n1,2024-01-01\n")
    with pytest.raises(DataValidationError, match="purchases: table not found: expected purchases.csv"):
        cs.load(tmp_path)
    with pytest.raises(ParameterError, match="is not a folder"):
        cs.load(tmp_path / "nope")


def test_two_files_for_one_table(tmp_path):
    write(tmp_path)
    PURCHASES.to_parquet(tmp_path / "purchases.parquet")
    with pytest.raises(ParameterError, match="more than one purchases file"):
        cs.load(tmp_path)


def test_survey_and_catalog_errors():
    surveys = pd.DataFrame(
        {"customer_id": ["007", "008"], "responded_at": ["2024-02-01", "2024-02-02"], "score": [7, 4], "kind": ["csat", "ces"]}
    )
    products = pd.DataFrame({"product_id": ["X", "X"], "is_base": ["maybe", "no"]})
    with pytest.raises(DataValidationError) as err:
        cs.from_frames(customers=CUSTOMERS, purchases=PURCHASES, surveys=surveys, products=products)
    text = "\n".join(problems_of(err))
    assert "surveys.kind: kind must be 'csat' or 'nps' (1 row); e.g. 'ces'" in text
    assert "surveys.score: scores out of range (csat 1-5, nps 0-10) (1 row); e.g. 7.0" in text
    assert "products.is_base: values that are not true/false" in text and "'maybe'" in text
    assert "products.product_id: duplicate product ids in the catalog (2 rows); e.g. 'X'" in text


def test_cancellation_before_purchase():
    purchases = PURCHASES.assign(ended_at=["2023-01-01", "", "", ""])
    with pytest.raises(DataValidationError, match=r"purchases.ended_at: cancelled \(ended_at\) before it was purchased \(1 row\)"):
        cs.from_frames(customers=CUSTOMERS, purchases=purchases)


def test_bad_reference_date_and_frames():
    with pytest.raises(ParameterError, match="is not a date"):
        cs.from_frames(customers=CUSTOMERS, purchases=PURCHASES, reference_date="someday")
    with pytest.raises(ParameterError, match="must be a pandas DataFrame"):
        cs.from_frames(customers=CUSTOMERS, purchases=[1, 2])


def test_validate_returns_problems_without_raising(tmp_path):
    bad = CUSTOMERS.assign(signup_date=["x", "2024-01-01", "2024-01-01"])
    problems, data = cs.validate(write(tmp_path, bad))
    assert data is None and any(p.column == "signup_date" for p in problems)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)
        problems, data = cs.validate(write(tmp_path / "ok"))
    assert data is not None and problems == []


def test_quantity_null_means_one_unit():
    purchases = PURCHASES.assign(quantity=["", "2", "1", "1"])
    data = cs.from_frames(customers=CUSTOMERS, purchases=purchases)
    assert sorted(data.purchases.to_pandas()["quantity"].tolist()) == [1.0, 1.0, 1.0, 2.0]


def test_from_ibis_keeps_the_work_in_that_backend():
    import ibis

    con = ibis.duckdb.connect()
    cust = con.create_table("my_customers", CUSTOMERS)
    purch = con.create_table("my_purchases", PURCHASES)
    data = cs.from_ibis(customers=cust, purchases=purch)
    assert data.con is con
    assert cs.cross_sell_ratio(data)["numerator"].item() == 4
    with pytest.raises(ParameterError, match="must be an Ibis table"):
        cs.from_ibis(customers=cust, purchases=PURCHASES)
