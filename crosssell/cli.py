"""The ``crosssell`` command: thin; it parses arguments and calls the package.

Sub-commands::

    crosssell sample   --customers N --seed S --out DIR    write the synthetic sample
    crosssell validate PATH                                check a folder against the data contract
    crosssell metrics  PATH --period Q --by plan           print the cross-sell ratio table
    crosssell report   [NOTEBOOK] --data PATH ...          render a parameterized report

Exit codes: 0 success, 1 invalid data or a failed report, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

__all__ = ["main", "build_parser"]


def _load_kwargs(args) -> dict:
    kw = {}
    if getattr(args, "columns", None):
        kw["columns"] = _read_mapping_option(args.columns)
    if getattr(args, "reference_date", None):
        kw["reference_date"] = args.reference_date
    if getattr(args, "on_orphans", None):
        kw["on_orphans"] = args.on_orphans
    if getattr(args, "mapping", None):
        kw["mapping"] = args.mapping
    return kw


def _read_mapping_option(text: str) -> dict:
    """``--columns`` takes JSON (``'{"CustomerID": "customer_id"}'``) or a YAML/JSON file."""
    from pathlib import Path

    path = Path(text)
    if path.is_file():
        import yaml

        return yaml.safe_load(path.read_text())
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"crosssell: --columns is neither a file nor JSON: {exc}") from exc


def _add_load_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="folder with customers, purchases [, surveys, products] (.csv, .csv.gz, .parquet)")
    p.add_argument("--columns", help='column mapping: JSON like \'{"CustomerID": "customer_id"}\' or a YAML file')
    p.add_argument("--mapping", help="adapter mapping file (YAML) for wide, count or transaction-log inputs")
    p.add_argument("--reference-date", help="as-of date (default: the latest date in the data)")
    p.add_argument("--on-orphans", choices=["error", "drop"], help="purchases of unknown customers")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crosssell",
        description="Cross-sell ratio analysis: sample data, validation, metrics and reports.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample", help="write the seeded synthetic sample data")
    p.add_argument("--customers", type=int, default=5000, help="number of customers (default 5000)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--out", default="data/sample", help="output folder (default data/sample)")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv", help="file format (default csv)")
    p.add_argument("--purchases-per-customer", type=float, default=None,
                   help="tune upsell rows so each customer has about this many purchase rows")

    p = sub.add_parser("validate", help="check a folder against the data contract; exit 1 on errors")
    _add_load_options(p)

    p = sub.add_parser("metrics", help="print the cross-sell ratio table")
    _add_load_options(p)
    p.add_argument("--period", choices=["M", "Q", "Y", "none"], default="Q", help="period (default Q)")
    p.add_argument("--by", action="append", default=[], help="segment attribute (repeatable)")
    p.add_argument("--basis", choices=["sold", "held"], default="sold")
    p.add_argument("--count", choices=["distinct", "units"], default="distinct")
    p.add_argument("--customers", dest="population", choices=["active", "all", "buyers"], default="active")
    p.add_argument("--exclude", action="append", default=[], help="product that does not count (repeatable)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")

    try:
        from . import report
    except ImportError:  # the report pipeline is optional at import time
        report = None
    if report is not None and hasattr(report, "add_arguments"):
        p = sub.add_parser("report", help="render a parameterized notebook into an HTML report")
        report.add_arguments(p)
    return parser


def _cmd_sample(args) -> int:
    from .sample import write_sample

    info = write_sample(
        args.out,
        customers=args.customers,
        seed=args.seed,
        format=args.format,
        purchases_per_customer=args.purchases_per_customer,
    )
    rows = ", ".join(f"{k}: {v:,}" for k, v in info.get("rows", {}).items())
    print(f"wrote {args.out} ({rows})")
    return 0


def _cmd_validate(args) -> int:
    from .data import validate

    problems, data = validate(args.path, **_load_kwargs(args))
    errors = [p for p in problems if p.severity == "error"]
    if data is not None:
        print(f"{args.path}: valid ({data!r})")
        print(data.summary().to_string(index=False))
    else:
        print(f"{args.path}: {len(errors)} error(s)")
    for p in problems:
        print(f"  - {p}")
    return 1 if errors else 0


def _cmd_metrics(args) -> int:
    from .data import load
    from .metrics import cross_sell_ratio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load(args.path, **_load_kwargs(args))
    res = cross_sell_ratio(
        data,
        period=None if args.period == "none" else args.period,
        by=args.by or None,
        basis=args.basis,
        count=args.count,
        customers=args.population,
        exclude=args.exclude or None,
    )
    out = res.copy()
    if "period" in out.columns:
        out["period"] = out["period"].astype(str)
    if args.format == "csv":
        out.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        payload = {"definition": res.attrs["definition"], "excluded": res.attrs["excluded"],
                   "rows": json.loads(out.to_json(orient="records"))}
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(f"Cross-sell ratio = {res.attrs['definition']['text']}")
        print(f"as of {res.attrs['definition']['reference_date']}")
        print(out.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    from .errors import CrossSellError, ParameterError

    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"sample": _cmd_sample, "validate": _cmd_validate, "metrics": _cmd_metrics}
    try:
        if args.command == "report":
            from . import report

            return report.run_cli(args)
        return handlers[args.command](args)
    except ParameterError as err:  # a bad argument: the usage exit code, like argparse
        print(f"crosssell {args.command}: {err}", file=sys.stderr)
        return 2
    except CrossSellError as err:  # bad data, a missing table, a failed engine
        print(f"crosssell {args.command}: {err}", file=sys.stderr)
        return 1

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
