"""Adapters: the shapes analysts actually have, mapped onto the data contract.

Few teams hold a clean purchases table.  They have

* a **wide** export, one row per customer and one yes/no column per service
  (:func:`from_wide`, e.g. the IBM Telco churn sample);
* a **count** of products per customer with no product identities (:func:`from_counts`, e.g. a
  bank's data mart);
* a raw **transaction log** of invoice lines with cancellations and lines without a customer
  (:func:`from_transactions`, e.g. UCI Online Retail).

Each adapter builds the contract's ``customers`` and ``purchases`` tables (and a ``products``
catalog) in the engine and hands them to the same validation as :func:`crosssell.load`, so the
result is an ordinary :class:`~crosssell.data.CrossSellData`.  What an adapter had to assume (a
churn date from a flag, churn from inactivity, anonymous products) is written into
``data.definitions``, and what it excluded is counted in ``data.quality``.

A YAML mapping file names the adapter and its options, so the same mapping serves Python, the
command line and the notebooks::

    adapter: wide
    file: WA_Fn-UseC_-Telco-Customer-Churn.csv
    customer_id: customerID
    products: [PhoneService, MultipleLines, ...]

and ``cs.load(folder, mapping="data/examples/telco.yml")`` reads it (see :func:`load_mapped`).
:func:`connect_spark` opens a local or cluster Spark session as an Ibis backend.
"""

from __future__ import annotations

import copy
import datetime as dt
import inspect
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd

from . import engine
from .data import (
    RESERVED,
    CrossSellData,
    _blank,
    _build,
    _csv_header,
    _id_strings,
    _parse,
    _suggest,
)
from .errors import DataValidationError, EngineError, ParameterError, Problem

__all__ = [
    "from_wide",
    "from_counts",
    "from_transactions",
    "load_mapped",
    "read_mapping",
    "connect_spark",
    "ADAPTERS",
    "YES",
    "NO",
]

#: values read as "has it" / "does not have it" (compared trimmed and lower-cased)
YES = ("yes", "y", "true", "t", "1", "1.0")
NO = ("no", "n", "false", "f", "0", "0.0", "no internet service", "no phone service")

TENURE_UNITS = {"days": 1, "weeks": 7, "months": None, "years": None}
_DAYS_PER_MONTH = 365.2425 / 12  # for fractional months only; whole months use the calendar
_DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
MAX_EXAMPLES = 5


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(value: str, fmt: str) -> dt.datetime:  # DuckDB's NULL-on-failure strptime
    ...


# --------------------------------------------------------------------------------------------
# wide: one row per customer, one column per product


def from_wide(
    source: Any,
    *,
    customer_id: str,
    products: list | dict,
    tenure: str | None = None,
    tenure_unit: str = "months",
    signup_date: str | None = None,
    churn: str | None = None,
    churn_date: str | None = None,
    churned_on: Any = None,
    attributes: list | dict | None = None,
    reference_date: Any = None,
    yes: list | tuple = (),
    no: list | tuple = (),
    missing: str = "error",
    base: list | tuple = (),
    file: str | None = None,
    con: Any = None,
    materialize: bool | None = None,
) -> CrossSellData:
    """Read a one-row-per-customer table with a yes/no column per product or service.

    Each product column says whether the customer holds the product at the reference date.
    The export has no purchase dates, so each product held is recorded as bought at the
    customer's signup date: the data answers "what do customers hold now" (``basis="held"`` at
    the reference date, distributions, tiers and churn by tier), not "what was sold when".

    Parameters
    ----------
    source : path, pandas.DataFrame or ibis.Table
        A CSV/CSV.GZ/Parquet file (or a folder holding it, with ``file``), a frame or a table.
    customer_id : str
        The column with the customer key.
    products : list of str or dict
        The product columns.  A list uses each column's name as the product id.  A dict maps a
        column to its product id, or to options ``{"product": id, "yes": [...], "no": [...],
        "base": bool, "category": str}``; e.g. ``{"InternetService": {"yes": ["DSL",
        "Fiber optic"]}}`` for a column whose "has it" values are kinds of the service.
    tenure : str, optional
        Column with the time the customer has been (or was, for churned ones) a customer:
        ``signup_date = (churn date or reference date) - tenure``.
    tenure_unit : {"months", "years", "weeks", "days"}
        Unit of ``tenure``.  Whole months and years are calendar months and years.
    signup_date : str, optional
        A signup date column, instead of ``tenure``.
    churn : str, optional
        A yes/no column: did the customer leave?  Flagged customers get ``churn_date =
        churned_on``.
    churn_date : str, optional
        A churn date column, instead of ``churn``.
    churned_on : date-like, optional
        The churn date given to customers flagged by ``churn`` (default: the reference date).
        A flag only says that the customer left during the export's last period; the exact
        day is unknown, so they are treated as lost at the reference date.
    attributes : list or dict, optional
        Columns kept as segment attributes (a dict renames them).  Default: every column not
        used above.
    reference_date : date-like
        The export's "as of" date.  Required with ``tenure``; otherwise the latest date seen.
    yes, no : list of str, optional
        Extra values meaning "has it" / "does not have it" for every product column and the
        churn flag (added to :data:`YES` and :data:`NO`).
    missing : {"error", "no"}
        An empty product cell is an error (default) or means "does not have it".
    base : list of str, optional
        Product ids (or columns) that are base products: held, but never counted as cross-sell.
    file : str, optional
        The file inside ``source`` when ``source`` is a folder.
    con : Ibis backend, optional
        The engine (default: a fresh in-process DuckDB).
    materialize : bool, optional
        Store the built tables in the engine (default: yes).

    Returns
    -------
    CrossSellData
        ``definitions`` records the assumptions (signup from tenure, churn date from a flag,
        purchase dates = signup dates).

    Raises
    ------
    DataValidationError
        A named column is missing (the message lists the columns that exist), or a product or
        churn column holds values outside the yes/no vocabulary (the message lists them).

    Examples
    --------
    >>> import pandas as pd, crosssell as cs
    >>> wide = pd.DataFrame({"id": ["a", "b"], "months": [3, 12], "Phone": ["Yes", "No"],
    ...                      "TV": ["Yes", "No internet service"], "Left": ["No", "Yes"]})
    >>> data = cs.from_wide(wide, customer_id="id", products=["Phone", "TV"], tenure="months",
    ...                     churn="Left", reference_date="2024-06-30")
    >>> int(cs.cross_sell_ratio(data, basis="held")["numerator"].iloc[0])
    2
    """
    _choice("missing", missing, ("error", "no"))
    specs = _product_specs(products, base)
    con, t, sources, label = _open(
        source, con=con, file=file,
        text=[customer_id, *[s["column"] for s in specs], *([churn] if churn else [])],
    )
    named = [("customer_id", customer_id)] + [("products", s["column"]) for s in specs]
    derived, checks, ref, defs = _customer_exprs(
        t, label, named=named, customer_id=customer_id, tenure=tenure, tenure_unit=tenure_unit,
        signup_date=signup_date, churn=churn, churn_date=churn_date, churned_on=churned_on,
        reference_date=reference_date, yes=yes, no=no,
    )
    for i, spec in enumerate(specs):
        vocab = ((*YES, *yes, *spec["yes"]), (*NO, *no, *spec["no"]))
        derived[f"__has{i}"], derived[f"__bad{i}"] = _yes_no(t[spec["column"]], *vocab,
                                                             missing_is_no=missing == "no")
        checks.append(_Check(f"__bad{i}", "purchases", spec["column"], vocab=(*vocab, missing)))
    attrs = _attribute_columns(t, attributes, used={customer_id, tenure, signup_date, churn, churn_date,
                                                    *[s["column"] for s in specs]}, label=label)
    rows = _stage(con, t.select(*_unique([*attrs, *[s["column"] for s in specs], tenure, signup_date, churn,
                                          churn_date]), **derived))
    _run_checks(rows, checks, label)
    held_any = engine.execute(rows.aggregate(
        n=ibis.greatest(*[ibis.ifelse(rows[f"__has{i}"], 1, 0) for i in range(len(specs))]).max()
        if len(specs) > 1 else ibis.ifelse(rows["__has0"], 1, 0).max()
    ))["n"].iloc[0]
    if not held_any:
        raise DataValidationError(
            [Problem("purchases", None, "no product column has a 'yes' value: no customer holds a product",
                     examples=tuple(s["column"] for s in specs))], source=label
        )

    customers = _customers_select(rows, attrs)
    parts = [
        rows.filter(rows[f"__has{i}"]).select(
            customer_id=rows["__cid"],
            product_id=ibis.literal(spec["product"]),
            purchased_at=rows["__signup"].cast("timestamp"),
            quantity=ibis.literal(1.0),
        )
        for i, spec in enumerate(specs)
    ]
    purchases = ibis.union(*parts) if len(parts) > 1 else parts[0]
    catalog = pd.DataFrame(
        {
            "product_id": [s["product"] for s in specs],
            "name": [s["column"] for s in specs],
            "is_base": [s["base"] for s in specs],
            **({"category": [s["category"] for s in specs]} if any(s["category"] for s in specs) else {}),
        }
    )
    defs["purchases"] = (
        "one row per product held (a product column with a 'yes' value); the export has no "
        "purchase dates, so each product held is dated at the customer's signup date: use "
        "basis='held' or period=None, not sold-per-period ratios"
    )
    data = _build(
        con,
        {"customers": customers, "purchases": purchases, "products": _catalog(con, catalog)},
        mapping={},
        reference_date=ref,
        on_orphans="error",
        materialize=True if materialize is None else bool(materialize),
        sources={"customers": sources, "purchases": sources} if sources else {},
        source_label=label,
    )
    _release(con, rows, data)
    return _finish(data, definitions=defs, shape="wide")


# --------------------------------------------------------------------------------------------
# counts: one row per customer with a number of products


def from_counts(
    source: Any,
    *,
    customer_id: str,
    count: str,
    tenure: str | None = None,
    tenure_unit: str = "months",
    signup_date: str | None = None,
    churn: str | None = None,
    churn_date: str | None = None,
    churned_on: Any = None,
    attributes: list | dict | None = None,
    reference_date: Any = None,
    yes: list | tuple = (),
    no: list | tuple = (),
    base: int = 0,
    file: str | None = None,
    con: Any = None,
    materialize: bool | None = None,
) -> CrossSellData:
    """Read a one-row-per-customer table with a *number* of products and no product names.

    The count becomes anonymous products held since signup (``product_1`` … ``product_k``
    for a customer with k), so that the ratio, the distribution of products per customer,
    tiers and churn or satisfaction by tier work as for any data.  The result has
    ``has_product_ids=False``: analyses that need to know *which* product (penetration,
    affinity, next best product) raise :class:`~crosssell.errors.CapabilityError`.

    Parameters
    ----------
    source, customer_id, tenure, tenure_unit, signup_date, churn, churn_date, churned_on, \
attributes, reference_date, yes, no, file, con, materialize
        As in :func:`from_wide`.
    count : str
        The column with the number of products the customer holds (a whole number, 0 or more).
    base : int, default 0
        How many of each customer's products are base products that never count as
        cross-sell (e.g. 1 when every customer's first product is the current account).

    Returns
    -------
    CrossSellData

    Raises
    ------
    DataValidationError
        A named column is missing, or ``count`` holds values that are not whole numbers ≥ 0.

    Examples
    --------
    >>> import pandas as pd, crosssell as cs
    >>> bank = pd.DataFrame({"id": [1, 2, 3], "years": [2, 5, 1], "n": [1, 2, 4],
    ...                      "Exited": [0, 0, 1]})
    >>> data = cs.from_counts(bank, customer_id="id", count="n", tenure="years",
    ...                       tenure_unit="years", churn="Exited", reference_date="2024-12-31")
    >>> cs.product_distribution(data, basis="sold", customers="all")["products"].tolist()
    [1, 2, 4]
    """
    if not isinstance(base, int) or isinstance(base, bool) or base < 0:
        raise ParameterError(f"base must be a whole number of products, 0 or more, not {base!r}")
    con, t, sources, label = _open(source, con=con, file=file, text=[customer_id, *([churn] if churn else [])])
    derived, checks, ref, defs = _customer_exprs(
        t, label, named=[("customer_id", customer_id), ("count", count)], customer_id=customer_id,
        tenure=tenure, tenure_unit=tenure_unit, signup_date=signup_date, churn=churn,
        churn_date=churn_date, churned_on=churned_on, reference_date=reference_date, yes=yes, no=no,
    )
    n = _number(t[count])
    derived["__n"] = n
    derived["__bad_count"] = ((~_blank(t[count]) & n.isnull()) | (n < 0) | (n != n.floor())).fill_null(False)
    derived["__no_count"] = _blank(t[count])
    checks += [
        _Check("__bad_count", "purchases", count, "product counts that are not whole numbers 0 or more"),
        _Check("__no_count", "purchases", count, "missing product counts (customer ids shown)", show="__cid"),
    ]
    attrs = _attribute_columns(t, attributes, used={customer_id, count, tenure, signup_date, churn, churn_date},
                               label=label)
    rows = _stage(con, t.select(*_unique([*attrs, count, tenure, signup_date, churn, churn_date]), **derived))
    _run_checks(rows, checks, label)

    customers = _customers_select(rows, attrs)
    top = engine.execute(rows.aggregate(top=rows["__n"].max()))["top"].iloc[0]
    top = int(top) if pd.notna(top) else 0
    if top == 0:
        raise DataValidationError(
            [Problem("purchases", count, "every product count is 0: no customer holds a product")], source=label
        )
    slots = _catalog(con, pd.DataFrame({"__slot": range(1, top + 1)}))
    j = rows.select("__cid", "__signup", "__n").cross_join(slots)
    j = j.filter(j["__slot"] <= j["__n"])
    purchases = j.select(
        customer_id=j["__cid"],
        product_id=ibis.literal("product_") + j["__slot"].cast("string"),
        purchased_at=j["__signup"].cast("timestamp"),
        quantity=ibis.literal(1.0),
    )
    catalog = pd.DataFrame({"product_id": [f"product_{i}" for i in range(1, top + 1)],
                            "is_base": [i <= base for i in range(1, top + 1)]})
    defs["purchases"] = (
        f"the product count in {count!r} as anonymous products product_1 … product_k held since "
        "signup; which products they are is unknown"
        + (f"; the first {base} of every customer's products are base products" if base else "")
    )
    data = _build(
        con,
        {"customers": customers, "purchases": purchases, "products": _catalog(con, catalog)},
        mapping={},
        reference_date=ref,
        on_orphans="error",
        materialize=True if materialize is None else bool(materialize),
        sources={"customers": sources, "purchases": sources} if sources else {},
        source_label=label,
    )
    _release(con, rows, data)
    return _finish(data, definitions=defs, shape="counts", has_product_ids=False)


# --------------------------------------------------------------------------------------------
# transactions: an invoice-line log


def from_transactions(
    source: Any,
    *,
    customer_id: str,
    product_id: str,
    timestamp: str,
    quantity: str | None = None,
    price: str | None = None,
    revenue: str | None = None,
    invoice: str | None = None,
    cancellation_prefix: str | None = "C",
    date_format: str | None = None,
    churn_after: Any = "180D",
    attributes: list | dict | None = None,
    product_name: str | None = None,
    exclude_products: list | tuple = (),
    reference_date: Any = None,
    file: str | None = None,
    con: Any = None,
    materialize: bool | None = None,
) -> CrossSellData:
    """Read an invoice-line log: customer, product, timestamp, quantity and price per line.

    * **Customers** are the customer ids seen in the log; ``signup_date`` is their first line.
    * **Cancellations** (invoices starting with ``cancellation_prefix``, or any negative
      quantity) are returns: their quantity is negative and nets against the sales of the same
      (customer, product), as the contract says.
    * **Lines without a customer** cannot be attributed: they are excluded and counted
      (``quality["tables"]["purchases"]["excluded"]["no_customer_id"]``), as are lines after the
      reference date and lines of ``exclude_products`` (postage, fees, manual adjustments).
    * **Churn** is inactivity: a customer is lost ``churn_after`` after their last purchase (a
      line with a positive quantity), i.e. ``churn_date = last purchase + churn_after``.  Where
      that day falls after the reference date the customer is still a customer (censored at the
      reference date).  The definition is recorded in ``data.definitions["churn"]``.

    Parameters
    ----------
    source : path, pandas.DataFrame or ibis.Table
        The log (CSV, CSV.GZ or Parquet file, or a folder with ``file``).
    customer_id, product_id, timestamp : str
        Columns of the customer, the product (e.g. a stock code) and the line's time.
    quantity : str, optional
        Units per line (default 1).
    price, revenue : str, optional
        Unit price (revenue = quantity × price) or the line's revenue.
    invoice : str, optional
        The invoice number; with ``cancellation_prefix`` it marks cancellations.
    cancellation_prefix : str or None, default "C"
        Invoices starting with it are cancellations (their quantity is made negative).
    date_format : str, optional
        strptime format of ``timestamp`` when it is not ISO, e.g. ``"%m/%d/%Y %H:%M"`` for
        ``"12/1/2010 8:26"``.
    churn_after : str, int or None, default "180D"
        Days without a purchase after which a customer is lost ("180D", "26W" or 180); None for
        no churn.
    attributes : list or dict, optional
        Customer attributes taken from the log (e.g. ``["Country"]``): the value on the
        customer's first line (a warning counts customers with more than one value).
    product_name : str, optional
        Column with a product description: the catalog's ``name`` is its most frequent value.
    exclude_products : list of str, optional
        Product ids that are not products (postage, fees, adjustments): excluded and counted.
    reference_date : date-like, optional
        The "as of" date (default: the day of the log's last line).  Later lines are excluded
        and counted.
    file, con, materialize
        As in :func:`from_wide`.

    Returns
    -------
    CrossSellData

    Raises
    ------
    DataValidationError
        A named column is missing; no timestamp parses (the message shows examples and asks for
        ``date_format``); some timestamps, quantities or prices do not parse.

    Examples
    --------
    >>> import pandas as pd, crosssell as cs
    >>> log = pd.DataFrame({"Invoice": ["1", "1", "C2", "3"], "Customer": ["a", "a", "a", None],
    ...                     "SKU": ["X", "Y", "Y", "X"], "Qty": [1, 2, -2, 5],
    ...                     "When": ["2024-01-02 10:00", "2024-01-02 10:00", "2024-01-05 09:00",
    ...                              "2024-01-06 12:00"]})
    >>> data = cs.from_transactions(log, customer_id="Customer", product_id="SKU", timestamp="When",
    ...                             quantity="Qty", invoice="Invoice")
    >>> data.excluded()
    {'purchases.no_customer_id': 1}
    >>> int(cs.cross_sell_ratio(data)["numerator"].iloc[0])  # Y was returned: only X counts
    1
    """
    churn_days = _days(churn_after)
    exclude_products = [str(p) for p in (exclude_products or ())]
    if price and revenue:
        raise ParameterError("give price (revenue = quantity × price) or revenue, not both")
    text = [customer_id, product_id, timestamp, *([invoice] if invoice else []),
            *([product_name] if product_name else [])]
    con, t, sources, label = _open(source, con=con, file=file, text=text)
    named = [("customer_id", customer_id), ("product_id", product_id), ("timestamp", timestamp),
             ("quantity", quantity), ("price", price), ("revenue", revenue), ("invoice", invoice),
             ("product_name", product_name)]
    attr_map = _attribute_map(attributes)
    _check_columns(t, [(k, v) for k, v in named if v] + [("attributes", a) for a in attr_map], label)

    ts = _timestamp(t[timestamp], date_format, con)
    qty = _number(t[quantity]) if quantity else ibis.literal(1.0)
    cancel = (t[invoice].cast("string").strip().startswith(cancellation_prefix).fill_null(False)
              if invoice and cancellation_prefix else ibis.literal(False))
    q = qty.fill_null(1.0)
    q = ibis.ifelse(cancel, -q.abs(), q)  # a cancellation takes units back, whatever its sign
    money_col = price or revenue
    money = _number(t[money_col]) if money_col else None
    derived = {
        "__cid": ibis.ifelse(_blank(t[customer_id]), ibis.null("string"), t[customer_id].cast("string").strip()),
        "__pid": t[product_id].cast("string").strip(),
        "__ts": ts,
        "__q": q,
        "__cancel": cancel,
        "__bad_ts": ~_blank(t[timestamp]) & ts.isnull(),
        "__no_ts": _blank(t[timestamp]),
        "__no_pid": _blank(t[product_id]),
    }
    checks = [
        _Check("__bad_ts", "purchases", timestamp, "timestamps that do not parse"
               + ("" if date_format else "; pass date_format= if they share a non-ISO format")),
        _Check("__no_ts", "purchases", timestamp, "lines without a timestamp (line numbers shown)", show="__line"),
        _Check("__no_pid", "purchases", product_id, "lines without a product (line numbers shown)", show="__line"),
    ]
    if quantity:
        derived["__bad_qty"] = ~_blank(t[quantity]) & qty.isnull()
        checks.append(_Check("__bad_qty", "purchases", quantity, "quantities that are not numbers"))
    if money is not None:
        derived["__rev"] = money * q if price else ibis.ifelse(cancel, -money.abs(), money)
        derived["__bad_money"] = ~_blank(t[money_col]) & money.isnull()
        checks.append(_Check("__bad_money", "purchases", money_col,
                             f"{'prices' if price else 'revenues'} that are not numbers"))
    keep = _unique([timestamp, quantity, money_col, *attr_map, product_name])
    lines = _stage(con, t.select(*keep, **derived))

    stats = engine.execute(lines.aggregate(rows=lines.count(), parsed=lines["__ts"].count(),
                                           last=lines["__ts"].max()))
    n_lines, parsed = int(stats["rows"].iloc[0]), int(stats["parsed"].iloc[0])
    if n_lines == 0:
        raise DataValidationError([Problem("purchases", None, "the transaction log is empty")], source=label)
    if parsed == 0:
        hint = (f"the format {date_format!r} matches none of them" if date_format else
                "pass date_format= with their strptime format, e.g. '%m/%d/%Y %H:%M' for '12/1/2010 8:26'")
        ex = _examples(lines, ~lines["__no_ts"], timestamp)
        raise DataValidationError(
            [Problem("purchases", timestamp, f"no parsable timestamps in the log; {hint}", n_lines, tuple(ex))],
            source=label,
        )
    _run_checks(lines, checks, label)

    if reference_date is not None:
        ref = _as_date(reference_date, "reference_date")
    else:
        ref = pd.Timestamp(stats["last"].iloc[0]).normalize()
    late = lines["__ts"] >= ibis.literal((ref + pd.Timedelta(days=1)).to_pydatetime())
    known = lines["__cid"].notnull()
    other = lines["__pid"].isin(exclude_products) if exclude_products else ibis.literal(False)
    counts = engine.execute(lines.aggregate(
        no_cid=ibis.ifelse(~known, 1, 0).sum(),
        late=ibis.ifelse(known & late, 1, 0).sum(),
        other=ibis.ifelse(known & ~late & other, 1, 0).sum(),
        cancel=ibis.ifelse(known & ~late & lines["__cancel"], 1, 0).sum(),
        returns=ibis.ifelse(known & ~late & (lines["__q"] < 0) & ~lines["__cancel"], 1, 0).sum(),
    )).iloc[0].fillna(0).astype(int)
    excluded = {"no_customer_id": int(counts["no_cid"]), "after_reference_date": int(counts["late"]),
                "not_a_product": int(counts["other"])}
    seen = lines.filter(known & ~late)

    # customers: every id seen up to the reference date, whatever the line was
    last_sale = ibis.ifelse(seen["__q"] > 0, seen["__ts"], ibis.null("timestamp"))
    per = seen.group_by("__cid").aggregate(__first=seen["__ts"].min(), __last=last_sale.max())
    cust_cols = {"customer_id": per["__cid"], "signup_date": per["__first"].cast("date")}
    defs = {
        "customers": "every customer id in the log; signup_date = the day of their first line",
        "purchases": (
            f"one row per line with a customer, product = {product_id!r}"
            + (f"; invoices starting with {cancellation_prefix!r} are cancellations, netted against sales"
               if invoice and cancellation_prefix else "")
            + "; negative quantities are returns"
            + (f"; not products (excluded): {', '.join(exclude_products)}" if exclude_products else "")
        ),
    }
    if churn_days is not None:
        last = ibis.coalesce(per["__last"], per["__first"]).cast("date")
        lost = (last + ibis.interval(days=churn_days)).cast("date")
        cust_cols["churn_date"] = ibis.ifelse(lost <= ibis.literal(ref.date()), lost, ibis.null("date"))
        defs["churn"] = (
            f"inactivity: a customer is lost {churn_days} days after their last purchase (a line with "
            f"a positive quantity); churn_date = last purchase + {churn_days} days.  Customers whose "
            f"{churn_days} days have not passed by the reference date {ref.date()} are still customers "
            "(censored at the reference date).  A gap followed by a return is not churn."
        )
    customers = per.select(**cust_cols)
    found = []
    if attr_map:
        customers, multi = _first_line_attributes(seen, customers, attr_map)
        found = [Problem("customers", attr_map[src],
                         f"customers with more than one {src!r} in the log: the value on their first line is used",
                         n, severity="warning") for src, n in multi.items() if n]

    kept = seen.filter(~other) if exclude_products else seen
    pcols = {"customer_id": kept["__cid"], "product_id": kept["__pid"], "purchased_at": kept["__ts"],
             "quantity": kept["__q"]}
    if money is not None:
        pcols["revenue"] = kept["__rev"]
    tables = {"customers": customers, "purchases": kept.select(**pcols)}
    if product_name:
        tables["products"] = _product_names(kept, product_name)
    data = _build(
        con,
        tables,
        mapping={},
        reference_date=ref,
        on_orphans="error",
        materialize=True if materialize is None else bool(materialize),
        sources={"customers": sources, "purchases": sources} if sources else {},
        source_label=label,
    )
    _release(con, lines, data)
    return _finish(
        data,
        definitions=defs,
        shape="transactions",
        rows_read={"purchases": n_lines},
        excluded={"purchases": excluded},
        notes={"purchases": {"cancellation_lines": int(counts["cancel"]),
                             "other_negative_quantity_lines": int(counts["returns"])}},
        extra_warnings=found,
    )


# --------------------------------------------------------------------------------------------
# mapping files


#: adapter name in a mapping file -> function (``tables`` = the contract's own folder layout)
ADAPTERS = {"wide": from_wide, "counts": from_counts, "transactions": from_transactions, "tables": None}


def read_mapping(mapping: str | os.PathLike | dict) -> dict:
    """Read a mapping (a YAML file or a dict) and check its adapter and option names.

    Returns
    -------
    dict
        ``{"adapter": name, **options}``; options are the keyword arguments of the adapter
        (``tables`` takes ``columns`` and ``reference_date``).

    Examples
    --------
    >>> import crosssell as cs
    >>> m = read_mapping(cs.sample_path().parent / "examples" / "telco.yml")
    >>> m["adapter"], m["customer_id"]
    ('wide', 'customerID')
    """
    where = "the mapping"
    if isinstance(mapping, (str, os.PathLike)):
        import yaml

        path = Path(mapping)
        where = f"mapping file {path}"
        if not path.is_file():
            raise ParameterError(f"{where} not found")
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ParameterError(f"{where} is not valid YAML: {exc}") from exc
    elif isinstance(mapping, dict):
        spec = mapping
    else:
        raise ParameterError(f"mapping must be a YAML file path or a dict, not {type(mapping).__name__}")
    if not isinstance(spec, dict):
        raise ParameterError(f"{where} must hold a mapping of option: value, not {type(spec).__name__}")
    spec = _yaml_keys(spec)
    if isinstance(spec.get("products"), dict):
        spec["products"] = {k: _yaml_keys(v) if isinstance(v, dict) else v for k, v in spec["products"].items()}
    kind = spec.get("adapter")
    if kind not in ADAPTERS:
        raise ParameterError(
            f"{where}: adapter must be one of {', '.join(ADAPTERS)}, not {kind!r}"
        )
    allowed = _options(kind)
    unknown = sorted(set(spec) - {"adapter", "description"} - allowed)
    if unknown:
        raise ParameterError(
            f"{where}: unknown option(s) {', '.join(map(repr, unknown))} for adapter {kind!r}"
            f"{_suggest(unknown[0], allowed)}; its options: {', '.join(sorted(allowed))}"
        )
    return spec


def load_mapped(
    path: str | os.PathLike | pd.DataFrame | ir.Table,
    mapping: str | os.PathLike | dict,
    *,
    columns: dict | None = None,
    reference_date: Any = None,
    on_orphans: str = "error",
    con: Any = None,
    memory_limit: str | None = None,
    temp_directory: str | os.PathLike | None = None,
    materialize: bool | None = None,
) -> CrossSellData:
    """Load data through a mapping: what ``cs.load(path, mapping=...)`` does.

    ``path`` is the file, or the folder holding the mapping's ``file``.  ``reference_date``
    given here overrides the mapping's.

    Examples
    --------
    >>> import crosssell as cs
    >>> data = cs.load(cs.sample_path(), mapping={"adapter": "tables"})
    >>> data.attributes
    ('plan', 'region', 'channel')
    """
    spec = read_mapping(mapping)
    kind = spec.pop("adapter")
    spec.pop("description", None)
    if reference_date is not None:
        spec["reference_date"] = reference_date
    if kind == "tables":
        from .data import load

        if columns is not None and spec.get("columns") is not None:
            raise ParameterError("columns are given both in the mapping and as columns=; give them once")
        return load(
            path, columns=columns if columns is not None else spec.get("columns"),
            reference_date=spec.get("reference_date"), on_orphans=on_orphans, con=con,
            memory_limit=memory_limit, temp_directory=temp_directory, materialize=materialize,
        )
    if columns is not None:
        raise ParameterError(
            f"columns= renames the columns of contract tables; with the {kind!r} adapter the mapping "
            "names the columns itself"
        )
    if on_orphans != "error":
        raise ParameterError(f"on_orphans does not apply to the {kind!r} adapter (it builds both tables)")
    con = engine.connect(con, memory_limit=memory_limit, temp_directory=temp_directory)
    return ADAPTERS[kind](path, **spec, con=con, materialize=materialize)


def _options(kind: str) -> set[str]:
    if kind == "tables":
        return {"columns", "reference_date"}
    params = inspect.signature(ADAPTERS[kind]).parameters
    return {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY} - {"con", "materialize"}


# --------------------------------------------------------------------------------------------
# Spark


def connect_spark(
    master: str = "local[2]",
    *,
    app_name: str = "crosssell",
    config: dict | None = None,
    warehouse_dir: str | os.PathLike | None = None,
    shuffle_partitions: int | None = None,
):
    """Start (or reuse) a Spark session and return it as an Ibis backend.

    The returned connection can be passed as ``con=`` or used to read tables for
    :func:`crosssell.from_ibis`; the metric expressions then run in Spark and only compact
    results come back.  Needs the optional extra (``pip install 'crosssell[spark]'``) and Java 17.

    Parameters
    ----------
    master : str, default "local[2]"
        Spark master URL (``"local[2]"`` = two local cores, ``"spark://host:7077"``, ``"yarn"``).
    app_name : str
        The application's name in Spark's UI.
    config : dict, optional
        Extra Spark settings (``{"spark.driver.memory": "2g"}``).
    warehouse_dir : path, optional
        ``spark.sql.warehouse.dir`` (where ``create_table`` writes); default Spark's.
    shuffle_partitions : int, optional
        ``spark.sql.shuffle.partitions``; small values are faster on small local data.

    Raises
    ------
    EngineError
        pyspark is not installed, Java is not found, or the session does not start; the message
        says which and what to do.

    Examples
    --------
    >>> con = connect_spark("local[2]", shuffle_partitions=2)  # doctest: +SKIP
    >>> data = cs.from_ibis(customers=con.read_parquet("customers.parquet"),
    ...                     purchases=con.read_parquet("purchases.parquet"))  # doctest: +SKIP
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise EngineError(
            "Spark support is an optional extra: pip install 'crosssell[spark]' (pyspark and "
            f"ibis-framework[pyspark]); import failed: {exc}"
        ) from exc
    java = find_java()
    if java is None:
        raise EngineError(
            "Spark needs a Java runtime (Java 17), and none was found: no java on PATH and "
            f"JAVA_HOME={os.environ.get('JAVA_HOME', '(unset)')}; install a JDK (e.g. "
            "apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    settings = {
        "spark.ui.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    if warehouse_dir is not None:
        settings["spark.sql.warehouse.dir"] = str(warehouse_dir)
    if shuffle_partitions is not None:
        settings["spark.sql.shuffle.partitions"] = str(int(shuffle_partitions))
    settings.update({k: str(v) for k, v in (config or {}).items()})
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # pyspark raises its own runtime errors when the JVM fails
        raise EngineError(
            f"could not start Spark (master {master!r}, java {java}): {exc}; check `java -version` "
            "(Spark 4 needs Java 17 or 21) and JAVA_HOME"
        ) from exc
    try:
        return engine.prepare(ibis.pyspark.connect(session))
    except Exception as exc:
        raise EngineError(f"Spark started but Ibis could not connect to it: {exc}") from exc


def find_java() -> str | None:
    """The java executable Spark would use (JAVA_HOME first, then PATH), or None."""
    home = os.environ.get("JAVA_HOME")
    if home:
        exe = Path(home) / "bin" / "java"
        return str(exe) if exe.is_file() and os.access(exe, os.X_OK) else None
    return shutil.which("java")


# --------------------------------------------------------------------------------------------
# shared pieces


def _choice(name, value, allowed):
    if value not in allowed:
        raise ParameterError(f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")


def _raise(problems: list[Problem], label: str) -> None:
    if any(p.severity == "error" for p in problems):
        raise DataValidationError(problems, source=label)


def _open(source, *, con, file, text):
    """Return (con, table, source path, label) for a file, folder, frame or Ibis table."""
    if isinstance(source, ir.Table):
        backend = source.get_backend()
        return backend, source, None, f"{engine.backend_name(backend)} table"
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
        frame.columns = [str(c) for c in frame.columns]
        for c in text:
            if c in frame.columns:
                col = frame[c]
                frame[c] = _id_strings(col) if pd.api.types.is_float_dtype(col) else col.astype("string")
        con = engine.connect(con)
        return con, _catalog(con, frame), None, "data frame"
    if not isinstance(source, (str, os.PathLike)):
        raise ParameterError(
            f"source must be a file, a folder, a pandas DataFrame or an Ibis table, not {type(source).__name__}"
        )
    path = _resolve(Path(source), file)
    con = engine.connect(con)
    name = engine.unique_name("source")
    if path.name.lower().endswith((".parquet", ".pq")):
        return con, con.read_parquet(str(path), table_name=name), str(path), str(path)
    header = _csv_header(path)
    if not header:
        raise DataValidationError([Problem("source", None, "the file is empty (no header line)")],
                                  source=str(path))
    kwargs = {}
    if engine.backend_name(con) == "duckdb":
        # named text columns stay text: ids keep leading zeros, "Yes"/"No" are not turned into
        # booleans, and unparsable values are reported as written
        kwargs["types"] = {c: "VARCHAR" for c in header if c in set(text)}
    return con, con.read_csv(str(path), table_name=name, header=True, **kwargs), str(path), str(path)


def _resolve(path: Path, file: str | None) -> Path:
    if path.is_dir():
        if file:
            target = path / file
            if not target.is_file():
                found = sorted(p.name for p in path.iterdir() if p.name.lower().endswith(_DATA_SUFFIXES))
                raise ParameterError(
                    f"{target} not found; data files in {path}: {', '.join(found) or 'none'}"
                    f"{_suggest(file, found)}"
                )
            return target
        found = sorted(p for p in path.iterdir() if p.name.lower().endswith(_DATA_SUFFIXES))
        if len(found) != 1:
            raise ParameterError(
                f"{path} holds {len(found)} data files ({', '.join(p.name for p in found) or 'none'}); "
                "name the one to read with file="
            )
        return found[0]
    if not path.is_file():
        raise ParameterError(f"{path} not found")
    return path


def _stage(con, expr: ir.Table) -> ir.Table:
    """Compute an intermediate table once, in the engine: the checks and the contract tables
    then read it instead of re-parsing the source (and Ibis compiles small queries)."""
    if engine.backend_name(con) == "duckdb":
        return con.create_table(engine.unique_name("stage"), expr, temp=True)
    return expr.cache()  # Spark has no temporary tables; Ibis's cache persists the frame


def _release(con, staged: ir.Table, data: CrossSellData) -> None:
    """Drop a staged table once the contract tables are stored (they no longer read it)."""
    stored = all(t is None or isinstance(t.op(), ops.DatabaseTable) for t in (data.customers, data.purchases))
    if not stored:
        return
    if engine.backend_name(con) == "duckdb":
        con.drop_table(staged.op().name, force=True)
    elif isinstance(staged, ir.CachedTable):
        staged.release()


def _catalog(con, frame: pd.DataFrame) -> ir.Table:
    """A small frame as a table of the engine (a bare memtable would run in the default DuckDB)."""
    table = ibis.memtable(frame)
    if engine.backend_name(con) != "duckdb":
        table = con.create_view(engine.unique_name("catalog"), table)
    return table


def _check_columns(t: ir.Table, named: list[tuple[str, str]], label: str) -> None:
    """Every column the mapping names must exist; list the columns that do."""
    found = list(t.columns)
    problems = []
    for role, column in named:
        if column is not None and column not in found:
            problems.append(Problem(
                "mapping", column,
                f"{role} names the column {column!r}, which is not in the source; columns found: "
                f"{', '.join(found)}{_suggest(str(column), found)}",
            ))
    _raise(problems, label)


def _examples(t: ir.Table, condition, column: str) -> list:
    sel = t.filter(condition).select(column).distinct().order_by(column).limit(MAX_EXAMPLES)  # stable examples
    return engine.execute(sel)[column].tolist()


def _number(c: ir.Value) -> ir.NumericValue:
    if c.type().is_numeric():
        return c.cast("float64")
    if c.type().is_boolean():
        return c.cast("int64").cast("float64")
    s = c.cast("string").strip()
    return ibis.ifelse(s == "", ibis.null("string"), s).try_cast("float64")


def _timestamp(c: ir.Value, date_format: str | None, con) -> ir.TimestampValue:
    t = c.type()
    if t.is_timestamp():
        return c
    if t.is_date():
        return c.cast("timestamp")
    s = c.cast("string").strip()
    s = ibis.ifelse(s == "", ibis.null("string"), s)
    if date_format:
        if engine.backend_name(con) == "duckdb":
            return _try_strptime(s, date_format)
        return s.as_timestamp(date_format)
    return s.try_cast("timestamp")


def _days(value) -> int | None:
    if value is None or value is False:
        return None
    if isinstance(value, bool):
        raise ParameterError("churn_after must be a duration such as '180D', or None")
    if isinstance(value, (int, float)):
        days = float(value)
    else:
        try:
            delta = pd.Timedelta(value)
        except (ValueError, TypeError) as exc:
            raise ParameterError(
                f"churn_after {value!r} is not a duration; use days or weeks, e.g. '180D', '26W' or 180"
            ) from exc
        days = delta / pd.Timedelta(days=1)
    if days <= 0 or days != int(days):
        raise ParameterError(f"churn_after must be a whole number of days above 0, not {value!r}")
    return int(days)


def _as_date(value, name: str) -> pd.Timestamp:
    try:
        out = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"{name} {value!r} is not a date") from exc
    if pd.isna(out):
        raise ParameterError(f"{name} {value!r} is not a date")
    return out.normalize()


def _yes_no(value: ir.Value, yes, no, *, missing_is_no: bool = False):
    """(holds, bad) for a yes/no cell: bad = outside the vocabulary (and empty, unless allowed)."""
    s = value.cast("string").strip().lower()
    yes_l = sorted({str(v).strip().lower() for v in yes})
    no_l = sorted({str(v).strip().lower() for v in no})
    empty = _blank(value)
    holds = s.isin(yes_l).fill_null(False) & ~empty
    known = holds | s.isin(no_l).fill_null(False)
    if missing_is_no:
        known = known | empty
    return holds, ~known


@dataclass(frozen=True)
class _Check:
    """A boolean column of a staged table that flags bad rows, and how to report them."""

    flag: str
    table: str
    column: str
    message: str = ""
    show: str | None = None  # column whose values are shown: the raw column (default), "__cid", "__line"
    vocab: tuple | None = None  # (yes values, no values, missing) for a yes/no column


def _run_checks(rows: ir.Table, checks: list[_Check], label: str) -> None:
    """Count every flag in one query; raise one error listing each problem with examples."""
    if not checks:
        return
    counts = engine.execute(
        rows.aggregate(**{f"c{i}": ibis.ifelse(rows[c.flag], 1, 0).sum() for i, c in enumerate(checks)})
    ).iloc[0].fillna(0).astype(int)
    problems = []
    for i, check in enumerate(checks):
        n = int(counts[f"c{i}"])
        if not n:
            continue
        bad = rows.filter(rows[check.flag])
        if check.vocab is not None:
            problems.append(_vocabulary_problem(bad, check, n))
        elif check.show == "__line":
            numbered = rows.mutate(__line=ibis.row_number() + 2)  # 0-based, plus the header line
            lines = engine.execute(numbered.filter(numbered[check.flag]).select("__line").limit(MAX_EXAMPLES))
            problems.append(Problem(check.table, check.column, check.message, n,
                                    tuple(f"line {r}" for r in lines["__line"])))
        else:
            problems.append(Problem(check.table, check.column, check.message, n,
                                    tuple(_examples(rows, rows[check.flag], check.show or check.column))))
    _raise(problems, label)


def _vocabulary_problem(bad: ir.Table, check: _Check, n: int) -> Problem:
    """Values outside the yes/no vocabulary, listed with their row counts."""
    yes, no, missing = check.vocab
    top = engine.execute(
        bad.group_by(value=bad[check.column].cast("string")).aggregate(rows=bad.count())
        .order_by([ibis.desc("rows"), "value"]).limit(MAX_EXAMPLES)
    )
    listed = ", ".join(
        f"{'(empty)' if pd.isna(v) or not str(v).strip() else repr(v)} ({r:,} row{'s' if r != 1 else ''})"
        for v, r in zip(top["value"], top["rows"], strict=True)
    )
    hint = "; pass missing='no' if an empty cell means 'does not have it'" if missing == "error" else ""
    hint = hint if check.table == "purchases" else ""
    where = (f"products={{{check.column!r}: {{'yes': [...], 'no': [...]}}}}" if check.table == "purchases"
             else "yes=[...] / no=[...]")
    return Problem(
        check.table, check.column,
        f"values outside the yes/no vocabulary: {listed}; 'yes' values are "
        f"{', '.join(sorted({str(v).lower() for v in yes}))}; 'no' values are "
        f"{', '.join(sorted({str(v).lower() for v in no}))}; add yours with {where}{hint}",
        n,
        tuple("(empty)" if pd.isna(v) else v for v in top["value"]),
    )


def _unique(columns) -> list[str]:
    """Column names without None and without repeats, in order."""
    return list(dict.fromkeys(c for c in columns if c))


def _product_specs(products, base) -> list[dict]:
    if isinstance(products, str) or not isinstance(products, (list, tuple, dict)) or not products:
        raise ParameterError(
            "products must name the product columns: a list, or a dict of column: product id / options"
        )
    items = products.items() if isinstance(products, dict) else [(c, None) for c in products]
    base = {str(b) for b in (base or ())}
    specs, seen = [], set()
    for column, opts in items:
        column = str(column)
        if opts is None or isinstance(opts, str):
            opts = {"product": opts}
        if not isinstance(opts, dict):
            raise ParameterError(f"products[{column!r}] must be a product id or a dict of options, not {opts!r}")
        opts = _yaml_keys(opts)
        unknown = set(opts) - {"product", "yes", "no", "base", "category"}
        if unknown:
            raise ParameterError(
                f"products[{column!r}] has unknown option(s) {sorted(unknown)}; options: product, yes, no, base, category"
            )
        pid = str(opts.get("product") or column)
        if pid in seen:
            raise ParameterError(f"product id {pid!r} is given to more than one column")
        seen.add(pid)
        specs.append({
            "column": column, "product": pid,
            "yes": tuple(opts.get("yes") or ()), "no": tuple(opts.get("no") or ()),
            "base": bool(opts.get("base", False)) or column in base or pid in base,
            "category": opts.get("category"),
        })
    unknown_base = base - {s["column"] for s in specs} - {s["product"] for s in specs}
    if unknown_base:
        raise ParameterError(f"base names {sorted(unknown_base)}, which are not among the products")
    return specs


def _yaml_keys(options: dict) -> dict:
    """YAML 1.1 reads the keys ``yes:`` and ``no:`` as booleans; give them their names back."""
    return {({True: "yes", False: "no"}[k] if isinstance(k, bool) else k): v for k, v in options.items()}


def _attribute_map(attributes) -> dict[str, str]:
    if attributes is None:
        return {}
    if isinstance(attributes, str):
        return {attributes: attributes}
    if isinstance(attributes, dict):
        return {str(k): str(v) for k, v in attributes.items()}
    return {str(a): str(a) for a in attributes}


def _attribute_columns(t: ir.Table, attributes, *, used: set, label: str) -> dict[str, str]:
    """Source column -> attribute name; default: every column the mapping does not use."""
    if attributes is None:
        out = {c: c for c in t.columns if c not in used}
    else:
        out = _attribute_map(attributes)
        _check_columns(t, [("attributes", a) for a in out], label)
    clash = [v for v in out.values() if v in RESERVED or v in ("customer_id", "signup_date", "churn_date")]
    if clash:
        raise ParameterError(
            f"attribute name(s) {clash} are reserved; rename them with attributes={{'{clash[0]}': 'new_name'}}"
        )
    return out


def _customer_exprs(t, label, *, named, customer_id, tenure, tenure_unit, signup_date, churn, churn_date,
                    churned_on, reference_date, yes, no):
    """Expressions over the wide/counts table for ``__cid``, ``__signup`` (and ``__churn``), the
    checks to run on them, the reference date and the definitions used."""
    if (tenure is None) == (signup_date is None):
        raise ParameterError("give tenure (a column of time as a customer) or signup_date (a date column), one of them")
    if churn is not None and churn_date is not None:
        raise ParameterError("give churn (a yes/no flag) or churn_date (a date column), not both")
    if churned_on is not None and churn is None:
        raise ParameterError("churned_on dates the customers flagged by churn=; it needs churn=")
    _choice("tenure_unit", tenure_unit, tuple(TENURE_UNITS))
    _check_columns(t, named + [("tenure", tenure), ("signup_date", signup_date), ("churn", churn),
                               ("churn_date", churn_date)], label)
    if reference_date is None and tenure is not None:
        raise ParameterError(
            "reference_date is required with tenure: signup dates are counted back from it "
            "(the date the export was taken)"
        )
    ref = _as_date(reference_date, "reference_date") if reference_date is not None else None
    derived = {"__cid": t[customer_id].cast("string").strip()}
    checks: list[_Check] = []
    defs: dict[str, str] = {}
    churned = None
    if churn is not None:
        vocab = ((*YES, *yes), (*NO, *no))
        left, derived["__bad_churn"] = _yes_no(t[churn], *vocab)
        checks.append(_Check("__bad_churn", "customers", churn, vocab=(*vocab, "error")))
        when = _as_date(churned_on, "churned_on") if churned_on is not None else ref
        if when is None:
            raise ParameterError("churn= needs churned_on= or reference_date= to date the churn")
        if ref is not None and when > ref:
            raise ParameterError(f"churned_on {when.date()} is after the reference date {ref.date()}")
        churned = ibis.ifelse(left, ibis.literal(when.date()), ibis.null("date"))
        derived["__churn"] = churned
        defs["churn"] = (
            f"customers flagged in {churn!r} churned on {when.date()}"
            + (" (the reference date: the flag says they left in the export's last period; the day is unknown)"
               if churned_on is None else "")
        )
    elif churn_date is not None:
        derived["__churn"] = t[churn_date]  # parsed and checked by the contract's validation
        defs["churn"] = f"churn_date from column {churn_date!r}"
    if tenure is not None:
        n = _number(t[tenure])
        derived["__bad_tenure"] = ((~_blank(t[tenure]) & n.isnull()) | (n < 0)).fill_null(False)
        derived["__no_tenure"] = _blank(t[tenure])
        checks += [
            _Check("__bad_tenure", "customers", tenure, f"tenures that are not numbers of {tenure_unit} (0 or more)"),
            _Check("__no_tenure", "customers", tenure, "missing tenures (customer ids shown)", show="__cid"),
        ]
        anchor = ibis.literal(ref.date())
        if churned is not None:
            anchor = ibis.coalesce(churned, anchor)
        derived["__signup"] = _back(anchor, n, tenure_unit)
        defs["signup"] = (
            f"signup_date = (churn date for churned customers, else the reference date {ref.date()}) "
            f"minus {tenure!r} {tenure_unit}"
        )
    else:
        parsed = _parse(t, signup_date, "date")
        derived["__signup"] = parsed
        derived["__bad_signup"] = ~_blank(t[signup_date]) & parsed.isnull()
        checks.append(_Check("__bad_signup", "customers", signup_date, "values that are not a date"))
        defs["signup"] = f"signup_date from column {signup_date!r}"
    return derived, checks, ref, defs


def _back(anchor: ir.DateValue, amount: ir.NumericValue, unit: str) -> ir.DateValue:
    """``anchor - amount unit``: calendar months/years when whole, days otherwise."""
    if unit in ("days", "weeks"):
        days = (amount * TENURE_UNITS[unit]).round().cast("int64")
        return (anchor - days.as_interval("D")).cast("date")
    months = amount * (12 if unit == "years" else 1)
    whole = (anchor - months.round().cast("int64").as_interval("M")).cast("date")
    approx = (anchor - (months * _DAYS_PER_MONTH).round().cast("int64").as_interval("D")).cast("date")
    return ibis.ifelse(months == months.floor(), whole, approx)


def _customers_select(rows: ir.Table, attrs: dict[str, str]) -> ir.Table:
    cols = {"customer_id": rows["__cid"], "signup_date": rows["__signup"]}
    if "__churn" in rows.columns:
        cols["churn_date"] = rows["__churn"]
    cols.update({new: rows[src] for src, new in attrs.items()})
    return rows.select(**cols)


def _first_line_attributes(lines: ir.Table, customers: ir.Table, attr_map: dict[str, str]):
    """Each customer's attribute values on their first line (ties: the smallest value)."""
    first = lines.group_by("__cid").aggregate(__t0=lines["__ts"].min())
    on_first = lines.join(first, [lines["__cid"] == first["__cid"], lines["__ts"] == first["__t0"]])
    vals = on_first.group_by(on_first["__cid"]).aggregate(
        **{f"__a{i}": on_first[src].min() for i, src in enumerate(attr_map)}
    )
    spread = lines.group_by("__cid").aggregate(
        **{f"__k{i}": lines[src].nunique() for i, src in enumerate(attr_map)}
    )
    multi = engine.execute(
        spread.aggregate(**{f"__k{i}": ibis.ifelse(spread[f"__k{i}"] > 1, 1, 0).sum() for i in range(len(attr_map))})
    ).iloc[0].fillna(0).astype(int)
    out = customers.left_join(vals, customers.customer_id == vals["__cid"]).select(
        *customers.columns, **{new: vals[f"__a{i}"] for i, new in enumerate(attr_map.values())}
    )
    return out, {src: int(multi[f"__k{i}"]) for i, src in enumerate(attr_map)}


def _product_names(lines: ir.Table, column: str) -> ir.Table:
    """The catalog: each product's most frequent description (ties: the smallest)."""
    named = lines.filter(~_blank(lines[column]))
    counts = named.group_by(["__pid", named[column].cast("string").strip().name("__name")]).aggregate(
        __n=named.count()
    )
    rank = ibis.row_number().over(group_by=counts["__pid"], order_by=[ibis.desc(counts["__n"]), counts["__name"]])
    best = counts.mutate(__r=rank).filter(lambda t: t["__r"] == 0)
    every = lines.select("__pid").distinct()
    return every.left_join(best, "__pid").select(product_id=every["__pid"], name=best["__name"])


def _finish(
    data: CrossSellData,
    *,
    definitions: dict,
    shape: str,
    has_product_ids: bool = True,
    rows_read: dict | None = None,
    excluded: dict | None = None,
    notes: dict | None = None,
    extra_warnings: list | None = None,
) -> CrossSellData:
    """Record the adapter's own counts and assumptions on the validated data."""
    import warnings

    from .errors import DataQualityWarning

    quality = copy.deepcopy(data.quality)
    tables = quality.setdefault("tables", {})
    for table, n in (rows_read or {}).items():
        tables.setdefault(table, {"rows_read": 0, "excluded": {}})["rows_read"] = int(n)
    for table, reasons in (excluded or {}).items():
        info = tables.setdefault(table, {"rows_read": 0, "excluded": {}})
        info["excluded"] = {**{k: int(v) for k, v in reasons.items()}, **info.get("excluded", {})}
    for table, extra in (notes or {}).items():
        tables.setdefault(table, {"rows_read": 0, "excluded": {}}).setdefault("notes", {}).update(extra)
    quality["adapter"] = shape
    for problem in extra_warnings or []:
        warnings.warn(str(problem), DataQualityWarning, stacklevel=3)
    quality["warnings"] = list(quality.get("warnings", [])) + list(extra_warnings or [])
    return replace(
        data,
        quality=quality,
        definitions={**data.definitions, **definitions},
        has_product_ids=has_product_ids,
    )
