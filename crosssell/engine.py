"""The engine: where table work runs.

crosssell writes its table work (filters, joins, group-bys, counts) once, as Ibis expressions.
By default they run in an in-process DuckDB: nothing to start, CSV and Parquet read directly, and
data larger than memory spills to disk.  Any other Ibis backend (Spark, Postgres, BigQuery,
Snowflake, Trino, ...) can be passed instead, and the heavy lifting stays there: only compact
results (per period, per segment, per product) come back as pandas.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import ibis
import pandas as pd

from .errors import EngineError, ParameterError

__all__ = ["connect", "backend_name", "execute", "prepare", "unique_name"]

_names = itertools.count()


def connect(
    backend: Any = None,
    *,
    memory_limit: str | None = None,
    temp_directory: str | os.PathLike | None = None,
    threads: int | None = None,
):
    """Return the Ibis connection crosssell works in.

    Parameters
    ----------
    backend : Ibis backend, str or None
        None (the default) opens a fresh in-process DuckDB.  An existing Ibis connection (for
        example ``ibis.pyspark.connect(session)`` or ``ibis.postgres.connect(...)``) is returned
        as it is.  A string is passed to :func:`ibis.connect` (``"duckdb://path.ddb"``).
    memory_limit : str, optional
        DuckDB only: the most memory DuckDB may use (``"4GB"``); above it, DuckDB spills to
        ``temp_directory``.
    temp_directory : path, optional
        DuckDB only: where it spills.
    threads : int, optional
        DuckDB only: worker threads (default: all cores).

    Returns
    -------
    ibis.BaseBackend

    Examples
    --------
    >>> con = connect(memory_limit="1GB")
    >>> backend_name(con)
    'duckdb'
    """
    if backend is not None and not isinstance(backend, str):
        if memory_limit or temp_directory or threads:
            raise ParameterError(
                "memory_limit, temp_directory and threads configure the default DuckDB engine; "
                "set them on your own connection instead"
            )
        return prepare(backend)
    config: dict[str, Any] = {}
    if memory_limit:
        config["memory_limit"] = str(memory_limit)
    if temp_directory:
        config["temp_directory"] = str(temp_directory)
    if threads:
        config["threads"] = int(threads)
    try:
        if isinstance(backend, str):
            return ibis.connect(backend, **config)
        return ibis.duckdb.connect(**config)
    except Exception as exc:  # the backend's own error types differ; name what failed
        raise EngineError(f"could not open the engine ({backend or 'duckdb'}): {exc}") from exc


def backend_name(con) -> str:
    """The Ibis backend's name (``"duckdb"``, ``"pyspark"``, ...)."""
    return getattr(con, "name", type(con).__name__)


def unique_name(stem: str) -> str:
    """A table name that does not clash with the user's tables or an earlier load."""
    return f"_crosssell_{stem}_{os.getpid()}_{next(_names)}"


def execute(expr, con=None) -> pd.DataFrame:
    """Run an expression and return a pandas DataFrame (a compact result).

    Dates come back as ``datetime64`` whatever the backend hands back (some return
    ``datetime.date`` objects).
    """
    frame = expr.to_pandas() if con is None else con.execute(expr)
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    for name, dtype in expr.schema().items():
        if dtype.is_date() or dtype.is_timestamp():
            frame[name] = pd.to_datetime(frame[name])
    return frame


def prepare(con):
    """Apply the backend-specific fixes crosssell needs before it runs anything in ``con``.

    Every load passes through here (``data._build``), so a fix lives in one place whichever
    way the connection was made.
    """
    if backend_name(con) == "pyspark":
        _fix_spark_strip()
    return con


def _fix_spark_strip() -> None:
    """Make ``StringValue.strip()`` safe on Spark.

    Ibis 12 compiles ``strip()`` to ``TRIM(' \\t\\n\\r\\v\\f' FROM x)``; Spark SQL reads ``\\v`` and
    ``\\f`` in a string literal as the *letters* v and f, so every strip (IDs, yes/no values,
    booleans) silently cut leading and trailing "f" and "v": ``"false"`` became ``"alse"`` and a
    customer ``"jeff"`` became ``"je"``.  Spark's own regex ``\\s`` is the same whitespace set.
    Imported only when a Spark connection is used.
    """
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    def visit_Strip(self, op, *, arg):
        return self.f.regexp_replace(arg, r"^\s+|\s+$", "")

    PySparkCompiler.visit_Strip = visit_Strip
