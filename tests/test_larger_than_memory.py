"""Larger than memory on one machine: Parquet read lazily by DuckDB under a memory cap.

The data is generated straight into Parquet by DuckDB (nothing passes through pandas) with
realistic wide keys: SHA-256 customer ids (64 characters, as warehouses hash e-mails) and long
product names.  Its in-memory (Arrow) size is more than twice the 64 MB DuckDB may use; the metric
suite must run under that cap and give exactly the numbers of an uncapped run.

DuckDB needs a minimum working memory per thread for chained hash aggregates and joins: at 2
threads it refuses a 64-80 MB cap with this query shape, at 1 thread it runs (measured on this
machine).  So the capped engine is opened with ``threads=1``, as DuckDB's own tuning guide
advises for tight memory limits.
"""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

import crosssell as cs

LIMIT_MB = 64
CUSTOMERS = 30_000
PURCHASES = 900_000
PRODUCTS = 30

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory):
    """customers.parquet and purchases.parquet, deterministic (DuckDB's hash of the row number)."""
    import duckdb

    folder = tmp_path_factory.mktemp("bigdata")
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT sha256(i::VARCHAR) AS customer_id,
                         DATE '2020-01-01' + (hash(i, 1) % 730)::INT AS signup_date,
                         CASE WHEN hash(i, 2) % 5 = 0 THEN DATE '2023-01-01' + (hash(i, 3) % 364)::INT END
                             AS churn_date,
                         ['Basic', 'Pro', 'Enterprise'][1 + (hash(i, 4) % 3)::INT] AS plan
                  FROM range({CUSTOMERS}) r(i))
            TO '{folder / "customers.parquet"}' (FORMAT parquet)"""
    )
    # purchases from 2022 on, after every signup; one line in 20 is a return of one unit
    con.execute(
        f"""COPY (SELECT sha256((hash(j, 5) % {CUSTOMERS})::VARCHAR) AS customer_id,
                         'Enterprise analytics add-on, advanced reporting module no. '
                             || (hash(j, 6) % {PRODUCTS})::VARCHAR AS product_id,
                         TIMESTAMP '2022-01-01' + to_seconds((hash(j, 7) % (730 * 86400))::BIGINT)
                             AS purchased_at,
                         CASE WHEN hash(j, 8) % 20 = 0 THEN -1.0 ELSE 1.0 + (hash(j, 9) % 3)::DOUBLE END
                             AS quantity
                  FROM range({PURCHASES}) r(j))
            TO '{folder / "purchases.parquet"}' (FORMAT parquet)"""
    )
    con.close()
    return folder


def _suite(data):
    return {
        "ratio": cs.cross_sell_ratio(data, period="Q", by="plan"),
        "distribution": cs.product_distribution(data, period="Y"),
        "penetration": cs.penetration(data),
    }


def _setting(data, name):
    return data.con.raw_sql(f"SELECT current_setting('{name}')").fetchone()[0]


def test_data_is_larger_than_the_memory_limit(big_folder):
    raw = sum(pq.read_table(big_folder / f).nbytes for f in ("customers.parquet", "purchases.parquet"))
    print(f"in-memory (Arrow) size: {raw / 1e6:.0f} MB; DuckDB limit: {LIMIT_MB} MB")
    # Arrow's in-memory size, ~137 MB: 900,000 lines x (64 + ~60 characters of strings, two
    # 4-byte offsets, 16 bytes of timestamp and quantity), plus the customers; DuckDB reads
    # "64MB" as 64 x 10^6 bytes
    assert raw > 2 * LIMIT_MB * 10**6


def test_load_on_parquet_is_lazy_and_takes_the_limits(big_folder, tmp_path):
    data = cs.load(big_folder, memory_limit=f"{LIMIT_MB}MB", temp_directory=tmp_path)
    # DuckDB reports 64 MB as 61.0 MiB (10^6 vs 2^20 bytes)
    assert _setting(data, "memory_limit") == "61.0 MiB"
    assert _setting(data, "temp_directory") == str(tmp_path)
    # nothing was copied into DuckDB: the tables are views over the Parquet files
    stored = data.con.raw_sql("SELECT count(*), coalesce(sum(estimated_size), 0) FROM duckdb_tables()").fetchone()
    assert stored == (0, 0)
    assert data.sources["purchases"].endswith("purchases.parquet")


def test_metric_suite_under_a_memory_limit_matches_an_unlimited_run(big_folder, tmp_path):
    con = cs.connect(memory_limit=f"{LIMIT_MB}MB", temp_directory=tmp_path, threads=1)
    capped = _suite(cs.load(big_folder, con=con))
    uncapped = cs.load(big_folder)
    free = _suite(uncapped)
    for name, frame in capped.items():
        pd.testing.assert_frame_equal(frame, free[name], check_exact=False, rtol=1e-12)
    ratio = capped["ratio"]
    # 8 quarters of purchases (2022-2023), 3 plans; every customer signed up before 2022
    assert set(ratio["plan"]) == {"Basic", "Pro", "Enterprise"}
    assert ratio.loc[ratio["period"] >= pd.Period("2022Q1", "Q"), "numerator"].gt(0).all()
    # products are distinct per customer, so the penetration counts add up to the all-time
    # numerator of the held ratio
    held = cs.cross_sell_ratio(uncapped, basis="held")
    assert capped["penetration"]["customers"].sum() == held["numerator"].iloc[0]


def test_the_capped_run_really_spills_to_disk(big_folder, tmp_path):
    # the same capped engine with no room on disk fails: the run above worked by spilling,
    # not because the working set happened to fit in 64 MB
    import duckdb

    con = cs.connect(memory_limit=f"{LIMIT_MB}MB", temp_directory=tmp_path, threads=1)
    con.raw_sql("SET max_temp_directory_size = '0KB'")
    data = cs.load(big_folder, con=con)
    with pytest.raises(duckdb.OutOfMemoryException, match="offload"):
        cs.cross_sell_ratio(data, period="Q", by="plan")
