"""How long `crosssell report` takes on the bundled sample: one report, and one per plan.

Targets on the 2-core reference machine: the main report in under 30 s, ``--each plan`` (three
segments) in under 60 s.  Each measurement is a fresh ``crosssell report`` process, end to end
(Python start, parameter checks, kernel start, every cell, HTML conversion, manifest, atomic
move), the way a user runs it; the per-section times come from the manifest.

    .venv/bin/python benchmarks/bench_report.py [--repeat 3] [--jobs 1 2] [--out benchmarks/results]

Prints a table and writes ``report_timings.json`` into ``--out``.  The load average is printed
beside the numbers, because other processes on a 2-core machine change them a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "crosssell.cli"]


def _run(args: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"crosssell {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def _sections(folder: Path) -> dict:
    man = json.loads((folder / "manifest.json").read_text())
    return {s["title"]: s["duration_s"] for s in man["sections"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, nargs="+", default=[2, 1],
                    help="--jobs values for the --each batch (2, the default on 2 cores, and 1)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    results: dict = {"load_average": os.getloadavg(), "cpus": os.cpu_count(), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        single, sections = [], []
        for _ in range(args.repeat):
            single.append(_run(["report", "--out", f"{tmp}/one"]))
            sections.append(_sections(Path(tmp) / "one" / "cross_sell_report"))
        results["runs"]["main report"] = single
        results["sections"] = {k: statistics.median(s[k] for s in sections) for k in sections[0]}
        for jobs in args.jobs:
            each = [_run(["report", "--each", "plan", "--jobs", str(jobs), "--out", f"{tmp}/each{jobs}"])
                    for _ in range(args.repeat)]
            results["runs"][f"--each plan (3 segments), --jobs {jobs}"] = each
    results["load_average_after"] = os.getloadavg()

    print(f"load average before {results['load_average'][0]:.1f}, after {results['load_average_after'][0]:.1f} "
          f"({results['cpus']} cpus)")
    targets = {"main report": 30, "--each": 60}
    for name, times in results["runs"].items():
        target = next(v for k, v in targets.items() if name.startswith(k))
        print(f"{name:45s} median {statistics.median(times):6.1f} s  (runs: "
              f"{', '.join(f'{t:.1f}' for t in times)}; target < {target} s)")
    print("main report, median per section:")
    for title, secs in results["sections"].items():
        print(f"  {title:40s} {secs:6.2f} s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report_timings.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
