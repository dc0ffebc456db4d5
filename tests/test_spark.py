"""Beyond one machine: the same metric expressions on Spark (local[2]) through Ibis's PySpark backend.

Spark reads the sample's CSV files itself (as text, like ``cs.load`` does in DuckDB), validation
and every metric run in Spark, and only compact results come back; they must equal DuckDB's to
the last digit for counts and to 1e-9 for ratios.  Tests skip only where no Java runtime exists.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import ibis
import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE

import crosssell as cs
from crosssell import engine
from crosssell.adapters import find_java
from crosssell.errors import DataQualityWarning, EngineError

pytestmark = [
    pytest.mark.spark,
    # pyspark 4.0's own pandas conversion passes copy=, which pandas 3 deprecates
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning"),
]

# Small local Spark: no UI, two shuffle partitions for tiny data, and no whole-stage code
# generation or adaptive re-planning, which cost more than they save on a few thousand rows
# (measured: the metric calls ran ~30% faster without them)
SPARK_CONFIG = {
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "1g",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.adaptive.enabled": "false",
    # a short-lived JVM: the quick (C1) compiler warms up faster than the optimising one
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}


@pytest.fixture(scope="session")
def spark_con(tmp_path_factory):
    """One local Spark session for the whole run (it takes ~8-20 s to start)."""
    if find_java() is None:
        pytest.skip(
            f"no Java runtime: java is not on PATH and JAVA_HOME={os.environ.get('JAVA_HOME', '(unset)')}"
        )
    con = cs.connect_spark(
        "local[2]",
        app_name="crosssell-tests",
        warehouse_dir=tmp_path_factory.mktemp("spark-warehouse"),
        shuffle_partitions=2,
        config=SPARK_CONFIG,
    )
    con._session.sparkContext.setLogLevel("ERROR")
    yield con
    con._session.stop()


@pytest.fixture(scope="session")
def spark_sample(spark_con):
    """The committed sample read by Spark and validated in Spark."""
    # cached in Spark's memory: validation scans each table a dozen times
    tables = {
        t: spark_con.read_csv(str(SAMPLE / f"{t}.csv"), inferSchema=False).cache()
        for t in ("customers", "purchases", "surveys", "products")
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return cs.from_ibis(**tables, materialize=True)


@pytest.fixture(scope="session")
def duck_sample():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return cs.load(SAMPLE)


def assert_same(duck: pd.DataFrame, spark: pd.DataFrame):
    """Counts identical, floats within 1e-9 (relative), same columns, rows and labels."""
    duck, spark = duck.reset_index(drop=True), spark.reset_index(drop=True)
    assert list(duck.columns) == list(spark.columns)
    assert len(duck) == len(spark)
    for col in duck.columns:
        a, b = duck[col], spark[col]
        if pd.api.types.is_float_dtype(a):
            np.testing.assert_allclose(b.to_numpy(float), a.to_numpy(float), rtol=1e-9, atol=0, equal_nan=True,
                                       err_msg=col)
        else:
            assert a.tolist() == b.tolist(), col
            assert a.dtype == b.dtype, col
    assert duck.attrs.get("definition") == spark.attrs.get("definition")


def test_spark_validates_like_duckdb(spark_sample, duck_sample):
    assert spark_sample.reference_date == duck_sample.reference_date
    assert spark_sample.attributes == duck_sample.attributes
    assert spark_sample.base_products() == duck_sample.base_products()
    pd.testing.assert_frame_equal(spark_sample.summary(), duck_sample.summary())
    assert type(spark_sample.con).__module__.startswith("ibis.backends.pyspark")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"period": "Q", "by": "plan"},
        {"period": "Y", "basis": "held", "count": "units"},
        {"period": "Q", "by": "category", "customers": "buyers"},
        # 36 months: the held basis from the changes of each holding (window functions)
        {"period": "M", "basis": "held", "customers": "all"},
    ],
    ids=["sold-quarter-plan", "held-units-year", "buyers-quarter-category", "held-month-changes"],
)
def test_ratio_on_spark_equals_duckdb(spark_sample, duck_sample, kwargs):
    duck = cs.cross_sell_ratio(duck_sample, **kwargs)
    assert duck["numerator"].sum() > 0  # a comparison of empty frames would prove nothing
    assert_same(duck, cs.cross_sell_ratio(spark_sample, **kwargs))


def test_customer_level_table_on_spark_equals_duckdb(spark_sample, duck_sample):
    # one row per (period, customer): the building block of every customer-level statistic
    rows = []
    for data in (duck_sample, spark_sample):
        table, _, _ = cs.customer_products(data, period="Y", by="region", basis="held")
        frame = engine.execute(table)
        rows.append(frame.sort_values(["__pidx", "customer_id"]).reset_index(drop=True))
    assert len(rows[0]) > 1000
    assert_same(rows[0], rows[1])


@pytest.mark.parametrize(
    "metric, kwargs",
    [
        ("product_distribution", {"period": "Y"}),
        ("multi_product_rate", {"by": "region"}),
        ("penetration", {"period": "Y"}),
        ("arpu", {"period": "Q"}),
    ],
)
def test_metric_on_spark_equals_duckdb(spark_sample, duck_sample, metric, kwargs):
    fn = getattr(cs, metric)
    assert_same(fn(duck_sample, **kwargs), fn(spark_sample, **kwargs))


def test_strip_keeps_the_letters_f_and_v_on_spark(spark_con):
    # Ibis 12 trims "' \\t\\n\\r\\v\\f'", which Spark reads as the letters v and f: crosssell
    # patches the compiler (crosssell.engine._fix_spark_strip); without it "false" -> "alse"
    values = [" jeff\t", "false", "dev ", "v", "\nFive\r"]
    table = spark_con.create_view("strip_check", ibis.memtable({"x": values}), overwrite=True)
    out = engine.execute(table.select(s=table.x.strip()))["s"].tolist()
    assert out == ["jeff", "false", "dev", "v", "Five"]


def test_connect_spark_without_java_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("crosssell.adapters.find_java", lambda: None)
    with pytest.raises(EngineError, match="Spark needs a Java runtime"):
        cs.connect_spark()


def test_find_java_honours_java_home(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert find_java() is None  # JAVA_HOME without bin/java: Spark could not start either
    exe = tmp_path / "bin" / "java"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    assert find_java() == str(exe)


def test_spark_that_cannot_start_is_a_clear_engine_error(tmp_path):
    # a "java" that exits at once: pyspark's gateway dies; run in a fresh process because a
    # session already running in this one would simply be reused
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'Error: broken JVM' >&2\nexit 1\n")
    java.chmod(0o755)
    script = textwrap.dedent(
        """
        import crosssell as cs
        from crosssell.errors import EngineError
        try:
            cs.connect_spark("local[1]")
        except EngineError as err:
            print("ENGINE_ERROR:", err)
        """
    )
    env = {**os.environ, "JAVA_HOME": str(home), "PATH": f"{home / 'bin'}:{os.environ['PATH']}"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert "ENGINE_ERROR: could not start Spark" in out.stdout, out.stdout + out.stderr
    assert "java -version" in out.stdout


def test_adapters_run_in_spark(spark_con):
    # a wide export already in Spark: the adapter builds the contract there, not in DuckDB
    frame = pd.DataFrame({"id": ["a", "b", "c", "jeff"], "months": [3, 12, 1, 30],
                          "Phone": ["Yes", "No", "yes", "Yes"], "TV": ["Yes", "No internet service", "No", "No"],
                          "Left": ["No", "Yes", "No", "No"]})
    source = spark_con.create_view("wide_export", ibis.memtable(frame), overwrite=True)
    kwargs = dict(customer_id="id", products=["Phone", "TV"], tenure="months", churn="Left",
                  reference_date="2024-03-31")
    on_spark = cs.from_wide(source, **kwargs)
    in_duck = cs.from_wide(frame, **kwargs)
    assert type(on_spark.con).__module__.startswith("ibis.backends.pyspark")
    for data in (on_spark, in_duck):
        assert sorted(engine.execute(data.customers)["customer_id"]) == ["a", "b", "c", "jeff"]
    assert_same(cs.cross_sell_ratio(in_duck, basis="held"), cs.cross_sell_ratio(on_spark, basis="held"))
    signup = [engine.execute(d.customers).sort_values("customer_id")["signup_date"].tolist()
              for d in (in_duck, on_spark)]
    assert signup[0] == signup[1]
