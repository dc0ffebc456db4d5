"""The data contract: loading, column mapping and validation.

Every input is mapped onto four tables (see ``data/README.md`` and the design notes):

==========  ================  ==========  ========  ===========================================
table       column            type        required  meaning
==========  ================  ==========  ========  ===========================================
customers   customer_id       string      yes       unique key
            signup_date       date        yes       start of the relationship; the cohort
            churn_date        date        no        end of the relationship; empty = a customer
            *any other*       any         no        a segment attribute usable in ``by=``
purchases   customer_id       string      yes       must exist in customers
            product_id        string      yes       the product, feature or add-on sold
            purchased_at      timestamp   yes       when it was sold
            quantity          number      no (1)    units; negative = a return, nets the sale
            revenue           number      no        money, for ARPU
            ended_at          date        no        a subscription cancelled; drives "held"
surveys     customer_id       string      yes*      *required when the table is given
            responded_at      date        yes*
            score             number      yes*
            kind              csat / nps  no        inferred from the range when absent
products    product_id        string      yes*
            name, category    string      no
            is_base           bool        no        base products never count as cross-sell
==========  ================  ==========  ========  ===========================================

Validation collects every problem before raising one :class:`~crosssell.errors.DataValidationError`.
Nothing is dropped silently: what an option or the reference date excludes is counted in
``CrossSellData.quality`` and copied into the ``attrs`` of every result.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import hashlib
import os
import string
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from . import engine
from .errors import (
    ColumnNotFoundError,
    DataQualityWarning,
    DataValidationError,
    MissingTableError,
    ParameterError,
    Problem,
)

__all__ = ["CrossSellData", "load", "from_frames", "from_ibis", "validate", "CONTRACT", "TABLES"]

TABLES = ("customers", "purchases", "surveys", "products")

#: contract column -> (kind, required).  kind drives parsing and validation.
CONTRACT: dict[str, dict[str, tuple[str, bool]]] = {
    "customers": {
        "customer_id": ("id", True),
        "signup_date": ("date", True),
        "churn_date": ("date", False),
    },
    "purchases": {
        "customer_id": ("id", True),
        "product_id": ("id", True),
        "purchased_at": ("timestamp", True),
        "quantity": ("number", False),
        "revenue": ("number", False),
        "ended_at": ("date", False),
    },
    "surveys": {
        "customer_id": ("id", True),
        "responded_at": ("date", True),
        "score": ("number", True),
        "kind": ("text", False),
    },
    "products": {
        "product_id": ("id", True),
        "name": ("text", False),
        "category": ("text", False),
        "is_base": ("bool", False),
    },
}

#: names a ``by=`` attribute may not take, because results already use them
RESERVED = frozenset(
    {"period", "period_start", "period_end", "numerator", "denominator", "ratio", "customers",
     "products", "share", "complete", "n_products"}
)

_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_SCORE_RANGE = {"csat": (1, 5), "nps": (0, 10)}
MAX_EXAMPLES = 5
#: the segment value of customers whose (text) attribute is empty
MISSING = "(missing)"


# --------------------------------------------------------------------------------------------
# the loaded data


@dataclass(frozen=True)
class CrossSellData:
    """Validated data in the contract's shape, living in an engine.

    Build it with :func:`load`, :func:`from_frames` or :func:`from_ibis`; every analysis function
    takes it as its first argument.  The tables are Ibis expressions: nothing is pulled into
    pandas until an analysis returns its (compact) result.

    Attributes
    ----------
    con : Ibis backend
        The engine the tables live in.
    customers, purchases : ibis.Table
        Contract tables, typed, restricted to the reference date.
    surveys, products : ibis.Table or None
        Optional tables.
    reference_date : pandas.Timestamp
        The "as of" date: nothing after it is used.
    attributes : tuple of str
        Customer columns usable as segments in ``by=``.
    product_attributes : tuple of str
        Catalog columns usable in ``by=`` (e.g. ``category``).
    quality : dict
        Rows read and excluded per table and reason; the warnings found.
    has_churn : bool
        False when the source has no churn dates at all (churn analyses then refuse).
    has_product_ids : bool
        False when the source knows only a product count per customer (then penetration,
        affinity and recommendations are not available).
    definitions : dict
        Notes on how the contract was derived (e.g. churn defined by inactivity).
    """

    con: Any
    customers: ir.Table
    purchases: ir.Table
    reference_date: pd.Timestamp
    surveys: ir.Table | None = None
    products: ir.Table | None = None
    attributes: tuple[str, ...] = ()
    product_attributes: tuple[str, ...] = ()
    quality: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)
    has_product_ids: bool = True
    has_churn: bool = True
    definitions: dict = field(default_factory=dict)
    filters: dict = field(default_factory=dict)

    # -- information ------------------------------------------------------------------------

    def excluded(self) -> dict[str, int]:
        """Every exclusion as a flat ``{"table.reason": rows}`` dict (zeros left out)."""
        out = {}
        for table, info in self.quality.get("tables", {}).items():
            for reason, n in info.get("excluded", {}).items():
                if n:
                    out[f"{table}.{reason}"] = int(n)
        return out

    def summary(self) -> pd.DataFrame:
        """Rows read, rows kept and rows excluded per table, for a data-quality section."""
        rows = []
        for table, info in self.quality.get("tables", {}).items():
            excluded = sum(info.get("excluded", {}).values())
            rows.append(
                {
                    "table": table,
                    "rows_read": info.get("rows_read", 0),
                    "rows_excluded": excluded,
                    "rows_used": info.get("rows_read", 0) - excluded,
                    "excluded_because": "; ".join(
                        f"{k.replace('_', ' ')}: {v:,}" for k, v in info.get("excluded", {}).items() if v
                    ),
                }
            )
        return pd.DataFrame(rows)

    def warnings(self) -> list[Problem]:
        """The warnings found while loading (errors would have raised)."""
        return list(self.quality.get("warnings", []))

    def fingerprint(self) -> dict[str, str]:
        """sha256 of every input file (``{}`` for frames and engine tables)."""
        out = {}
        for table, path in self.sources.items():
            if path and os.path.isfile(path):
                digest = hashlib.sha256()
                with open(path, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(block)
                out[table] = digest.hexdigest()
        return out

    def products_list(self) -> list[str]:
        """Distinct product ids seen in purchases, sorted."""
        frame = engine.execute(self.purchases.select("product_id").distinct())
        return sorted(frame["product_id"].astype(str))

    def base_products(self) -> list[str]:
        """Products the catalog marks ``is_base``: they never count as cross-sell."""
        if self.products is None or "is_base" not in self.products.columns:
            return []
        frame = engine.execute(
            self.products.filter(self.products.is_base.fill_null(False)).select("product_id")
        )
        return sorted(frame["product_id"].astype(str))

    def __repr__(self) -> str:
        tables = [t for t in TABLES if getattr(self, t) is not None]
        return (
            f"<CrossSellData {', '.join(tables)}; as of {self.reference_date.date()}; "
            f"segments: {', '.join(self.attributes) or 'none'}; engine: {engine.backend_name(self.con)}>"
        )

    # -- narrowing --------------------------------------------------------------------------

    def where(self, **segment: Any) -> CrossSellData:
        """Keep only the customers in a segment, e.g. ``data.where(plan="Pro")``.

        A value may be a list (any of them).  Purchases and surveys follow their customers.
        Values are compared as strings when the attribute is a string (so ``7`` finds ``"7"``).
        """
        if not segment:
            return self
        cust = self.customers
        for name, value in segment.items():
            if name not in self.attributes:
                raise ColumnNotFoundError(
                    f"customers has no segment attribute {name!r}; the attributes are: "
                    f"{', '.join(self.attributes) or 'none'}{_suggest(name, self.attributes)}"
                )
            values = list(value) if isinstance(value, (list, tuple, set)) else [value]
            if cust[name].type().is_string():
                values = [str(v) for v in values]
            cust = cust.filter(cust[name].isin(values))
        keep = cust.select("customer_id")
        purchases = self.purchases.semi_join(keep, "customer_id")
        surveys = None if self.surveys is None else self.surveys.semi_join(keep, "customer_id")
        return replace(
            self,
            customers=cust,
            purchases=purchases,
            surveys=surveys,
            filters={**self.filters, **segment},
        )

    def require(self, table: str, purpose: str) -> ir.Table:
        """Return an optional table or raise a clear :class:`MissingTableError`."""
        tab = getattr(self, table)
        if tab is None:
            raise MissingTableError(
                f"{purpose} needs the {table} table, and this data has none; "
                f"add a {table}.csv (or .parquet) beside customers and purchases, "
                f"or pass {table}= to from_frames"
            )
        return tab


# --------------------------------------------------------------------------------------------
# entry points


def load(
    path: str | os.PathLike | dict,
    *,
    columns: dict | None = None,
    reference_date: Any = None,
    on_orphans: str = "error",
    con: Any = None,
    memory_limit: str | None = None,
    temp_directory: str | os.PathLike | None = None,
    materialize: bool | None = None,
    mapping: str | os.PathLike | dict | None = None,
) -> CrossSellData:
    """Read a folder of ``customers``, ``purchases`` and optional ``surveys`` and ``products``.

    Each table is a ``.csv``, ``.csv.gz`` or ``.parquet`` file named after it.  CSV files are read
    with every contract column as text first, so that IDs keep their leading zeros and a bad date
    is reported with its value instead of silently becoming empty.

    Parameters
    ----------
    path : folder or dict
        A folder, or ``{"customers": file, "purchases": file, ...}``.
    columns : dict, optional
        Your column names mapped to the contract's, e.g. ``{"CustomerID": "customer_id"}``, for
        all tables, or per table: ``{"purchases": {"SKU": "product_id"}}``.
    reference_date : date-like, optional
        The "as of" date; nothing after it is used.  Default: the latest date in the data.
    on_orphans : {"error", "drop"}
        Purchases or surveys of customers that are not in customers: an error (default), or
        dropped and counted.
    con : Ibis backend, optional
        Run in this engine instead of a fresh in-process DuckDB.
    memory_limit, temp_directory : optional
        DuckDB's memory cap and spill folder (for data larger than memory).
    materialize : bool, optional
        Store the validated tables in the engine (default: yes for CSV and frames in DuckDB;
        Parquet stays lazy and is read where it lies).
    mapping : YAML path or dict, optional
        Read another shape through an adapter (``wide``, ``counts``, ``transactions``) named in
        a mapping file such as ``data/examples/telco.yml``; ``path`` is then the file or its
        folder.  See :mod:`crosssell.adapters`.

    Returns
    -------
    CrossSellData

    Raises
    ------
    DataValidationError
        Listing every problem found: table, column, rows affected and examples.

    Examples
    --------
    >>> import crosssell as cs
    >>> data = cs.load(cs.sample_path())
    >>> data.attributes
    ('plan', 'region', 'channel')
    """
    if mapping is not None:
        from .adapters import load_mapped  # adapters builds on this module

        return load_mapped(path, mapping, columns=columns, reference_date=reference_date,
                           on_orphans=on_orphans, con=con, memory_limit=memory_limit,
                           temp_directory=temp_directory, materialize=materialize)
    files = _find_files(path)
    con = engine.connect(con, memory_limit=memory_limit, temp_directory=temp_directory)
    mapping = _split_mapping(columns)
    raw: dict[str, ir.Table] = {}
    for table, file in files.items():
        raw[table] = _read_file(con, table, file, mapping.get(table, {}))
    lazy = all(str(f).endswith((".parquet", ".pq")) for f in files.values())
    if materialize is None:
        materialize = engine.backend_name(con) == "duckdb" and not lazy
    return _build(
        con,
        raw,
        mapping=mapping,
        reference_date=reference_date,
        on_orphans=on_orphans,
        materialize=materialize,
        sources={t: str(f) for t, f in files.items()},
        source_label=str(path),
    )


def from_frames(
    *,
    customers: pd.DataFrame,
    purchases: pd.DataFrame,
    surveys: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
    columns: dict | None = None,
    reference_date: Any = None,
    on_orphans: str = "error",
    con: Any = None,
) -> CrossSellData:
    """Build the data from pandas DataFrames (same rules as :func:`load`).

    Examples
    --------
    >>> import pandas as pd, crosssell as cs
    >>> customers = pd.DataFrame({"customer_id": ["007"], "signup_date": ["2024-01-01"]})
    >>> purchases = pd.DataFrame({"customer_id": ["007"], "product_id": ["A"],
    ...                           "purchased_at": ["2024-01-03"]})
    >>> cs.from_frames(customers=customers, purchases=purchases).reference_date.date()
    datetime.date(2024, 1, 3)
    """
    frames = {"customers": customers, "purchases": purchases, "surveys": surveys, "products": products}
    mapping = _split_mapping(columns)
    con = engine.connect(con)
    raw = {}
    for table, frame in frames.items():
        if frame is None:
            continue
        if not isinstance(frame, pd.DataFrame):
            raise ParameterError(f"{table} must be a pandas DataFrame, got {type(frame).__name__}")
        raw[table] = ibis.memtable(_arrow_safe(frame, table, mapping.get(table, {})))
    return _build(
        con,
        raw,
        mapping=mapping,
        reference_date=reference_date,
        on_orphans=on_orphans,
        materialize=engine.backend_name(con) == "duckdb",
        sources={},
        source_label="data frames",
    )


def from_ibis(
    *,
    customers: ir.Table,
    purchases: ir.Table,
    surveys: ir.Table | None = None,
    products: ir.Table | None = None,
    columns: dict | None = None,
    reference_date: Any = None,
    on_orphans: str = "error",
    materialize: bool = False,
) -> CrossSellData:
    """Build the data from tables of any Ibis backend; the work stays in that backend.

    All tables must live in the same backend.  Nothing is copied unless ``materialize=True``.
    """
    tables = {"customers": customers, "purchases": purchases, "surveys": surveys, "products": products}
    raw = {k: v for k, v in tables.items() if v is not None}
    for table, expr in raw.items():
        if not isinstance(expr, ir.Table):
            raise ParameterError(f"{table} must be an Ibis table, got {type(expr).__name__}")
    con = customers.get_backend()
    return _build(
        con,
        raw,
        mapping=_split_mapping(columns),
        reference_date=reference_date,
        on_orphans=on_orphans,
        materialize=materialize,
        sources={},
        source_label=f"{engine.backend_name(con)} tables",
    )


def validate(path: str | os.PathLike | dict, **kwargs) -> tuple[list[Problem], CrossSellData | None]:
    """Check a folder against the contract without raising.

    Returns the problems (errors and warnings) and the loaded data (None when there are errors).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        try:
            data = load(path, **kwargs)
        except DataValidationError as err:
            return err.problems, None
    return data.warnings(), data


# --------------------------------------------------------------------------------------------
# reading


def _find_files(path) -> dict[str, Path]:
    if isinstance(path, dict):
        unknown = set(path) - set(TABLES)
        if unknown:
            raise ParameterError(
                f"unknown table name(s) {sorted(unknown)}; the tables are {', '.join(TABLES)}"
            )
        files = {t: Path(p) for t, p in path.items() if p is not None}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise ParameterError(f"file(s) not found: {', '.join(missing)}")
    else:
        folder = Path(path)
        if not folder.is_dir():
            raise ParameterError(f"{folder} is not a folder (expected customers.csv, purchases.csv, ...)")
        files = {}
        for table in TABLES:
            found = [folder / f"{table}{s}" for s in _SUFFIXES if (folder / f"{table}{s}").is_file()]
            if len(found) > 1:
                raise ParameterError(
                    f"{folder} holds more than one {table} file ({', '.join(f.name for f in found)}); keep one"
                )
            if found:
                files[table] = found[0]
    missing = [t for t in ("customers", "purchases") if t not in files]
    if missing:
        present = sorted(p.name for p in Path(path).iterdir()) if not isinstance(path, dict) else list(path)
        raise DataValidationError(
            [
                Problem(t, None, f"table not found: expected {t}.csv, {t}.csv.gz or {t}.parquet",
                        examples=tuple(present[:MAX_EXAMPLES]))
                for t in missing
            ],
            source=str(path),
        )
    return files


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8-sig") as fh:
        return next(csv.reader(fh), [])


def _read_file(con, table: str, path: Path, mapping: dict[str, str]) -> ir.Table:
    name = engine.unique_name(f"raw_{table}")
    if str(path).endswith((".parquet", ".pq")):
        return con.read_parquet(str(path), table_name=name)
    header = _csv_header(path)
    if not header:
        return ibis.memtable(pd.DataFrame({c: pd.Series(dtype="string") for c in CONTRACT[table]}))
    contract = CONTRACT[table]
    # contract columns are read as text: IDs keep "007", bad values are reported with their text
    types = {src: "VARCHAR" for src in header if mapping.get(src, src) in contract}
    return con.read_csv(str(path), table_name=name, types=types, header=True)


def _arrow_safe(frame: pd.DataFrame, table: str, mapping: dict[str, str]) -> pd.DataFrame:
    """Make a user's frame storable in Arrow without losing what validation must see."""
    out = frame.copy()
    out.columns = [str(c) for c in out.columns]
    contract = CONTRACT[table]
    for col in out.columns:
        target = mapping.get(col, col)
        kind = contract.get(target, ("attr", False))[0]
        series = out[col]
        if kind == "id":
            out[col] = _id_strings(series)
        elif series.dtype == object:
            sample = series.dropna()
            if len(sample) and all(hasattr(v, "year") for v in sample):  # dates / datetimes
                out[col] = pd.to_datetime(series)
            else:
                out[col] = series.astype("string")
    return out


def _id_strings(series: pd.Series) -> pd.Series:
    """IDs as text: 7 -> "7", 7.0 (an int column with gaps) -> "7", "007" stays "007"."""
    if pd.api.types.is_float_dtype(series):
        whole = series.dropna()
        if len(whole) and (whole == whole.round()).all():
            series = series.astype("Int64")
    return series.astype("string")


def _split_mapping(columns) -> dict[str, dict[str, str]]:
    """Normalise ``columns=`` to ``{table: {source: contract}}``."""
    if columns is None:
        return {}
    if not isinstance(columns, dict):
        raise ParameterError("columns must be a dict of {your_name: contract_name}")
    if any(isinstance(v, dict) for v in columns.values()):
        unknown = set(columns) - set(TABLES)
        if unknown:
            raise ParameterError(f"columns has unknown table(s) {sorted(unknown)}; tables: {', '.join(TABLES)}")
        return {t: dict(m) for t, m in columns.items()}
    return {t: dict(columns) for t in TABLES}


# --------------------------------------------------------------------------------------------
# normalising and validating


def _suggest(name: str, choices) -> str:
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(lowered[c]) for c in close)}?)" if close else ""


class _Collector:
    """Accumulates problems and exclusion counts while the tables are checked."""

    def __init__(self):
        self.problems: list[Problem] = []
        self.tables: dict[str, dict] = {}

    def add(self, table, column, message, count=0, examples=(), severity="error"):
        self.problems.append(
            Problem(table, column, message, int(count), tuple(examples)[:MAX_EXAMPLES], severity)
        )

    def exclude(self, table: str, reason: str, count: int):
        self.tables.setdefault(table, {"rows_read": 0, "excluded": {}})["excluded"][reason] = int(count)

    @property
    def errors(self):
        return [p for p in self.problems if p.severity == "error"]


def _rename(table: str, expr: ir.Table, mapping: dict[str, str], col: _Collector) -> ir.Table | None:
    """Apply the user's mapping; report missing required columns with close matches."""
    found = list(expr.columns)
    renames = {}
    for src, dst in mapping.items():
        if src in found and src != dst:
            renames[dst] = src
    if renames:
        clash = [dst for dst in renames if dst in found and dst not in renames.values()]
        for dst in clash:
            col.add(table, dst, f"the mapping renames {renames[dst]!r} to {dst!r}, but {dst!r} is already a column")
        expr = expr.rename(renames)
    missing = [c for c, (_, req) in CONTRACT[table].items() if req and c not in expr.columns]
    for name in missing:
        col.add(
            table,
            name,
            f"required column {name!r} is missing; columns found: {', '.join(found)}"
            f"{_suggest(name, found)}; map yours with columns={{'YourName': {name!r}}}",
        )
    return None if missing else expr


def _parse(expr: ir.Table, name: str, kind: str) -> ir.Value:
    """The typed value of a contract column (NULL where it cannot be parsed)."""
    c = expr[name]
    t = c.type()
    if kind == "id":
        # text IDs are trimmed; _typed drops the trim when no value needs it (a faster scan)
        return c.strip() if t.is_string() else c.cast("string")
    if kind == "date" and t.is_date():
        return c  # already a date (Parquet, frames): nothing to parse
    if kind in ("date", "timestamp"):
        if t.is_string():
            s = c.strip()
            s = ibis.ifelse(s == "", ibis.null("string"), s)
            v = s.try_cast("timestamp")
        elif t.is_timestamp() or t.is_date():
            v = c.cast("timestamp")
        else:
            v = c.try_cast("timestamp")
        return v.cast("date") if kind == "date" else v
    if kind == "number":
        if t.is_numeric():
            return c.cast("float64")
        s = c.cast("string").strip()
        return ibis.ifelse(s == "", ibis.null("string"), s).try_cast("float64")
    if kind == "bool":
        if t.is_boolean():
            return c
        s = c.cast("string").strip().lower()
        return ibis.cases((s.isin(_TRUE), True), (s.isin(_FALSE), False), else_=ibis.null("boolean"))
    return c.cast("string")


def _already_typed(t, kind: str) -> bool:
    """True when a column's type already is the contract's kind, so no value can fail to parse."""
    if kind in ("date", "timestamp"):
        return t.is_date() or t.is_timestamp()
    if kind == "number":
        return t.is_numeric()
    if kind == "bool":
        return t.is_boolean()
    return False


def _maybe_padded(c: ir.StringValue) -> ir.BooleanValue:
    """A cheap superset of the text values that ``strip()`` would change.

    Whitespace at the start makes the first character's code 32 or less; at the end, the value
    ends with one of ``string.whitespace``.  Testing that costs a fraction of trimming every
    value (which, on millions of IDs, costs more than the metric queries themselves).
    """
    maybe = c.ascii_str() <= 32
    for ch in string.whitespace:
        maybe = maybe | c.endswith(ch)
    return maybe


def _blank(c: ir.Value) -> ir.BooleanValue:
    """True where a raw value is missing (NULL, empty or only whitespace)."""
    if c.type().is_string():
        # only the candidates are trimmed; any other value is blank only when it is ""
        return c.isnull() | ibis.ifelse(_maybe_padded(c), c.strip() == "", c == "")
    return c.isnull()


def _examples(expr: ir.Table, condition, column: str, *, distinct: bool = True) -> list:
    sel = expr.filter(condition).select(column)
    if distinct:
        sel = sel.distinct()
    frame = engine.execute(sel.limit(MAX_EXAMPLES))
    return [v for v in frame[column].tolist()]


#: checks between typed columns of one row, counted in the same scan as the parsing checks
#: (one pass less over a table of millions of purchases); name -> (columns needed, condition)
_ROW_CHECKS = {
    "purchases": {
        "ended_early": (("ended_at", "purchased_at"), lambda v: v["ended_at"] < v["purchased_at"].cast("date")),
    },
}


def _typed(table: str, expr: ir.Table, col: _Collector, sums: dict) -> tuple[ir.Table, dict[str, int]]:
    """Parse every contract column; count values that do not parse; return the typed table.

    Also returns the counts of the table's :data:`_ROW_CHECKS` (rows breaking them), computed in
    the same query; the caller reports them.
    """
    contract = CONTRACT[table]
    typed = {}
    checks = {}
    exact = {}  # text ID -> its exact checks, for when the cheap ones find candidates
    for name, (kind, required) in contract.items():
        if name not in expr.columns:
            continue
        raw = expr[name]
        value = _parse(expr, name, kind)
        typed[name] = value
        if kind in ("date", "timestamp", "number", "bool") and not _already_typed(raw.type(), kind):
            checks[f"bad_{name}"] = (~_blank(raw)) & value.isnull()
        if kind == "id" and raw.type().is_string():
            # a cheap first pass: NULL-or-"" is exact unless a value has whitespace to trim, and
            # the candidates for that are counted; only if there are any is the column checked
            # again with the (slow, on millions of IDs) trim
            checks[f"null_{name}"] = raw.isnull() | (raw == "")
            checks[f"pad_{name}"] = _maybe_padded(raw)
            exact[name] = {f"null_{name}": _blank(raw), f"pad_{name}": raw != raw.strip()}
        elif required or kind == "id":
            checks[f"null_{name}"] = _blank(raw)
    attrs = [c for c in expr.columns if c not in contract]
    row_checks = [k for k, (need, _) in _ROW_CHECKS.get(table, {}).items() if set(need) <= set(typed)]
    for k in row_checks:
        checks[f"row_{k}"] = _ROW_CHECKS[table][k][1](typed)

    def count(checks):
        checked = expr.mutate(**{f"__{k}": v for k, v in checks.items()})
        aggs = {"__rows": checked.count()}
        aggs.update({k: ibis.ifelse(checked[f"__{k}"], 1, 0).sum() for k in checks})
        return checked, engine.execute(checked.aggregate(**aggs)).iloc[0].fillna(0).astype(int).to_dict()

    checked, counts = count(checks)
    redo = {k: v for name, e in exact.items() if counts[f"pad_{name}"] for k, v in e.items()}
    if redo:
        checks.update(redo)
        checked, counts = count(checks)
    sums["rows_read"] = counts.pop("__rows")
    row_counts = {k: counts.pop(f"row_{k}") for k in row_checks}
    for name in exact:
        # no ID has whitespace to trim: use the column as it is, so that no later query trims
        # millions of strings (the values are identical)
        if not counts.pop(f"pad_{name}"):
            typed[name] = expr[name]
    what = {"date": "a date", "timestamp": "a date or timestamp", "number": "a number",
            "bool": "true/false (true, false, yes, no, 1, 0)"}
    for key, n in counts.items():
        if not n:
            continue
        prefix, name = key.split("_", 1)
        if prefix == "bad":
            ex = _examples(checked, checked[f"__{key}"], name)
            col.add(table, name, f"values that are not {what[contract[name][0]]}", n, ex)
        else:
            numbered = checked.mutate(__line=ibis.row_number() + 2)  # +1 for 0-based, +1 for the header
            rows = _examples(numbered, numbered[f"__{key}"], "__line", distinct=False)
            col.add(table, name, "missing values (line numbers of a CSV file shown)", n,
                    [f"line {r}" for r in rows])
    out = expr.select(**typed, **{a: expr[a] for a in attrs})
    return out, row_counts


def _build(
    con,
    raw: dict[str, ir.Table],
    *,
    mapping: dict,
    reference_date,
    on_orphans: str,
    materialize: bool,
    sources: dict,
    source_label: str,
) -> CrossSellData:
    if on_orphans not in ("error", "drop"):
        raise ParameterError(f"on_orphans must be 'error' or 'drop', not {on_orphans!r}")
    engine.prepare(con)
    col = _Collector()

    # 1. mapping: every name it maps from must be a column of some table
    all_found = {c for t in raw.values() for c in t.columns}
    for src in sorted({src for m in mapping.values() for src in m}):
        if src not in all_found:
            col.add(
                "mapping",
                src,
                f"the column mapping names {src!r}, which is in no table; columns found: "
                f"{', '.join(sorted(all_found))}{_suggest(src, all_found)}",
            )

    # 2. rename + required columns
    renamed = {}
    for table, expr in raw.items():
        out = _rename(table, expr, mapping.get(table, {}), col)
        if out is not None:
            renamed[table] = out
    if col.errors:
        raise DataValidationError(col.problems, source=source_label)

    # 3. types, empties, nulls
    typed, row_counts = {}, {}
    for table, expr in renamed.items():
        sums = col.tables.setdefault(table, {"rows_read": 0, "excluded": {}})
        typed[table], row_counts[table] = _typed(table, expr, col, sums)
        if sums["rows_read"] == 0 and table in ("customers", "purchases"):
            col.add(table, None, "the table is empty")
    # no early stop here: the checks below work on IDs and tolerate unparsed values, so one
    # error lists every problem at once

    cust, purch = typed["customers"], typed["purchases"]
    surv, prods = typed.get("surveys"), typed.get("products")

    # 4. customers: duplicates, churn before signup
    dup = cust.group_by("customer_id").aggregate(n=cust.count()).filter(lambda t: t.n > 1)
    dup_counts = engine.execute(dup.aggregate(ids=dup.count(), rows=dup.n.sum()))
    if int(dup_counts["ids"].iloc[0] or 0):
        ex = engine.execute(dup.order_by("customer_id").limit(MAX_EXAMPLES))["customer_id"].tolist()
        col.add("customers", "customer_id", f"duplicate customer ids ({int(dup_counts['ids'].iloc[0]):,} ids)",
                int(dup_counts["rows"].iloc[0]), ex)
    if "churn_date" in cust.columns:
        bad = cust.churn_date < cust.signup_date
        n = _count(cust, bad)
        if n:
            col.add("customers", "churn_date", "churn date before signup date", n,
                    _examples(cust, bad, "customer_id"))

    # 5. surveys: kind and range
    if surv is not None:
        surv = _check_surveys(surv, col)
    if prods is not None:
        dup = prods.group_by("product_id").aggregate(n=prods.count()).filter(lambda t: t.n > 1)
        dups = engine.execute(dup.limit(MAX_EXAMPLES))
        if len(dups):
            total = int(engine.execute(dup.aggregate(n=dup.n.sum()))["n"].iloc[0])
            col.add("products", "product_id", "duplicate product ids in the catalog", total,
                    dups["product_id"].tolist())
    n = row_counts["purchases"].get("ended_early", 0)
    if n:
        bad = _ROW_CHECKS["purchases"]["ended_early"][1](purch)
        col.add("purchases", "ended_at", "cancelled (ended_at) before it was purchased", n,
                _examples(purch, bad, "customer_id"))

    # 6. orphans and purchases before signup
    purch = _check_links("purchases", purch, cust, "purchased_at", on_orphans, col)
    if surv is not None:
        surv = _check_links("surveys", surv, cust, "responded_at", on_orphans, col)
    if col.errors:
        raise DataValidationError(col.problems, source=source_label)

    # 7. the reference date, and what lies after it
    ref = _reference_date(reference_date, cust, purch, surv)
    had_churn = "churn_date" in cust.columns
    cust, purch, surv = _apply_reference(ref, cust, purch, surv, col)

    # quantity defaults to one unit
    if "quantity" not in purch.columns:
        purch = purch.mutate(quantity=ibis.literal(1.0))
    else:
        purch = purch.mutate(quantity=purch.quantity.fill_null(1.0))
    if prods is not None and "is_base" in prods.columns:
        prods = prods.mutate(is_base=prods.is_base.fill_null(False))

    attrs = tuple(c for c in cust.columns if c not in CONTRACT["customers"])
    # an empty text attribute is a segment of its own, never a customer lost from a by= table
    cust = cust.mutate(**{a: cust[a].fill_null(MISSING) for a in attrs if cust[a].type().is_string()})
    for a in attrs:
        if a in RESERVED:
            col.add("customers", a, f"attribute name {a!r} is reserved for results; rename it", 0)
    if col.errors:
        raise DataValidationError(col.problems, source=source_label)
    prod_attrs = () if prods is None else tuple(c for c in prods.columns if c not in ("product_id", "is_base"))

    tables = {"customers": cust, "purchases": purch, "surveys": surv, "products": prods}
    if materialize:
        # DuckDB: a temp table; other backends (Spark has no temp tables): Ibis's cache
        tables = {
            k: (None if v is None else con.create_table(engine.unique_name(k), v, temp=True)
                if engine.backend_name(con) == "duckdb" else v.cache())
            for k, v in tables.items()
        }
    for p in col.problems:
        if p.severity == "warning":
            warnings.warn(str(p), DataQualityWarning, stacklevel=3)
    quality = {"tables": col.tables, "warnings": [p for p in col.problems if p.severity == "warning"]}
    return CrossSellData(
        con=con,
        customers=tables["customers"],
        purchases=tables["purchases"],
        surveys=tables["surveys"],
        products=tables["products"],
        reference_date=ref,
        attributes=attrs,
        product_attributes=prod_attrs,
        quality=quality,
        sources=sources,
        has_churn=had_churn,
    )


def _check_surveys(surv: ir.Table, col: _Collector) -> ir.Table:
    if "kind" in surv.columns:
        kind = surv.kind.strip().lower()
        surv = surv.mutate(kind=kind)
        bad = surv.kind.notnull() & ~surv.kind.isin(list(_SCORE_RANGE))
        n = _count(surv, bad)
        if n:
            col.add("surveys", "kind", "kind must be 'csat' or 'nps'", n, _examples(surv, bad, "kind"))
    else:
        top = engine.execute(surv.aggregate(m=surv.score.max()))["m"].iloc[0]
        inferred = "nps" if pd.notna(top) and top > 5 else "csat"
        surv = surv.mutate(kind=ibis.literal(inferred))
        col.tables["surveys"]["kind_inferred"] = inferred
    rng = ibis.cases(
        *[((surv.kind == k) & ((surv.score < lo) | (surv.score > hi)), True) for k, (lo, hi) in _SCORE_RANGE.items()],
        else_=False,
    )
    n = _count(surv, rng)
    if n:
        col.add("surveys", "score", "scores out of range (csat 1-5, nps 0-10)", n, _examples(surv, rng, "score"))
    return surv


def _check_links(table, child: ir.Table, cust: ir.Table, when: str, on_orphans: str, col: _Collector):
    """Orphans (unknown customer) and rows dated before the customer's signup."""
    keys = cust.select(customer_id=cust.customer_id, __signup=cust.signup_date)
    joined = child.left_join(keys, child.customer_id == keys.customer_id)
    joined = joined.select(
        cid=child.customer_id,
        orphan=keys.customer_id.isnull(),
        early=child[when].cast("date") < keys["__signup"],
    )
    counts = engine.execute(
        joined.aggregate(
            orphans=ibis.ifelse(joined.orphan, 1, 0).sum(),
            early=ibis.ifelse(joined.early.fill_null(False), 1, 0).sum(),
        )
    ).iloc[0].fillna(0).astype(int)
    if counts["orphans"]:
        ex = _examples(joined, joined.orphan, "cid")
        if on_orphans == "error":
            col.add(table, "customer_id",
                    "rows for customers that are not in the customers table "
                    "(pass on_orphans='drop' to drop and count them)", counts["orphans"], ex)
        else:
            col.add(table, "customer_id", "rows for unknown customers dropped", counts["orphans"], ex, "warning")
            col.exclude(table, "unknown_customer", counts["orphans"])
            child = child.semi_join(cust.select("customer_id"), "customer_id")
    if counts["early"]:
        ex = _examples(joined, joined.early.fill_null(False), "cid")
        col.add(table, when, f"{table} dated before the customer's signup date (kept)", counts["early"], ex,
                "warning")
    return child


def _reference_date(given, cust, purch, surv) -> pd.Timestamp:
    if given is not None:
        try:
            ref = pd.Timestamp(given)
        except (ValueError, TypeError) as exc:
            raise ParameterError(f"reference_date {given!r} is not a date") from exc
        if pd.isna(ref):
            raise ParameterError(f"reference_date {given!r} is not a date")
        return ref.normalize()
    # one query: the latest of every date column's maximum
    maxima = [purch.aggregate(m=purch.purchased_at.max().cast("timestamp")),
              cust.aggregate(m=cust.signup_date.max().cast("timestamp"))]
    for t, c in ((cust, "churn_date"), (purch, "ended_at"), (surv, "responded_at")):
        if t is not None and c in t.columns:
            maxima.append(t.aggregate(m=t[c].max().cast("timestamp")))
    both = ibis.union(*maxima)
    return pd.Timestamp(engine.execute(both.aggregate(m=both.m.max()))["m"].iloc[0]).normalize()


def _apply_reference(ref: pd.Timestamp, cust, purch, surv, col: _Collector):
    """Drop what lies after the reference date, counting it; future churn is not yet known."""
    day_after = ibis.literal((ref + pd.Timedelta(days=1)).to_pydatetime())
    ref_date = ibis.literal(ref.date())
    late = cust.signup_date > ref_date
    n = _count(cust, late)
    if n:
        col.add("customers", "signup_date", f"customers who sign up after the reference date {ref.date()} (excluded)",
                n, _examples(cust, late, "customer_id"), "warning")
        col.exclude("customers", "signup_after_reference_date", n)
        cust = cust.filter(~late)
        kept = cust.select("customer_id")
        n_p = _count(purch, ~purch.customer_id.isin(kept.customer_id))
        if n_p:
            col.exclude("purchases", "customer_signs_up_after_reference_date", n_p)
            purch = purch.semi_join(kept, "customer_id")
        if surv is not None:
            n_s = _count(surv, ~surv.customer_id.isin(kept.customer_id))
            if n_s:
                col.exclude("surveys", "customer_signs_up_after_reference_date", n_s)
                surv = surv.semi_join(kept, "customer_id")
    late = purch.purchased_at >= day_after
    n = _count(purch, late)
    if n:
        col.add("purchases", "purchased_at", f"purchases after the reference date {ref.date()} (excluded)", n,
                _examples(purch, late, "purchased_at"), "warning")
        col.exclude("purchases", "after_reference_date", n)
        purch = purch.filter(~late)
    if surv is not None:
        late = surv.responded_at > ref_date
        n = _count(surv, late)
        if n:
            col.add("surveys", "responded_at", f"responses after the reference date {ref.date()} (excluded)", n,
                    _examples(surv, late, "responded_at"), "warning")
            col.exclude("surveys", "after_reference_date", n)
            surv = surv.filter(~late)
    # churn and cancellation after the reference date are not known yet at the reference date
    if "churn_date" in cust.columns:
        cust = cust.mutate(churn_date=ibis.ifelse(cust.churn_date > ref_date, ibis.null("date"), cust.churn_date))
    else:
        cust = cust.mutate(churn_date=ibis.null("date"))
    if "ended_at" in purch.columns:
        purch = purch.mutate(ended_at=ibis.ifelse(purch.ended_at > ref_date, ibis.null("date"), purch.ended_at))
    else:
        purch = purch.mutate(ended_at=ibis.null("date"))
    return cust, purch, surv


def _count(expr: ir.Table, condition) -> int:
    """How many rows of ``expr`` meet ``condition`` (NULL counts as no)."""
    value = engine.execute(expr.aggregate(n=ibis.ifelse(condition, 1, 0).sum()))["n"].iloc[0]
    return int(value) if pd.notna(value) else 0
