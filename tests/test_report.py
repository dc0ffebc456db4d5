"""The report pipeline: parameters, safe names, escaping, the headline, and `crosssell report`.

Renders here use a tiny generated notebook (the same parameters cell as the bundled notebooks,
a few cells) on a 200-customer sample, so each kernel run costs a few seconds; the bundled
notebooks themselves are run in test_notebooks.py and test_browser.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell import report
from crosssell.cli import main
from crosssell.errors import ParameterError

# --------------------------------------------------------------------------------------------
# parameters


def test_defaults_are_valid_and_point_at_the_sample():
    p = report.check_parameters()
    assert p.data_path == cs.sample_path()
    assert (p.period, p.basis, p.horizon, p.segment, p.by, p.target_ratio) == ("Q", "sold", 12, {}, None, None)
    assert p.tier_labels == ["0", "1", "2", "3\u20134", "5+"]
    assert p.tier_bins[-1] == ("5+", 5, None)


def test_values_injected_by_papermill_are_coerced():
    # papermill -p turns 007 into 7 and 6 into an int; text parameters come back as text
    p = report.check_parameters(period="m", segment={"plan": 7}, horizon="6", target_ratio="1.25",
                                title=2024, reference_date="2024-06-30", basis="HELD")
    assert (p.period, p.basis, p.horizon, p.target_ratio, p.title) == ("M", "held", 6, 1.25, "2024")
    assert p.segment == {"plan": ["7"]}
    assert p.reference_date == pd.Timestamp("2024-06-30")
    assert any("007" in n for n in p.notes)  # the leading-zero trap is explained, not hidden


def test_segment_forms():
    assert report.check_parameters(segment="plan=Pro").segment == {"plan": ["Pro"]}
    assert report.check_parameters(segment="plan=a=b").segment == {"plan": ["a=b"]}
    assert report.check_parameters(segment='{"plan": ["007", "Pro"]}').segment == {"plan": ["007", "Pro"]}
    assert report.check_parameters(segment={"plan": ["Basic", "Pro"], "region": "Europe"}).segment == {
        "plan": ["Basic", "Pro"], "region": ["Europe"]}
    assert report.check_parameters(segment={}).segment == {}


def test_every_bad_parameter_is_listed_at_once():
    with pytest.raises(ParameterError) as err:
        report.check_parameters(period="W", horizon="twelve", target_ratio=-1, start="2024-05-01",
                                end="2024-01-01", segment="Pro", tier_bins="0,2,3+", basis="bought",
                                data_path="/no/such/folder", colour="red")
    msg = str(err.value)
    for bit in ("unknown parameter(s) colour", "period must be M, Q or Y", "horizon must be a whole number",
                "target_ratio must be a positive number", "start 2024-05-01 is after end 2024-01-01",
                "segment must be", "'2' starts at 2, expected 1", "basis must be 'sold' or 'held'",
                "data_path '/no/such/folder' does not exist"):
        assert bit in msg, bit
    assert msg.count("\n  - ") == 9


@pytest.mark.parametrize(
    ("bins", "expected"),
    [
        ("0,1,2,3-4,5+", [("0", 0, 0), ("1", 1, 1), ("2", 2, 2), ("3\u20134", 3, 4), ("5+", 5, None)]),
        ("0, 1-2 ,3\u20136, 7+", [("0", 0, 0), ("1\u20132", 1, 2), ("3\u20136", 3, 6), ("7+", 7, None)]),
        (["0", "1+"], [("0", 0, 0), ("1+", 1, None)]),
    ],
)
def test_tier_bins_parse(bins, expected):
    assert list(report.check_parameters(tier_bins=bins).tier_bins) == expected


@pytest.mark.parametrize(
    ("bins", "message"),
    [
        ("1,2+", "'1' starts at 1, expected 0"),
        ("0,1,1,2+", "'1' starts at 1, expected 2"),
        ("0,1+,3", "only the last tier may be open-ended"),
        ("0,1,2", "the last tier must be open-ended"),
        ("0,4-2,5+", "ends before it starts"),
        ("0,a,2+", "'a' is not a count"),
        ("0+", "at least two tiers"),
    ],
)
def test_tier_bins_errors(bins, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        report.check_parameters(tier_bins=bins)


def test_bad_dates_and_mapping_file(tmp_path):
    with pytest.raises(ParameterError, match="reference_date must be a date like 2024-12-31, not '31/12/2024'"):
        report.check_parameters(reference_date="31/12/2024")
    with pytest.raises(ParameterError, match="start must be a date"):
        report.check_parameters(start="2024-13-45")
    bad = tmp_path / "m.yml"
    bad.write_text("columns: [unclosed\n")
    with pytest.raises(ParameterError, match="mapping_file .* is not valid YAML"):
        report.check_parameters(mapping_file=str(bad))
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ParameterError, match="must hold a mapping, found list"):
        report.check_parameters(mapping_file=str(bad))
    with pytest.raises(ParameterError, match="is not a file"):
        report.check_parameters(mapping_file=str(tmp_path / "none.yml"))


def test_coerce_parameter_keeps_text_and_types_the_rest():
    assert report.coerce_parameter("title", "007") == "007"
    assert report.coerce_parameter("horizon", "6") == 6
    assert report.coerce_parameter("target_ratio", "1.5") == 1.5
    assert report.coerce_parameter("target_ratio", "None") is None
    assert report.coerce_parameter("mapping_file", "") is None
    assert report.coerce_parameter("segment", "plan=007") == {"plan": "007"}
    assert report.coerce_parameter("segment", "{plan: [007, 010]}") == {"plan": ["007", "010"]}
    # a number that is not one is passed on, and check_parameters names it with the others
    assert report.coerce_parameter("horizon", "soon") == "soon"
    with pytest.raises(ParameterError, match="segment must be a dict"):
        report.coerce_parameter("segment", "[a, b]")
    with pytest.raises(ParameterError, match="unknown parameter 'nope'"):
        report.coerce_parameter("nope", "1")


def test_parameters_cell_is_what_papermill_reads():
    """Every line parses with papermill's own inspector: name, type, default and help."""
    from papermill.translators import PythonTranslator

    cell = nbformat.v4.new_code_cell(report.parameters_cell())
    found = {p.name: p for p in PythonTranslator.inspect(cell)}
    assert list(found) == list(report.PARAMETERS)
    for name, spec in report.PARAMETERS.items():
        assert found[name].inferred_type_name == spec.type_name
        assert found[name].help == spec.help
        assert eval(found[name].default) == spec.default  # noqa: S307 - literals we wrote


# --------------------------------------------------------------------------------------------
# safe names, formulas, escaping


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("Pro", r"^Pro$"),
        ("North America", r"^North_America-[0-9a-f]{6}$"),
        ("../etc/passwd", r"^etc_passwd-[0-9a-f]{6}$"),
        ("..", r"^_-[0-9a-f]{6}$"),
        ("CON", r"^CON_-[0-9a-f]{6}$"),
        ("lpt1.txt", r"^lpt1.txt_-[0-9a-f]{6}$"),
        ("a\x00b\nc", r"^a_b_c-[0-9a-f]{6}$"),
        ("", r"^_-[0-9a-f]{6}$"),
        ("x" * 100, r"^x{53}-[0-9a-f]{6}$"),
    ],
)
def test_safe_name_examples(value, pattern):
    assert re.match(pattern, report.safe_name(value))


def test_safe_name_never_collides():
    # "A_B" is fine as it is; "a b" becomes "a_b" plus a hash, and "a_b" must differ from "A_B"
    # on a case-insensitive file system
    taken: set[str] = set()
    names = []
    for v in ["A_B", "a_b", "a b", "a/b", "a\\b"]:
        n = report.safe_name(v, taken)
        taken.add(n.lower())
        names.append(n)
    assert names[0] == "A_B"
    assert len({n.lower() for n in names}) == 5


SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=80), min_size=1, max_size=12, unique=True))
def test_safe_names_property(values):
    taken: set[str] = set()
    for v in values:
        n = report.safe_name(v, taken)
        assert SAFE.match(n), n
        assert ".." not in n and "/" not in n and "\\" not in n
        assert n.split(".")[0].lower() not in {"con", "prn", "aux", "nul", "com1", "lpt1"}
        assert len(n) <= 60
        assert n.lower() not in taken
        taken.add(n.lower())


def test_neutralise_formulas_only_touches_text():
    frame = pd.DataFrame({
        "product": ["=1+2", "+A1", "-cmd", "@SUM(A1)", "\tx", "plain", "a=b", None],
        "value": [-1.5, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
    })
    out = report.neutralise_formulas(frame)
    assert out["product"].tolist()[:7] == ["'=1+2", "'+A1", "'-cmd", "'@SUM(A1)", "'\tx", "plain", "a=b"]
    assert out["product"].isna().iloc[7]
    assert out["value"].tolist() == frame["value"].tolist()  # a negative number is not a formula
    assert frame["product"].iloc[0] == "=1+2"  # the input is not modified


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=10))
def test_neutralised_text_never_starts_a_formula(texts):
    out = report.neutralise_formulas(pd.DataFrame({"t": texts}))["t"]
    for before, after in zip(texts, out, strict=True):
        assert after[:1] not in ("=", "+", "-", "@", "\t", "\r")
        assert after in (before, "'" + before)


def test_table_and_title_escape_data_text(tmp_path):
    p = report.check_parameters(title="<img src=x onerror=alert(1)>", output_dir=str(tmp_path))
    rec = report.Recorder(p)
    shown = rec.table("t", pd.DataFrame({"name": ["<script>alert(1)</script>"], "x": [1.23456]}))
    html = shown._repr_html_()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "1.235" in html
    assert "<td>0</td>" not in html and ">0<" not in html  # row numbers hidden
    data = _toy_data()
    block = report.title_block(p, data)._repr_html_()
    assert "&lt;img src=x onerror=alert(1)&gt;" in block and "<img" not in block


def test_recorder_writes_files(tmp_path):
    import matplotlib.pyplot as plt

    p = report.check_parameters(output_dir=str(tmp_path))
    rec = report.Recorder(p)
    _, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    rec.figure("a/b figure", ax)
    rec.table("a/b figure", pd.DataFrame({"p": ["=HYPERLINK(\"x\")"], "q": [1]}))
    rec.metric(answer=np.int64(42), ratio=np.float64("nan"), when=pd.Period("2024Q1"))
    figs = list((tmp_path / "figures").glob("*.png"))
    tables = list((tmp_path / "tables").glob("*.csv"))
    assert len(figs) == 1 and SAFE.match(figs[0].stem)
    assert tables[0].read_text().splitlines() == ["p,q", "\"'=HYPERLINK(\"\"x\"\")\",1"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["answer"] == 42 and metrics["ratio"] is None and metrics["when"] == "2024Q1"
    assert metrics["headline_figure"] == f"figures/{figs[0].name}"


def test_write_index_escapes_and_encodes(tmp_path):
    folder = tmp_path / "r-1"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({
        "title": "<script>alert(1)</script>",
        "parameters": {"segment": {"plan": ["<b>x</b>"]}},
        "headline": {"ratio": 1.23456, "period": "2024Q4", "change": 0.1, "previous_period": "2024Q3"},
        "headline_figure": "figures/trend.png",
        "finished_at": "2024-01-01T00:00:00",
    }))
    page = report.write_index(tmp_path, title="Reports <&>").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "Reports &lt;&amp;&gt;" in page
    assert "href='r-1/report.html'" in page and "src='r-1/figures/trend.png'" in page
    assert "1.23" in page and "+0.100 vs 2024Q3" in page


# --------------------------------------------------------------------------------------------
# the headline, hand-computed

# reference date 2024-06-30; four customers signed up 2024-01-01, none churned
#   Q1: c1 buys A and B, c2 buys A              -> 3 products / 4 customers = 0.75
#   Q2: c1 buys C, c2 buys A again, c3 A and B  -> per customer (1, 1, 2, 0): 4 / 4 = 1.00
def _toy_data(**kw):
    customers = pd.DataFrame({"customer_id": ["c1", "c2", "c3", "c4"], "signup_date": ["2024-01-01"] * 4,
                              "plan": ["Pro", "Pro", "Basic", "Basic"]})
    purchases = pd.DataFrame({
        "customer_id": ["c1", "c1", "c2", "c1", "c2", "c3", "c3"],
        "product_id": ["A", "B", "A", "C", "A", "A", "B"],
        "purchased_at": ["2024-01-10", "2024-02-10", "2024-03-10", "2024-04-10", "2024-05-10",
                         "2024-05-11", "2024-06-30"],
    })
    return cs.from_frames(customers=customers, purchases=purchases, reference_date="2024-06-30", **kw)


def test_headline_hand_computed():
    from scipy import stats

    h = report.headline(_toy_data(), report.check_parameters(target_ratio=1.5))
    assert (h.period, h.previous_period, h.complete) == ("2024Q2", "2024Q1", True)
    assert (h.numerator, h.denominator, h.ratio, h.previous_ratio) == (4.0, 4, 1.0, 0.75)
    # values 1, 1, 2, 0: sd = sqrt(2/3), se = sd/2, t(3) interval
    half = stats.t.ppf(0.975, 3) * np.sqrt(2 / 3) / 2
    assert h.low == pytest.approx(1 - half) and h.high == pytest.approx(1 + half)
    assert h.change == pytest.approx(0.25) and h.relative_change == pytest.approx(0.25 / 0.75)
    assert h.change_low <= 0.25 <= h.change_high
    text = repr(h)
    assert "Cross-sell ratio, 2024Q2: 1.000" in text and "= 4 / 4 customers" in text
    assert "Change vs 2024Q1 (0.750): +0.250 (+33.3%" in text
    assert "Target: 1.500 (-0.500 from it; within interval)" in text
    assert "Definition: distinct products sold in the period (net of returns) / customers active" in text
    assert h.as_dict()["segment"] == {}


def test_headline_segment_and_single_period():
    params = report.check_parameters(segment={"plan": "Basic"}, period="Y")
    data = _toy_data().where(plan="Basic")
    h = report.headline(data, params)
    # Basic = c3 (A, B in 2024) and c4 (nothing): one year, 2 / 2; no previous period
    assert (h.period, h.ratio, h.denominator, h.change) == ("2024", 1.0, 2, None)
    assert "no previous period" in repr(h)
    assert h.complete is False  # 2024 is cut short by the reference date 2024-06-30


def test_load_data_checks_by_and_segment(tmp_path):
    folder = _write_folder(tmp_path / "d", customers=40)
    with pytest.raises(ParameterError) as err:
        report.load_data(report.check_parameters(data_path=str(folder), by="colour",
                                                 segment={"plan": ["7", "Gold"], "tier": "x"}))
    msg = str(err.value)
    assert "by='colour' is not a customer attribute; the attributes are: plan, region, channel" in msg
    shown = ", ".join(map(repr, sorted(PLANS)))
    assert f"segment plan: no customer has '7', 'Gold'; values: {shown}" in msg
    assert "papermill's -p turns 007 into 7" in msg
    assert "segment attribute 'tier' is not a customer attribute" in msg
    data = report.load_data(report.check_parameters(data_path=str(folder), segment="plan=007"))
    n = cs.engine.execute(data.customers.aggregate(n=data.customers.count()))["n"].iloc[0]
    assert n == (pd.read_csv(folder / "customers.csv", dtype=str)["plan"] == "007").sum() > 0


# --------------------------------------------------------------------------------------------
# rendering with `crosssell report`

# a leading zero, a path, a reserved file name, and markup with a quote and a backslash (which
# must survive papermill's injection as a Python literal)
PLANS = ["007", "../up/x", "CON", '<b>"x"</b>\\']


def _write_folder(folder: Path, customers: int = 200) -> Path:
    """A small generated sample with hostile segment values and product names."""
    from crosssell.sample import generate

    # generated at 1000 customers, then cut: the generator needs some size to plant its effects
    s = generate(customers=1000, seed=11)
    folder.mkdir(parents=True)
    cust = s.customers.iloc[:customers].copy()
    keep = set(cust["customer_id"])
    s.purchases = s.purchases[s.purchases["customer_id"].isin(keep)]
    s.surveys = s.surveys[s.surveys["customer_id"].isin(keep)]
    cust["plan"] = [PLANS[i % len(PLANS)] for i in range(len(cust))]
    prods = s.products.copy()
    purch = s.purchases.copy()
    # a product id a spreadsheet would run, and a product name that is a script
    purch["product_id"] = purch["product_id"].replace({"SSO": "=1+2"})
    prods["product_id"] = prods["product_id"].replace({"SSO": "=1+2"})
    prods.loc[prods["product_id"] == "DASHBOARDS", "name"] = "<script>alert(1)</script>"
    for name, frame in {"customers": cust, "purchases": purch, "surveys": s.surveys, "products": prods}.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def _notebook(path: Path, *, fail: bool = False) -> Path:
    """A small report notebook: the bundled notebooks' parameters cell, load, one figure, tables."""
    v4 = nbformat.v4
    names = ", ".join(f"{n}={n}" for n in report.PARAMETERS)
    cells = [
        v4.new_code_cell("from typing import Optional\n\nimport crosssell as cs\nfrom crosssell import report"),
        v4.new_code_cell(report.parameters_cell(), metadata={"tags": ["parameters"]}),
        v4.new_code_cell(f"params = report.check_parameters({names})\ndata = report.load_data(params)\n"
                         "rec = report.Recorder(params)\nrec.record_data(data)"),
        v4.new_markdown_cell("## Ratio"),
        v4.new_code_cell("r = cs.cross_sell_ratio(data)\n"
                         "rec.metric(ratio=float(r['ratio'].iloc[0]), customers=int(r['denominator'].iloc[0]))\n"
                         "print('ratio', round(float(r['ratio'].iloc[0]), 3))"),
        v4.new_markdown_cell("## Figure and table"),
        v4.new_code_cell("import matplotlib.pyplot as plt\n_, ax = plt.subplots()\nax.bar(['a'], [1])\n"
                         "rec.figure('bar', ax, headline=True)"),
        v4.new_code_cell("rec.table('penetration', cs.penetration(data))"),
    ]
    if fail:
        cells.insert(5, v4.new_code_cell("# a cell that breaks\nx = 1 / 0"))
    nb = v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                               "language": "python"}})
    nbformat.write(nb, str(path))
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    return {
        "root": root,
        "data": _write_folder(root / "data"),
        "nb": _notebook(root / "small.ipynb"),
        "failing": _notebook(root / "failing.ipynb", fail=True),
        "out": root / "reports",
    }


@pytest.fixture(scope="module")
def rendered(env):
    code = main(["report", str(env["nb"]), "--data", str(env["data"]), "--out", str(env["out"]),
                 "-p", "segment", "plan=007", "-p", "title", "007 <i>report</i>"])
    assert code == 0
    return env["out"] / "small"


def _leftovers(out: Path) -> list[str]:
    return [p.name for p in out.iterdir() if p.name.startswith((".tmp-", ".old-"))]


@pytest.mark.slow
def test_report_folder_and_manifest(rendered, env):
    assert sorted(p.name for p in rendered.iterdir()) == ["figures", "manifest.json", "report.html",
                                                          "report.ipynb", "tables"]
    man = json.loads((rendered / "manifest.json").read_text())
    assert man["title"] == "007 <i>report</i>"  # a text parameter kept as text
    assert man["parameters"]["segment"] == {"plan": ["007"]}
    assert man["parameters"]["output_dir"] == str(rendered)
    # the data fingerprint is the sha256 of each input file
    for table in ("customers", "purchases", "surveys", "products"):
        digest = hashlib.sha256((env["data"] / f"{table}.csv").read_bytes()).hexdigest()
        assert man["data"]["fingerprint"][table] == digest
    customers = pd.read_csv(env["data"] / "customers.csv", dtype=str)
    assert man["data"]["rows"]["customers"]["rows_read"] == len(customers)
    # the segment filter really filtered: the report saw only the 007 customers
    n_007 = int((customers["plan"] == "007").sum())
    assert man["data"]["in_report"]["customers"] == n_007 == man["metrics"]["customers"]
    assert 0 < n_007 < len(customers)
    assert man["versions"]["pandas"] == pd.__version__ and man["versions"]["crosssell"]
    titles = [s["title"] for s in man["sections"]]
    assert titles == ["(setup and loading)", "Ratio", "Figure and table"]
    assert all(s["duration_s"] >= 0 and s["start"] <= s["end"] for s in man["sections"])
    assert man["started_at"] < man["finished_at"] and man["duration_s"] > 0
    assert man["figures"] == ["figures/bar.png"] and man["headline_figure"] == "figures/bar.png"
    assert (rendered / "figures" / "bar.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pen = (rendered / "tables" / "penetration.csv").read_text()
    assert "'=1+2" in pen and "\n=1+2" not in pen and ",=1+2" not in pen
    assert not _leftovers(env["out"])


@pytest.mark.slow
def test_html_hides_code_and_escapes(rendered):
    page = (rendered / "report.html").read_text()
    assert "rec.metric" not in page and "check_parameters" not in page  # no code
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<title>007 &lt;i&gt;report&lt;/i&gt;</title>" in page
    assert "data:image/png;base64," in page  # the figure is embedded
    assert "cdnjs" not in page and "<script src" not in page  # nothing fetched from the internet


@pytest.mark.slow
def test_rerender_replaces_the_report(rendered, env):
    before = json.loads((rendered / "manifest.json").read_text())
    (rendered / "stale.txt").write_text("from the previous run")
    code = main(["report", str(env["nb"]), "--data", str(env["data"]), "--out", str(env["out"]),
                 "-p", "segment", "plan=CON"])
    assert code == 0
    after = json.loads((rendered / "manifest.json").read_text())
    assert after["parameters"]["segment"] == {"plan": ["CON"]} and after["started_at"] > before["started_at"]
    assert not (rendered / "stale.txt").exists()  # replaced as a whole, not merged
    assert not _leftovers(env["out"])


@pytest.mark.slow
def test_failing_cell_keeps_the_previous_report(rendered, env, capsys):
    # render the failing notebook under the same name as the good one
    before = (rendered / "manifest.json").read_bytes()
    code = main(["report", str(env["failing"]), "--data", str(env["data"]), "--out", str(env["out"]),
                 "--name", "small"])
    assert code == 1
    err = capsys.readouterr().err
    # cell 6 of the executed notebook: papermill inserts the injected-parameters cell before it
    assert "small failed" in err and "in cell 6 (counting from 0, in the failed notebook)" in err
    assert "| x = 1 / 0" in err and "ZeroDivisionError: division by zero" in err
    failed = env["out"] / "small.failed.ipynb"
    assert f"saved at {failed}" in err
    nb = nbformat.read(str(failed), as_version=4)
    assert any(o.get("ename") == "ZeroDivisionError" for c in nb.cells for o in c.get("outputs", []))
    assert (rendered / "manifest.json").read_bytes() == before  # untouched
    assert not _leftovers(env["out"])


def test_bad_parameter_exits_2_before_any_kernel(env, capsys, monkeypatch):
    import papermill

    def boom(*a, **k):  # pragma: no cover - reaching it is the failure
        raise AssertionError("a kernel was started for a bad parameter")

    monkeypatch.setattr(papermill, "execute_notebook", boom)
    out = env["root"] / "never"
    code = main(["report", str(env["nb"]), "--data", str(env["data"]), "--out", str(out),
                 "-p", "period", "W", "-p", "horizon", "soon"])
    assert code == 2
    err = capsys.readouterr().err
    assert "period must be M, Q or Y" in err and "horizon must be a whole number of months, not 'soon'" in err
    assert main(["report", str(env["nb"]), "--out", str(out), "-p", "colour", "red"]) == 2
    assert "unknown parameter(s) colour" in capsys.readouterr().err
    assert main(["report", "no_such_notebook", "--out", str(out)]) == 2
    assert "no notebook 'no_such_notebook'" in capsys.readouterr().err
    params_file = env["root"] / "params.yml"
    params_file.write_text("period: W\n")
    assert main(["report", str(env["nb"]), "--params-file", str(params_file), "--out", str(out)]) == 2
    assert not out.exists()


@pytest.mark.slow
def test_bad_parameter_found_in_the_kernel_exits_2(env, capsys):
    code = main(["report", str(env["nb"]), "--data", str(env["data"]), "--out", str(env["out"]),
                 "--name", "by-colour", "-p", "by", "colour"])
    assert code == 2
    err = capsys.readouterr().err
    assert "ParameterError" in err and "the attributes are: plan, region, channel" in err
    assert not (env["out"] / "by-colour").exists()


@pytest.mark.slow
def test_bad_data_exits_1_and_names_the_column(env, capsys, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    cust = pd.read_csv(env["data"] / "customers.csv", dtype=str).drop(columns="signup_date")
    cust.to_csv(bad / "customers.csv", index=False)
    (bad / "purchases.csv").write_bytes((env["data"] / "purchases.csv").read_bytes())
    code = main(["report", str(env["nb"]), "--data", str(bad), "--out", str(env["out"]), "--name", "bad"])
    assert code == 1
    err = capsys.readouterr().err
    assert "DataValidationError" in err and "customers" in err and "signup_date" in err
    assert (env["out"] / "bad.failed.ipynb").exists() and not (env["out"] / "bad").exists()


@pytest.mark.slow
def test_each_segment_with_hostile_names(env, capsys):
    out = env["root"] / "each"
    code = main(["report", str(env["nb"]), "--data", str(env["data"]), "--out", str(out), "--each", "plan",
                 "--jobs", "2", "--params-file", str(_params_file(env["root"]))])
    assert code == 0
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == len(PLANS)
    seen = {}
    for f in folders:
        assert SAFE.match(f.name) and f.parent == out
        man = json.loads((f / "manifest.json").read_text())
        (value,) = man["parameters"]["segment"]["plan"]
        seen[value] = f.name
        assert man["parameters"]["title"] == "Plans"  # from the params file
        assert man["data"]["in_report"]["customers"] == 200 // len(PLANS)  # plans assigned in turn
    assert sorted(seen) == sorted(PLANS)  # each value once, as text ("007" kept)
    assert seen["007"] == "small--plan-007"
    page = (out / "index.html").read_text()
    assert "<b>" not in page and "&lt;b&gt;&quot;x&quot;&lt;/b&gt;\\" in page
    for name in seen.values():
        assert f"href='{name}/report.html'" in page and f"src='{name}/figures/bar.png'" in page
    assert not _leftovers(out)
    assert "index.html" in capsys.readouterr().out


def _params_file(root: Path) -> Path:
    path = root / "each.yml"
    path.write_text("title: Plans\nhorizon: 6\n")
    return path


def test_each_rejects_unknown_attribute_and_overlap(env, capsys):
    out = env["root"] / "each-bad"
    assert main(["report", str(env["nb"]), "--data", str(env["data"]), "--out", str(out),
                 "--each", "colour"]) == 2
    assert "--each 'colour' is not a customer attribute" in capsys.readouterr().err
    assert main(["report", str(env["nb"]), "--data", str(env["data"]), "--out", str(out),
                 "--each", "plan", "-p", "segment", "plan=007"]) == 2
    assert "cannot be combined" in capsys.readouterr().err


@pytest.mark.slow
def test_html_failure_keeps_the_executed_notebook(env, capsys, monkeypatch):
    def broken(nb, title):
        raise RuntimeError("no HTML today")

    monkeypatch.setattr(report, "_to_html", broken)
    code = main(["report", str(env["nb"]), "--data", str(env["data"]), "--out", str(env["out"]),
                 "--name", "no-html"])
    assert code == 1
    err = capsys.readouterr().err
    assert "the notebook ran, but writing the report failed: RuntimeError: no HTML today" in err
    saved = nbformat.read(str(env["out"] / "no-html.failed.ipynb"), as_version=4)
    assert any("ratio" in o.get("text", "") for c in saved.cells for o in c.get("outputs", []))
    assert not (env["out"] / "no-html").exists() and not _leftovers(env["out"])


# --------------------------------------------------------------------------------------------
# presentation helpers


def test_interval_text_and_bullets():
    est = pd.Series([0.6234, 1.0, np.nan], index=[5, 6, 7])
    out = report.interval_text(est, [0.5401, None, 0.1], [0.7172, None, 0.2])
    assert out.tolist() == ["0.62 [0.54, 0.72]", "1.00", ""] and out.index.tolist() == [5, 6, 7]
    b = report.bullets(["tier 5+ <churns>", "x"])
    assert b._repr_html_() == "<ul><li>tier 5+ &lt;churns&gt;</li><li>x</li></ul>"
    assert repr(b) == "- tier 5+ <churns>\n- x"
    assert repr(report.bullets([], empty="No flag.")) == "No flag."


def test_top_recommendations_and_hit_rates():
    # three customers: A is first for c1 and c2, B for c3 -> A 2 of 3, B 1 of 3
    nbp = pd.DataFrame({
        "customer_id": ["c1", "c1", "c2", "c3"], "rank": [1, 2, 1, 1], "product_id": ["A", "B", "A", "B"],
        "score": [0.5, 0.2, 0.3, 0.9], "lift": [2.0, 1.0, 4.0, 3.0],
    })
    top = report.top_recommendations(nbp)
    assert top["product_id"].tolist() == ["A", "B"] and top["customers"].tolist() == [2, 1]
    assert top["share"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert top["mean_score"].tolist() == pytest.approx([0.4, 0.9]) and top["mean_lift"].tolist() == [3.0, 3.0]
    evaluation = pd.DataFrame({"method": ["next_best_product", "next_best_product", "popularity"],
                               "metric": ["hit_rate", "precision", "hit_rate"], "estimate": [0.56, 0.19, 0.52]})
    assert report.hit_rates(evaluation) == {"next_best_product": 0.56, "popularity": 0.52}


def test_sections_from_papermill_timings():
    v4 = nbformat.v4

    def code(start, end, duration):
        return v4.new_code_cell("x", metadata={"papermill": {"start_time": start, "end_time": end,
                                                             "duration": duration}})

    nb = v4.new_notebook(cells=[
        v4.new_markdown_cell("# Title"), code("t0", "t1", 1.0),
        v4.new_markdown_cell("## A\ntext"), code("t2", "t3", 0.5), code("t3", "t4", 0.25),
        v4.new_markdown_cell("### a sub-section stays in A"), code("t4", "t5", 1.0),
        v4.new_markdown_cell("## Empty"), v4.new_markdown_cell("## B"), code("t6", "t7", 2.0),
    ])
    assert report._sections(nb) == [
        {"title": "(setup and loading)", "start": "t0", "end": "t1", "duration_s": 1.0, "cells": 1},
        {"title": "A", "start": "t2", "end": "t5", "duration_s": 1.75, "cells": 3},
        {"title": "B", "start": "t6", "end": "t7", "duration_s": 2.0, "cells": 1},
    ]
