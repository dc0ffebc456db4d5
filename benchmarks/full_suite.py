"""The full analysis suite at scale: metrics, cohorts, tiers and churn, affinity.

Usage::

    .venv/bin/python benchmarks/full_suite.py [--sizes 1m,10m] [--repeat 1]
                                              [--memory-limit 10m=4GB] [--implementations crosssell,sql]

For every size it prepares a seeded Parquet folder (1M customers / ~10M purchase rows is the
cached dataset of ``run.py``; larger sizes are written in chunks of 1M customers with seeds
``SEED + i`` and the chunk number in the customer id, so 10M customers never sit in memory at
once), then runs, each in a fresh Python process,

* **crosssell**: ``cs.load(folder, memory_limit=...)`` and the analyses below, one by one;
* **SQL**: hand-written DuckDB SQL for the same questions where they are table work
  (``baseline_sql.py``'s definitions), under the same DuckDB memory limit.

The crosssell analyses: quarterly ratio by plan, distribution, penetration, the cohort table
(held, signup quarter x quarter), maturity curves (monthly ages), the quarterly trend with
intervals, the decomposition of the last quarter's change by cohort, tiers (one row per active
customer), churn by tier within 365 days, the 90-day landmark (with its Cox fit), Kaplan-Meier
survival by tier, and product affinity.  The decomposition, the landmark and survival are
statistics on top of engine counts with no single SQL statement to compare against: they are
timed for crosssell only.

Before timings are printed the counts both sides compute are compared (cohort table and maturity
numerators and customers, trend numerators and customers, tier sizes, churn per tier, the customers owning
each product pair); a disagreement exits with status 1.  Peak memory is the process's high-water
mark (``VmHWM``), which includes the pandas frames that come back (tiers: one row per customer).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as harness  # noqa: E402  (standard library only at its top)

CHUNK = 1_000_000
#: analyses both implementations run, with the key columns their counts are compared on
COMPARED = {
    "ratio_by_plan_q": (["period", "plan"], ["numerator", "denominator"]),
    "product_distribution": (["products"], ["customers"]),
    "penetration": (["product_id"], ["customers"]),
    "cohort_table": (["cohort", "period"], ["customers", "numerator"]),
    "maturity": (["cohort", "age"], ["customers", "numerator"]),
    "trend": (["period"], ["customers", "numerator"]),
    "tiers": (["tier"], ["customers"]),
    "churn_by_tier": (["tier"], ["customers", "churned"]),
    "affinity": (["product_a", "product_b"], ["customers_both"]),
}


# --------------------------------------------------------------------------------------------
# data


def prepare(folder: Path, customers: int) -> dict:
    """The Parquet folder for ``customers`` (cached by ``meta.json``); returns its meta."""
    if customers <= CHUNK:
        return harness.prepare_dataset(folder, customers)
    return _prepare_chunked(folder, customers)


def _prepare_chunked(folder: Path, customers: int) -> dict:
    """Chunks of 1M customers appended to one Parquet file per table (bounded memory)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from crosssell.sample import _arrow_for_file, generate

    want = {"customers": customers, "seed": harness.SEED, "chunk": CHUNK,
            "purchases_per_customer": harness.PURCHASES_PER_CUSTOMER,
            "generator": harness._generator_hash(), "prep_version": harness.PREP_VERSION}
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in want.items()):
            return meta
    print(f"generating {customers:,} customers in chunks of {CHUNK:,} into {folder} ...", flush=True)
    started = time.perf_counter()
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    writers: dict = {}
    rows = {"customers": 0, "purchases": 0, "surveys": 0}
    chunks = -(-customers // CHUNK)
    for i in range(chunks):
        n = min(CHUNK, customers - i * CHUNK)
        sample = generate(customers=n, seed=harness.SEED + i,
                          purchases_per_customer=harness.PURCHASES_PER_CUSTOMER)
        for name in rows:
            table = _arrow_for_file(getattr(sample, name))
            ids = pc.binary_join_element_wise(pa.scalar(f"K{i:02d}-"), table["customer_id"], "")
            table = table.set_column(table.column_names.index("customer_id"), "customer_id", ids)
            if name == "customers":
                s = table["signup_date"]
                table = table.append_column("cohort", pc.binary_join_element_wise(
                    pc.cast(pc.year(s), pa.string()), pc.cast(pc.quarter(s), pa.string()), "Q"))
            if name not in writers:
                writers[name] = pq.ParquetWriter(tmp / f"{name}.parquet", table.schema, compression="zstd")
            writers[name].write_table(table)
            rows[name] += table.num_rows
        if i == 0:
            pq.write_table(_arrow_for_file(sample.products), tmp / "products.parquet")
        del sample
        print(f"  chunk {i + 1}/{chunks} done ({time.perf_counter() - started:.0f} s)", flush=True)
    for w in writers.values():
        w.close()
    meta = {**want, "reference_date": harness.latest_date(tmp).isoformat(), "rows": rows,
            "generated_in_s": round(time.perf_counter() - started, 1),
            "bytes": {p.name: p.stat().st_size for p in sorted(tmp.glob("*.parquet"))}}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    return meta


# --------------------------------------------------------------------------------------------
# the two implementations


def _crosssell_suite(folder: str, ref: str, memory_limit: str | None, temp: str) -> tuple[dict, dict]:
    import warnings

    import crosssell as cs

    warnings.simplefilter("ignore")  # small-segment and similar notices are not the point here
    t = {}
    s = time.perf_counter()
    data = cs.load(folder, reference_date=ref, memory_limit=memory_limit, temp_directory=temp)
    t["load"] = time.perf_counter() - s
    last = data.reference_date.to_period("Q")
    end = last if data.reference_date == last.end_time.normalize() else last - 1
    text = _period_text
    runs = {
        "ratio_by_plan_q": lambda: text(cs.cross_sell_ratio(data, period="Q", by="plan")),
        "product_distribution": lambda: cs.product_distribution(data),
        "penetration": lambda: cs.penetration(data),
        "cohort_table": lambda: text(cs.cohort_table(data, cohort="Q", period="Q"), "cohort"),
        "maturity": lambda: _cohort_curves(cs.maturity(data, cohort="Q", step="M")),
        "trend": lambda: text(cs.trend(data, period="Q")),
        "decompose_change": lambda: cs.decompose_change(data, start=str(end - 1), end=str(end), by="cohort"),
        "tiers": lambda: cs.tiers(data),
        "churn_by_tier": lambda: cs.churn_by_tier(data, horizon="365D"),
        "landmark": lambda: cs.landmark(data, at="90D", horizon="365D"),
        "survival_by_tier": lambda: cs.survival_by_tier(data, at="90D").summary,
        "affinity": lambda: cs.affinity(data, min_support=0.01),
    }
    return _timed(runs, t)


def _timed(runs: dict, t: dict) -> tuple[dict, dict]:
    """Run each analysis once, in order: its seconds into ``t``, its compared counts into ``out``."""
    out = {}
    for name, fn in runs.items():
        s = time.perf_counter()
        try:
            res = fn()
        except Exception as exc:
            if "OutOfMemory" not in type(exc).__name__:
                raise
            # out of memory under the limit: that query has no time (NaN, printed as such) and
            # the others still run, so the rest of the suite is compared
            print(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr, flush=True)
            t[name], out[name] = float("nan"), None
            continue
        t[name] = time.perf_counter() - s
        out[name] = _reduce(name, res)
    return t, out


def _cohort_curves(frame):
    """The per-cohort rows of the maturity curves (the pooled ones add them up), cohort as text."""
    frame = frame[~frame["pooled"]]
    return frame.assign(cohort=frame["cohort"].astype(str))


def _period_text(frame, *cols):
    for c in ("period", *cols):
        frame = frame.assign(**{c: frame[c].astype(str)})
    return frame


def _reduce(name: str, res):
    """The compared counts of a result (tiers: per-tier sizes; the rest: the key columns)."""
    import pandas as pd

    if name == "tiers":
        return res.groupby(res["tier"].astype(str)).size().rename("customers").reset_index()
    if name in COMPARED and isinstance(res, pd.DataFrame):
        keys, counts = COMPARED[name]
        return res[[*keys, *counts]].reset_index(drop=True)
    return None  # crosssell only: timed, not compared


def _sql_suite(folder: str, ref: str, memory_limit: str | None, temp: str) -> tuple[dict, dict]:
    import baseline_sql as b
    import duckdb

    t = {}
    s = time.perf_counter()
    h = b.load(folder, ref)
    if memory_limit:
        h.con.execute(f"SET memory_limit = '{memory_limit}'")
        # DuckDB's own advice when a query runs out of memory under a limit (the SQL ran out on
        # penetration at 10M customers and 4 GB without it); the queries sort what they return
        h.con.execute("SET preserve_insertion_order = false")
    h.con.execute(f"SET temp_directory = '{temp}'")
    t["load"] = time.perf_counter() - s
    assert isinstance(h.con, duckdb.DuckDBPyConnection)
    runs = {
        "ratio_by_plan_q": lambda: b.cross_sell_ratio(h, period="Q", by="plan"),
        "product_distribution": lambda: b.product_distribution(h),
        "penetration": lambda: b.penetration(h),
        "cohort_table": lambda: cohort_table_sql(h),
        "maturity": lambda: maturity_sql(h),
        "trend": lambda: trend_sql(h),
        "tiers": lambda: tiers_sql(h),
        "churn_by_tier": lambda: churn_by_tier_sql(h, horizon_days=365),
        "affinity": lambda: affinity_sql(h, min_support=0.01),
    }
    return _timed(runs, t)


# --------------------------------------------------------------------------------------------
# hand-written SQL for the analyses beyond the core suite (definitions: baseline_sql.py)


def cohort_table_sql(h):
    """Held add-ons per customer open at each quarter's end, by signup quarter (cohort <= period)."""
    import baseline_sql as b

    sql = f"""
    WITH {b._inputs(h, ["cohort"])},
    {b._periods(h, "Q")},
    {b._counted("Q", "held")},
    {b._population("held", ["cohort"])},
    {b._per_customer()}
    SELECT cohort, {b._label("Q")} AS period, count(*) AS customers, sum(n)::BIGINT AS numerator,
           sum(n)::DOUBLE / count(*) AS ratio
    FROM tbl GROUP BY ALL ORDER BY cohort, period
    """
    return h.df(sql)


def trend_sql(h):
    """Quarterly sold ratio with the moments of its delta-method interval (N, sum n, sum n^2)."""
    import baseline_sql as b

    sql = f"""
    WITH {b._inputs(h)},
    {b._periods(h, "Q")},
    {b._counted("Q", "sold")},
    {b._population("sold")},
    {b._per_customer()}
    SELECT {b._label("Q")} AS period, count(*) AS customers, sum(n)::BIGINT AS numerator,
           sum(n * n)::BIGINT AS sum_sq, sum(n)::DOUBLE / count(*) AS ratio
    FROM tbl GROUP BY ALL ORDER BY period
    """
    return h.df(sql)


def maturity_sql(h):
    """Held add-ons per customer by signup quarter and months since the signup month."""
    import baseline_sql as b

    after = (h.ref + _dt.timedelta(days=1)).isoformat()
    month = "(year({d}) * 12 + month({d}))"
    sql = f"""
    WITH {b._inputs(h, ["cohort"])},
    {b._periods(h, "M")},
    {b._counted("M", "held")},
    pop AS (
        SELECT p.pstart, c.customer_id, c.cohort,
               {month.format(d="p.pstart")} - {month.format(d="c.signup_date")} AS age
        FROM cust c JOIN periods p
          ON c.signup_date < p.pend AND (c.churn_date IS NULL OR c.churn_date >= p.pend)
        WHERE p.pend <= DATE '{after}'
    ),
    {b._per_customer()}
    SELECT cohort, age, count(*) AS customers, sum(n)::BIGINT AS numerator
    FROM tbl GROUP BY ALL ORDER BY cohort, age
    """
    return h.df(sql)


def _held_on(h, day: _dt.date, attrs=()) -> str:
    """``pts`` (customers active at the end of ``day``) and ``per`` (add-ons each holds then)."""
    import baseline_sql as b

    d = day.isoformat()
    return f"""
    {b._inputs(h, attrs)},
    kept AS (SELECT customer_id, product_id FROM buys GROUP BY ALL HAVING sum(quantity) > 0),
    pts AS (
        SELECT * FROM cust
        WHERE signup_date <= DATE '{d}' AND (churn_date IS NULL OR churn_date > DATE '{d}')
    ),
    held AS (
        SELECT customer_id, product_id
        FROM buys SEMI JOIN kept USING (customer_id, product_id)
        WHERE purchased_at::DATE <= DATE '{d}' AND (ended_at IS NULL OR ended_at > DATE '{d}')
        GROUP BY ALL HAVING sum(quantity) > 0
    ),
    mine AS (SELECT held.* FROM held SEMI JOIN pts USING (customer_id)),
    per AS (SELECT customer_id, count(*) AS n FROM mine GROUP BY customer_id)"""


def _tier(col: str) -> str:
    """The default tiers (bins 1, 2, 3, 5) as a CASE over a count column."""
    return (f"CASE WHEN {col} >= 5 THEN '5+' WHEN {col} >= 3 THEN '3–4' WHEN {col} = 2 THEN '2' "
            f"WHEN {col} = 1 THEN '1' ELSE '0' END")


def tiers_sql(h):
    """One row per active customer at the reference date: attributes, add-ons held, tier."""
    sql = f"""
    WITH {_held_on(h, h.ref, h.attributes)},
    t AS (SELECT pts.*, coalesce(per.n, 0) AS n FROM pts LEFT JOIN per USING (customer_id))
    SELECT customer_id, signup_date, {''.join(f'{a}, ' for a in h.attributes)}n AS n_products,
           {_tier("n")} AS tier
    FROM t ORDER BY customer_id
    """
    return h.df(sql)


def churn_by_tier_sql(h, *, horizon_days: int):
    """Tier at reference - horizon among customers active then; churned within the horizon."""
    as_of = h.ref - _dt.timedelta(days=horizon_days)
    until = as_of + _dt.timedelta(days=horizon_days)
    sql = f"""
    WITH {_held_on(h, as_of)},
    t AS (SELECT pts.churn_date, coalesce(per.n, 0) AS n FROM pts LEFT JOIN per USING (customer_id))
    SELECT {_tier('n')} AS tier, count(*) AS customers,
           count(*) FILTER (WHERE churn_date <= DATE '{until.isoformat()}') AS churned
    FROM t GROUP BY ALL ORDER BY tier
    """
    return h.df(sql)


def affinity_sql(h, *, min_support: float):
    """Customers owning both products of every pair of add-ons above the support floor (self-join)."""
    sql = f"""
    WITH {_held_on(h, h.ref)},
    size AS (SELECT count(*) AS n FROM pts),
    freq AS (
        SELECT product_id FROM mine GROUP BY product_id
        HAVING count(*) >= {min_support} * (SELECT n FROM size)
    ),
    own AS (SELECT * FROM mine SEMI JOIN freq USING (product_id))
    SELECT a.product_id AS product_a, b.product_id AS product_b, count(*) AS customers_both
    FROM own a JOIN own b ON a.customer_id = b.customer_id AND a.product_id < b.product_id
    GROUP BY ALL ORDER BY product_a, product_b
    """
    return h.df(sql)


SUITES = {"crosssell": _crosssell_suite, "sql": _sql_suite}


# --------------------------------------------------------------------------------------------
# processes, agreement, table


def _worker(args) -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="duckdb-spill-") as temp:
        timings, results = SUITES[args.worker](args.data, args.reference_date, args.memory_limit, temp)
    out = Path(args.out)
    with open(out.with_suffix(".pkl"), "wb") as fh:
        pickle.dump(results, fh)
    out.with_suffix(".json").write_text(json.dumps({
        "per_query_s": timings, "in_process_s": time.perf_counter() - started,
        "peak_rss_mb": harness.peak_rss_mb(),
    }))


def _run(name: str, folder: Path, meta: dict, memory_limit: str | None, workdir: Path) -> dict:
    busy = harness.cpu_busy(1.0)
    extra = ("--memory-limit", memory_limit) if memory_limit else ()
    res = harness.run_in_subprocess(name, folder, meta["reference_date"], workdir,
                                    script=__file__, extra_args=extra)
    return {**res, "busy_before": busy}


def compare(a: dict, b: dict) -> list[str]:
    """Differences in the counts both implementations computed (empty when they agree)."""
    problems = []
    for name, (keys, counts) in COMPARED.items():
        x, y = a.get(name), b.get(name)
        if x is None or y is None:
            continue
        x = x.astype({k: str for k in keys})
        y = y.astype({k: str for k in keys})
        if name == "affinity":
            # crosssell reports the pairs above the support floor; the SQL every co-owned pair
            y = y.merge(x[keys], on=keys)
        if name in ("cohort_table", "maturity"):
            x = x[x["customers"] > 0]  # crosssell completes the grid with empty cells
        m = x.merge(y, on=keys, how="outer", suffixes=("_x", "_y"), indicator=True)
        lonely = m[m["_merge"] != "both"]
        if len(lonely):
            problems.append(f"{name}: keys in one result only: {lonely[[*keys, '_merge']].head(5).to_dict('records')}")
            continue
        for c in counts:
            bad = m[m[f"{c}_x"].astype("int64") != m[f"{c}_y"].astype("int64")]
            if len(bad):
                problems.append(f"{name}.{c}: {len(bad)} of {len(m)} rows differ, e.g.\n"
                                f"{bad[[*keys, f'{c}_x', f'{c}_y']].head(5).to_string(index=False)}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1m,10m")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--implementations", default="crosssell,sql")
    ap.add_argument("--memory-limit", action="append", default=[], metavar="SIZE=LIMIT",
                    help="DuckDB memory limit for one size, e.g. 10m=4GB (default: 10m=4GB)")
    ap.add_argument("--data-dir", type=Path, default=harness.DATA_DIR)
    ap.add_argument("--results-dir", type=Path, default=harness.RESULTS_DIR)
    harness.add_worker_arguments(ap)
    args = ap.parse_args(argv)
    if args.worker:
        args.memory_limit = args.memory_limit[0] if args.memory_limit else None
        _worker(args)
        return 0

    limits = {"10m": "4GB"}
    for item in args.memory_limit:
        size, _, limit = item.partition("=")
        limits[size.lower()] = limit
    impls = [i.strip() for i in args.implementations.split(",") if i.strip()]
    report = {"machine": harness.machine_info(), "sizes": []}
    failed = False
    for text in args.sizes.split(","):
        n = harness.parse_size(text)
        label = harness.size_label(n)
        folder = args.data_dir / label
        meta = prepare(folder, n)
        limit = limits.get(text.strip().lower())
        runs = {i: [] for i in impls}
        errors: dict[str, str] = {}
        with tempfile.TemporaryDirectory() as work:
            for _ in range(args.repeat):
                for i in impls:
                    if i in errors:
                        continue
                    try:
                        runs[i].append(_run(i, folder, meta, limit, Path(work)))
                    except RuntimeError as exc:
                        # one side failing (out of memory under the limit) is a result: the other
                        # side's figures are still printed, and the run exits 1
                        errors[i] = str(exc)
                        failed = True
                        print(f"{label}: {exc}", flush=True)
        runs = {i: rs for i, rs in runs.items() if rs}
        if len(runs) == 2:
            problems = compare(runs[impls[0]][0]["results"], runs[impls[1]][0]["results"])
            if problems:
                failed = True
                print(f"{label}: the implementations disagree:\n" + "\n".join(problems))
        med = statistics.median
        summary = {}
        for i, rs in runs.items():
            queries = rs[0]["per_query_s"]
            summary[i] = {
                "per_query_s": {q: med(r["per_query_s"][q] for r in rs) for q in queries},
                "total_s": med(r["total_s"] for r in rs), "cpu_s": med(r["cpu_s"] for r in rs),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
                "busy_before": [round(r["busy_before"], 2) for r in rs],
            }
        report["sizes"].append({"label": label, "memory_limit": limit, "rows": meta["rows"],
                                "bytes": meta["bytes"], "implementations": summary,
                                "failed": {i: _error_line(e) for i, e in errors.items()}})
        _print(label, limit, meta, summary)
        for i, e in errors.items():
            print(f"{i}: FAILED — {_error_line(e)}")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for name in (f"full-{stamp}.json", "full-latest.json"):
        (args.results_dir / name).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failed else 0


def _error_line(text: str) -> str:
    """The line of a worker's traceback that names the error (the last one naming an Error)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    named = [ln for ln in lines if "Error" in ln or "Exception" in ln]
    return (named or lines or ["(no output)"])[-1]


def _print(label, limit, meta, summary) -> None:
    rows = meta["rows"]
    print(f"\n{label}: {rows['customers']:,} customers, {rows['purchases']:,} purchase rows, "
          f"DuckDB memory limit {limit or 'none'}")
    cs_q = summary.get("crosssell", {}).get("per_query_s", {})
    sql_q = summary.get("sql", {}).get("per_query_s", {})
    print(f"{'query':<22}{'crosssell s':>12}{'SQL s':>9}{'ratio':>8}")
    for q in dict.fromkeys([*cs_q, *sql_q]):
        a, b = cs_q.get(q), sql_q.get(q)
        ratio = f"{a / b:.2f}" if a is not None and b else "—"
        print(f"{q:<22}{a if a is not None else float('nan'):>12.2f}"
              f"{b if b is not None else float('nan'):>9.2f}{ratio:>8}")
    for i, s in summary.items():
        print(f"{i}: total {s['total_s']:.1f} s (process, import included), cpu {s['cpu_s']:.0f} s, "
              f"peak {s['peak_rss_mb']:,.0f} MB, busy before {s['busy_before']}")
    both = [q for q in sql_q if q in cs_q and not math.isnan(sql_q[q]) and not math.isnan(cs_q[q])]
    if both:
        print(f"crosssell / SQL on the shared queries: "
              f"{sum(cs_q[q] for q in both) / sum(sql_q[q] for q in both):.2f}x")


if __name__ == "__main__":
    sys.exit(main())
