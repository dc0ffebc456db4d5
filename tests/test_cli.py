"""The `crosssell` command line: sample, validate, metrics (report is tested in test_report.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from test_data import CUSTOMERS, PURCHASES, write

from crosssell.cli import main


@pytest.fixture()
def folder(tmp_path):
    return write(tmp_path / "ok")


def test_validate_ok_and_exit_zero(folder, capsys):
    assert main(["validate", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "purchases" in out and "rows_read" in out


def test_validate_reports_every_problem_and_exits_one(tmp_path, capsys):
    bad = write(tmp_path / "bad", CUSTOMERS.assign(signup_date=["x", "2024-01-01", "y"]),
                PURCHASES.assign(customer_id=["007", "nobody", "008", "009"]))
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "customers.signup_date: values that are not a date (2 rows); e.g. 'x', 'y'" in out
    assert "purchases.customer_id: rows for customers that are not in the customers table" in out


def test_validate_with_column_mapping(tmp_path, capsys):
    folder = write(tmp_path, CUSTOMERS.rename(columns={"customer_id": "CustomerID"}),
                   PURCHASES.rename(columns={"customer_id": "CustomerID"}))
    assert main(["validate", str(folder)]) == 1
    assert "did you mean" in capsys.readouterr().out
    assert main(["validate", str(folder), "--columns", '{"CustomerID": "customer_id"}']) == 0


def test_metrics_table_csv_json(folder, capsys):
    assert main(["metrics", str(folder), "--period", "M", "--by", "plan"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Cross-sell ratio = distinct products sold in the period")
    assert main(["metrics", str(folder), "--period", "M", "--by", "plan", "--format", "csv"]) == 0
    from io import StringIO

    table = pd.read_csv(StringIO(capsys.readouterr().out))
    assert list(table.columns) == ["period", "complete", "plan", "numerator", "denominator", "ratio"]
    # Feb: Pro = 007 (Y) and 009 (Y) -> 2 over 2
    feb = table[(table["period"] == "2024-02") & (table["plan"] == "Pro")].iloc[0]
    assert (feb["numerator"], feb["denominator"]) == (2, 2)
    assert main(["metrics", str(folder), "--period", "none", "--format", "json", "--basis", "held"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["definition"]["basis"] == "held"
    # held at 03-01: 008 churned on 03-01, so 007 (X, Y) and 009 (Y) -> 3 over 2
    assert payload["rows"] == [{"numerator": 3, "denominator": 2, "ratio": 1.5}]


def test_metrics_bad_by_exits_two(folder, capsys):
    assert main(["metrics", str(folder), "--by", "region"]) == 2
    assert "available: plan" in capsys.readouterr().err


def test_metrics_bad_data_exits_one(tmp_path, capsys):
    bad = write(tmp_path, CUSTOMERS.assign(signup_date=["x", "2024-01-01", "2024-01-01"]))
    assert main(["metrics", str(bad)]) == 1
    assert "values that are not a date" in capsys.readouterr().err


def test_sample_is_seeded(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["sample", "--customers", "300", "--seed", "7", "--out", str(a)]) == 0
    assert main(["sample", "--customers", "300", "--seed", "7", "--out", str(b)]) == 0
    for name in ("customers.csv", "purchases.csv", "truth.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert main(["validate", str(a)]) == 0


def test_console_script_runs(folder):
    exe = subprocess.run([sys.executable, "-m", "crosssell.cli", "metrics", str(folder), "--period", "none"],
                         capture_output=True, text=True, check=False)
    assert exe.returncode == 0, exe.stderr
    assert "numerator" in exe.stdout
    bad = subprocess.run([sys.executable, "-m", "crosssell.cli", "metrics"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "usage" in bad.stderr
