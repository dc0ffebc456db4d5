"""Benchmark harness: the core metrics suite three ways, on generated data at 100k and 1M customers.

Usage::

    .venv/bin/python benchmarks/run.py [--sizes 100k,1m] [--repeat 3]

For every size it generates (once, cached in ``benchmarks/.data/``) a seeded sample with
``crosssell.sample.write_sample(..., format="parquet", purchases_per_customer=10)`` plus a
``cohort`` column (the signup quarter, e.g. ``2023Q2``) in ``customers.parquet``, then runs the
core metrics suite

* overall cross-sell ratio            ``cs.cross_sell_ratio(data)``
* product distribution                ``cs.product_distribution(data)``
* quarterly ratio by signup cohort    ``cs.cross_sell_ratio(data, period="Q", by="cohort")``
* quarterly ratio by plan             ``cs.cross_sell_ratio(data, period="Q", by="plan")``
* penetration                         ``cs.penetration(data)``

three ways — crosssell (``suite_crosssell.py``), hand-written DuckDB SQL (``baseline_sql.py``)
and plain pandas (``baseline_pandas.py``) — each in a fresh Python process, so that import costs
and peak memory (the child's ``ru_maxrss`` from ``os.wait4``) are honest.  Before any timing is
printed, the three results are compared: counts exactly, ratios and shares to 1e-9.  A
disagreement is printed and the run exits with status 1.

The table reports medians over ``--repeat`` runs (peak memory: the largest run), and the results
go to ``benchmarks/results/<timestamp>.json`` and ``benchmarks/results/latest.json``.

This file imports only the standard library at the top: in ``--worker`` mode it is the child
process, and what it imports is what the implementation under test costs.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import importlib.util
import json
import os
import pickle
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA_DIR = HERE / ".data"
RESULTS_DIR = HERE / "results"

#: implementation name -> module file in benchmarks/
IMPLEMENTATIONS = {
    "crosssell": "suite_crosssell.py",
    "sql": "baseline_sql.py",
    "pandas": "baseline_pandas.py",
}
#: metric -> key columns (the rest are compared as values)
KEYS = {
    "overall_ratio": [],
    "product_distribution": ["products"],
    "ratio_by_cohort_q": ["period", "cohort"],
    "ratio_by_plan_q": ["period", "plan"],
    "penetration": ["product_id"],
}
#: value columns compared exactly (counts); every other value column is compared to ``TOL``
COUNTS = {"numerator", "denominator", "customers", "population"}
TOL = 1e-9
SEED = 2024
PURCHASES_PER_CUSTOMER = 10
#: bump when the prepared files change shape (invalidates the cache)
PREP_VERSION = 1


# --------------------------------------------------------------------------------------------
# data


def parse_size(text: str) -> int:
    """``"100k"`` -> 100000, ``"1m"`` -> 1000000, ``"2500"`` -> 2500."""
    t = text.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    number = t[:-1] if mult > 1 else t
    try:
        value = int(float(number) * mult)
    except ValueError:
        raise SystemExit(f"--sizes: cannot read {text!r}; use e.g. 100k, 1m or 25000") from None
    if value < 1:
        raise SystemExit(f"--sizes: {text!r} is not a positive number of customers")
    return value


def size_label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def _generator_hash() -> str:
    return hashlib.sha256((ROOT / "crosssell" / "sample.py").read_bytes()).hexdigest()[:16]


def prepare_dataset(folder: Path, customers: int, *, seed: int = SEED,
                    purchases_per_customer: float = PURCHASES_PER_CUSTOMER, quiet: bool = False) -> dict:
    """Generate the Parquet folder (cached: reused when its ``meta.json`` matches) and return the meta.

    Adds ``cohort`` (the signup quarter as text, ``2023Q2``) to ``customers.parquet``: a plain
    customer attribute every implementation reads the same way.  The reference date is the latest
    date in the data (what ``cs.load`` would pick); it is passed explicitly to all three.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    folder = Path(folder)
    want = {"customers": customers, "seed": seed, "purchases_per_customer": purchases_per_customer,
            "generator": _generator_hash(), "prep_version": PREP_VERSION}
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in want.items()):
            return meta
    from crosssell.sample import write_sample

    if not quiet:
        print(f"generating {customers:,} customers into {folder} ...", flush=True)
    started = time.perf_counter()
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    written = write_sample(tmp, customers=customers, seed=seed, format="parquet",
                           purchases_per_customer=purchases_per_customer)
    cpath = tmp / "customers.parquet"
    cust = pq.read_table(cpath)
    signup = cust["signup_date"]
    cohort = pc.binary_join_element_wise(
        pc.cast(pc.year(signup), pa.string()), pc.cast(pc.quarter(signup), pa.string()), "Q"
    )
    pq.write_table(cust.append_column("cohort", cohort), cpath, compression="zstd")

    meta = {**want, "reference_date": latest_date(tmp).isoformat(), "rows": written["rows"],
            "generated_in_s": round(time.perf_counter() - started, 1),
            "bytes": {p.name: p.stat().st_size for p in sorted(tmp.glob("*.parquet"))}}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return meta


def latest_date(folder: Path) -> _dt.date:
    """The reference date ``cs.load`` would infer: the latest date anywhere in the Parquet files."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    latest = []
    for table, cols in (("customers", ["signup_date", "churn_date"]),
                        ("purchases", ["purchased_at", "ended_at"]),
                        ("surveys", ["responded_at"])):
        path = folder / f"{table}.parquet"
        if path.is_file():
            t = pq.read_table(path, columns=cols)
            for c in cols:
                m = pc.max(t[c]).as_py()
                if m is not None:
                    latest.append(m.date() if isinstance(m, _dt.datetime) else m)
    return max(latest)


# --------------------------------------------------------------------------------------------
# one implementation in one process


def import_implementation(name: str):
    """Import ``benchmarks/<module>.py`` by path (the folder is not a package)."""
    path = HERE / IMPLEMENTATIONS[name]
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_suite(name: str, folder, reference_date) -> tuple[dict, dict]:
    """Import, load and compute the suite in this process; (timings, results)."""
    t0 = time.perf_counter()
    module = import_implementation(name)
    t1 = time.perf_counter()
    handle = module.load(folder, reference_date)
    t2 = time.perf_counter()
    results, per_metric = {}, {}
    for metric, compute in module.suite(handle).items():
        s = time.perf_counter()
        results[metric] = compute()
        per_metric[metric] = time.perf_counter() - s
    t3 = time.perf_counter()
    timings = {"import_s": t1 - t0, "load_s": t2 - t1, "metrics_s": t3 - t2, "per_metric_s": per_metric}
    return timings, results


def peak_rss_mb() -> float:
    """This process's peak resident memory (the kernel's high-water mark), in MiB.

    Read from ``/proc/self/status`` (VmHWM) where there is one: unlike ``ru_maxrss`` of a child,
    it is not inflated by the parent's memory that the child had before ``exec``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _worker(args) -> None:
    timings, results = run_suite(args.worker, args.data, args.reference_date)
    timings["peak_rss_mb"] = peak_rss_mb()
    out = Path(args.out)
    with open(out.with_suffix(".pkl"), "wb") as fh:
        pickle.dump(results, fh)
    out.with_suffix(".json").write_text(json.dumps(timings))


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of the machine's CPU time that was busy over ``seconds`` (from /proc/stat); -1 if unknown."""
    def snap():
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total0, idle0 = snap()
        time.sleep(seconds)
        total1, idle1 = snap()
    except (OSError, ValueError, IndexError):
        return -1.0
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def wait_until_idle(limit_s: float, threshold: float = 0.15) -> float:
    """Wait (up to ``limit_s``) until other processes use less than ``threshold`` of the CPUs.

    Returns the busy share measured last, so a run on a busy machine is visible in the results.
    """
    deadline = time.monotonic() + limit_s
    busy = cpu_busy(1.0)
    while busy > threshold and time.monotonic() < deadline:
        time.sleep(4.0)
        busy = cpu_busy(1.0)
    return busy


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The hidden arguments of worker mode (one implementation in this process), which
    :func:`run_in_subprocess` passes to the script it starts."""
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--reference-date", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)


def run_in_subprocess(name: str, folder: Path, reference_date: str, workdir: Path, *,
                      script: str | Path = __file__, extra_args: tuple[str, ...] = ()) -> dict:
    """Run one implementation in a fresh interpreter; timings, wall and CPU time, peak RSS, results.

    ``script`` is the harness whose worker mode runs it (this file, or ``full_suite.py``), with
    ``extra_args`` after the worker arguments.
    """
    out = workdir / f"{name}-{time.monotonic_ns()}"
    cmd = [sys.executable, str(Path(script).resolve()), "--worker", name, "--data", str(folder),
           "--reference-date", reference_date, "--out", str(out), *extra_args]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with open(out.with_suffix(".log"), "wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage: its CPU time
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = out.with_suffix(".log").read_text(errors="replace")[-4000:]
        raise RuntimeError(f"{name} failed (exit {proc.returncode}) on {folder}:\n{tail}")
    timings = json.loads(out.with_suffix(".json").read_text())
    with open(out.with_suffix(".pkl"), "rb") as fh:
        results = pickle.load(fh)
    cpu = usage.ru_utime + usage.ru_stime
    return {**timings, "total_s": wall, "cpu_s": cpu, "results": results}


# --------------------------------------------------------------------------------------------
# agreement


def compare(a: dict, b: dict, *, names=("a", "b"), tol: float = TOL) -> list[str]:
    """Differences between two suites' results (empty when they agree).

    Keys must match exactly, counts must be equal, ratios and shares equal to ``tol``
    (NaN equals NaN: a segment with no customers).
    """
    import numpy as np
    import pandas as pd

    problems = []
    for metric, keys in KEYS.items():
        if metric not in a or metric not in b:
            problems.append(f"{metric}: missing from {names[0] if metric not in a else names[1]}")
            continue
        x, y = a[metric].copy(), b[metric].copy()
        if sorted(x.columns) != sorted(y.columns):
            problems.append(f"{metric}: columns differ: {list(x.columns)} vs {list(y.columns)}")
            continue
        for frame in (x, y):
            for k in keys:
                frame[k] = frame[k].astype(str)
        if keys and (x.duplicated(keys).any() or y.duplicated(keys).any()):
            problems.append(f"{metric}: duplicate keys {keys} in {names[0] if x.duplicated(keys).any() else names[1]}")
            continue
        if not keys and len(x) != len(y):
            problems.append(f"{metric}: {len(x)} rows in {names[0]}, {len(y)} in {names[1]}")
            continue
        if keys:
            m = x.merge(y, on=keys, how="outer", suffixes=("_a", "_b"), indicator=True)
            lonely = m[m["_merge"] != "both"]
            if len(lonely):
                problems.append(f"{metric}: keys in only one result: "
                                f"{lonely[[*keys, '_merge']].head(5).to_dict('records')}")
                continue
        else:
            m = x.add_suffix("_a").join(y.add_suffix("_b"))
        for col in [c for c in x.columns if c not in keys]:
            va = pd.to_numeric(m[f"{col}_a"]).to_numpy(dtype="float64")
            vb = pd.to_numeric(m[f"{col}_b"]).to_numpy(dtype="float64")
            both_nan = np.isnan(va) & np.isnan(vb)
            if col in COUNTS:
                bad = ~both_nan & (va != vb)
            else:
                bad = ~both_nan & ~(np.abs(va - vb) <= tol)
            if bad.any():
                rows = m.loc[bad, [*keys, f"{col}_a", f"{col}_b"]].head(5)
                problems.append(f"{metric}.{col}: {int(bad.sum())} of {len(m)} rows differ "
                                f"({names[0]} vs {names[1]}), e.g.\n{rows.to_string(index=False)}")
    return problems


# --------------------------------------------------------------------------------------------
# the report


def machine_info() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    versions = {}
    for pkg in ("crosssell", "duckdb", "ibis-framework", "pandas", "pyarrow", "numpy"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
            "cores": os.cpu_count(), "memory_gb": mem_gb, "versions": versions}


def summarise(runs: list[dict]) -> dict:
    med = statistics.median
    per_metric = {m: med(r["per_metric_s"][m] for r in runs) for m in runs[0]["per_metric_s"]}
    return {
        "runs": len(runs),
        "import_s": med(r["import_s"] for r in runs),
        "load_s": med(r["load_s"] for r in runs),
        "metrics_s": med(r["metrics_s"] for r in runs),
        "total_s": med(r["total_s"] for r in runs),
        "cpu_s": med(r["cpu_s"] for r in runs),
        "busy_before": [round(r.get("busy_before", -1), 2) for r in runs],
        "total_all_s": [round(r["total_s"], 3) for r in runs],
        "best_total_s": min(r["total_s"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "per_metric_s": per_metric,
    }


def print_table(sizes: list[dict]) -> None:
    head = f"{'size':>6}  {'implementation':<14}{'import s':>9}{'load s':>9}{'metrics s':>11}" \
           f"{'total s':>9}{'cpu s':>8}{'peak MB':>9}"
    print(head)
    print("-" * len(head))
    for s in sizes:
        for name, r in s["implementations"].items():
            print(f"{s['label']:>6}  {name:<14}{r['import_s']:>9.2f}{r['load_s']:>9.2f}"
                  f"{r['metrics_s']:>11.2f}{r['total_s']:>9.2f}{r['cpu_s']:>8.1f}{r['peak_rss_mb']:>9.0f}")
        for text in s["ratios_text"]:
            print(f"{'':>6}  {text}")
        print()


def ratios(impls: dict) -> tuple[dict, list[str]]:
    out, text = {}, []

    def add(key, a, b, label):
        if a in impls and b in impls:
            tot = impls[a]["total_s"] / impls[b]["total_s"]
            work = (impls[a]["load_s"] + impls[a]["metrics_s"]) / (impls[b]["load_s"] + impls[b]["metrics_s"])
            out[key] = {"total": tot, "load_plus_metrics": work}
            text.append(f"{label}: {tot:.2f}x total, {work:.2f}x load+metrics")

    add("crosssell_over_sql", "crosssell", "sql", "crosssell / SQL   ")
    add("pandas_over_crosssell", "pandas", "crosssell", "pandas / crosssell")
    return out, text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100k,1m", help="customers per dataset, e.g. 100k,1m")
    parser.add_argument("--repeat", type=int, default=3, help="runs per implementation (median)")
    parser.add_argument("--implementations", default=",".join(IMPLEMENTATIONS),
                        help="comma-separated subset of " + ", ".join(IMPLEMENTATIONS))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="before each run, wait up to this long for other processes to go quiet "
                             "(under 15%% of the CPUs); the busy share is recorded either way")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    add_worker_arguments(parser)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    impls = [s.strip() for s in args.implementations.split(",") if s.strip()]
    unknown = [s for s in impls if s not in IMPLEMENTATIONS]
    if unknown:
        parser.error(f"unknown implementation(s) {unknown}; choose from {', '.join(IMPLEMENTATIONS)}")
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]

    started = _dt.datetime.now()
    report = {"date": started.isoformat(timespec="seconds"), "machine": machine_info(),
              "repeat": args.repeat, "seed": args.seed, "tolerance": TOL, "sizes": []}
    ok = True
    with tempfile.TemporaryDirectory(prefix="crosssell-bench-") as work:
        for n in sizes:
            folder = args.data_dir / f"c{n}_s{args.seed}_p{PURCHASES_PER_CUSTOMER}"
            meta = prepare_dataset(folder, n, seed=args.seed)
            label = size_label(n)
            print(f"{label}: {meta['rows']['customers']:,} customers, {meta['rows']['purchases']:,} "
                  f"purchase rows, as of {meta['reference_date']}", flush=True)
            runs: dict[str, list[dict]] = {name: [] for name in impls}
            problems = []
            for r in range(args.repeat):
                first_results = None
                for name in impls:  # interleaved, so drift hits every implementation alike
                    busy = wait_until_idle(args.wait_idle) if args.wait_idle else cpu_busy(1.0)
                    res = run_in_subprocess(name, folder, meta["reference_date"], Path(work))
                    res["busy_before"] = busy
                    res["loadavg_after"] = os.getloadavg()[0]
                    print(f"  run {r + 1}/{args.repeat} {name:<10} {res['total_s']:7.2f} s  "
                          f"cpu {res['cpu_s']:6.1f} s  {res['peak_rss_mb']:6.0f} MB  "
                          f"(machine {busy:.0%} busy before)", flush=True)
                    results = res.pop("results")
                    if first_results is None:
                        first_results = (name, results)
                    else:
                        found = compare(first_results[1], results, names=(first_results[0], name))
                        problems += [f"[{label}, run {r + 1}] {p}" for p in found]
                    runs[name].append(res)
            summary = {name: summarise(rs) for name, rs in runs.items()}
            rat, text = ratios(summary)
            entry = {"customers": n, "label": label, "rows": meta["rows"],
                     "reference_date": meta["reference_date"], "agree": not problems,
                     "problems": problems, "implementations": summary, "ratios": rat,
                     "ratios_text": text, "raw": runs}
            report["sizes"].append(entry)
            if problems:
                ok = False
                print("\nTHE IMPLEMENTATIONS DISAGREE — timings withheld:\n" + "\n".join(problems))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    text = json.dumps(report, indent=2, default=str) + "\n"
    (args.results_dir / f"{stamp}.json").write_text(text)
    (args.results_dir / "latest.json").write_text(text)
    if not ok:
        return 1
    m = report["machine"]
    print(f"\n{report['date']} — {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; "
          f"median of {args.repeat} fresh processes; peak = largest run's max RSS")
    print_table(report["sizes"])
    print(f"results: {args.results_dir / (stamp + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
