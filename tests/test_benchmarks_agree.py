"""The benchmark's three implementations agree: crosssell, hand-written DuckDB SQL, plain pandas.

The baselines in ``benchmarks/`` re-implement the definitions of ``crosssell.metrics`` without
crosssell (SQL through duckdb's own API, and pandas), so besides keeping the benchmark honest
they are an independent reference for the metrics.  Two datasets: a generated one (2,000
customers, ~10 purchase rows each) and a hand-made one whose every figure is worked out below.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crosssell.errors import DataQualityWarning

ROOT = Path(__file__).resolve().parent.parent
IMPLEMENTATIONS = ("crosssell", "sql", "pandas")


def _load_run_module():
    spec = importlib.util.spec_from_file_location("_bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run = _load_run_module()


def _suite(name, folder, reference_date):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return run.run_suite(name, folder, reference_date)[1]


# --------------------------------------------------------------------------------------------
# generated data


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench") / "c2000"
    meta = run.prepare_dataset(folder, 2000, seed=11, quiet=True)
    return folder, meta, {name: _suite(name, folder, meta["reference_date"]) for name in IMPLEMENTATIONS}


def test_generated_data_three_implementations_agree(generated):
    _, _, results = generated
    for other in ("sql", "pandas"):
        assert run.compare(results["crosssell"], results[other], names=("crosssell", other)) == []


def test_generated_data_results_are_consistent(generated):
    folder, meta, results = generated
    res = results["crosssell"]
    # no one signs up after the reference date, and everyone's relationship overlaps the whole
    # window: the overall denominator is every customer
    assert res["overall_ratio"]["denominator"].item() == 2000
    assert res["overall_ratio"]["numerator"].item() > 0
    # the distribution and penetration describe the same population (open at the reference date)
    population = res["penetration"]["population"].unique()
    assert len(population) == 1
    assert res["product_distribution"]["customers"].sum() == population[0]
    # and the add-ons held, counted per customer or per product, are the same pairs
    dist = res["product_distribution"]
    assert (dist["products"] * dist["customers"]).sum() == res["penetration"]["customers"].sum()
    # 12 quarters (2022Q1 .. 2024Q4) x 3 plans, and x 12 signup cohorts, grid complete
    assert len(res["ratio_by_plan_q"]) == 12 * 3
    assert len(res["ratio_by_cohort_q"]) == 12 * 12
    # a cohort has no customers before it signs up: denominator 0 and ratio NaN there
    before = res["ratio_by_cohort_q"]["period"] < res["ratio_by_cohort_q"]["cohort"]
    assert (res["ratio_by_cohort_q"].loc[before, "denominator"] == 0).all()
    assert res["ratio_by_cohort_q"].loc[before, "ratio"].isna().all()
    # the cohort column the harness adds is the signup quarter
    cust = pd.read_parquet(folder / "customers.parquet", columns=["signup_date", "cohort"])
    assert (pd.to_datetime(cust["signup_date"]).dt.to_period("Q").astype(str) == cust["cohort"]).all()


def test_prepared_data_is_reused(generated):
    folder, meta, _ = generated
    before = (folder / "purchases.parquet").stat().st_mtime_ns
    again = run.prepare_dataset(folder, 2000, seed=11, quiet=True)
    assert again == meta
    assert (folder / "purchases.parquet").stat().st_mtime_ns == before


# --------------------------------------------------------------------------------------------
# hand-made data: every rule of the definition, worked out by hand
#
# reference date 2024-06-30; BASE is the base product (never counts); quarters 2024Q1, 2024Q2
#
#   customer  signup      churn       plan   cohort
#   A         2024-01-10  -           Pro    2024Q1
#   B         2024-02-01  2024-05-15  Basic  2024Q1
#   C         2024-03-20  -           Basic  2024Q1
#   D         2024-04-02  2024-08-01  Pro    2024Q2   (churn after the reference date: not known yet)
#   E         2024-07-05  -           Pro    2024Q3   (signs up after the reference date: left out)
#   F         2024-05-01  -           Basic  2024Q2   (buys nothing)
#
#   A BASE 01-10 +1;  A X 03-25 +1, 04-03 -1 (returned across the quarter end: never counts);
#   A Y 02-10 +2 ended 05-20, 05-01 +1;  A Z 07-02 +1 (after the reference date)
#   B X 02-15 +1;  B Y 05-20 +1 (after B's churn, inside Q2 where B is active)
#   C X 03-25 +2, 03-28 -1 (partial return);  C Z 06-10 +1, 06-12 -1, 06-20 +1 (returned, re-bought)
#   D BASE 04-02 +1;  D W 04-05 +1 ended 09-01 (after the reference date: still held);
#   D X 06-01 quantity missing (= 1);  E BASE 07-06 +1


def _edge_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cust = pd.DataFrame(
        [("A", "2024-01-10", None, "Pro"), ("B", "2024-02-01", "2024-05-15", "Basic"),
         ("C", "2024-03-20", None, "Basic"), ("D", "2024-04-02", "2024-08-01", "Pro"),
         ("E", "2024-07-05", None, "Pro"), ("F", "2024-05-01", None, "Basic")],
        columns=["customer_id", "signup_date", "churn_date", "plan"],
    )
    for c in ("signup_date", "churn_date"):
        cust[c] = pd.to_datetime(cust[c]).dt.date
    cust["cohort"] = pd.to_datetime(cust["signup_date"]).dt.to_period("Q").astype(str)
    purch = pd.DataFrame(
        [("A", "BASE", "2024-01-10 09:00", 1, None), ("A", "X", "2024-03-25 10:00", 1, None),
         ("A", "X", "2024-04-03 11:00", -1, None), ("A", "Y", "2024-02-10 12:00", 2, "2024-05-20"),
         ("A", "Y", "2024-05-01 08:00", 1, None), ("A", "Z", "2024-07-02 08:00", 1, None),
         ("B", "X", "2024-02-15 08:00", 1, None), ("B", "Y", "2024-05-20 08:00", 1, None),
         ("C", "X", "2024-03-25 08:00", 2, None), ("C", "X", "2024-03-28 08:00", -1, None),
         ("C", "Z", "2024-06-10 08:00", 1, None), ("C", "Z", "2024-06-12 08:00", -1, None),
         ("C", "Z", "2024-06-20 08:00", 1, None), ("D", "BASE", "2024-04-02 08:00", 1, None),
         ("D", "W", "2024-04-05 08:00", 1, "2024-09-01"), ("D", "X", "2024-06-01 08:00", None, None),
         ("E", "BASE", "2024-07-06 08:00", 1, None)],
        columns=["customer_id", "product_id", "purchased_at", "quantity", "ended_at"],
    )
    purch["purchased_at"] = pd.to_datetime(purch["purchased_at"])
    purch["ended_at"] = pd.to_datetime(purch["ended_at"]).dt.date
    purch["quantity"] = purch["quantity"].astype("float64")
    prods = pd.DataFrame({"product_id": ["BASE", "W", "X", "Y", "Z"], "name": list("BWXYZ"),
                          "category": ["core"] + ["addon"] * 4, "is_base": [True] + [False] * 4})
    for name, frame in (("customers", cust), ("purchases", purch), ("products", prods)):
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{name}.parquet")
    return folder


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    folder = _edge_folder(tmp_path_factory.mktemp("edge") / "data")
    return folder, {name: _suite(name, folder, "2024-06-30") for name in IMPLEMENTATIONS}


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_hand_made_data_matches_hand_computed_figures(edge, name):
    _, results = edge
    res = results[name]
    # overall, sold: pairs netting > 0 among A, B, C, D, F (E is after the reference date):
    # A-Y, B-X, B-Y, C-X, C-Z, D-W, D-X = 7 (A-X nets to 0) over 5 customers = 1.4
    overall = res["overall_ratio"]
    assert (overall["numerator"].item(), overall["denominator"].item()) == (7, 5)
    assert overall["ratio"].item() == pytest.approx(1.4, abs=1e-12)
    # held at 06-30 by the customers open then (A, C, D, F; B churned 05-15):
    # A: Y (its cancelled sale is out, the 05-01 top-up is held) = 1; C: X, Z = 2; D: W, X = 2; F: 0
    dist = res["product_distribution"]
    assert dist["products"].tolist() == [0, 1, 2]
    assert dist["customers"].tolist() == [1, 1, 2]
    np.testing.assert_allclose(dist["share"], [0.25, 0.25, 0.5], atol=1e-12)
    # quarterly by plan, sold.  Q1 (A, B, C active): A-Y, B-X, C-X (A-X never counts)
    #   Pro: A 1/1; Basic: B, C 2/2.  Q2 (A, B, C, D, F): A-Y (top-up), B-Y, C-Z, D-W, D-X
    #   Pro: A 1 + D 2 = 3 over 2 = 1.5; Basic: B 1 + C 1 + F 0 = 2 over 3
    plan = res["ratio_by_plan_q"].assign(period=lambda f: f["period"].astype(str))
    plan = plan.set_index(["period", "plan"]).sort_index()
    assert plan["numerator"].tolist() == [2, 1, 2, 3]
    assert plan["denominator"].tolist() == [2, 1, 3, 2]
    np.testing.assert_allclose(plan["ratio"], [1.0, 1.0, 2 / 3, 1.5], atol=1e-12)
    # by signup cohort: Q1 cohort 2024Q1 3/3, cohort 2024Q2 has nobody yet (0/0, NaN);
    # Q2 cohort 2024Q1 (A, B, C) 3/3, cohort 2024Q2 (D 2, F 0) 2/2
    cohort = res["ratio_by_cohort_q"].assign(period=lambda f: f["period"].astype(str))
    cohort = cohort.set_index(["period", "cohort"]).sort_index()
    assert cohort["numerator"].tolist() == [3, 0, 3, 2]
    assert cohort["denominator"].tolist() == [3, 0, 3, 2]
    np.testing.assert_allclose(cohort["ratio"], [1.0, np.nan, 1.0, 1.0], atol=1e-12)
    # penetration at 06-30 among A, C, D, F (4): X by C and D (2/4); W, Y, Z by one each.
    # owners (holding anything, BASE included): A, C, D = 3, so X attaches at 2/3
    pen = res["penetration"].set_index("product_id").sort_index()
    assert pen.index.tolist() == ["W", "X", "Y", "Z"]
    assert pen["customers"].tolist() == [1, 2, 1, 1]
    assert (pen["population"] == 4).all()
    np.testing.assert_allclose(pen["share"], [0.25, 0.5, 0.25, 0.25], atol=1e-12)
    np.testing.assert_allclose(pen["attach_rate"], [1 / 3, 2 / 3, 1 / 3, 1 / 3], atol=1e-12)


def test_hand_made_data_three_implementations_agree(edge):
    _, results = edge
    for other in ("sql", "pandas"):
        assert run.compare(results["crosssell"], results[other], names=("crosssell", other)) == []


def test_held_at_quarter_end_ignores_a_pair_returned_later(edge):
    # A bought X on 03-25 and returned it on 04-03: the pair nets to 0, so it never counts, not
    # even as held at the end of Q1.  Held at 03-31 by A, B, C (D not signed up yet):
    # A-Y, B-X, C-X = 3 over 3; at 06-30 by A, C, D, F: A-Y, C-X, C-Z, D-W, D-X = 5 over 4
    folder, _ = edge
    import crosssell as cs

    with pytest.warns(DataQualityWarning, match="after the reference date"):
        data = cs.load(folder, reference_date="2024-06-30")
    got = {"crosssell": cs.cross_sell_ratio(data, period="Q", basis="held")}
    for name in ("sql", "pandas"):
        module = run.import_implementation(name)
        got[name] = module.cross_sell_ratio(module.load(folder, "2024-06-30"), period="Q", basis="held")
    for name, res in got.items():
        assert res["numerator"].tolist() == [3, 5], name
        assert res["denominator"].tolist() == [3, 4], name


# --------------------------------------------------------------------------------------------
# the agreement check itself can fail


def test_compare_reports_every_kind_of_difference(edge):
    _, results = edge
    base = results["sql"]
    assert run.compare(base, base) == []
    off_by_one = {**base, "penetration": base["penetration"].assign(
        customers=base["penetration"]["customers"] + np.array([1, 0, 0, 0]))}
    assert any("penetration.customers: 1 of 4 rows differ" in p for p in run.compare(base, off_by_one))
    nudged = {**base, "overall_ratio": base["overall_ratio"].assign(ratio=1.4 + 1e-6)}
    assert any("overall_ratio.ratio" in p for p in run.compare(base, nudged))
    within = {**base, "overall_ratio": base["overall_ratio"].assign(ratio=1.4 + 1e-12)}
    assert run.compare(base, within) == []
    # NaN only on one side is a difference (a segment with customers vs one without)
    cohort = base["ratio_by_cohort_q"].copy()
    cohort["ratio"] = cohort["ratio"].fillna(0.0)
    assert any("ratio_by_cohort_q.ratio" in p for p in run.compare(base, {**base, "ratio_by_cohort_q": cohort}))
    fewer = {**base, "ratio_by_plan_q": base["ratio_by_plan_q"].iloc[:-1]}
    assert any("keys in only one result" in p for p in run.compare(base, fewer))
    missing = {k: v for k, v in base.items() if k != "penetration"}
    assert any("penetration: missing" in p for p in run.compare(base, missing))


def test_sizes_are_read_or_refused():
    assert [run.parse_size(s) for s in ("100k", "1m", "2500", "1.5M")] == [100_000, 1_000_000, 2500, 1_500_000]
    with pytest.raises(SystemExit, match="cannot read"):
        run.parse_size("lots")
    with pytest.raises(SystemExit, match="not a positive"):
        run.parse_size("0")
