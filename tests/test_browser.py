"""The main report, rendered with non-default parameters on hostile data, opened in a real browser.

The data is the bundled sample with a product whose catalog name is a script and a product id a
spreadsheet would run as a formula.  The report is rendered once (``crosssell report`` with a
segment, monthly periods, a target and another ``by``); the tests read what it recorded, then
Debian's chromium, driven by Playwright (no browser download), opens the HTML.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLE

from crosssell.cli import main

SCRIPT_NAME = "<script>alert(1)</script>"
FORMULA_ID = "=1+2"
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    data = root / "data"
    shutil.copytree(SAMPLE, data)
    products = pd.read_csv(data / "products.csv", dtype=str)
    purchases = pd.read_csv(data / "purchases.csv", dtype=str, keep_default_na=False)
    # the most held add-on gets the hostile name, so it is in every product figure and table
    top = "EXTRA_STORAGE"
    products.loc[products["product_id"] == top, "name"] = SCRIPT_NAME
    products.loc[products["product_id"] == "SSO", "product_id"] = FORMULA_ID
    purchases.loc[purchases["product_id"] == "SSO", "product_id"] = FORMULA_ID
    products.to_csv(data / "products.csv", index=False)
    purchases.to_csv(data / "purchases.csv", index=False)
    out = root / "reports"
    code = main(["report", "--data", str(data), "--out", str(out), "-p", "segment", "plan=Pro",
                 "-p", "period", "M", "-p", "target_ratio", "0.8", "-p", "by", "region",
                 "-p", "title", "Pro <b>monthly</b>"])
    assert code == 0
    return out / "cross_sell_report"


@pytest.mark.slow
def test_the_run_used_the_parameters(rendered):
    man = json.loads((rendered / "manifest.json").read_text())
    cust = pd.read_csv(SAMPLE / "customers.csv", dtype=str)
    assert man["data"]["in_report"]["customers"] == int((cust["plan"] == "Pro").sum())  # filtered
    assert man["metrics"]["by"] == "region"
    head = man["headline"]
    assert head["period"] == "2024-12" and head["previous_period"] == "2024-11"  # monthly
    assert head["target_ratio"] == 0.8 and head["segment"] == {"plan": ["Pro"]}
    assert head["low"] <= head["ratio"] <= head["high"]
    assert [s["title"] for s in man["sections"]][:3] == ["(setup and loading)", "Headline", "Trend"]
    names = {Path(f).stem for f in man["figures"]}
    assert {"trend", "trend_by_segment", "distribution", "penetration", "cohorts", "affinity"} <= names
    assert man["headline_figure"] == "figures/trend.png"
    for f in man["figures"]:
        assert (rendered / f).stat().st_size > 1000
    pen = pd.read_csv(rendered / "tables" / "penetration.csv", dtype=str)
    assert "'" + FORMULA_ID in set(pen["product_id"]) and FORMULA_ID not in set(pen["product_id"])
    assert SCRIPT_NAME in set(pen["name"])  # kept as text in the CSV (not a formula)


@pytest.mark.slow
@pytest.mark.browser
def test_report_in_chromium(rendered, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed: run `make browser`")
    sync_api = pytest.importorskip("playwright.sync_api")
    html = (rendered / "report.html").read_text()
    assert SCRIPT_NAME not in html  # escaped in the file itself
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors, dialogs, failed = [], [], []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto((rendered / "report.html").as_uri())
            page.wait_for_load_state("load")
            widths = page.eval_on_selector_all("img", "els => els.map(e => e.complete ? e.naturalWidth : 0)")
            alts = page.eval_on_selector_all("img", "els => els.map(e => e.alt)")
            visible_code = page.eval_on_selector_all(
                ".jp-CodeCell .jp-InputArea, .jp-CodeCell .jp-Editor, .jp-CodeCell .highlight, .jp-InputPrompt",
                "els => els.filter(e => e.offsetParent !== null).length",
            )
            text = page.inner_text("body")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == [] and dialogs == [] and failed == []
    man = json.loads((rendered / "manifest.json").read_text())
    assert len(widths) == len(man["figures"]) and all(w > 0 for w in widths)
    assert visible_code == 0
    assert "Cross-sell ratio per period (M)" in alts  # figures are described by their titles
    assert all(a and "No description" not in a for a in alts)
    assert "check_parameters" not in text and "rec.figure" not in text
    assert SCRIPT_NAME in text  # the script-named product is shown as text
    assert "Pro <b>monthly</b>" in text  # and so is the title
    assert "Cross-sell ratio, 2024-12:" in text
