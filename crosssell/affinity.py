"""Product affinity and next best product: what goes together, in what order, and what to offer.

Five questions, one definition of *ownership* underneath:

* :func:`affinity` — which products go together: for every pair, the customers who own both,
  support, confidence both ways, lift (with an exact test and an interval), leverage and
  conviction, corrected for the number of pairs looked at;
* :func:`acquisition_order` — which product customers buy first, what they buy second, how long
  the second takes (a survival estimate: many never buy one) and the typical adoption path;
* :func:`next_best_product` — for each customer, the products they do not own that customers
  like them own most often, with the reason in words;
* :func:`evaluate_recommendations` — whether those suggestions beat "offer the most popular
  product": each multi-product customer's last acquisition is hidden and predicted;
* :func:`whitespace` — product penetration per segment beside the best segment's: where the
  untapped cross-sell is.

Ownership is the numerator of :func:`crosssell.cross_sell_ratio` with ``period=None``:
``basis="held"`` is what a customer holds at the reference date (subscriptions not cancelled,
relationship not churned, net of returns); ``basis="sold"`` (alias ``"ever"``) is everything a
customer ever bought, net of returns.  Base products (catalog ``is_base``) never count.  The
customers are the population of the same definition (``customers="active"`` by default).

How the counting scales: the engine returns only the distinct (customer, product) ownership
pairs of products that reach the support threshold (pruned in the engine, before any pair is
formed).  Those become a sparse 0/1 customer × product matrix ``X`` and ``Xᵀ·X`` gives every pair
count at once; only pairs that occur are ever materialised, so thousands of products stay fast.
Lift is exact: ``n_ab·N`` and ``n_a·n_b`` are formed in 64-bit integers and divided once
(:func:`crosssell.stats.lift_test`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import ibis
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import scipy.sparse as sp
from scipy import stats as sps

from . import engine
from .data import MISSING, CrossSellData
from .errors import CapabilityError, EmptyResultWarning, ParameterError, SmallSampleWarning
from .metrics import (
    Definition,
    _as_list,
    _counted,
    _exclusions,
    _numerator_rows,
    _periods_table,
    _population,
    _split_by,
    penetration,
    periods,
)
from .stats import difference_interval, lift_test, mean_interval, wilson_interval, z_value

__all__ = [
    "affinity",
    "acquisition_order",
    "next_best_product",
    "evaluate_recommendations",
    "whitespace",
    "AcquisitionOrder",
]

BASES = {"held": "held", "sold": "sold", "ever": "sold"}
ADJUSTMENTS = ("fdr_bh", "holm", "bonferroni")
_NONE_YET = "(none yet)"


# --------------------------------------------------------------------------------------------
# argument checks


def _basis(basis) -> str:
    if basis not in BASES:
        raise ParameterError(
            f"basis must be 'held' (held at the reference date) or 'sold'/'ever' (ever bought, "
            f"net of returns), not {basis!r}"
        )
    return BASES[basis]


def _fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ParameterError(f"{name} must be a number in (0, 1], not {value!r}")
    value = float(value)
    if not 0.0 < value <= 1.0:  # also rejects NaN
        raise ParameterError(f"{name} must lie in (0, 1] (a share of customers), not {value!r}")
    return value


def _positive_int(name: str, value, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ParameterError(f"{name} must be a whole number of at least {minimum}, not {value!r}")
    if value < minimum:
        raise ParameterError(f"{name} must be at least {minimum}, not {value!r}")
    return int(value)


def _needs_products(data: CrossSellData, what: str) -> None:
    if not data.has_product_ids:
        raise CapabilityError(
            f"{what} needs product identities, and this data only has a product count per customer"
        )


def _customer_by(data: CrossSellData, by, what: str) -> list[str]:
    cust_by, prod_by = _split_by(data, by)
    if prod_by:
        raise ParameterError(
            f"{what} groups by customer attributes only; {prod_by[0]!r} is a catalog column "
            f"(customer attributes: {', '.join(data.attributes) or 'none'})"
        )
    return cust_by


def _min_count(share: float, n: int) -> int:
    """The smallest whole count c with ``c / n >= share`` (computed as Apriori compares it)."""
    if n <= 0:
        return 1
    c = max(1, math.ceil(share * n))
    while c > 1 and (c - 1) / n >= share:
        c -= 1
    while c / n < share:
        c += 1
    return c


def _empty(frame: pd.DataFrame, reason: str, **attrs) -> pd.DataFrame:
    warnings.warn(reason, EmptyResultWarning, stacklevel=3)
    frame.attrs.update(attrs)
    frame.attrs["reason"] = reason
    return frame


# --------------------------------------------------------------------------------------------
# ownership: the engine returns pruned (customer, product) pairs; numpy/scipy does the algebra


@dataclass
class _Ownership:
    """A 0/1 customer × product matrix with the segment of each row.

    ``X`` rows are customers (the whole population when built with ``population=True``,
    otherwise only the customers who own a counted product); columns are ``products``.
    """

    X: sp.csr_matrix
    products: list[str]
    row_segment: np.ndarray  # segment code of each row
    segments: pd.DataFrame  # one row per segment code: by-columns, customers (N), min_count
    by: list[str]
    definition: Definition
    customer_ids: np.ndarray | None = None  # population mode only
    acquired: sp.csr_matrix | None = None  # acquisition time (seconds), same sparsity as X


def _segment_expr(table, cols):
    """Segment columns as text with a visible label for missing values (join keys stay total)."""
    return {c: table[c].cast("string").fill_null(MISSING) for c in cols}


def _ownership(
    data: CrossSellData,
    *,
    basis: str,
    customers: str,
    exclude,
    by: list[str],
    min_support: float | None,
    population: bool = False,
    acquired: bool = False,
) -> _Ownership:
    """Who owns what, from the engine: the ratio's numerator rows over all time, as a matrix.

    The engine returns one row per distinct (customer, product) pair of the population, after
    dropping, per segment, the products owned by fewer than ``min_support`` of the customers
    (a window count, so nothing but the kept pairs leaves the engine).  ``population=True`` also
    returns every customer of the population (rows of ``X``, sorted by id), including those who
    own nothing; ``acquired=True`` adds each pair's first positive purchase time.
    """
    defn = Definition(basis, "distinct", customers, None, _exclusions(data, exclude))
    frame = periods(data, None)
    ptab = _periods_table(frame)
    rows = _numerator_rows(data, defn, ptab, True, [])
    pop = _population(data, defn, ptab, by)
    pop = pop.select("customer_id", **_segment_expr(pop, by))

    # 1. the population per segment (compact) and each segment's support threshold
    if by:
        sizes = engine.execute(pop.group_by(by).aggregate(customers=pop.count()))
        sizes = sizes.sort_values(by, kind="stable").reset_index(drop=True)
    else:
        sizes = engine.execute(pop.aggregate(customers=pop.count()))
    sizes["customers"] = sizes["customers"].astype("int64")
    sizes["min_count"] = [
        _min_count(min_support, n) if min_support is not None else 1 for n in sizes["customers"]
    ]
    sizes["__g"] = np.arange(len(sizes), dtype="int64")

    # 2. distinct ownership pairs of the population, pruned by product support in the engine
    owned = rows.semi_join(pop, "customer_id").select("customer_id", "product_id")
    if by:
        seg = ibis.memtable(sizes[[*by, "__g", "min_count"]].rename(columns={"min_count": "__min"}))
        owned = owned.join(pop, "customer_id").join(seg, by)
        owned = owned.select("customer_id", "product_id", "__g", "__min")
    else:
        owned = owned.mutate(
            __g=ibis.literal(0, "int64"), __min=ibis.literal(int(sizes["min_count"].iloc[0]), "int64")
        )
    window = ibis.window(group_by=["__g", "product_id"])
    owned = owned.mutate(__n=owned.customer_id.count().over(window))
    owned = owned.filter(owned["__n"] >= owned["__min"])
    cols = ["customer_id", "product_id", "__g"]
    if acquired:
        p = _counted(data, defn.exclude)
        first = p.group_by(["customer_id", "product_id"]).aggregate(
            __at=p.purchased_at.min(where=p.quantity > 0)
        )
        owned = owned.left_join(first, ["customer_id", "product_id"]).select(
            *cols, __at=first["__at"].epoch_seconds()
        )
        cols.append("__at")
    pairs = owned.select(*cols).to_pyarrow()

    # 3. integer codes: products sorted by id, customers in population or first-seen order
    prod = pc.dictionary_encode(pairs["product_id"].combine_chunks())
    names = np.asarray(prod.dictionary.to_pylist(), dtype=object)
    order = np.argsort(names.astype(str), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    pcode = rank[prod.indices.to_numpy(zero_copy_only=False)]
    products = [str(x) for x in names[order]]
    seg_of_pair = pairs["__g"].to_numpy()

    ids = None
    if population:
        # sorted, so that rows (and the seeded tie-breaks that follow them) do not depend on
        # the order a parallel engine happens to return
        popt = pop.select("customer_id", *by).order_by("customer_id").to_pyarrow()
        ids = popt["customer_id"].to_numpy(zero_copy_only=False)
        if by:
            keyed = popt.select(by).to_pandas().merge(sizes[[*by, "__g"]], on=by, how="left")
            row_segment = keyed["__g"].to_numpy(dtype="int64")
        else:
            row_segment = np.zeros(len(ids), dtype="int64")
        # hash lookup in Arrow: a million string ids in a fraction of a second
        ccode = pc.index_in(pairs["customer_id"], value_set=popt["customer_id"].combine_chunks())
        if ccode.null_count:  # the pairs were semi-joined with the population: cannot happen
            raise RuntimeError("ownership pairs of customers outside the population; please report this")
        ccode = ccode.to_numpy(zero_copy_only=False).astype(np.int64)
        n_rows = len(ids)
    else:
        cust = pc.dictionary_encode(pairs["customer_id"].combine_chunks())
        ccode = cust.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        n_rows = len(cust.dictionary)
        row_segment = np.zeros(n_rows, dtype="int64")
        row_segment[ccode] = seg_of_pair
    ones = np.ones(len(ccode), dtype=np.int64)
    X = sp.csr_matrix((ones, (ccode, pcode)), shape=(n_rows, len(products)))
    X.sum_duplicates()
    if X.nnz != len(ccode):  # the engine groups by (customer, product): a duplicate is a bug
        raise RuntimeError("ownership pairs are not distinct; please report this")
    when = None
    if acquired:
        at = pairs["__at"].to_numpy(zero_copy_only=False)
        at = np.where(pd.isna(at), np.nan, at).astype("float64")
        when = sp.csr_matrix((at, (ccode, pcode)), shape=X.shape)
        when.sum_duplicates()  # canonical order: entry for entry aligned with X
        if not (np.array_equal(when.indptr, X.indptr) and np.array_equal(when.indices, X.indices)):
            raise RuntimeError("acquisition times are not aligned with ownership; please report this")
    return _Ownership(
        X=X,
        products=products,
        row_segment=row_segment,
        segments=sizes.drop(columns="__g"),
        by=by,
        definition=defn,
        customer_ids=ids,
        acquired=when,
    )


def _definition_attrs(data, own: _Ownership, **extra) -> dict:
    d = own.definition.as_dict(data)
    d["basis"] = own.definition.basis
    what = "held at the reference date" if own.definition.basis == "held" else "ever bought"
    d["ownership"] = (
        f"a customer owns a product when it is {what} (net of returns); base products "
        f"{', '.join(d['base_products']) or '(none)'} and excluded products do not count"
    )
    d["population"] = own.definition.denominator_text.replace("the period's end", "the reference date")
    d.update(extra)
    return d


# --------------------------------------------------------------------------------------------
# multiple comparisons with untested hypotheses


def _adjust_among(p: np.ndarray, m: int, method: str) -> np.ndarray:
    """Adjusted p-values when ``p`` are the reported tests among ``m`` candidate hypotheses.

    The ``m - len(p)`` candidate pairs not reported (they fell below the pair support) are
    counted as tests with p = 1: a p-value of 1 is always valid, so the correction stays valid
    even though which pairs get reported depends on the data.  Equals
    ``statsmodels.stats.multitest.multipletests`` on ``p`` padded with ones, without building
    the padding (``m`` can be millions of pairs).
    """
    p = np.asarray(p, dtype=float)
    r = p.size
    if r == 0:
        return p.copy()
    m = max(int(m), r)
    order = np.argsort(p, kind="stable")
    ps = p[order]
    i = np.arange(1, r + 1, dtype=float)
    if method == "bonferroni":
        adj = np.minimum(1.0, ps * m)
    elif method == "holm":
        adj = np.minimum(1.0, np.maximum.accumulate((m - i + 1) * ps))
    elif method == "fdr_bh":
        adj = np.minimum(1.0, np.minimum.accumulate((ps * m / i)[::-1])[::-1])
    else:
        raise ParameterError(f"adjust must be one of {', '.join(map(repr, ADJUSTMENTS))}, not {method!r}")
    out = np.empty(r)
    out[order] = adj
    return out


# --------------------------------------------------------------------------------------------
# 1. co-ownership and rules


def _pair_counts(X: sp.csr_matrix, n: int, threshold: int) -> tuple[pd.DataFrame, int]:
    """Customers per product and per pair from a 0/1 customer × product matrix.

    Products owned by fewer than ``threshold`` customers are dropped before pairing; ``Xᵀ·X``
    (sparse) then counts every pair at once, and pairs below ``threshold`` are dropped.  ``n`` is
    the population (customers owning nothing are not rows of ``X`` but count in ``n``).

    Returns the pair counts (``__a`` < ``__b`` column indices of ``X``, ``customers``,
    ``customers_a``, ``customers_b``, ``customers_both``) and how many products were kept.
    """
    n_a = np.asarray(X.sum(axis=0)).ravel().astype(np.int64)
    keep = np.flatnonzero(n_a >= threshold)
    cols = ["__a", "__b", "customers", "customers_a", "customers_b", "customers_both"]
    if len(keep) < 2:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in cols}), len(keep)
    Xk = X[:, keep].astype(np.int64)
    co = sp.triu(Xk.T @ Xk, k=1).tocoo()
    ok = co.data >= threshold
    ia, ib = keep[co.row[ok]], keep[co.col[ok]]
    out = pd.DataFrame({"__a": ia, "__b": ib, "customers": np.full(len(ia), n, dtype=np.int64),
                        "customers_a": n_a[ia], "customers_b": n_a[ib],
                        "customers_both": co.data[ok].astype(np.int64)})
    return out, len(keep)


def _rule_metrics(res: pd.DataFrame, *, candidates: int, ci: float, adjust: str, alpha: float) -> pd.DataFrame:
    """Support, confidence, lift (+ interval and test), leverage, conviction from pair counts."""
    res = res.copy()
    N = res["customers"].to_numpy(np.int64)
    a = res["customers_a"].to_numpy(np.int64)
    b = res["customers_b"].to_numpy(np.int64)
    ab = res["customers_both"].to_numpy(np.int64)
    res["support_a"] = a / N
    res["support_b"] = b / N
    res["support"] = ab / N
    res["confidence_a_to_b"] = ab / a
    res["confidence_b_to_a"] = ab / b
    test = lift_test(ab, a, b, N, ci=ci)
    res["lift"] = test["estimate"]
    res["lift_low"] = test["low"]
    res["lift_high"] = test["high"]
    # leverage = (n_ab·N − n_a·n_b) / N²: integers first, one division last
    res["leverage"] = (ab * N - a * b) / (N.astype(float) ** 2)
    # conviction a→b = (1 − s_b) / (1 − conf_ab) = n_a·(N − n_b) / (N·(n_a − n_ab)); ∞ if n_ab = n_a
    res["conviction_a_to_b"] = np.where(a > ab, (a * (N - b)) / np.maximum(N * (a - ab), 1), np.inf)
    res["conviction_b_to_a"] = np.where(b > ab, (b * (N - a)) / np.maximum(N * (b - ab), 1), np.inf)
    res["p_value"] = test["p_value"]
    res["p_adjusted"] = _adjust_among(res["p_value"].to_numpy(), candidates, adjust)
    res["significant"] = res["p_adjusted"] < alpha
    return res


def _catalog_names(data: CrossSellData) -> pd.DataFrame | None:
    if data.products is None or "name" not in data.products.columns:
        return None
    cat = engine.execute(data.products.select("product_id", "name"))
    return cat.assign(product_id=cat["product_id"].astype(str)).drop_duplicates("product_id")


def affinity(
    data: CrossSellData,
    *,
    min_support: float = 0.01,
    basis: str = "held",
    by=None,
    customers: str = "active",
    exclude=None,
    ci: float = 0.95,
    alpha: float = 0.05,
    adjust: str = "fdr_bh",
) -> pd.DataFrame:
    """Which products go together: co-ownership, support, confidence, lift and its significance.

    For every pair of products that both reach ``min_support`` and are owned together by at
    least ``min_support`` of the customers (the Apriori rule: these are exactly the two-item
    rules of ``mlxtend``'s ``apriori`` + ``association_rules``), with
    ``N`` customers, ``n_a``/``n_b`` owning each product and ``n_ab`` owning both:

    * ``support = n_ab / N``; ``confidence_a_to_b = n_ab / n_a`` ("of the owners of A, the share
      who also own B") and ``confidence_b_to_a = n_ab / n_b``;
    * ``lift = n_ab·N / (n_a·n_b)`` (1 = independent), exact in 64-bit integers, with a 95 %
      interval (delta method on the log scale) and a one-sided hypergeometric p-value (Fisher's
      exact test that the pair is owned together more often than by chance);
    * ``leverage = support − support_a·support_b``; ``conviction_a_to_b =
      (1 − support_b) / (1 − confidence_a_to_b)`` (∞ when every owner of A owns B);
    * ``p_adjusted``: corrected over every candidate pair among the products kept (pairs not
      reported count as tests with p = 1), so ``significant`` (``p_adjusted < alpha``) does not
      depend on the support filter.

    Parameters
    ----------
    data : CrossSellData
        From :func:`crosssell.load` or :func:`crosssell.from_frames`.
    min_support : float in (0, 1], default 0.01
        Smallest share of customers who must own a product, and a pair, for it to be reported.
        Products below it are dropped in the engine before any pair is formed.
    basis : {"held", "sold", "ever"}
        Ownership: held at the reference date, or ever bought (``"ever"`` = ``"sold"``), net of
        returns.
    by : str or list of str, optional
        Customer attributes: the analysis is run within each segment (its own ``N`` and
        threshold).
    customers : {"active", "all", "buyers"}
        The population ``N`` counts (see :func:`crosssell.cross_sell_ratio`).
    exclude : str or list of str, optional
        Products that do not count (catalog ``is_base`` products never count).
    ci : float, default 0.95
        Confidence level of the lift interval.
    alpha : float, default 0.05
        Level below which an adjusted p-value is ``significant``.
    adjust : {"fdr_bh", "holm", "bonferroni"}
        Multiple-comparison correction (Benjamini–Hochberg by default).

    Returns
    -------
    DataFrame
        One row per pair (``product_a`` < ``product_b``), sorted by lift: the ``by`` columns,
        ``product_a``, ``product_b`` (and ``name_a``/``name_b`` when the catalog has names),
        ``customers`` (N), ``customers_a``, ``customers_b``, ``customers_both``, ``support_a``,
        ``support_b``, ``support``, ``confidence_a_to_b``, ``confidence_b_to_a``, ``lift``,
        ``lift_low``, ``lift_high``, ``leverage``, ``conviction_a_to_b``, ``conviction_b_to_a``,
        ``p_value``, ``p_adjusted``, ``significant``.  ``attrs`` holds the definition, the
        products kept and pruned, and the number of candidate pairs the correction used.  With
        fewer than two products above the threshold the frame is empty, ``attrs["reason"]``
        says why and an :class:`~crosssell.errors.EmptyResultWarning` is issued.

    Examples
    --------
    >>> import crosssell as cs
    >>> pairs = cs.affinity(cs.load(cs.sample_path()))
    >>> pairs[["product_a", "product_b"]].head(2).values.tolist()  # the two planted pairs
    [['API_PLUS', 'WEBHOOKS'], ['AUDIT_LOG', 'SSO']]
    """
    _needs_products(data, "affinity")
    min_support = _fraction("min_support", min_support)
    alpha = _fraction("alpha", alpha)
    z_value(ci)  # validates ci
    if adjust not in ADJUSTMENTS:
        raise ParameterError(f"adjust must be one of {', '.join(map(repr, ADJUSTMENTS))}, not {adjust!r}")
    basis = _basis(basis)
    by = _customer_by(data, by, "affinity")
    own = _ownership(data, basis=basis, customers=customers, exclude=exclude, by=by, min_support=min_support)

    parts, kept_by_segment, candidates = [], {}, 0
    for g, seg in own.segments.iterrows():
        counts, kept = _pair_counts(own.X[own.row_segment == g], int(seg["customers"]), int(seg["min_count"]))
        kept_by_segment[g] = kept
        candidates += kept * (kept - 1) // 2
        parts.append(counts.assign(__g=g))

    columns = [*by, "product_a", "product_b", "customers", "customers_a", "customers_b",
               "customers_both", "support_a", "support_b", "support", "confidence_a_to_b",
               "confidence_b_to_a", "lift", "lift_low", "lift_high", "leverage",
               "conviction_a_to_b", "conviction_b_to_a", "p_value", "p_adjusted", "significant"]
    seg_kept = own.segments.assign(products_kept=[kept_by_segment.get(g, 0) for g in range(len(own.segments))])
    attrs = {
        "definition": _definition_attrs(
            data, own, min_support=min_support, by=by, alpha=alpha, adjust=adjust, ci=ci,
            lift="n_ab·N / (n_a·n_b), exact in 64-bit integers",
            test="one-sided hypergeometric (Fisher's exact) test of over-representation",
            interval="delta method on log(lift)",
            correction=f"{adjust} over every candidate pair of the products kept "
                       "(pairs below min_support count as p = 1)",
        ),
        "excluded": data.excluded(),
        "segments": seg_kept.drop(columns="min_count").to_dict("records"),
        "min_count": int(seg_kept["min_count"].min()) if len(seg_kept) else None,
        "products_kept": int(seg_kept["products_kept"].max()) if len(seg_kept) else 0,
        "candidate_pairs": int(candidates),
        "by": by,
    }
    if sum(len(p) for p in parts) == 0:
        if max(kept_by_segment.values(), default=0) < 2:
            reason = (
                f"fewer than two products are owned by at least min_support={min_support:g} of the "
                f"customers ({max(kept_by_segment.values(), default=0)} product(s) reach it); "
                "lower min_support"
            )
        else:
            reason = (
                f"no pair of products is owned together by at least min_support={min_support:g} "
                "of the customers; lower min_support"
            )
        return _empty(pd.DataFrame(columns=columns), reason, **attrs)

    res = _rule_metrics(pd.concat(parts, ignore_index=True), candidates=candidates, ci=ci, adjust=adjust,
                        alpha=alpha)
    products = np.asarray(own.products, dtype=object)
    res["product_a"] = products[res["__a"].to_numpy()]
    res["product_b"] = products[res["__b"].to_numpy()]
    if by:
        segs = own.segments[by].reset_index(drop=True)
        res = pd.concat([segs.iloc[res["__g"].to_numpy()].reset_index(drop=True), res], axis=1)
    res = res.sort_values(
        [*by, "lift", "customers_both", "product_a", "product_b"],
        ascending=[True] * len(by) + [False, False, True, True], kind="stable",
    )
    res = res[columns].reset_index(drop=True)
    names = _catalog_names(data)
    if names is not None:
        lookup = dict(zip(names["product_id"], names["name"], strict=True))
        res.insert(len(by) + 2, "name_a", res["product_a"].map(lookup))
        res.insert(len(by) + 3, "name_b", res["product_b"].map(lookup))
    res.attrs.update(attrs)
    return res


# --------------------------------------------------------------------------------------------
# 2. acquisition order


@dataclass
class AcquisitionOrder:
    """The order in which customers acquire products (from :func:`acquisition_order`).

    Attributes
    ----------
    first : DataFrame
        ``product_id``, ``customers`` (whose first acquisition included it), ``weighted``
        (ties split evenly: products first bought at the same moment share the customer),
        ``share`` (``weighted`` over all customers with a counted product; sums to 1).
    transitions : DataFrame
        ``first_product``, ``second_product`` (``"(none yet)"`` for customers with no second
        product), ``customers`` (weighted), ``share_of_first`` (over the first product's
        customers), ``share`` (over all customers), ``median_days`` (observed, among those who
        made that transition).
    time_to_second : DataFrame
        Kaplan–Meier estimate of the days from the first acquisition to the second, censored at
        churn or the reference date: ``first_product`` (``"(any)"`` for everyone), ``customers``,
        ``second_seen`` (events), ``median_days``, ``median_low``, ``median_high``,
        ``second_within_90d``, ``second_within_365d`` (1 − S(t)).
    paths : DataFrame
        ``path`` (the first ``steps`` acquisitions, "A → B → C"; ties joined by " + "),
        ``steps``, ``customers``, ``share``.
    typical_path : DataFrame
        The modal chain: ``step``, ``product_id``, ``customers`` (following the chain this
        far, weighted), ``share_of_previous`` (of those at the previous step).
    customers : int
        Customers with at least one counted product.
    """

    first: pd.DataFrame
    transitions: pd.DataFrame
    time_to_second: pd.DataFrame
    paths: pd.DataFrame
    typical_path: pd.DataFrame
    customers: int
    definition: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        chain = " → ".join(self.typical_path["product_id"].astype(str)) if len(self.typical_path) else "none"
        med = self.time_to_second
        med = med.loc[med["first_product"] == "(any)", "median_days"]
        days = f"{med.iloc[0]:.0f} days" if len(med) and pd.notna(med.iloc[0]) else "not reached"
        return (
            f"<AcquisitionOrder {self.customers:,} customers; typical path: {chain}; "
            f"median time to a second product: {days}>"
        )


def _step_label(products: list[str], limit: int = 3) -> str:
    products = sorted(products)
    if len(products) <= limit:
        return " + ".join(products)
    return " + ".join(products[:limit]) + f" + {len(products) - limit} more"


def _km(duration: np.ndarray, event: np.ndarray, ci: float) -> dict:
    from statsmodels.duration.survfunc import SurvfuncRight

    out = {"customers": int(len(duration)), "second_seen": int(event.sum()), "median_days": np.nan,
           "median_low": np.nan, "median_high": np.nan, "second_within_90d": np.nan,
           "second_within_365d": np.nan}
    if len(duration) == 0:
        return out
    if event.sum() == 0:
        out["second_within_90d"] = out["second_within_365d"] = 0.0
        return out
    sf = SurvfuncRight(duration, event)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out["median_days"] = float(sf.quantile(0.5))
        low, high = sf.quantile_ci(0.5, alpha=1 - ci)
    out["median_low"], out["median_high"] = float(low), float(high)
    times, surv = sf.surv_times, sf.surv_prob
    for horizon, key in ((90, "second_within_90d"), (365, "second_within_365d")):
        j = np.searchsorted(times, horizon, side="right") - 1
        out[key] = float(1.0 - (surv[j] if j >= 0 else 1.0))
    return out


def acquisition_order(
    data: CrossSellData,
    *,
    steps: int = 3,
    exclude=None,
    min_customers: int = 30,
    ci: float = 0.95,
) -> AcquisitionOrder:
    """Which product customers buy first, what comes second, how long it takes, the usual path.

    A customer acquires a product at its first sale, counting only products the customer kept
    (net quantity positive: fully returned products were never acquired).  Base products and
    ``exclude`` do not count.  Products first bought at the same moment (one invoice) form one
    step; a customer weighs 1 in every share, split evenly between tied products.

    Parameters
    ----------
    data : CrossSellData
    steps : int, default 3
        How many acquisition steps the ``paths`` follow.
    exclude : str or list of str, optional
        Products that do not count.
    min_customers : int, default 30
        First products with fewer customers get no row of their own in ``time_to_second``.
    ci : float, default 0.95
        Confidence level of the median's interval.

    Returns
    -------
    AcquisitionOrder
        Frames ``first``, ``transitions``, ``time_to_second``, ``paths``, ``typical_path``.

    Notes
    -----
    The time to a second product is a Kaplan–Meier estimate: customers who have not bought a
    second product are censored at their churn date or the reference date, so the median is not
    biased towards quick buyers the way "median among those who bought a second" would be.

    Examples
    --------
    >>> import crosssell as cs
    >>> order = cs.acquisition_order(cs.load(cs.sample_path()))
    >>> order.typical_path["product_id"].iloc[0]  # the planted entry add-on
    'EXTRA_STORAGE'
    """
    _needs_products(data, "acquisition_order")
    steps = _positive_int("steps", steps)
    min_customers = _positive_int("min_customers", min_customers)
    z_value(ci)
    excl = _exclusions(data, exclude)
    p = _counted(data, excl)
    net = p.group_by(["customer_id", "product_id"]).aggregate(
        __net=p.quantity.sum(), __at=p.purchased_at.min(where=p.quantity > 0)
    )
    net = net.filter((net["__net"] > 0) & net["__at"].notnull())
    net = net.mutate(__step=ibis.dense_rank().over(group_by="customer_id", order_by="__at") + 1)
    net = net.filter(net["__step"] <= max(steps, 2))
    c = data.customers.select("customer_id", "churn_date")
    rows = engine.execute(
        net.join(c, "customer_id").select("customer_id", "product_id", "__at", "__step", "churn_date")
    )
    defn = {
        "acquisition": "first sale of a product the customer kept (net quantity > 0); base products "
                       f"{', '.join(data.base_products()) or '(none)'} and excluded products "
                       f"{', '.join(excl) or '(none)'} do not count",
        "ties": "products first bought at the same moment form one step; a customer weighs 1, "
                "split evenly between tied products",
        "time_to_second": "Kaplan–Meier, days from the first acquisition to the next, censored at "
                          "churn or the reference date",
        "reference_date": str(data.reference_date.date()),
        "steps": steps,
    }
    empty = AcquisitionOrder(
        first=pd.DataFrame(columns=["product_id", "customers", "weighted", "share"]),
        transitions=pd.DataFrame(columns=["first_product", "second_product", "customers",
                                          "share_of_first", "share", "median_days"]),
        time_to_second=pd.DataFrame(columns=["first_product", "customers", "second_seen", "median_days",
                                             "median_low", "median_high", "second_within_90d",
                                             "second_within_365d"]),
        paths=pd.DataFrame(columns=["path", "steps", "customers", "share"]),
        typical_path=pd.DataFrame(columns=["step", "product_id", "customers", "share_of_previous"]),
        customers=0,
        definition=defn,
    )
    if rows.empty:
        reason = "no customer has kept a counted product (all purchases are base products, excluded or returned)"
        warnings.warn(reason, EmptyResultWarning, stacklevel=2)
        empty.definition["reason"] = reason
        return empty

    # integer codes from here on: Online Retail has ~400k (customer, step, product) rows
    ccode, cust_ids = pd.factorize(rows["customer_id"], sort=True)
    pcode, prod_ids = pd.factorize(rows["product_id"].astype(str), sort=True)
    prod_ids = np.asarray(prod_ids, dtype=object)
    step = rows["__step"].to_numpy(dtype=np.int64)
    at = rows["__at"].to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9  # seconds
    n_cust = len(cust_ids)
    n_prod = len(prod_ids)
    top_step = max(steps, 2)
    slot = ccode * (top_step + 1) + step  # one (customer, step)
    ties = np.bincount(slot)[slot]
    w = 1.0 / ties

    # first products
    m1 = step == 1
    first = pd.DataFrame({
        "product_id": prod_ids,
        "customers": np.bincount(pcode[m1], minlength=n_prod),
        "weighted": np.bincount(pcode[m1], weights=w[m1], minlength=n_prod),
    })
    first = first[first["customers"] > 0]
    first["share"] = first["weighted"] / n_cust
    first = first.sort_values(["weighted", "product_id"], ascending=[False, True], kind="stable")
    first = first.reset_index(drop=True)

    # first → second
    m2 = step == 2
    t1 = np.full(n_cust, np.nan)
    t1[ccode[m1]] = at[m1]
    t2 = np.full(n_cust, np.nan)
    t2[ccode[m2]] = at[m2]
    s1 = pd.DataFrame({"c": ccode[m1], "p1": pcode[m1], "w1": w[m1]})
    s2 = pd.DataFrame({"c": ccode[m2], "p2": pcode[m2], "w2": w[m2]})
    pair = s1.merge(s2, on="c", how="left")
    pair["p2"] = pair["p2"].fillna(-1).astype(np.int64)
    pair["w"] = pair["w1"] * pair["w2"].fillna(1.0)
    pair["days"] = (t2[pair["c"]] - t1[pair["c"]]) / 86400
    trans = pair.groupby(["p1", "p2"]).agg(customers=("w", "sum"), median_days=("days", "median")).reset_index()
    names = np.append(prod_ids, _NONE_YET)  # code -1 picks the last entry
    trans.insert(0, "first_product", prod_ids[trans["p1"].to_numpy()])
    trans.insert(1, "second_product", names[trans["p2"].to_numpy()])
    base = trans.groupby("p1")["customers"].transform("sum")
    trans["share_of_first"] = trans["customers"] / base
    trans["share"] = trans["customers"] / n_cust
    trans = trans[["first_product", "second_product", "customers", "share_of_first", "share", "median_days"]]
    trans = trans.sort_values(["customers", "first_product", "second_product"],
                              ascending=[False, True, True], kind="stable").reset_index(drop=True)

    # time to the second acquisition (Kaplan–Meier, censored at churn or the reference date)
    churn = np.full(n_cust, np.nan)
    has_churn = m1 & rows["churn_date"].notna().to_numpy()
    churn[ccode[has_churn]] = rows["churn_date"].to_numpy(dtype="datetime64[ns]")[has_churn].astype(np.int64) / 1e9
    end = (data.reference_date + pd.Timedelta(days=1)).value / 1e9
    stop = np.where(np.isnan(churn), end, churn)
    event = ~np.isnan(t2)
    duration = np.maximum(np.where(event, t2, stop) - t1, 0.0) / 86400
    km = [{"first_product": "(any)", **_km(duration, event.astype(int), ci)}]
    groups = pd.Series(ccode[m1]).groupby(pcode[m1]).indices
    code_of = {p: i for i, p in enumerate(prod_ids)}
    for prod in first.loc[first["customers"] >= min_customers, "product_id"]:
        idx = ccode[m1][groups[code_of[prod]]]
        km.append({"first_product": prod, **_km(duration[idx], event[idx].astype(int), ci)})
    tts = pd.DataFrame(km)

    # paths over the first `steps` steps; tied products of one step get one joint label
    head = step <= steps
    labels = list(prod_ids)
    lab = pcode.copy()
    tied = head & (ties > 1)
    if tied.any():
        t = pd.DataFrame({"slot": slot[tied], "p": pcode[tied]})
        joint = t.groupby("slot")["p"].agg(lambda x: _step_label([prod_ids[i] for i in x]))
        jcode, juniq = pd.factorize(joint, sort=True)
        labels += list(juniq)
        lab[tied] = pd.Series(jcode + n_prod, index=joint.index).reindex(slot[tied]).to_numpy()
    grid = np.full((n_cust, steps), -1, dtype=np.int64)
    grid[ccode[head], step[head] - 1] = lab[head]  # tied rows all write the same joint label
    uniq, count = np.unique(grid, axis=0, return_counts=True)
    labels = np.asarray(labels, dtype=object)
    path = [" → ".join(labels[r[r >= 0]]) for r in uniq]
    paths = pd.DataFrame({"path": path, "steps": (uniq >= 0).sum(axis=1).astype("int64"), "customers": count})
    paths["share"] = paths["customers"] / n_cust
    paths = paths.sort_values(["customers", "path"], ascending=[False, True], kind="stable").reset_index(drop=True)

    # the typical path: the modal product at each step among customers who followed the chain
    chain, follow, prev_total = [], np.ones(n_cust), float(n_cust)
    for j in range(1, steps + 1):
        mj = (step == j) & (follow[ccode] > 0)
        if not mj.any():
            break
        tally = np.bincount(pcode[mj], weights=w[mj] * follow[ccode[mj]], minlength=n_prod)
        best = int(np.argmax(tally))  # ties: the first product id in sort order
        chain.append({"step": j, "product_id": prod_ids[best], "customers": float(tally[best]),
                      "share_of_previous": float(tally[best] / prev_total)})
        nxt = np.zeros(n_cust)
        hit = mj & (pcode == best)
        nxt[ccode[hit]] = w[hit] * follow[ccode[hit]]
        follow, prev_total = nxt, float(tally[best])
    typical = pd.DataFrame(chain, columns=["step", "product_id", "customers", "share_of_previous"])

    for frame in (first, trans, tts, paths, typical):
        frame.attrs["definition"] = defn
        frame.attrs["excluded"] = data.excluded()
    return AcquisitionOrder(first=first, transitions=trans, time_to_second=tts, paths=paths,
                            typical_path=typical, customers=int(n_cust), definition=defn)


# --------------------------------------------------------------------------------------------
# 3. next best product: conditional ownership among customers who hold what the customer holds


def _patterns(X: sp.csr_matrix, seg: np.ndarray):
    """Group rows by (segment, holdings): returns (inverse per row, representative rows, counts)."""
    n, k = X.shape
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    if k <= 62:
        # the holdings as a bitmask: exact in int64 for up to 62 products
        bits = np.asarray(X.astype(np.int64) @ (np.int64(1) << np.arange(k, dtype=np.int64))).ravel()
        seg = seg.astype(np.int64)
        if k + int(seg.max()).bit_length() <= 62:
            keys = (seg << k) | bits  # one integer per (segment, holdings): a fast 1-D unique
            _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                                  return_counts=True)
        else:
            _, first, inverse, counts = np.unique(np.column_stack([seg, bits]), axis=0, return_index=True,
                                                  return_inverse=True, return_counts=True)
    else:
        X = X.tocsr()
        X.sort_indices()
        sig = [
            seg[i].tobytes() + X.indices[X.indptr[i]:X.indptr[i + 1]].tobytes() for i in range(n)
        ]
        inverse, uniques = pd.factorize(pd.Series(sig, dtype=object))
        first = np.full(len(uniques), -1, dtype=np.int64)
        first[inverse[::-1]] = np.arange(n)[::-1]
        counts = np.bincount(inverse, minlength=len(uniques))
    return inverse.ravel().astype(np.int64), first.astype(np.int64), counts.astype(np.int64)


class _Peers:
    """Answers "of the customers who hold all of T (in segment g), how many hold each product?".

    Customers are grouped into distinct holdings patterns (weight = customers), so a million
    customers with a dozen products is a few thousand rows.  A node ``(g, a1, a2, ...)`` is the
    set of patterns holding every ``a``; ``g = -1`` means every segment.  Nodes are computed
    once, from their parent, and cached.
    """

    def __init__(self, X: sp.csr_matrix, seg: np.ndarray):
        inverse, rep, weight = _patterns(X, seg)
        self.inverse, self.rep = inverse, rep
        self.P = X[rep].tocsr().astype(np.float64)
        self.w = weight.astype(np.float64)
        self.seg = seg[rep]
        self.cols = self.P.tocsc()
        self.cols.sort_indices()
        self.k = X.shape[1]
        self.memo: dict[tuple, tuple] = {}
        self.popularity = self.node((-1,))[1]  # customers per product, everyone

    def node(self, key: tuple) -> tuple[np.ndarray, np.ndarray, float]:
        """(pattern indices, customers per product as a dense vector, customers)."""
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        if len(key) == 1:
            g = key[0]
            idx = np.arange(self.P.shape[0]) if g < 0 else np.flatnonzero(self.seg == g)
        else:
            parent = self.node(key[:-1])[0]
            a = key[-1]
            col = self.cols.indices[self.cols.indptr[a]:self.cols.indptr[a + 1]]
            idx = np.intersect1d(parent, col, assume_unique=True)
        w = self.w[idx]
        # column sums of the selected pattern rows, gathered straight from the CSR arrays
        indptr, indices = self.P.indptr, self.P.indices
        lens = indptr[idx + 1] - indptr[idx]
        total = int(lens.sum())
        pos = np.repeat(indptr[idx] - np.cumsum(lens) + lens, lens) + np.arange(total)
        v = np.bincount(indices[pos], weights=np.repeat(w, lens), minlength=self.k)
        out = (idx, v, float(w.sum()))
        self.memo[key] = out
        return out

    def condition(self, g: int, held: np.ndarray, order: np.ndarray, threshold: int) -> tuple:
        """The most specific supported peer group for a customer of segment g holding ``held``.

        Start from the customer's segment (or everyone, when the segment has fewer than
        ``threshold`` customers); add the customer's products from the rarest to the most
        common, keeping each one only while at least ``threshold`` customers hold all of them.
        """
        key = (g,) if g >= 0 and self.node((g,))[2] >= threshold else (-1,)
        counts = self.node(key)[1]
        for a in held[np.argsort(order[held], kind="stable")]:
            if counts[a] >= threshold:
                key = key + (int(a),)
                counts = self.node(key)[1]
        return key


def _rank_candidates(scores, tiebreak, excluded, k):
    """Top-k product codes by score (positive only), then by ``tiebreak`` (higher first), then code.

    Only the ``k + len(excluded)`` best scores (and everything tied with the last of them) are
    sorted: with thousands of products a full sort per customer would dominate the run time.
    """
    positive = int((scores > 0).sum())
    if positive == 0:
        return np.zeros(0, dtype=np.int64)
    m = k + len(excluded)
    if m < positive:
        kth = np.partition(scores, len(scores) - m)[len(scores) - m]  # the m-th largest score
        cand = np.flatnonzero((scores >= kth) & (scores > 0))
    else:
        cand = np.flatnonzero(scores > 0)
    if len(excluded):
        cand = cand[~np.isin(cand, excluded)]
    order = np.lexsort((cand, -tiebreak[cand], -scores[cand]))
    return cand[order[:k]]


def _categorical(values: list[str], codes: np.ndarray) -> pd.Categorical:
    """``values[codes]`` as a categorical: millions of rows share a few thousand strings."""
    cats, remap = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    return pd.Categorical.from_codes(remap.ravel()[codes], categories=cats)


def _reason(key: tuple, product: str, share: float, peers: float, products, segments, by) -> str:
    """The recommendation in words: who the peers are and how many of them own the product."""
    seg = ""
    if key[0] >= 0 and by:
        row = segments.iloc[key[0]]
        seg = ", ".join(f"{c}={row[c]}" for c in by)
    if len(key) == 1:
        who = f"the {peers:,.0f} customers with {seg}" if seg else f"all {peers:,.0f} customers"
        return f"{product}: held by {share:.0%} of {who} (the most common products not yet held)"
    held = [str(products[a]) for a in key[1:]]
    held = " and ".join([", ".join(held[:-1]), held[-1]]) if len(held) > 1 else held[0]
    where = f" ({seg})" if seg else ""
    return f"customers with {held}{where} also have {product}: {share:.0%} of {peers:,.0f}"


def _fit(data, *, basis, by, exclude, customers, acquired=False):
    own = _ownership(data, basis=basis, customers=customers, exclude=exclude, by=by, min_support=None,
                     population=True, acquired=acquired)
    peers = _Peers(own.X, own.row_segment)
    # rarest first: the products that say most about a customer are conditioned on first
    rarity = np.empty(len(own.products), dtype=np.int64)
    rarity[np.lexsort((np.arange(len(own.products)), peers.popularity))] = np.arange(len(own.products))
    return own, peers, rarity


def next_best_product(
    data: CrossSellData,
    *,
    k: int = 3,
    by=None,
    exclude_owned: bool = True,
    basis: str = "held",
    min_customers: int = 30,
    customers: str = "active",
    exclude=None,
) -> pd.DataFrame:
    """For each customer, the ``k`` products that customers like them own most often.

    *Customers like them* are those who hold everything the customer holds (within the same
    segment when ``by`` is given).  When fewer than ``min_customers`` such customers exist the
    comparison is relaxed: the customer's products are added to the condition from the rarest
    to the most common (the rarest say the most about a customer), each kept only while at least
    ``min_customers`` customers hold them all; a segment smaller than ``min_customers`` is
    dropped.  A customer who owns nothing is compared with everyone in the segment, i.e. gets
    the most popular products.  The score is the share of those peers who own the product, a
    conditional probability; ``lift`` compares it with the product's share among all customers.

    Parameters
    ----------
    data : CrossSellData
    k : int, default 3
        Products per customer (fewer when fewer products are owned by any peer).
    by : str or list of str, optional
        Customer attributes: peers come from the customer's own segment.
    exclude_owned : bool, default True
        Leave out products the customer already owns (under ``basis``).  With ``basis="held"``
        a product bought and cancelled can be suggested again; use ``basis="sold"`` to never
        suggest what was ever bought.
    basis : {"held", "sold", "ever"}
        What a customer owns.
    min_customers : int, default 30
        Smallest peer group a score may come from.
    customers : {"active", "all", "buyers"}
        Who gets recommendations, and who the peers are.
    exclude : str or list of str, optional
        Products that are neither counted nor recommended.

    Returns
    -------
    DataFrame
        One row per (customer, rank): ``customer_id``, the ``by`` columns, ``rank``,
        ``product_id``, ``score`` (share of peers who own it), ``lift`` (score over the
        product's share among all customers), ``peers`` (customers compared with),
        ``based_on`` (the products conditioned on, " + "-joined; empty for popularity) and
        ``reason`` ("customers with A and B also have C: 64% of 120").

    Examples
    --------
    >>> import crosssell as cs
    >>> recs = cs.next_best_product(cs.load(cs.sample_path()), k=3)
    >>> recs.columns.tolist()[:4]
    ['customer_id', 'rank', 'product_id', 'score']
    """
    _needs_products(data, "next_best_product")
    k = _positive_int("k", k)
    min_customers = _positive_int("min_customers", min_customers)
    basis = _basis(basis)
    by = _customer_by(data, by, "next_best_product")
    own, peers, rarity = _fit(data, basis=basis, by=by, exclude=exclude, customers=customers)
    columns = ["customer_id", *by, "rank", "product_id", "score", "lift", "peers", "based_on", "reason"]
    attrs = {
        "definition": _definition_attrs(
            data, own, k=k, min_customers=min_customers, by=by, exclude_owned=exclude_owned,
            score="share of peers (customers holding every product conditioned on) who own the product",
        ),
        "excluded": data.excluded(),
    }
    if len(own.products) == 0:
        return _empty(pd.DataFrame(columns=columns),
                      "no customer owns a counted product, so there is nothing to recommend", **attrs)

    X = own.X
    inverse, rep = peers.inverse, peers.rep
    total = peers.node((-1,))[2]
    share_all = peers.popularity / total
    products = np.asarray(own.products, dtype=object)
    rec_pat, rec_rank, rec_prod, rec_score, rec_peers, rec_key = [], [], [], [], [], []
    keys: dict[tuple, int] = {}
    for pi, row in enumerate(rep):
        held = X.indices[X.indptr[row]:X.indptr[row + 1]]
        key = peers.condition(int(own.row_segment[row]), held, rarity, min_customers)
        _, v, n = peers.node(key)
        scores = v / n if n > 0 else np.zeros_like(v)
        top = _rank_candidates(scores, peers.popularity, held if exclude_owned else np.zeros(0, int), k)
        kid = keys.setdefault(key, len(keys))
        rec_pat.append(np.full(len(top), pi))
        rec_rank.append(np.arange(1, len(top) + 1))
        rec_prod.append(top)
        rec_score.append(scores[top])
        rec_peers.append(np.full(len(top), n))
        rec_key.append(np.full(len(top), kid))
    rp = np.concatenate(rec_pat)
    if len(rp) == 0:
        return _empty(pd.DataFrame(columns=columns),
                      "every customer already owns every product any peer owns", **attrs)
    prod = np.concatenate(rec_prod)
    score = np.concatenate(rec_score)
    npeers = np.concatenate(rec_peers)
    kid = np.concatenate(rec_key)
    key_list = list(keys)
    # one reason per (peer group, product): stored once as a categorical
    combos = pd.DataFrame({"kid": kid, "prod": prod, "score": score, "peers": npeers})
    uniq = combos.drop_duplicates(["kid", "prod"]).reset_index(drop=True)
    text = [
        _reason(key_list[r.kid], products[r.prod], r.score, r.peers, products, own.segments, by)
        for r in uniq.itertuples(index=False)
    ]
    code = pd.MultiIndex.from_frame(uniq[["kid", "prod"]]).get_indexer(
        pd.MultiIndex.from_arrays([kid, prod])
    )
    based = [" + ".join(products[list(key[1:])]) for key in key_list]

    # expand pattern recommendations to customers
    start = np.searchsorted(rp, np.arange(len(rep)))
    count = np.bincount(rp, minlength=len(rep))
    per = count[inverse]
    cust_row = np.repeat(np.arange(len(inverse)), per)
    offset = np.arange(per.sum()) - np.repeat(np.cumsum(per) - per, per)
    src = start[inverse][cust_row] + offset
    out = pd.DataFrame({"customer_id": own.customer_ids[cust_row]})
    if by:
        segs = own.segments[by].iloc[own.row_segment[cust_row]].reset_index(drop=True)
        out = pd.concat([out, segs], axis=1)
    out["rank"] = np.concatenate(rec_rank)[src].astype("int64")
    out["product_id"] = pd.Categorical.from_codes(prod[src], categories=list(own.products))
    out["score"] = score[src]
    out["lift"] = score[src] / share_all[prod[src]]
    out["peers"] = npeers[src].astype("int64")
    out["based_on"] = _categorical(based, kid[src])
    out["reason"] = _categorical(text, code[src])
    # rows follow the population, which the engine returned sorted by customer_id
    out.attrs.update(attrs)
    out.attrs["peer_groups"] = len(keys)
    return out[columns]


# --------------------------------------------------------------------------------------------
# 4. honest evaluation


def evaluate_recommendations(
    data: CrossSellData,
    *,
    k: int = 3,
    holdout: str = "last",
    by=None,
    basis: str = "held",
    min_customers: int = 30,
    customers: str = "active",
    exclude=None,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Hide each multi-product customer's last acquisition and check whether it is recommended.

    Every customer with at least two products (under ``basis``) has one product hidden: the one
    acquired last (``holdout="last"``; ties broken at random with ``seed``) or one at random
    (``holdout="random"``).  :func:`next_best_product` then recommends ``k`` products from the
    rest, and so does the popularity baseline (the ``k`` most owned products the customer does
    not have, over all customers even when ``by`` is given).  Both are leave-one-out: the counts they use exclude the customer being
    evaluated, so no customer's hidden product informs its own recommendation.

    * ``hit_rate``: share of customers whose hidden product is among the ``k`` recommended
      (Wilson interval);
    * ``precision``: hits over products recommended (Wilson interval, approximate: the products
      recommended to one customer are not independent draws; at most ``1/k`` here, as one
      product is hidden);
    * ``coverage``: share of the products owned by anyone that are recommended to at least one
      evaluated customer (a catalog figure, no interval).

    Parameters
    ----------
    data : CrossSellData
    k : int, default 3
    holdout : {"last", "random"}
    by, basis, min_customers, customers, exclude
        As in :func:`next_best_product`.
    ci : float, default 0.95
    seed : int, default 0
        Breaks ties between products acquired at the same moment (and picks the product for
        ``holdout="random"``).

    Returns
    -------
    DataFrame
        Tidy: ``method`` ("next_best_product", "popularity"), ``metric`` ("hit_rate",
        "precision", "coverage"), ``estimate``, ``ci_low``, ``ci_high``, ``successes``, ``n``.
        ``attrs["comparison"]`` holds the paired difference in hit rate (model − baseline) with
        its interval and the exact McNemar p-value; ``attrs["customers"]`` the customers
        evaluated.

    Examples
    --------
    >>> import crosssell as cs
    >>> ev = cs.evaluate_recommendations(cs.load(cs.sample_path()), k=3)
    >>> sorted(ev["method"].unique())
    ['next_best_product', 'popularity']
    """
    _needs_products(data, "evaluate_recommendations")
    k = _positive_int("k", k)
    min_customers = _positive_int("min_customers", min_customers)
    if holdout not in ("last", "random"):
        raise ParameterError(f"holdout must be 'last' (the last product acquired) or 'random', not {holdout!r}")
    z_value(ci)
    basis = _basis(basis)
    by = _customer_by(data, by, "evaluate_recommendations")
    own, peers, rarity = _fit(data, basis=basis, by=by, exclude=exclude, customers=customers, acquired=True)
    columns = ["method", "metric", "estimate", "ci_low", "ci_high", "successes", "n"]
    attrs = {
        "definition": _definition_attrs(
            data, own, k=k, holdout=holdout, by=by, min_customers=min_customers, seed=seed,
            evaluation="leave-one-out: each evaluated customer's own row is removed from the counts",
        ),
        "excluded": data.excluded(),
        "k": k,
    }
    X = own.X
    sizes = np.diff(X.indptr)
    multi = np.flatnonzero(sizes >= 2)
    if len(multi) == 0:
        return _empty(pd.DataFrame(columns=columns),
                      "no customer owns two or more counted products, so no product can be hidden "
                      "and predicted", **attrs, customers=0)

    # the product to hide: the last acquired (random among ties), or a random one
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(X.shape[0]), sizes)
    at = own.acquired.data if holdout == "last" else np.zeros(X.nnz)
    at = np.where(np.isnan(at), -np.inf, at)
    noise = rng.random(X.nnz)
    order = np.lexsort((noise, at, rows))  # within a customer: latest (then a random tie) last
    last = order[np.r_[rows[order][1:] != rows[order][:-1], True]]
    hidden_pos = last[sizes[rows[last]] >= 2]
    cust = rows[hidden_pos]
    hidden = X.indices[hidden_pos]
    keep = np.ones(X.nnz, dtype=bool)
    keep[hidden_pos] = False
    rest = sp.csr_matrix(
        (X.data[keep], (rows[keep], X.indices[keep])), shape=X.shape
    )
    R = rest[cust]
    inv, rep, _ = _patterns(R, own.row_segment[cust])
    pairs = np.column_stack([inv, hidden])
    uq, qinv, qcount = np.unique(pairs, axis=0, return_inverse=True, return_counts=True)
    qinv = qinv.ravel()

    threshold = min_customers + 1  # leave-one-out: the customer itself is among the peers
    pop = peers.popularity
    hit_m = np.zeros(len(uq), dtype=bool)
    hit_b = np.zeros(len(uq), dtype=bool)
    rec_m = np.zeros(len(uq), dtype=np.int64)
    rec_b = np.zeros(len(uq), dtype=np.int64)
    shown_m, shown_b = set(), set()
    for qi, (pi, h) in enumerate(uq):
        row = rep[pi]
        held = R.indices[R.indptr[row]:R.indptr[row + 1]]
        g = int(own.row_segment[cust[row]])
        key = peers.condition(g, held, rarity, threshold)
        _, v, n = peers.node(key)
        v = v.copy()
        v[h] -= 1.0  # the customer's own hidden product leaves the count
        loo_pop = pop.copy()
        loo_pop[h] -= 1.0
        scores = v / (n - 1.0) if n > 1 else np.zeros_like(v)
        top = _rank_candidates(scores, loo_pop, held, k)
        base = _rank_candidates(loo_pop, np.zeros_like(loo_pop), held, k)
        hit_m[qi], hit_b[qi] = h in top, h in base
        rec_m[qi], rec_b[qi] = len(top), len(base)
        shown_m.update(top.tolist())
        shown_b.update(base.tolist())

    w = qcount.astype(np.int64)
    n_eval = int(w.sum())
    owned_products = int((pop > 0).sum())
    rows_out = []
    for method, hits, recs, shown in (("next_best_product", hit_m, rec_m, shown_m),
                                      ("popularity", hit_b, rec_b, shown_b)):
        h_n = int((w * hits).sum())
        r_n = int((w * recs).sum())
        lo, hi = wilson_interval(h_n, n_eval, ci=ci)
        rows_out.append({"method": method, "metric": "hit_rate", "estimate": h_n / n_eval,
                         "ci_low": lo, "ci_high": hi, "successes": h_n, "n": n_eval})
        lo, hi = wilson_interval(h_n, r_n, ci=ci) if r_n else (np.nan, np.nan)
        rows_out.append({"method": method, "metric": "precision", "estimate": h_n / r_n if r_n else np.nan,
                         "ci_low": lo, "ci_high": hi, "successes": h_n, "n": r_n})
        rows_out.append({"method": method, "metric": "coverage", "estimate": len(shown) / owned_products,
                         "ci_low": np.nan, "ci_high": np.nan, "successes": len(shown), "n": owned_products})
    res = pd.DataFrame(rows_out, columns=columns)

    # paired comparison of hit rates on the same customers
    d = hit_m.astype(float) - hit_b.astype(float)
    mean_d = float((w * d).sum() / n_eval)
    sd_d = float(np.sqrt(((w * (d - mean_d) ** 2).sum()) / (n_eval - 1))) if n_eval > 1 else np.nan
    lo, hi = mean_interval(mean_d, sd_d, n_eval, ci=ci)
    only_m = int((w * (hit_m & ~hit_b)).sum())
    only_b = int((w * (hit_b & ~hit_m)).sum())
    p = float(sps.binomtest(only_m, only_m + only_b, 0.5).pvalue) if only_m + only_b else 1.0
    res.attrs.update(attrs)
    res.attrs["customers"] = n_eval
    res.attrs["comparison"] = {
        "difference": mean_d, "low": lo, "high": hi, "model_only_hits": only_m,
        "baseline_only_hits": only_b, "p_value": p,
        "method": "paired difference of hit rates (t interval); exact McNemar test",
    }
    return res


# --------------------------------------------------------------------------------------------
# 5. whitespace


def whitespace(
    data: CrossSellData,
    *,
    by="plan",
    basis: str = "held",
    customers: str = "active",
    exclude=None,
    min_customers: int = 30,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Product penetration per segment beside the best segment's: where cross-sell is untapped.

    For each (segment, product): the share of the segment's customers who own the product, with
    a Wilson interval; the best segment's share for that product; the gap to it; and the
    ``untapped`` customers — how many more would own it if the segment matched the best one
    (``gap × population``, rounded).  The gap's interval treats the two segments as independent
    samples.  Only segments of at least ``min_customers`` customers can be "best" (a country
    with one customer who bought a product would otherwise top it at 100 %); smaller segments
    are still listed, flagged ``small``.  Being "best" is itself chosen from the data, so read
    the gap's interval before the gap.

    Parameters
    ----------
    data : CrossSellData
    by : str or list of str, default "plan"
        Customer attribute(s) defining the segments.
    basis : {"held", "sold", "ever"}
        Ownership: held at the reference date, or ever bought, net of returns.
    customers : {"active", "all", "buyers"}
        The population of each segment.
    exclude : str or list of str, optional
        Products that do not count.
    min_customers : int, default 30
        Smallest segment that may serve as the benchmark.
    ci : float, default 0.95
        Confidence level of the intervals.

    Returns
    -------
    DataFrame
        The ``by`` columns, ``product_id`` (and ``name``, ``category``), ``customers``,
        ``population``, ``small``, ``share``, ``share_low``, ``share_high``, ``best_segment``,
        ``best_share``, ``gap``, ``gap_low``, ``gap_high``, ``untapped``; sorted by ``untapped``.
        The best segment itself has gap 0 and no gap interval.

    Examples
    --------
    >>> import crosssell as cs
    >>> ws = cs.whitespace(cs.load(cs.sample_path()), by="plan")
    >>> ws.columns[:3].tolist()
    ['plan', 'product_id', 'name']
    """
    _needs_products(data, "whitespace")
    if by is None or not _as_list(by):
        raise ParameterError("whitespace compares segments: pass by= a customer attribute, e.g. by='plan'")
    by = _customer_by(data, by, "whitespace")
    basis = _basis(basis)
    min_customers = _positive_int("min_customers", min_customers)
    z_value(ci)
    pen = penetration(data, by=by, basis=basis, customers=customers, exclude=exclude)
    info = [c for c in ("name", "category") if c in pen.columns]
    # the same population as penetration's (with customers="buyers" it depends on the exclusions)
    defn = Definition(basis, "distinct", customers, None, _exclusions(data, exclude))
    pop = _population(data, defn, _periods_table(periods(data, None)), by)
    pop = engine.execute(pop.group_by(by).aggregate(population=pop.count()))
    columns = [*by, "product_id", *info, "customers", "population", "small", "share", "share_low",
               "share_high", "best_segment", "best_share", "gap", "gap_low", "gap_high", "untapped"]
    definition = dict(pen.attrs.get("definition") or {})
    what = "held at the reference date" if basis == "held" else "ever bought"
    definition["ownership"] = (
        f"a customer owns a product when it is {what} (net of returns); base products "
        f"{', '.join(definition.get('base_products', [])) or '(none)'} and excluded products do not count"
    )
    attrs = {"definition": definition, "excluded": data.excluded(), "by": by, "ci": ci,
             "min_customers": min_customers}
    if pen.empty:
        return _empty(pd.DataFrame(columns=columns), "no customer owns a counted product", **attrs)
    pop = pop[pop["population"] > 0].reset_index(drop=True)
    pop["__label"] = pop[by[0]].astype(str)
    for col in by[1:]:
        pop["__label"] = pop["__label"] + " / " + pop[col].astype(str)
    pop["small"] = pop["population"] < min_customers
    if not (~pop["small"]).any():
        return _empty(
            pd.DataFrame(columns=columns),
            f"every segment of {', '.join(by)} has fewer than min_customers={min_customers} customers",
            **attrs,
        )
    n_small = int(pop["small"].sum())
    if n_small:
        warnings.warn(
            f"{n_small} segment(s) of {', '.join(by)} have fewer than {min_customers} customers: "
            "listed and flagged 'small', never used as the benchmark",
            SmallSampleWarning, stacklevel=2,
        )
    prods = pen[["product_id", *info]].drop_duplicates("product_id")
    res = pop.merge(prods, how="cross")
    res = res.merge(pen[[*by, "product_id", "customers"]], on=[*by, "product_id"], how="left")
    res["customers"] = res["customers"].fillna(0).astype("int64")
    res["population"] = res["population"].astype("int64")
    res["share"] = res["customers"] / res["population"]
    lo, hi = wilson_interval(res["customers"].to_numpy(), res["population"].to_numpy(), ci=ci)
    res["share_low"], res["share_high"] = lo, hi
    eligible = res[~res["small"]].sort_values(["product_id", "share", "__label"],
                                              ascending=[True, False, True], kind="stable")
    best = eligible.drop_duplicates("product_id").set_index("product_id")
    res["best_segment"] = res["product_id"].map(best["__label"])
    res["best_share"] = res["product_id"].map(best["share"]).astype(float)
    best_n = res["product_id"].map(best["population"]).to_numpy(float)
    res["gap"] = res["best_share"] - res["share"]
    share = res["share"].to_numpy(float)
    top = res["best_share"].to_numpy(float)
    diff = difference_interval(share, np.sqrt(share * (1 - share) / res["population"].to_numpy(float)),
                               top, np.sqrt(top * (1 - top) / best_n), ci=ci)
    is_best = (res["__label"] == res["best_segment"]).to_numpy()
    res["gap_low"] = np.where(is_best, np.nan, diff["low"])
    res["gap_high"] = np.where(is_best, np.nan, diff["high"])
    res["untapped"] = np.rint(np.maximum(res["gap"], 0) * res["population"]).astype("int64")
    res = res.sort_values(["untapped", *by, "product_id"], ascending=[False] + [True] * (len(by) + 1),
                          kind="stable").reset_index(drop=True)
    res = res[columns]
    res.attrs.update(attrs)
    return res
