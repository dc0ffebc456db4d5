"""Errors and warnings raised by crosssell.

Every error a user can trigger with bad data or a bad argument is one of the classes below, so a
notebook or a script can catch exactly what it expects.  Data problems are collected before
anything is raised: :class:`DataValidationError` carries all of them at once, each with the table,
the column, how many rows are affected and up to five examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CrossSellError",
    "DataValidationError",
    "Problem",
    "ParameterError",
    "PeriodError",
    "ColumnNotFoundError",
    "MissingTableError",
    "CapabilityError",
    "EngineError",
    "DataQualityWarning",
    "SmallSampleWarning",
    "ConvergenceWarning",
    "EmptyResultWarning",
    "ReportError",
]

MAX_EXAMPLES = 5


class CrossSellError(Exception):
    """Base class of every error raised by crosssell."""


@dataclass(frozen=True)
class Problem:
    """One problem found while validating the data.

    Parameters
    ----------
    table : str
        The contract table (``customers``, ``purchases``, ``surveys``, ``products``).
    column : str or None
        The contract column the problem is about, or None for the whole table.
    message : str
        What is wrong, in the analyst's words.
    count : int
        How many rows are affected.
    examples : tuple
        Up to five offending values or row numbers.
    severity : {"error", "warning"}
        Errors stop loading; warnings are reported and counted.
    """

    table: str
    column: str | None
    message: str
    count: int = 0
    examples: tuple = field(default_factory=tuple)
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        text = f"[{self.severity}] {where}: {self.message}"
        if self.count:
            text += f" ({self.count:,} row{'s' if self.count != 1 else ''})"
        if self.examples:
            shown = ", ".join(repr(e) for e in self.examples[:MAX_EXAMPLES])
            text += f"; e.g. {shown}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "column": self.column,
            "message": self.message,
            "count": int(self.count),
            "examples": [str(e) for e in self.examples[:MAX_EXAMPLES]],
            "severity": self.severity,
        }


class DataValidationError(CrossSellError, ValueError):
    """The input data breaks the data contract.

    ``problems`` lists every problem found (not just the first one); ``str(err)`` prints them all.
    """

    def __init__(self, problems: list[Problem], *, source: str | None = None):
        self.problems = list(problems)
        self.source = source
        errors = [p for p in self.problems if p.severity == "error"]
        head = f"{len(errors)} problem{'s' if len(errors) != 1 else ''} in the input data"
        if source:
            head += f" ({source})"
        lines = [head + ":"] + [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class ParameterError(CrossSellError, ValueError):
    """An argument has a value the function cannot use (an unknown option, a bad number)."""


class PeriodError(ParameterError):
    """An unknown period code, a start after an end, or a period outside the data."""


class ColumnNotFoundError(ParameterError, KeyError):
    """A column named in ``by=``, a mapping or a filter does not exist.

    The message names the columns that do exist.
    """

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return str(self.args[0]) if self.args else ""


class MissingTableError(CrossSellError, LookupError):
    """An analysis needs an optional table (surveys, products) or column that the data lacks."""


class CapabilityError(CrossSellError, TypeError):
    """The data cannot answer this question (e.g. product identities are unknown)."""


class EngineError(CrossSellError, RuntimeError):
    """The engine (DuckDB, Spark, another Ibis backend) could not be started or used."""


class DataQualityWarning(UserWarning):
    """Something in the data was excluded or looks suspicious; the counts are in ``attrs``."""


class SmallSampleWarning(UserWarning):
    """A group is smaller than ``min_customers``: it is flagged, not hidden."""


class ConvergenceWarning(UserWarning):
    """A model did not converge; what is estimable is still returned."""


class ReportError(CrossSellError, RuntimeError):
    """A report notebook failed while it ran (``crosssell report``).

    ``cell_index`` and ``source`` name the failing cell, ``ename``/``evalue`` the error raised in
    it, and ``failed_notebook`` where the executed notebook was saved.
    """

    def __init__(self, message: str, *, cell_index=None, ename=None, evalue=None, source=None,
                 failed_notebook=None):
        super().__init__(message)
        self.cell_index = cell_index
        self.ename = ename
        self.evalue = evalue
        self.source = source
        self.failed_notebook = failed_notebook


class EmptyResultWarning(UserWarning):
    """An analysis has nothing to report (e.g. no pair reaches the support); ``attrs["reason"]`` says why."""
