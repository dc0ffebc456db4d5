"""Reports: parameterized notebooks rendered by papermill into self-contained HTML.

Two halves live here.

**Inside a notebook** (light: no papermill import):

* :func:`check_parameters` validates and coerces the notebook's parameters (the cell after the
  ``parameters`` cell calls it) and stops with one message that lists every bad value;
* :func:`load_data` loads the data the parameters name, checks the ``by`` attribute and the
  segment filter against it and applies the filter;
* :class:`Recorder` saves what a report shows: figures as ``figures/*.png``, tables as
  ``tables/*.csv`` (formula-neutralised) and figures of note in ``metrics.json``;
* :func:`headline` (the latest complete period's ratio, its interval and the change vs the
  previous period, from :func:`crosssell.trend`), :func:`title_block`, :func:`quality_tables`.

**Outside** (the ``crosssell report`` command): :func:`render` runs one notebook with papermill,
converts it to HTML with the code hidden and the figures embedded, and writes
``reports/<name>/`` atomically with ``report.ipynb``, ``report.html``, ``figures/``, ``tables/``
and ``manifest.json``; :func:`render_each` renders one report per segment value and
:func:`write_index` links them from ``reports/index.html``.

Examples
--------
>>> from crosssell import report
>>> p = report.check_parameters(period="q", segment="plan=Pro", horizon="6")
>>> p.period, p.segment, p.horizon
('Q', {'plan': ['Pro']}, 6)
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import json
import math
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
import unicodedata
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

from .errors import ParameterError, ReportError

__all__ = [
    "PARAMETERS",
    "Parameter",
    "ReportParameters",
    "check_parameters",
    "coerce_parameter",
    "parameters_cell",
    "load_data",
    "resolve_by",
    "Recorder",
    "Headline",
    "headline",
    "title_block",
    "Table",
    "note",
    "jsonable",
    "top_recommendations",
    "hit_rates",
    "bullets",
    "interval_text",
    "quality_tables",
    "setup_notebook",
    "safe_name",
    "neutralise_formulas",
    "notebook_path",
    "notebook_parameters",
    "render",
    "render_each",
    "segment_values",
    "CHECK_MARK",
    "RenderResult",
    "write_index",
    "store_checked_outputs",
    "add_arguments",
    "run_cli",
]

ROOT = Path(__file__).resolve().parent.parent
# one kernel per core, at most four: each kernel holds its own copy of the data (measured on 2
# cores, 3 segments: 54 s one at a time, 42 s two at a time, 45 s three at a time)
DEFAULT_JOBS = max(1, min(4, os.cpu_count() or 1))
NOTEBOOKS = ROOT / "notebooks"
DEFAULT_NOTEBOOK = "cross_sell_report"


# ============================================================================================
# parameters


@dataclass(frozen=True)
class Parameter:
    """One notebook parameter: its type as papermill reads it, its default and its help."""

    name: str
    type_name: str
    default: Any
    help: str

    def line(self) -> str:
        """The parameters-cell line: ``name: type = default  # help``."""
        value = json.dumps(self.default) if isinstance(self.default, str) else repr(self.default)
        return f"{self.name}: {self.type_name} = {value}  # {self.help}"


# The parameters every notebook declares, in this order.  The notebooks' parameters cells are
# these lines verbatim (tests/test_notebooks.py checks it), so ``papermill --help-notebook`` and
# ``crosssell report`` agree.  Help texts hold no "=": papermill skips a line with two of them.
PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in (
        Parameter("title", "str", "Cross-sell report", "report title shown at the top"),
        Parameter("data_path", "str", "",
                  "folder with customers, purchases [, surveys, products]; empty: the bundled sample"),
        Parameter("mapping_file", "Optional[str]", None,
                  "YAML column or adapter mapping (see data/examples/*.yml); None: contract names"),
        Parameter("reference_date", "Optional[str]", None,
                  "as-of date YYYY-MM-DD; None: the latest date in the data"),
        Parameter("period", "str", "Q", "M, Q or Y"),
        Parameter("start", "Optional[str]", None, "first day of the date range YYYY-MM-DD; None: from the start"),
        Parameter("end", "Optional[str]", None, "last day of the date range YYYY-MM-DD; None: to the reference date"),
        Parameter("segment", "dict", {},
                  'segment filter {attribute: value or [values]}, e.g. {"plan": "Pro"}; {}: everyone'),
        Parameter("by", "Optional[str]", None,
                  "customer attribute to compare segments by; None: the first attribute of the data"),
        Parameter("tier_bins", "str", "0,1,2,3-4,5+",
                  "add-on tiers: counts and ranges, the last open (5+ means 5 or more)"),
        Parameter("horizon", "int", 12, "months: churn and survival horizon"),
        Parameter("target_ratio", "Optional[float]", None, "goal for the cross-sell ratio, drawn on the trend"),
        Parameter("basis", "str", "sold", "sold (in the period) or held (at the period end)"),
        Parameter("output_dir", "Optional[str]", None,
                  "where figures, tables and metrics.json go; crosssell report sets it"),
    )
}


def parameters_cell() -> str:
    """The source of the notebooks' ``parameters`` cell (one typed, commented line each)."""
    return "\n".join(p.line() for p in PARAMETERS.values())


@dataclass(frozen=True)
class ReportParameters:
    """Validated notebook parameters (see :data:`PARAMETERS` for their meaning)."""

    title: str = "Cross-sell report"
    data_path: Path | None = None
    mapping_file: Path | None = None
    reference_date: Any = None  # pandas.Timestamp or None
    period: str = "Q"
    start: Any = None
    end: Any = None
    segment: dict = field(default_factory=dict)
    by: str | None = None
    tier_bins: tuple = ()
    horizon: int = 12
    target_ratio: float | None = None
    basis: str = "sold"
    output_dir: Path | None = None
    notes: tuple = ()

    def as_dict(self) -> dict:
        """JSON-ready values, for the manifest."""
        out = {}
        for k, v in asdict(self).items():
            if k == "notes":
                continue
            if isinstance(v, Path):
                v = str(v)
            elif hasattr(v, "date") and not isinstance(v, str) and v is not None:
                v = str(v.date())
            elif isinstance(v, tuple):
                v = [list(x) if isinstance(x, tuple) else x for x in v]
            out[k] = v
        out["tier_bins"] = ",".join(label for label, _, _ in self.tier_bins)
        return out

    @property
    def tier_labels(self) -> list[str]:
        return [label for label, _, _ in self.tier_bins]

    @property
    def bins(self) -> tuple[int, ...]:
        """The tiers as the lower edges :func:`crosssell.tiers` takes: ``0,1,2,3-4,5+`` → (1, 2, 3, 5)."""
        return tuple(lo for _, lo, _ in self.tier_bins[1:])

    @property
    def horizon_text(self) -> str:
        """The horizon as the duration the outcome functions take (``"12M"``)."""
        return f"{self.horizon}M"

    @property
    def date_range(self) -> dict:
        """``start``/``end`` as keyword arguments of the analysis functions."""
        return {"start": self.start, "end": self.end}


_PERIODS = ("M", "Q", "Y")
_BASES = ("sold", "held")
_LEADING_ZERO_NOTE = (
    "papermill's -p turns 007 into 7; pass such values with -r (papermill) or through "
    "crosssell report, which keeps them as text"
)


def _as_text(name: str, value: Any, problems: list[str], notes: list[str], *, optional: bool) -> str | None:
    if value is None or (isinstance(value, str) and value.strip() == "" and optional):
        return None
    if isinstance(value, bool):
        problems.append(f"{name} must be text, not {value!r}")
        return None
    if isinstance(value, int | float):
        notes.append(f"{name} was given as the number {value!r} and is used as the text {str(value)!r} ({_LEADING_ZERO_NOTE})")
        return str(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        problems.append(f"{name} must be text, not {type(value).__name__} {value!r}")
        return None
    return value.strip()


def _as_date(name: str, value: Any, problems: list[str], notes: list[str]):
    import pandas as pd

    text = _as_text(name, value, problems, notes, optional=True)
    if text is None:
        return None
    if not re.fullmatch(r"\d{4}-\d{1,2}(-\d{1,2})?([ T].*)?", text):
        problems.append(f"{name} must be a date like 2024-12-31, not {value!r}")
        return None
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        ts = None
    if ts is None or pd.isna(ts):
        problems.append(f"{name} must be a date like 2024-12-31, not {value!r}")
        return None
    return ts.normalize()


def _segment(value: Any, problems: list[str], notes: list[str]) -> dict:
    """``{"plan": "Pro"}``, ``{"plan": ["Pro", "Basic"]}`` or the text ``plan=Pro``."""
    if value is None or value == "" or value == {}:
        return {}
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            import yaml

            try:
                value = yaml.load(text, Loader=yaml.BaseLoader)  # every scalar stays text
            except yaml.YAMLError as exc:
                problems.append(f"segment is not a valid mapping: {exc}")
                return {}
        elif "=" in text:
            key, _, val = text.partition("=")
            value = {key.strip(): val}
        else:
            problems.append(
                f'segment must be {{attribute: value}} or the text attribute=value, not {value!r}'
            )
            return {}
    if not isinstance(value, Mapping):
        problems.append(f"segment must be a mapping {{attribute: value}}, not {type(value).__name__}")
        return {}
    out = {}
    for key, vals in value.items():
        if not isinstance(key, str) or not key.strip():
            problems.append(f"segment attribute names must be text, not {key!r}")
            continue
        items = list(vals) if isinstance(vals, list | tuple | set) else [vals]
        if not items:
            problems.append(f"segment {key!r} lists no value")
            continue
        texts = []
        for v in items:
            if v is None or isinstance(v, bool | dict | list):
                problems.append(f"segment {key!r} has an unusable value {v!r}")
                continue
            if isinstance(v, int | float):
                notes.append(f"segment {key}: the number {v!r} is used as the text {str(v)!r} ({_LEADING_ZERO_NOTE})")
            texts.append(str(v))
        out[key.strip()] = texts
    return out


_TIER = re.compile(r"^\s*(\d+)\s*(?:(\+)|[-\u2013]\s*(\d+))?\s*$")


def _tiers(value: Any, problems: list[str]) -> tuple:
    """Parse ``"0,1,2,3-4,5+"`` into ``(("0", 0, 0), ..., ("5+", 5, None))``; contiguous from 0."""
    if isinstance(value, list | tuple):
        parts = [str(v) for v in value]
    elif isinstance(value, str):
        parts = [p for p in value.split(",")]
    else:
        problems.append(f"tier_bins must be text like '0,1,2,3-4,5+', not {value!r}")
        return ()
    bins = []
    for part in parts:
        m = _TIER.match(part)
        if not m:
            problems.append(f"tier_bins: {part.strip()!r} is not a count (2), a range (3-4) or an open end (5+)")
            return ()
        lo = int(m.group(1))
        hi = None if m.group(2) else int(m.group(3)) if m.group(3) else lo
        if hi is not None and hi < lo:
            problems.append(f"tier_bins: the range {part.strip()!r} ends before it starts")
            return ()
        label = f"{lo}+" if hi is None else (str(lo) if hi == lo else f"{lo}\u2013{hi}")
        bins.append((label, lo, hi))
    expected = 0
    for i, (label, lo, hi) in enumerate(bins):
        if lo != expected:
            problems.append(
                f"tier_bins must cover 0, 1, 2, ... without gaps or overlaps; {label!r} starts at {lo}, "
                f"expected {expected}"
            )
            return ()
        if hi is None and i != len(bins) - 1:
            problems.append(f"tier_bins: only the last tier may be open-ended ({label!r} is not last)")
            return ()
        expected = (hi + 1) if hi is not None else None
    if bins and bins[-1][2] is not None:
        problems.append("tier_bins: the last tier must be open-ended, like 5+, so every customer has a tier")
        return ()
    if len(bins) < 2:
        problems.append("tier_bins needs at least two tiers to compare")
        return ()
    return tuple(bins)


def check_parameters(values: Mapping | None = None, /, **kw: Any) -> ReportParameters:
    """Validate and coerce a notebook's parameters; one :class:`ParameterError` lists every problem.

    Values arrive as papermill injects them (``-p`` turns ``007`` into the number 7 and ``2024``
    into an int): text parameters accept numbers and convert them back to text, with a note in
    ``notes``; numbers accept text.  Paths must exist.  Nothing here reads the data: checks that
    need it (the ``by`` attribute, the segment values) are in :func:`load_data`.

    Parameters
    ----------
    values, **kw
        Parameter names of :data:`PARAMETERS` and their values; missing ones take the default.

    Returns
    -------
    ReportParameters

    Raises
    ------
    ParameterError
        Unknown names, or values that cannot be used, all listed in the message.

    Examples
    --------
    >>> check_parameters(period="M", target_ratio="0.8").target_ratio
    0.8
    >>> check_parameters(period="W")
    Traceback (most recent call last):
    ...
    crosssell.errors.ParameterError: bad report parameter:
      - period must be M, Q or Y (month, quarter, year), not 'W'
    """
    given = {**(dict(values) if values else {}), **kw}
    unknown = sorted(set(given) - set(PARAMETERS))
    problems: list[str] = []
    notes: list[str] = []
    if unknown:
        problems.append(f"unknown parameter(s) {', '.join(unknown)}; the parameters are: {', '.join(PARAMETERS)}")
    v = {name: given.get(name, p.default) for name, p in PARAMETERS.items()}

    title = _as_text("title", v["title"], problems, notes, optional=False) or ""
    if not title.strip():
        problems.append("title must not be empty")
    title = title[:200]

    data_path = None
    text = _as_text("data_path", v["data_path"], problems, notes, optional=True)
    if text:
        data_path = Path(text).expanduser()
        if not data_path.exists():
            problems.append(f"data_path {text!r} does not exist")
        data_path = data_path.resolve()
    else:
        from . import sample_path

        data_path = sample_path()

    mapping = None
    text = _as_text("mapping_file", v["mapping_file"], problems, notes, optional=True)
    if text:
        mapping = Path(text).expanduser()
        if not mapping.is_file():
            problems.append(f"mapping_file {text!r} is not a file")
        else:
            mapping = mapping.resolve()
            import yaml

            try:
                content = yaml.safe_load(mapping.read_text(encoding="utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                problems.append(f"mapping_file {text!r} is not valid YAML: {exc}")
            else:
                if not isinstance(content, dict):
                    problems.append(f"mapping_file {text!r} must hold a mapping, found {type(content).__name__}")

    reference = _as_date("reference_date", v["reference_date"], problems, notes)
    start = _as_date("start", v["start"], problems, notes)
    end = _as_date("end", v["end"], problems, notes)
    if start is not None and end is not None and start > end:
        problems.append(f"start {start.date()} is after end {end.date()}")
    if reference is not None and start is not None and start > reference:
        problems.append(f"start {start.date()} is after the reference date {reference.date()}")

    period = _as_text("period", v["period"], problems, notes, optional=False)
    period = period.upper() if period else period
    if period not in _PERIODS:
        problems.append(f"period must be M, Q or Y (month, quarter, year), not {v['period']!r}")

    basis = _as_text("basis", v["basis"], problems, notes, optional=False)
    basis = basis.lower() if basis else basis
    if basis not in _BASES:
        problems.append(f"basis must be 'sold' or 'held', not {v['basis']!r}")

    segment = _segment(v["segment"], problems, notes)
    by = _as_text("by", v["by"], problems, notes, optional=True) or None
    tiers = _tiers(v["tier_bins"], problems)

    horizon = v["horizon"]
    try:
        if isinstance(horizon, bool):
            raise ValueError
        number = float(horizon)
        if not number.is_integer():
            raise ValueError
        horizon = int(number)
        if not 1 <= horizon <= 240:
            problems.append(f"horizon must be between 1 and 240 months, not {horizon}")
    except (TypeError, ValueError):
        problems.append(f"horizon must be a whole number of months, not {v['horizon']!r}")
        horizon = PARAMETERS["horizon"].default

    target = v["target_ratio"]
    if target is not None and not (isinstance(target, str) and not target.strip()):
        try:
            if isinstance(target, bool):
                raise ValueError
            target = float(target)
            if not math.isfinite(target) or target <= 0:
                problems.append(f"target_ratio must be a positive number, not {v['target_ratio']!r}")
        except (TypeError, ValueError):
            problems.append(f"target_ratio must be a number like 1.5, not {v['target_ratio']!r}")
            target = None
    else:
        target = None

    out = _as_text("output_dir", v["output_dir"], problems, notes, optional=True)
    output_dir = Path(out).expanduser().resolve() if out else None

    if problems:
        raise ParameterError("bad report parameter:\n" + "\n".join(f"  - {p}" for p in problems))
    return ReportParameters(
        title=title, data_path=data_path, mapping_file=mapping, reference_date=reference,
        period=period, start=start, end=end, segment=segment, by=by, tier_bins=tiers,
        horizon=horizon, target_ratio=target, basis=basis, output_dir=output_dir, notes=tuple(notes),
    )


def coerce_parameter(name: str, raw: str, type_name: str | None = None) -> Any:
    """Turn a command-line string into the Python value of a parameter, by its declared type.

    Text stays text (``"007"`` stays ``"007"``, unlike papermill's ``-p``); ``None``/empty
    becomes None for ``Optional[...]`` types; ``dict`` takes YAML/JSON (every scalar kept as
    text) or ``attribute=value``.

    Examples
    --------
    >>> coerce_parameter("segment", "plan=007"), coerce_parameter("title", "007")
    ({'plan': '007'}, '007')
    """
    if type_name is None:
        if name not in PARAMETERS:
            raise ParameterError(f"unknown parameter {name!r}; the parameters are: {', '.join(PARAMETERS)}")
        type_name = PARAMETERS[name].type_name
    t = type_name.replace(" ", "")
    optional = t.startswith("Optional[")
    if optional:
        t = t[len("Optional["):-1]
        if raw.strip() in ("", "None", "none", "null", "~"):
            return None
    if t in ("str", "None"):
        return raw
    if t in ("int", "float"):
        try:
            return int(raw) if t == "int" else float(raw)
        except ValueError:
            return raw  # check_parameters reports it with every other problem
    if t == "bool":
        low = raw.strip().lower()
        if low in ("true", "yes", "1"):
            return True
        if low in ("false", "no", "0"):
            return False
        raise ParameterError(f"{name} must be true or false, not {raw!r}")
    if t in ("dict", "list"):
        text = raw.strip()
        if t == "dict" and not text.startswith("{") and "=" in text:
            key, _, val = text.partition("=")
            return {key.strip(): val}
        import yaml

        try:
            value = yaml.load(text, Loader=yaml.BaseLoader) if text else ({} if t == "dict" else [])
        except yaml.YAMLError as exc:
            raise ParameterError(f"{name} must be YAML/JSON ({t}): {exc}") from None
        if not isinstance(value, dict if t == "dict" else list):
            raise ParameterError(f"{name} must be a {t}, not {raw!r}")
        return value
    return raw


# ============================================================================================
# inside the notebook


def setup_notebook() -> None:
    """Figure size and resolution, pandas display and one-line warnings for report notebooks."""
    import matplotlib as mpl
    import pandas as pd

    mpl.rcParams.update({"figure.figsize": (8, 4.5), "figure.dpi": 100, "savefig.bbox": "tight"})
    pd.set_option("display.max_rows", 60)
    pd.set_option("display.precision", 3)

    def _short(message, category, filename, lineno, line=None):
        return f"{category.__name__}: {message}\n"

    warnings.formatwarning = _short


def load_data(params: ReportParameters):
    """Load the data the parameters name, check ``by`` and the segment, apply the segment filter.

    Returns
    -------
    CrossSellData
        Filtered to the segment; ``by`` is resolved in :func:`resolve_by`.

    Raises
    ------
    ParameterError
        The ``by`` or segment attribute is not a customer attribute, or a segment value does not
        occur in the data (the message lists the attributes and values that do), or the segment
        has no customers.
    DataValidationError
        The data breaks the contract.
    """
    from . import engine

    data = _load(params)
    problems = []
    if params.by is not None and params.by not in data.attributes:
        problems.append(
            f"by={params.by!r} is not a customer attribute; the attributes are: "
            f"{', '.join(data.attributes) or 'none'}"
        )
    for attr, values in params.segment.items():
        if attr not in data.attributes:
            problems.append(
                f"segment attribute {attr!r} is not a customer attribute; the attributes are: "
                f"{', '.join(data.attributes) or 'none'}"
            )
            continue
        col = data.customers[attr]
        known = engine.execute(data.customers.select(v=col.cast("string")).distinct())["v"].dropna().astype(str)
        missing = [v for v in values if v not in set(known)]
        if missing:
            shown = ", ".join(repr(x) for x in sorted(known)[:20])
            hint = f"; {_LEADING_ZERO_NOTE}" if any(v.isdigit() for v in missing) else ""
            problems.append(f"segment {attr}: no customer has {', '.join(map(repr, missing))}; values: {shown}{hint}")
    if problems:
        raise ParameterError("bad report parameter:\n" + "\n".join(f"  - {p}" for p in problems))
    if params.segment:
        typed = {k: _typed_values(data.customers[k], v) for k, v in params.segment.items()}
        data = data.where(**{k: (v[0] if len(v) == 1 else v) for k, v in typed.items()})
        n = int(engine.execute(data.customers.aggregate(n=data.customers.count()))["n"].iloc[0])
        if n == 0:
            raise ParameterError(f"the segment {params.segment} has no customers")
    return data


def _typed_values(col, values: list[str]) -> list:
    """Segment values (text) in the attribute's own type, so a numeric attribute filters too."""
    t = col.type()
    if t.is_integer():
        return [int(float(v)) for v in values]
    if t.is_floating():
        return [float(v) for v in values]
    if t.is_boolean():
        return [v.strip().lower() in ("true", "1", "yes") for v in values]
    return list(values)


def _load(params: ReportParameters):
    """``cs.load`` with the mapping file: ``mapping=`` (adapters) or a column mapping."""
    import inspect

    from .data import load

    if params.mapping_file is None:
        return load(params.data_path, reference_date=params.reference_date)
    if "mapping" in inspect.signature(load).parameters:
        return load(params.data_path, mapping=str(params.mapping_file), reference_date=params.reference_date)
    try:
        from .adapters import load_mapped
    except ImportError:  # no adapters: the file is a plain column mapping
        import yaml

        content = yaml.safe_load(params.mapping_file.read_text(encoding="utf-8"))
        return load(params.data_path, columns=content.get("columns", content),
                    reference_date=params.reference_date)
    return load_mapped(params.data_path, str(params.mapping_file), reference_date=params.reference_date)


def resolve_by(params: ReportParameters, data) -> str | None:
    """The attribute to compare segments by: ``by``, else the first one not filtered to one value."""
    if params.by is not None:
        return params.by
    for attr in data.attributes:
        if len(params.segment.get(attr, [])) != 1:
            return attr
    return None


class Recorder:
    """What a report shows, saved beside it: figures, tables and the figures of note.

    With ``output_dir`` None (a notebook opened in JupyterLab) nothing is written and every
    method only shapes what is displayed.

    Parameters
    ----------
    params : ReportParameters
        The report's parameters; ``params.output_dir`` is where files go.

    Examples
    --------
    >>> rec = Recorder(check_parameters())
    >>> rec.metric(answer=42)
    >>> rec.metrics["answer"]
    42
    """

    def __init__(self, params: ReportParameters):
        self.params = params
        self.dir = params.output_dir
        self.metrics: dict[str, Any] = {"parameters": params.as_dict(), "notes": list(params.notes)}
        self.figures: list[str] = []
        self.tables: list[str] = []
        self._names: dict[str, set[str]] = {}
        if self.dir is not None:
            (self.dir / "figures").mkdir(parents=True, exist_ok=True)
            (self.dir / "tables").mkdir(parents=True, exist_ok=True)
        self._flush()

    def _name(self, kind: str, name: str) -> str:
        taken = self._names.setdefault(kind, set())
        safe = safe_name(name, taken)
        taken.add(safe.lower())
        return safe

    def figure(self, name: str, ax=None, *, headline: bool = False) -> None:
        """Save the figure of ``ax`` (the current figure when None) as ``figures/<name>.png``.

        The saved PNG is what the notebook displays (the figure is drawn once, not twice).
        ``headline=True`` marks the figure the index page shows as the report's thumbnail.
        """
        import matplotlib.pyplot as plt

        fig = plt.gcf() if ax is None else getattr(ax, "figure", ax)
        if self.dir is None:
            return  # the notebook's inline backend shows it
        from IPython.display import Image, display

        safe = self._name("figure", name)
        path = self.dir / "figures" / f"{safe}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        display(Image(data=path.read_bytes(), format="png"), metadata={"alt": _alt_text(fig, name)})
        self.figures.append(f"figures/{safe}.png")
        if headline or "headline_figure" not in self.metrics:
            self.metrics["headline_figure"] = f"figures/{safe}.png"
        self.metrics["figures"] = self.figures
        self._flush()

    def table(self, name: str, frame, *, show=None, empty: str | None = None, digits: int = 3):
        """Save ``frame`` as ``tables/<name>.csv`` and return what to display.

        Text cells a spreadsheet would run as a formula are neutralised in the CSV (see
        :func:`neutralise_formulas`).  The display shows ``show`` (default: ``frame``) with
        floats rounded to ``digits``, periods as text and every cell HTML-escaped, so
        data-derived text is shown, never run; an empty frame shows ``empty`` instead.
        """
        if frame is None:
            return note(empty or "Not available for this data.")
        if self.dir is not None:
            safe = self._name("table", name)
            path = self.dir / "tables" / f"{safe}.csv"
            neutralise_formulas(_display_frame(frame, None)).to_csv(
                path, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n"
            )
            self.tables.append(f"tables/{safe}.csv")
            self.metrics["tables"] = self.tables
            self._flush()
        if len(frame) == 0 and empty:
            return note(empty)
        return Table(frame if show is None else show, digits=digits)

    def metric(self, **values: Any) -> None:
        """Record figures of note (JSON-serialisable) in ``metrics.json``."""
        self.metrics.update(jsonable(values))
        self._flush()

    def record_data(self, data) -> None:
        """Rows read and excluded per table, the exclusions, and the sha256 of every input file."""
        from . import engine

        summary = data.summary()
        counts = {
            t: int(engine.execute(getattr(data, t).aggregate(n=getattr(data, t).count()))["n"].iloc[0])
            for t in ("customers", "purchases", "surveys") if getattr(data, t) is not None
        }
        self.metrics["data"] = {
            "path": str(self.params.data_path),
            "mapping_file": str(self.params.mapping_file) if self.params.mapping_file else None,
            "reference_date": str(data.reference_date.date()),
            "fingerprint": data.fingerprint(),
            "rows": jsonable(summary.set_index("table").to_dict(orient="index")) if len(summary) else {},
            "excluded": data.excluded(),
            "attributes": list(data.attributes),
            "segment": self.params.segment,
            "in_report": counts,  # rows of the segment (all rows when there is no filter)
        }
        if self.params.mapping_file is not None:
            self.metrics["data"]["fingerprint"]["mapping_file"] = _sha256(self.params.mapping_file)
        self._flush()

    def _flush(self) -> None:
        if self.dir is None:
            return
        tmp = self.dir / "metrics.json.tmp"
        tmp.write_text(json.dumps(jsonable(self.metrics), indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.dir / "metrics.json")


def _alt_text(fig, name: str) -> str:
    """The figure's titles (what a screen reader says for it), else its name."""
    titles = [t for t in (getattr(fig, "_suptitle", None), *(ax.get_title() for ax in fig.axes)) if t]
    titles = [t.get_text() if hasattr(t, "get_text") else t for t in titles]
    return "; ".join(t for t in titles if t) or name.replace("_", " ")


def _display_frame(frame, digits):
    import pandas as pd

    out = frame.copy()
    out.attrs = {}
    if isinstance(out.index, pd.PeriodIndex):
        out.index = out.index.astype(str)
    if isinstance(out.columns, pd.PeriodIndex):
        out.columns = out.columns.astype(str)
    for col in out.columns:
        s = out[col]
        if isinstance(s.dtype, pd.PeriodDtype):
            out[col] = s.astype(str)
        elif digits is not None and pd.api.types.is_float_dtype(s.dtype):
            out[col] = s.round(digits)
    return out


def _sha256(path: Path) -> str:
    digest = sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy numbers, timestamps, periods, paths and NaN (as None) converted."""
    import numpy as np
    import pandas as pd

    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, pd.Timestamp | _dt.date):
        return obj.isoformat()[:10] if isinstance(obj, _dt.date) else str(obj)
    if isinstance(obj, pd.Period | Path):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    if obj is pd.NA or obj is pd.NaT:
        return None
    return str(obj)


def neutralise_formulas(frame):
    """Prefix text cells that a spreadsheet would run as a formula with a quote.

    A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (the
    characters OWASP lists for CSV injection) gets a leading ``'``; numbers are left alone, so
    ``-0.5`` stays a number.

    Examples
    --------
    >>> import pandas as pd
    >>> neutralise_formulas(pd.DataFrame({"p": ["=1+1", "ok"], "x": [-1.0, 2.0]}))["p"].tolist()
    ["'=1+1", 'ok']
    """
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype):
            out[col] = s.map(lambda v: "'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r") else v)
    if any(isinstance(c, str) and c[:1] in ("=", "+", "-", "@", "\t", "\r") for c in out.columns):
        out.columns = ["'" + c if isinstance(c, str) and c[:1] in ("=", "+", "-", "@", "\t", "\r") else c
                       for c in out.columns]
    return out


# --------------------------------------------------------------------------------------------
# shown in the notebooks


class _HTML:
    """An escaped HTML fragment with a plain-text twin (what nbval and a terminal see)."""

    def __init__(self, html_text: str, text: str):
        self._html = html_text
        self._text = text

    def _repr_html_(self) -> str:
        return self._html

    def __repr__(self) -> str:
        return self._text


class Table:
    """A frame shown as an escaped HTML table without the row numbers (and as plain text)."""

    def __init__(self, frame, *, digits: int | None = 3):
        import pandas as pd

        self.frame = _display_frame(frame, digits)
        self._index = self.frame.index.name is not None or isinstance(self.frame.index, pd.MultiIndex)

    def _repr_html_(self) -> str:
        return self.frame.to_html(index=self._index, escape=True, border=0, na_rep="",
                                  classes="dataframe crosssell-table")

    def __repr__(self) -> str:
        return self.frame.to_string(index=self._index, na_rep="")


def interval_text(estimate, low, high, *, digits: int = 2):
    """``"0.62 [0.54, 0.72]"`` per row (just the estimate where the interval is missing).

    Examples
    --------
    >>> interval_text([0.6234, 1.0], [0.5401, None], [0.7172, None]).tolist()
    ['0.62 [0.54, 0.72]', '1.00']
    """
    import numpy as np
    import pandas as pd

    e, lo, hi = (pd.to_numeric(pd.Series(np.asarray(x, dtype=object)), errors="coerce") for x in (estimate, low, high))
    out = []
    for a, b, c in zip(e, lo, hi, strict=True):
        if pd.isna(a):
            out.append("")
        elif pd.isna(b) or pd.isna(c):
            out.append(f"{a:.{digits}f}")
        else:
            out.append(f"{a:.{digits}f} [{b:.{digits}f}, {c:.{digits}f}]")
    return pd.Series(out, index=estimate.index if isinstance(estimate, pd.Series) else None)


def top_recommendations(nbp, *, top: int = 10):
    """How often each product is a customer's first suggestion, from :func:`crosssell.next_best_product`.

    Returns
    -------
    DataFrame
        ``product_id`` (and ``name`` when known), ``customers`` (for whom it ranks first),
        ``share`` of the customers with a suggestion, ``mean_score`` (peers' ownership share) and
        ``mean_lift``; the ``top`` most frequent.
    """
    first = nbp[nbp["rank"] == 1]
    keys = ["product_id", *(["name"] if "name" in first.columns else [])]
    out = (
        first.groupby(keys, dropna=False)
        .agg(customers=("customer_id", "nunique"), mean_score=("score", "mean"), mean_lift=("lift", "mean"))
        .reset_index()
    )
    out["share"] = out["customers"] / max(int(first["customer_id"].nunique()), 1)
    out = out.sort_values(["customers", "product_id"], ascending=[False, True], kind="stable").head(top)
    return out[[*keys, "customers", "share", "mean_score", "mean_lift"]].reset_index(drop=True)


def hit_rates(evaluation) -> dict:
    """``{method: hit rate}`` from :func:`crosssell.evaluate_recommendations`, for the manifest."""
    rows = evaluation[evaluation["metric"] == "hit_rate"]
    return {str(m): float(v) for m, v in zip(rows["method"], rows["estimate"], strict=True)}


def bullets(items, *, empty: str = "None.") -> _HTML:
    """An escaped bullet list of sentences (e.g. over-selling flags); ``empty`` when there is none."""
    items = [str(x) for x in items]
    if not items:
        return note(empty)
    body = "<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in items) + "</ul>"
    return _HTML(body, "\n".join(f"- {x}" for x in items))


def note(text: str) -> _HTML:
    """A short escaped note (e.g. "Nothing was excluded.") for the report."""
    return _HTML(f"<p><em>{html.escape(str(text))}</em></p>", str(text))


def title_block(params: ReportParameters, data) -> _HTML:
    """The report's title and what it covers (data, as-of date, segment), all escaped."""
    seg = "; ".join(f"{k} = {', '.join(v)}" for k, v in params.segment.items()) or "all customers"
    rng = ""
    if params.start is not None or params.end is not None:
        lo = params.start.date() if params.start is not None else "the start"
        hi = params.end.date() if params.end is not None else "the reference date"
        rng = f"; periods from {lo} to {hi}"
    source = "the bundled sample" if params.data_path == _sample() else params.data_path.name
    sub = f"Data: {source}; as of {data.reference_date.date()}; segment: {seg}{rng}."
    esc = html.escape
    body = f"<h1>{esc(params.title)}</h1><p>{esc(sub)}</p>"
    if params.notes:
        body += "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in params.notes) + "</ul>"
    return _HTML(body, f"{params.title}\n{sub}")


def _sample() -> Path:
    from . import sample_path

    return sample_path()


@dataclass
class Headline:
    """The headline figure: the latest complete period's ratio and its change.

    Built by :func:`headline` from :func:`crosssell.trend`: ``low``/``high`` is the ratio's
    interval and ``change_low``/``change_high`` the change's, which accounts for the customers
    the two periods share.
    """

    period: str
    ratio: float
    numerator: float
    denominator: int
    low: float
    high: float
    previous_period: str | None
    previous_ratio: float | None
    change: float | None
    change_low: float | None
    change_high: float | None
    change_significant: bool | None
    relative_change: float | None
    definition: str
    reference_date: str
    complete: bool
    segment: dict
    ci: float = 0.95
    target_ratio: float | None = None
    vs_target: str | None = None

    def as_dict(self) -> dict:
        return jsonable(asdict(self))

    def __repr__(self) -> str:
        pct = f"{self.ci:.0%}"
        ci = "no interval" if not (math.isfinite(self.low) and math.isfinite(self.high)) else (
            f"{pct} CI {self.low:.3f} to {self.high:.3f}")
        lines = [
            f"Cross-sell ratio, {self.period}: {self.ratio:.3f} "
            f"({ci}) = {self.numerator:,.0f} / {self.denominator:,} customers"
        ]
        if self.change is not None:
            verdict = "" if self.change_significant is None else (
                "; a real change" if self.change_significant else "; within noise")
            rel = "" if self.relative_change is None else f"{self.relative_change:+.1%}; "
            ci = ("no interval" if self.change_low is None or self.change_high is None
                  else f"{pct} CI {self.change_low:+.3f} to {self.change_high:+.3f}")
            lines.append(
                f"Change vs {self.previous_period} ({self.previous_ratio:.3f}): {self.change:+.3f} "
                f"({rel}{ci}{verdict})"
            )
        else:
            lines.append("Change vs the previous period: no previous period in the range")
        if self.target_ratio is not None:
            lines.append(
                f"Target: {self.target_ratio:.3f} ({self.ratio - self.target_ratio:+.3f} from it; "
                f"{self.vs_target or 'not comparable'})"
            )
        lines.append(f"Definition: {self.definition}; as of {self.reference_date}")
        if not self.complete:
            lines.append("(no complete period in the range: the latest period is cut short by the reference date)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = repr(self).split("\n")
        big = (
            f"<div style='font-size:2.2em;font-weight:600'>{self.ratio:.2f}</div>"
            f"<div>cross-sell ratio, {esc(self.period)}</div>"
        )
        rest = "".join(f"<li>{esc(r)}</li>" for r in rows)
        return (
            "<div class='crosssell-headline' style='border:1px solid #ccc;border-radius:6px;"
            f"padding:0.8em 1.2em;margin:0.5em 0'>{big}<ul style='margin:0.4em 0'>{rest}</ul></div>"
        )


def headline(data, params: ReportParameters, *, trend=None) -> Headline:
    """The latest complete period's cross-sell ratio, its interval and the change vs the one before.

    Read from :func:`crosssell.trend` (computed here unless its result is passed as ``trend``):
    the ratio's delta-method interval, and the change's interval with the covariance of the
    customers both periods share.  A period the reference date cuts short is used only when no
    period is complete.

    Examples
    --------
    >>> import crosssell as cs
    >>> from crosssell import report
    >>> p = report.check_parameters()
    >>> print(report.headline(report.load_data(p), p))  # doctest: +SKIP
    Cross-sell ratio, 2024Q4: ...
    """
    if trend is None:
        from .cohorts import trend as _trend

        trend = _trend(data, period=params.period, basis=params.basis, target=params.target_ratio,
                       **params.date_range)
    tr = trend.reset_index(drop=True)
    usable = tr.index[tr["customers"] > 0]
    if not len(usable):
        raise ParameterError("no customers in any period of the range: nothing to report")
    complete = [j for j in usable if bool(tr.loc[j, "complete"])]
    i = int(complete[-1] if complete else usable[-1])
    cur = tr.iloc[i]
    # the change is against the calendar period just before (none when it had no customers)
    prev = tr.iloc[i - 1] if i > 0 and _notna(cur["change"]) else None
    defn = trend.attrs.get("definition", {})

    def num(x):
        return None if not _notna(x) else float(x)

    sig = cur["change_significant"] if prev is not None else None
    return Headline(
        period=str(cur["period"]), ratio=float(cur["ratio"]), numerator=float(cur["numerator"]),
        denominator=int(cur["customers"]), low=float(cur["ci_low"]), high=float(cur["ci_high"]),
        previous_period=None if prev is None else str(prev["period"]),
        previous_ratio=None if prev is None else float(prev["ratio"]),
        change=None if prev is None else num(cur["change"]),
        change_low=None if prev is None else num(cur["change_low"]),
        change_high=None if prev is None else num(cur["change_high"]),
        change_significant=None if sig is None or not _notna(sig) else bool(sig),
        relative_change=None if prev is None or not prev["ratio"] else float(cur["change"] / prev["ratio"]),
        definition=defn.get("text", ""), reference_date=str(data.reference_date.date()),
        complete=bool(cur["complete"]), segment=params.segment, ci=float(trend.attrs.get("ci", 0.95)),
        target_ratio=params.target_ratio,
        vs_target=str(cur["vs_target"]) if "vs_target" in cur and _notna(cur["vs_target"]) else None,
    )


def _notna(x) -> bool:
    import pandas as pd

    return bool(pd.notna(x))


def quality_tables(data) -> dict:
    """The data-quality appendix: rows read/used/excluded per table, exclusions, warnings."""
    import pandas as pd

    warns = pd.DataFrame([p.to_dict() for p in data.warnings()],
                         columns=["table", "column", "message", "count", "examples", "severity"])
    if len(warns):
        warns["examples"] = warns["examples"].map(lambda xs: ", ".join(map(str, xs)))
    excluded = pd.DataFrame(
        [{"what": k, "rows": v} for k, v in data.excluded().items()], columns=["what", "rows"]
    )
    fp = pd.DataFrame([{"table": k, "sha256": v} for k, v in data.fingerprint().items()], columns=["table", "sha256"])
    return {"rows": data.summary(), "excluded": excluded, "warnings": warns, "fingerprint": fp}


# ============================================================================================
# outside: rendering


_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def safe_name(value: Any, taken: set | None = None, *, max_length: int = 60) -> str:
    """A file name for any value: no separators, ``..``, control characters or reserved names.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``; when anything
    had to change (or the result is already ``taken``, compared case-insensitively), a short
    hash of the original value is appended, so two different values never share a name.

    Examples
    --------
    >>> safe_name("Pro"), safe_name("../etc/passwd"), safe_name("CON")
    ('Pro', 'etc_passwd-7fef78', 'CON_-a3dbc4')
    """
    text = str(value)
    norm = unicodedata.normalize("NFKC", text)
    out = re.sub(r"[^A-Za-z0-9._-]+", "_", norm)
    out = re.sub(r"\.{2,}", "_", out)
    out = out.strip("._-") or "_"
    if out.split(".")[0].lower() in _RESERVED:
        out = out + "_"
    out = out[:max_length]
    taken_low = {t.lower() for t in (taken or ())}
    digest = sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    if out != text or out.lower() in taken_low:
        for width in (6, 10, 16, 64):
            candidate = f"{out[: max_length - width - 1]}-{digest[:width]}"
            if candidate.lower() not in taken_low:
                return candidate
        raise ParameterError(f"cannot find a unique file name for {text!r}")  # pragma: no cover
    return out


def notebook_path(notebook: str | os.PathLike | None) -> Path:
    """A notebook file: a path, or the name of one of the bundled notebooks (``cohorts``)."""
    if notebook is None:
        notebook = DEFAULT_NOTEBOOK
    path = Path(notebook)
    if path.suffix == ".ipynb" and path.is_file():
        return path.resolve()
    for cand in (NOTEBOOKS / f"{notebook}.ipynb", NOTEBOOKS / str(notebook)):
        if cand.is_file() and cand.suffix == ".ipynb":
            return cand
    known = ", ".join(sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")))
    raise ParameterError(f"no notebook {str(notebook)!r}; a .ipynb path or one of: {known}")


def _lean_imports() -> None:
    """Keep jsonschema's optional IRI checker (a lark grammar built at import, ~2 s) from loading.

    nbformat's schema never uses the ``iri`` format, so the checker is dead weight on the
    render path.  Only effective before jsonschema is first imported.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)


def notebook_parameters(path: Path) -> dict[str, dict]:
    """The parameters a notebook declares: ``{name: {"type": ..., "default": ..., "help": ...}}``."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        return {}
    from papermill.translators import PythonTranslator

    return {
        p.name: {"type": p.inferred_type_name, "default": p.default, "help": p.help}
        for p in PythonTranslator.inspect(cells[0])
    }


@dataclass
class RenderResult:
    """What one render produced (or why it failed)."""

    name: str
    folder: Path | None
    ok: bool
    duration_s: float
    manifest: dict | None = None
    error: ReportError | None = None
    segment: dict | None = None


_HTML_TEMPLATE = """\
{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style>
  main { max-width: 1000px; margin: 0 auto; }
  .jp-OutputArea-output img { max-width: 100%; height: auto; }
  .jp-RenderedHTMLCommon table { font-size: 0.85em; }
  .crosssell-footer { color: #666; font-size: 0.8em; margin: 2em 0; }
</style>
{%- endblock extra_css -%}
{%- block footer_js -%}{%- endblock footer_js -%}
{% block data_png scoped %}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}" alt="{{ output.metadata.get('alt', 'figure') | escape_html }}">
</div>
{%- endblock data_png %}
"""


def _exporter():
    """nbconvert's HTML exporter: code hidden, figures embedded, no script from the internet."""
    _lean_imports()
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    c = Config()
    c.HTMLExporter.exclude_input = True
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    c.HTMLExporter.embed_images = True
    c.TagRemovePreprocessor.remove_cell_tags = ("remove_cell", "parameters", "injected-parameters")
    c.TagRemovePreprocessor.remove_all_outputs_tags = ("remove_output",)
    c.TagRemovePreprocessor.enabled = True
    exporter = HTMLExporter(config=c, extra_loaders=[DictLoader({"crosssell.html.j2": _HTML_TEMPLATE})],
                            template_file="crosssell.html.j2")
    return exporter


def _to_html(nb, title: str) -> str:
    import copy

    nb = copy.deepcopy(nb)
    nb.metadata["title"] = title  # the template escapes it
    body, _ = _exporter().from_notebook_node(nb)
    return body


def _sections(nb) -> list[dict]:
    """Start, end and duration of each ``##`` section, from papermill's per-cell timings."""
    sections: list[dict] = []
    current = {"title": "(setup and loading)", "cells": []}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^##\s+(.+)$", cell.source, flags=re.M)
            if m:
                if current["cells"]:
                    sections.append(current)
                current = {"title": m.group(1).strip(), "cells": []}
            continue
        pm = cell.get("metadata", {}).get("papermill", {})
        if pm.get("start_time"):
            current["cells"].append(pm)
    if current["cells"]:
        sections.append(current)
    out = []
    for s in sections:
        cells = s["cells"]
        out.append(
            {
                "title": s["title"],
                "start": cells[0].get("start_time"),
                "end": cells[-1].get("end_time"),
                "duration_s": round(sum(float(c.get("duration") or 0.0) for c in cells), 3),
                "cells": len(cells),
            }
        )
    return out


_VERSIONED = ("crosssell", "pandas", "numpy", "pyarrow", "ibis-framework", "duckdb", "sqlglot", "scipy",
              "statsmodels", "matplotlib", "seaborn", "papermill", "nbconvert", "nbformat", "ipykernel")


def _versions() -> dict:
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _failure(exc: BaseException) -> ReportError:
    """A :class:`ReportError` from papermill's execution error (cell, source, error) or any other."""
    ename = getattr(exc, "ename", None) or type(exc).__name__
    evalue = getattr(exc, "evalue", None) or str(exc)
    return ReportError(
        f"{ename}: {evalue}", cell_index=getattr(exc, "cell_index", None), ename=ename, evalue=evalue,
        source=getattr(exc, "source", None),
    )


def _move_into_place(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp``: the old report stays whole until the new one is complete."""
    old = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(final, old)
    try:
        os.replace(tmp, final)
    except OSError:
        if old is not None:
            os.replace(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def render(
    notebook: str | os.PathLike | None = None,
    *,
    parameters: Mapping | None = None,
    out: str | os.PathLike = "reports",
    name: str | None = None,
    progress: bool = False,
    timeout: int | None = 600,
) -> RenderResult:
    """Run one notebook with papermill and write ``<out>/<name>/`` atomically.

    The folder holds ``report.ipynb`` (executed), ``report.html`` (code hidden, figures
    embedded), ``figures/*.png``, ``tables/*.csv`` and ``manifest.json``.  Everything is first
    written into a temporary folder beside it and moved into place when complete, so a failed run
    leaves the previous report untouched; the failed notebook is saved as
    ``<out>/<name>.failed.ipynb``.  ``<out>/index.html`` is brought up to date.

    Parameters
    ----------
    notebook : path or name, optional
        A ``.ipynb`` file or a bundled notebook's name; default ``cross_sell_report``.
    parameters : mapping, optional
        Notebook parameters (see :data:`PARAMETERS`), already typed; they are validated with
        :func:`check_parameters` before any kernel starts.
    out : path
        The reports folder.
    name : str, optional
        The report's folder name (made safe by :func:`safe_name`); default: the notebook's name.

    Returns
    -------
    RenderResult
        ``ok`` False with ``error`` (a :class:`~crosssell.errors.ReportError` naming the cell)
        when the notebook failed.

    Raises
    ------
    ParameterError
        Before any kernel starts, when a parameter is bad.
    """
    _lean_imports()
    nb_path = notebook_path(notebook)
    params = dict(parameters or {})
    checked = check_parameters(params)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    folder_name = safe_name(name) if name else safe_name(nb_path.stem)
    res = _render_one(nb_path, params, checked, out, folder_name, progress=progress, timeout=timeout)
    if res.ok:
        write_index(out)
    return res


def _injected(params: dict, checked: ReportParameters, output_dir: Path) -> dict:
    """The values papermill injects: what the user gave, with paths made absolute."""
    inj = {}
    for k, v in params.items():
        if k in ("data_path", "mapping_file") and v:
            v = str(getattr(checked, k))
        inj[k] = v
    inj["output_dir"] = str(output_dir)
    return inj


def _ipc_kernel_manager(folder: Path):
    """A kernel manager that talks to the kernel over IPC sockets in ``folder``.

    Local sockets instead of unencrypted TCP ports: nothing else on the machine can connect to
    the kernel, and ipykernel has no reason to warn about eavesdropping.  The Python kernel
    always runs in this environment (where crosssell is installed), whatever ``python3``
    kernelspec a user has registered elsewhere, and keeps its own log off the terminal.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class _IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self):
            return "ipc"

        @default("ip")
        def _default_ip(self):
            return str(folder / ".kernel")

        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            if cmd[1:3] == ["-m", "ipykernel_launcher"]:
                cmd[0] = sys.executable
                # jupyter_client interrupts the kernel before shutting it down, and ipykernel logs
                # that as an error on the terminal; cell errors reach us as messages anyway
                cmd.append("--IPKernelApp.log_level=CRITICAL")
            return cmd

    return _IPCKernelManager


def _finish_report(nb_path, executed, tmp, final, folder_name, params, checked, started, t0) -> dict:
    """``report.html`` and ``manifest.json`` beside the executed notebook in ``tmp``."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    metrics = {}
    if (tmp / "metrics.json").exists():
        metrics = json.loads((tmp / "metrics.json").read_text(encoding="utf-8"))
        (tmp / "metrics.json").unlink()
    title = metrics.get("parameters", {}).get("title", checked.title)
    (tmp / "report.html").write_text(_to_html(nb, title), encoding="utf-8")
    finished = _dt.datetime.now(_dt.UTC)
    manifest = {
        "name": folder_name,
        "notebook": str(nb_path),
        "title": title,
        "parameters": {**metrics.pop("parameters", checked.as_dict()), "output_dir": str(final)},
        "given_parameters": jsonable(params),
        "data": metrics.pop("data", {}),
        "headline": metrics.pop("headline", None),
        "headline_figure": metrics.pop("headline_figure", None),
        "figures": metrics.pop("figures", []),
        "tables": metrics.pop("tables", []),
        "notes": metrics.pop("notes", []),
        "metrics": metrics,
        "versions": _versions(),
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "duration_s": round(time.perf_counter() - t0, 3),
        "sections": _sections(nb),
    }
    (tmp / "manifest.json").write_text(json.dumps(jsonable(manifest), indent=2, ensure_ascii=False),
                                       encoding="utf-8")
    return manifest


def _render_one(nb_path, params, checked, out, folder_name, *, progress, timeout) -> RenderResult:
    import papermill as pm

    started = _dt.datetime.now(_dt.UTC)
    t0 = time.perf_counter()
    tmp = out / f".tmp-{folder_name}-{secrets.token_hex(4)}"
    tmp.mkdir()  # honours the umask, unlike mkdtemp's private 0700
    final = out / folder_name
    failed_path = out / f"{folder_name}.failed.ipynb"
    executed = tmp / "report.ipynb"
    try:
        try:
            pm.execute_notebook(
                str(nb_path), str(executed), parameters=_injected(params, checked, tmp),
                kernel_name="python3", progress_bar=progress, request_save_on_cell_execute=False,
                execution_timeout=timeout, cwd=os.getcwd(), log_output=False,
                kernel_manager_class=_ipc_kernel_manager(tmp),
            )
        except Exception as exc:  # papermill's execution error, a dead kernel, a timeout
            err = _failure(exc)
            if executed.exists():
                shutil.copyfile(executed, failed_path)
                err.failed_notebook = failed_path
            return RenderResult(folder_name, None, False, time.perf_counter() - t0, error=err,
                                segment=checked.segment)
        try:
            manifest = _finish_report(nb_path, executed, tmp, final, folder_name, params, checked, started, t0)
        except Exception as exc:  # HTML conversion or the manifest: keep the executed notebook
            shutil.copyfile(executed, failed_path)
            err = ReportError(f"the notebook ran, but writing the report failed: {type(exc).__name__}: {exc}",
                              ename=type(exc).__name__, evalue=str(exc), failed_notebook=failed_path)
            return RenderResult(folder_name, None, False, time.perf_counter() - t0, error=err,
                                segment=checked.segment)
        _move_into_place(tmp, final)
        tmp = None
        if failed_path.exists():
            failed_path.unlink()
        return RenderResult(folder_name, final, True, time.perf_counter() - t0, manifest=manifest,
                            segment=checked.segment)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


CHECK_MARK = "NBVAL_CHECK_OUTPUT"


def store_checked_outputs(notebook: str | os.PathLike) -> Path:
    """Run a notebook on its defaults and save the outputs of its ``# NBVAL_CHECK_OUTPUT`` cells.

    For maintainers, after the sample or a checked cell changed: those outputs (the headline
    ratio and its definition, ...) are what ``pytest --nbval-lax`` compares; every other cell is
    saved without outputs so the notebooks stay small and diff as code.

    Examples
    --------
    >>> store_checked_outputs("cross_sell_report")  # doctest: +SKIP
    """
    _lean_imports()
    import nbformat
    import papermill as pm

    path = notebook_path(notebook)
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / "run.ipynb"
        pm.execute_notebook(str(path), str(executed), kernel_name="python3", progress_bar=False,
                            cwd=str(path.parent), kernel_manager_class=_ipc_kernel_manager(Path(tmp)))
        ran = {c.get("id"): c for c in nbformat.read(str(executed), as_version=4).cells}
    nb = nbformat.read(str(path), as_version=4)
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if CHECK_MARK in cell.source:
            count += 1
            cell.outputs = ran[cell.get("id")].outputs
            cell.execution_count = count
        else:
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(nb, str(path))
    return path


def segment_values(params: ReportParameters, attribute: str) -> list[str]:
    """The values of ``attribute`` among the customers the parameters select, sorted."""
    from . import engine

    data = load_data(params)
    if attribute not in data.attributes:
        raise ParameterError(
            f"--each {attribute!r} is not a customer attribute; the attributes are: "
            f"{', '.join(data.attributes) or 'none'}"
        )
    col = data.customers[attribute]
    frame = engine.execute(data.customers.select(v=col.cast("string")).distinct())
    values = frame["v"].dropna().astype(str).tolist()
    return sorted(values)


def render_each(
    notebook: str | os.PathLike | None,
    attribute: str,
    *,
    parameters: Mapping | None = None,
    out: str | os.PathLike = "reports",
    progress: bool = True,
    timeout: int | None = 600,
    jobs: int = DEFAULT_JOBS,
) -> list[RenderResult]:
    """One report per value of a customer attribute, then ``<out>/index.html`` linking them.

    Each report is ``<out>/<notebook>--<attribute>-<value>/`` (the value made safe and unique by
    :func:`safe_name`).  A failure in one segment does not stop the others.  ``jobs`` reports
    run at once, each in its own kernel (default: one per core, at most four).

    Returns
    -------
    list of RenderResult
    """
    _lean_imports()
    nb_path = notebook_path(notebook)
    params = dict(parameters or {})
    checked = check_parameters(params)
    if attribute in checked.segment:
        raise ParameterError(f"--each {attribute} and a segment filter on {attribute} cannot be combined")
    values = segment_values(checked, attribute)
    if not values:
        raise ParameterError(f"{attribute} has no values in the data")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    jobs_list = []
    attr_safe = safe_name(attribute)
    for value in values:
        safe_value = safe_name(value, taken)  # unique within the batch, case-insensitively
        taken.add(safe_value.lower())
        name = safe_name(f"{nb_path.stem}--{attr_safe}-{safe_value}")
        p = {**params, "segment": {**checked.segment, attribute: value}}
        jobs_list.append((value, name, p))

    from tqdm.auto import tqdm

    results: list[RenderResult] = []
    bar = tqdm(total=len(jobs_list), desc=f"reports by {attribute}", unit="report", disable=not progress,
               file=sys.stderr)

    def run(job):
        value, name, p = job
        res = _render_one(nb_path, p, check_parameters(p), out, name, progress=False, timeout=timeout)
        bar.set_postfix_str(f"{attribute}={value}"[:40])
        bar.update(1)
        return res

    try:
        if jobs > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=jobs) as pool:
                results = list(pool.map(run, jobs_list))
        else:
            results = [run(j) for j in jobs_list]
    finally:
        bar.close()
    write_index(out, title=checked.title)
    return results


def write_index(out: str | os.PathLike, *, title: str = "Cross-sell reports") -> Path:
    """``<out>/index.html``: every report in ``out`` with its headline figure and a link.

    Built from each report's ``manifest.json``; every data-derived text is escaped and every
    link is percent-encoded.
    """
    from urllib.parse import quote

    out = Path(out)
    esc = html.escape
    cards = []
    for man_path in sorted(out.glob("*/manifest.json")):
        try:
            man = json.loads(man_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        folder = man_path.parent.name
        h = man.get("headline") or {}
        seg = (man.get("parameters") or {}).get("segment") or {}
        seg_text = "; ".join(f"{k} = {', '.join(map(str, v))}" for k, v in seg.items()) or "all customers"
        figure = ""
        if man.get("headline_figure"):
            src = quote(folder) + "/" + quote(man["headline_figure"])
            figure = f"<img src='{esc(src)}' alt='{esc(man.get('title', ''))} headline figure' loading='lazy'>"
        number = ""
        if h.get("ratio") is not None:
            number = (
                f"<div class='ratio'>{h['ratio']:.2f}</div><div>cross-sell ratio, {esc(str(h.get('period')))}"
                + (f"; {h['change']:+.3f} vs {esc(str(h.get('previous_period')))}" if h.get("change") is not None else "")
                + "</div>"
            )
        cards.append(
            f"<section class='card'><h2><a href='{esc(quote(folder))}/report.html'>{esc(man.get('title', folder))}</a></h2>"
            f"<p class='seg'>{esc(seg_text)}</p>{number}{figure}"
            f"<p class='meta'>{esc(folder)} &middot; rendered {esc(str(man.get('finished_at', ''))[:19])}</p></section>"
        )
    body = "\n".join(cards) or "<p>No reports yet.</p>"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 1em; }}
.card {{ border: 1px solid #ddd; border-radius: 6px; padding: 0.8em; }}
.card h2 {{ font-size: 1.1em; margin: 0 0 0.3em; }}
.card img {{ width: 100%; height: auto; }}
.ratio {{ font-size: 2em; font-weight: 600; }}
.seg, .meta {{ color: #555; font-size: 0.9em; }}
</style></head>
<body><h1>{esc(title)}</h1>
<div class="grid">
{body}
</div></body></html>
"""
    path = out / "index.html"
    tmp = out / ".index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path


# ============================================================================================
# command line


def add_arguments(parser) -> None:
    """The ``crosssell report`` options (called by :mod:`crosssell.cli`)."""
    parser.add_argument("notebook", nargs="?", default=None,
                        help=f"a .ipynb file or a bundled notebook's name (default {DEFAULT_NOTEBOOK}); "
                             "bundled: cross_sell_report, cohorts, churn_satisfaction, affinity, explore")
    parser.add_argument("--data", help="data folder (default: the bundled sample); sets data_path")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a notebook parameter; text stays text (007 stays 007); repeatable")
    parser.add_argument("--params-file", help="YAML file of parameters (values read as text, then typed)")
    parser.add_argument("--out", default="reports", help="reports folder (default reports/)")
    parser.add_argument("--name", help="the report's folder name (default: the notebook's name)")
    parser.add_argument("--each", metavar="ATTR", help="one report per value of this customer attribute, "
                                                       "plus index.html linking them")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help=f"reports rendered at once with --each (default {DEFAULT_JOBS}: one per core, at most "
                             "4; each kernel loads the data, so use 1 for data near the memory limit)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may run (default 600)")
    parser.add_argument("--help-parameters", action="store_true", help="list the notebook's parameters and exit")


def _cli_parameters(args, declared: dict) -> dict:
    raw: dict[str, Any] = {}
    if args.params_file:
        import yaml

        path = Path(args.params_file)
        if not path.is_file():
            raise ParameterError(f"--params-file {args.params_file!r} is not a file")
        try:
            content = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader) or {}
        except yaml.YAMLError as exc:
            raise ParameterError(f"--params-file {args.params_file!r} is not valid YAML: {exc}") from None
        if not isinstance(content, dict):
            raise ParameterError(f"--params-file {args.params_file!r} must hold name: value lines")
        for k, v in content.items():
            raw[k] = v
    for k, v in args.parameter:
        raw[k] = v
    if args.data:
        raw["data_path"] = args.data
    unknown = sorted(set(raw) - set(declared))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)}; this notebook's parameters are: {', '.join(declared)}"
        )
    out = {}
    for k, v in raw.items():
        t = declared[k]["type"]
        if isinstance(v, str):
            out[k] = coerce_parameter(k, v, t)
        elif isinstance(v, dict | list) and t in ("dict", "list"):
            out[k] = v
        else:
            raise ParameterError(f"{k}: {v!r} is not a usable value for a {t} parameter")
    return out


def _print_failure(res: RenderResult, out) -> None:
    err = res.error
    print(f"crosssell report: {res.name} failed", file=out)
    if err.cell_index is not None:
        print(f"  in cell {err.cell_index} (counting from 0, in the failed notebook):", file=out)
        if err.source:
            for line in err.source.rstrip().splitlines()[-15:]:
                print(f"    | {line}", file=out)
    print(f"  {err}", file=out)
    if err.failed_notebook:
        print(f"  the failed notebook is saved at {err.failed_notebook}", file=out)
    print("  the previous report, if any, is untouched", file=out)


def _exit_code(res: RenderResult) -> int:
    param_errors = {"ParameterError", "PeriodError", "ColumnNotFoundError"}
    return 2 if res.error and res.error.ename in param_errors else 1


def run_cli(args) -> int:
    """Run ``crosssell report``; 0 on success, 1 when a report failed, 2 on a bad parameter."""
    nb_path = notebook_path(args.notebook)
    _lean_imports()
    declared = notebook_parameters(nb_path)
    if args.help_parameters:
        for k, d in declared.items():
            print(f"{k} ({d['type']}, default {d['default']}): {d['help']}")
        return 0
    if not declared:
        raise ParameterError(f"{nb_path.name} has no cell tagged 'parameters'")
    params = _cli_parameters(args, declared)
    if args.jobs < 1:
        raise ParameterError("--jobs must be 1 or more")
    if args.each:
        results = render_each(nb_path, args.each, parameters=params, out=args.out, timeout=args.timeout,
                              jobs=args.jobs)
        code = 0
        for res in results:
            if res.ok:
                print(f"wrote {res.folder / 'report.html'} ({res.duration_s:.1f} s)")
            else:
                _print_failure(res, sys.stderr)
                code = max(code, _exit_code(res))
        print(f"wrote {Path(args.out) / 'index.html'}")
        return code
    res = render(nb_path, parameters=params, out=args.out, name=args.name, progress=sys.stderr.isatty(),
                 timeout=args.timeout)
    if not res.ok:
        _print_failure(res, sys.stderr)
        return _exit_code(res)
    print(f"wrote {res.folder / 'report.html'} ({res.duration_s:.1f} s)")
    return 0
