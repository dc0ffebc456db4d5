"""Seeded synthetic data of a SaaS company, with planted, documented effects.

The generator simulates a subscription business month by month: growing signup cohorts buy a
base product, adopt add-ons as their tenure grows, return a few purchases, buy more of what they
hold (upsell), cancel add-ons, answer satisfaction surveys and churn.  The effects the analysis
modules must recover are planted on purpose and written to ``truth.json`` beside the tables:

* growing cohorts (``truth["cohorts"]``);
* adoption rising with tenure and plan, one entry add-on usually bought first
  (``truth["adoption"]``);
* two product pairs that go together (``truth["affinity"]["pairs"]``);
* a pushed add-on that is cancelled quickly, lowers satisfaction and raises churn
  (``truth["pushed_addon"]``);
* churn hazard ratios by the number of add-ons currently held, an inverted U with over-selling
  at 5+, on top of a baseline that falls with tenure (``truth["churn"]``), so a naive comparison
  of churn by tier is biased by survivorship (``truth["churn"]["naive"]``);
* satisfaction rising with the tier up to 3–4 add-ons and falling at 5+ (``truth["surveys"]``).

All randomness comes from one ``numpy.random.Generator`` seeded with ``seed``, and the files are
written with fixed formatting, so the same arguments give byte-identical files.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .errors import ParameterError

__all__ = ["SampleData", "generate", "write_sample", "TIER_LABELS", "tier_label"]

# --------------------------------------------------------------------------------------------
# the planted world

#: labels of the add-on tiers (number of distinct add-ons currently held); the en dash is part
#: of the label.
TIER_LABELS = ("0", "1", "2", "3–4", "5+")
#: inclusive bounds of each tier; ``None`` means no upper bound.
TIER_BINS = {"0": [0, 0], "1": [1, 1], "2": [2, 2], "3–4": [3, 4], "5+": [5, None]}
_TIER_OF = np.array([0, 1, 2, 3, 3] + [4] * 60, dtype=np.int8)  # count of held add-ons -> tier

PLANS = ("Basic", "Pro", "Enterprise")
PLAN_SHARES = (0.55, 0.33, 0.12)
PLAN_PRICE = (29.0, 79.0, 249.0)  # monthly list price of the base product by plan
REGIONS = ("North America", "Europe", "Asia Pacific", "Latin America")
REGION_SHARES = (0.45, 0.30, 0.17, 0.08)
CHANNELS = ("web", "sales", "partner")
# the channel depends on the plan: Enterprise is mostly sold by the sales team
CHANNEL_SHARES_BY_PLAN = {
    "Basic": (0.75, 0.10, 0.15),
    "Pro": (0.50, 0.25, 0.25),
    "Enterprise": (0.10, 0.70, 0.20),
}
CHANNEL_DISCOUNT = (0.0, 0.10, 0.05)  # list-price discount by channel (web, sales, partner)

MONTHLY_GROWTH = 0.045  # signups in month t are proportional to (1 + growth) ** t

BASE = ("CORE", "Core platform", "Core")
# product_id, name, category, monthly list price per unit, monthly adoption rate (popularity)
ADDONS = (
    ("EXTRA_STORAGE", "Extra storage (100 GB)", "Collaboration", 10.0, 0.045),
    ("GUEST_ACCESS", "Guest access", "Collaboration", 15.0, 0.018),
    ("WHITEBOARD", "Whiteboards", "Collaboration", 8.0, 0.012),
    ("SSO", "Single sign-on", "Security", 25.0, 0.015),
    ("AUDIT_LOG", "Audit log", "Security", 20.0, 0.007),
    ("DLP", "Data loss prevention", "Security", 40.0, 0.005),
    ("DASHBOARDS", "Custom dashboards", "Analytics", 18.0, 0.026),
    ("ADV_REPORTS", "Advanced Reports bundle", "Analytics", 49.0, 0.0),  # pushed, see below
    ("DATA_EXPORT", "Data export", "Analytics", 12.0, 0.01),
    ("API_PLUS", "API plus (higher limits)", "Integrations", 30.0, 0.013),
    ("WEBHOOKS", "Webhooks", "Integrations", 9.0, 0.007),
    ("CRM_SYNC", "CRM sync", "Integrations", 22.0, 0.022),
)
_ADDON_IDS = tuple(a[0] for a in ADDONS)
_RATE = np.array([a[4] for a in ADDONS])
_N_ADDONS = len(ADDONS)
# what a customer holds is a bit mask: bit j set = add-on j held
_BITS = (1 << np.arange(_N_ADDONS)).astype(np.uint16)
_HAS = (np.arange(1 << _N_ADDONS)[:, None] & _BITS) > 0  # (mask, add-on) -> held
_POP = _HAS.sum(axis=1)  # mask -> number of add-ons held

ENTRY = "EXTRA_STORAGE"
PUSHED = "ADV_REPORTS"
# rank of each product index (0 = base, j + 1 = add-on j) in product_id order, for sorting rows
_PRODUCT_RANK = np.argsort(np.argsort((BASE[0],) + _ADDON_IDS)).astype(np.int64)
_ENTRY = _ADDON_IDS.index(ENTRY)
_PUSH = _ADDON_IDS.index(PUSHED)

# owning one product of a pair multiplies the other's monthly adoption rate by the factor
PAIRS = (("SSO", "AUDIT_LOG", 4.0), ("API_PLUS", "WEBHOOKS", 5.0))

PLAN_ADOPTION = np.array([0.8, 1.1, 1.4])
# the entry add-on is bought early (rate x1.5 in the first 3 months, x0.8 after); the others
# ramp up with tenure: x(0.4 + 0.15 * tenure), capped at x2 from month 11 (tenure: see _MONTH)
ENTRY_EARLY_MONTHS = 3
ENTRY_MULT = (1.5, 0.8)
TENURE_MULT = (0.4, 0.15, 2.0)  # intercept, slope per month, cap
# each add-on already held multiplies the adoption rate of the others (not the pushed one) by
# this: needs saturate, so customers settle in a tier instead of drifting up forever
SATURATION = 0.8

# the pushed add-on ignores need: its rate depends on the channel that sold the customer, and the
# push stops being aggressive after the first year
PUSH_RATE = np.array([0.006, 0.07, 0.02], dtype=np.float64)  # web, sales, partner
PUSH_LATER_MULT = 0.5
PUSH_MONTHS = 12

CANCEL_RATE = 0.008  # monthly probability that a held add-on is cancelled
PUSH_CANCEL_EARLY = 0.45  # monthly probability for the pushed add-on in its first 3 months
PUSH_CANCEL_LATER = 0.04
PUSH_EARLY_MONTHS = 3

RETURN_RATE = 0.04  # share of add-on sales returned within 1-14 days
RETURN_DAYS = (1, 14)
PARTIAL_RETURN_SHARE = 0.5  # of returns of a multi-unit sale; single units are returned whole
MULTI_UNIT_SHARE = 0.2  # sales of 2-5 units; the rest are single units

DEFAULT_UPSELL_RATE = 0.04  # top-ups per held product and month, Poisson (base included)

# churn: monthly hazard = baseline(tenure) x HR(tier) x HR(plan) x HR(pushed held)
BASELINE_HAZARD = ((1, 3, 0.06), (4, 6, 0.045), (7, 12, 0.03), (13, 24, 0.02), (25, None, 0.015))
HR_TIER = (1.0, 0.75, 0.55, 0.5, 1.3)
_HR_TIER = np.array(HR_TIER)
HR_PLAN = (1.0, 0.8, 0.6)
HR_PUSH = 1.8

# surveys
RESPONSE_RATE = 0.08
NPS_SHARE = 0.4
CSAT_BASE = 3.6
CSAT_SHIFT = (0.0, 0.2, 0.4, 0.6, 0.1)
CSAT_SD = 0.9
CSAT_PUSH_SHIFT = -0.5
NPS_PROBS = (  # detractor (0-6), passive (7-8), promoter (9-10)
    (0.35, 0.35, 0.30),
    (0.30, 0.35, 0.35),
    (0.25, 0.35, 0.40),
    (0.20, 0.35, 0.45),
    (0.32, 0.35, 0.33),
)
NPS_PUSH_SHIFT = 0.10  # moved from promoters to detractors after buying the pushed add-on

_DAY = 86_400
_MONTH = 30.4375  # days
_NO_DATE = np.iinfo(np.int32).min  # "no date" in the int day arrays


def tier_label(count: int) -> str:
    """The tier label of a number of add-ons held.

    Parameters
    ----------
    count : int
        Distinct add-ons held (the base product not counted).

    Returns
    -------
    str
        One of :data:`TIER_LABELS`.

    Examples
    --------
    >>> tier_label(0), tier_label(4), tier_label(7)
    ('0', '3–4', '5+')
    """
    return TIER_LABELS[int(_TIER_OF[min(int(count), len(_TIER_OF) - 1)])]


@dataclass
class SampleData:
    """The generated tables, in the data contract, and what was planted in them.

    Attributes
    ----------
    customers, purchases, surveys, products : pandas.DataFrame
        The four contract tables (dates and timestamps as ``datetime64``, IDs as strings).
    truth : dict
        The planted parameters and the effects observed in the generated data; JSON-serialisable
        and written as ``truth.json``.
    reference_date : pandas.Timestamp
        The "as of" date: ``start`` plus ``months``; nothing happens on or after it.
    """

    customers: pd.DataFrame
    purchases: pd.DataFrame
    surveys: pd.DataFrame
    products: pd.DataFrame
    truth: dict
    reference_date: pd.Timestamp


# --------------------------------------------------------------------------------------------
# generation


def generate(
    *,
    customers: int = 5000,
    seed: int = 42,
    start: str = "2022-01-01",
    months: int = 36,
    purchases_per_customer: float | None = None,
) -> SampleData:
    """Simulate a SaaS company's customers, purchases and surveys with planted effects.

    Parameters
    ----------
    customers : int, default 5000
        Number of customers signed up over the whole period.
    seed : int, default 42
        Seed of the random generator; the same arguments always give the same data.
    start : str, default "2022-01-01"
        First day of the simulation (the first cohort's month starts here).
    months : int, default 36
        Length of the simulation in months; ``reference_date = start + months``.
    purchases_per_customer : float, optional
        Target average number of purchase rows per customer, reached by tuning the upsell rate
        (top-ups of products already held).  By default the upsell rate is
        ``DEFAULT_UPSELL_RATE`` per held product and month.

    Returns
    -------
    SampleData
        The four contract tables, ``truth`` and ``reference_date``.

    Examples
    --------
    >>> from crosssell.sample import generate
    >>> data = generate(customers=500, seed=1)
    >>> list(data.purchases.columns)
    ['customer_id', 'product_id', 'purchased_at', 'quantity', 'revenue', 'ended_at']
    >>> data.truth["churn"]["hazard_ratio_by_tier"]["5+"]
    1.3
    """
    n, months, target = _check(customers, months, purchases_per_customer)
    try:
        start_ts = pd.Timestamp(start).normalize()
    except (TypeError, ValueError) as err:
        raise ParameterError(f"start must be a date such as '2022-01-01', got {start!r}") from err
    bounds = np.array(
        [(start_ts + pd.DateOffset(months=t) - pd.Timestamp(0)).days for t in range(months + 1)],
        dtype=np.int64,
    )  # month t covers the days [bounds[t], bounds[t + 1]) since 1970-01-01
    rng = np.random.default_rng(seed)

    cust = _customers(rng, n, bounds)
    sim = _simulate(rng, cust, bounds)
    ep = _episodes(sim, cust)
    span = _held_span(ep, bounds)
    upsell_rate = _upsell_rate(ep, span, n, target)
    rows = _purchase_rows(rng, ep, span, upsell_rate)

    ids = _customer_ids(n)
    reference = pd.Timestamp(int(bounds[-1]) * _DAY, unit="s")
    tables = {
        "customers": _customers_frame(ids, cust, sim["churn_day"]),
        "purchases": _purchases_frame(ids, rows),
        "surveys": _surveys_frame(ids, sim["surveys"]),
        "products": _products_frame(),
    }
    truth = _truth(
        seed=seed, n=n, months=months, start=start_ts, reference=reference, target=target,
        cust=cust, sim=sim, ep=ep, rows=rows, upsell_rate=upsell_rate, bounds=bounds,
        table_rows={k: len(v) for k, v in tables.items()},
    )
    return SampleData(**tables, truth=truth, reference_date=reference)


def _check(customers, months, purchases_per_customer):
    if isinstance(customers, bool) or not isinstance(customers, int | np.integer) or customers < 1:
        raise ParameterError(f"customers must be a positive integer, got {customers!r}")
    if isinstance(months, bool) or not isinstance(months, int | np.integer) or months < 1:
        raise ParameterError(f"months must be a positive integer, got {months!r}")
    if purchases_per_customer is not None and not purchases_per_customer > 0:
        raise ParameterError(
            f"purchases_per_customer must be a positive number, got {purchases_per_customer!r}"
        )
    return int(customers), int(months), purchases_per_customer


def _customers(rng: np.random.Generator, n: int, bounds: np.ndarray) -> dict[str, np.ndarray]:
    """Signup times (growing cohorts) and attributes, ordered by signup."""
    months = len(bounds) - 1
    weights = (1.0 + MONTHLY_GROWTH) ** np.arange(months)
    expected = n * weights / weights.sum()
    counts = np.floor(expected).astype(np.int64)
    # hand the rounding remainder to the months with the largest fractions: exact total, no noise
    short = n - counts.sum()
    counts[np.argsort(-(expected - counts), kind="stable")[:short]] += 1
    month = np.repeat(np.arange(months, dtype=np.int16), counts)
    day = bounds[month] + (rng.random(n) * (bounds[month + 1] - bounds[month])).astype(np.int64)
    # signups happen in office hours, 07:00-21:00
    signup_s = day * _DAY + rng.integers(7 * 3600, 21 * 3600, size=n)
    order = np.argsort(signup_s, kind="stable")  # customer numbers follow signup order
    plan = rng.choice(len(PLANS), size=n, p=PLAN_SHARES).astype(np.int8)
    region = rng.choice(len(REGIONS), size=n, p=REGION_SHARES).astype(np.int8)
    cum = np.cumsum(np.array([CHANNEL_SHARES_BY_PLAN[p] for p in PLANS]), axis=1)
    channel = (rng.random(n)[:, None] > cum[plan]).sum(axis=1).astype(np.int8)
    return {
        "month": month[order],
        "signup_s": signup_s[order],
        "plan": plan,
        "region": region,
        "channel": channel,
        "counts": counts,
    }


class _Chunks:
    """Per-month arrays collected in lists and concatenated once at the end."""

    def __init__(self, **dtypes):
        self.dtypes = dtypes
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in dtypes}

    def add(self, **arrays: np.ndarray) -> None:
        for k, v in arrays.items():
            self.parts[k].append(v)

    def done(self) -> dict[str, np.ndarray]:
        return {
            k: np.concatenate(v + [np.empty(0, self.dtypes[k])]).astype(self.dtypes[k])
            for k, v in self.parts.items()
        }


def _simulate(rng: np.random.Generator, cust: dict, bounds: np.ndarray) -> dict[str, Any]:
    """Month by month: adoptions, cancellations, churn and surveys of the active customers.

    Customers are ordered by signup, so those signed up before month ``t`` are a prefix of the
    arrays.  Customers act from the month after their signup month.  Adoption and cancellation
    probabilities use the state at the month's start; their days are drawn first, and the churn
    hazard then follows the add-ons held on each day, so the tier is an exact time-varying
    covariate (at day resolution) for a Cox model fitted on the dates in the tables.  Whatever a
    churner would have done on or after the churn day is dropped.

    What a customer holds is a bit mask, so the month's total adoption rate is one lookup in a
    (tenure x mask) table; the per-product draws are made only for the few customers who adopt
    or cancel something that month.  That keeps a million customers to seconds.
    """
    n = len(cust["month"])
    months = len(bounds) - 1
    first_of = np.concatenate([[0], np.cumsum(cust["counts"])])  # first customer of each month
    plan, channel = cust["plan"], cust["channel"]
    signup_day = cust["signup_s"] // _DAY

    held = np.zeros(n, dtype=np.uint16)  # bit j set = add-on j held
    open_ep = np.full((n, _N_ADDONS), -1, dtype=np.int64)  # episode (sale row) now held
    churn_day = np.full(n, _NO_DATE, dtype=np.int64)
    push_month = np.full(n, -1, dtype=np.int16)  # month the pushed add-on held now was bought
    push_first = np.full(n, np.iinfo(np.int64).max)  # day the pushed add-on was first bought

    tenure = np.arange(months + 2)
    hazard = np.array([_baseline(m) for m in tenure])
    tenure_mult = np.minimum(TENURE_MULT[0] + TENURE_MULT[1] * tenure, TENURE_MULT[2])
    entry_mult = np.where(tenure <= ENTRY_EARLY_MONTHS, *ENTRY_MULT)
    rate = _RATE[None, :] * tenure_mult[:, None]
    rate[:, _ENTRY] = _RATE[_ENTRY] * entry_mult
    free = _free_multiplier()
    need = rate @ free.T  # total adoption rate (before plan and saturation) by tenure and mask
    plan_mult = PLAN_ADOPTION[plan]
    saturation = SATURATION ** np.arange(_N_ADDONS + 1)
    cancel = -np.log1p(-CANCEL_RATE)  # as a rate, so that P(cancel in a month) = CANCEL_RATE
    push_cancel = -np.log1p(-np.array([PUSH_CANCEL_LATER, PUSH_CANCEL_EARLY]))
    push_bit = np.uint16(1 << _PUSH)
    price = np.array([a[3] for a in ADDONS]) * 100  # cents
    discount = 1.0 - np.array(CHANNEL_DISCOUNT)

    # base-product sales are episodes 0..n-1: episode id i is customer i's signup
    n_ep = n
    i8, i64 = np.int8, np.int64
    eps = _Chunks(cust=i64, prod=i8, sold_s=i64, qty=i64, unit=i64, ret_qty=i64, ret_s=i64)
    ends = _Chunks(ep=i64, day=i64)
    surveys = _Chunks(cust=i64, day=i64, score=i64, nps=bool, tier=i8)
    landmark = None

    for t in range(1, months):
        d0, dim = int(bounds[t]), int(bounds[t + 1] - bounds[t])
        ai = np.flatnonzero(churn_day[: first_of[t]] == _NO_DATE)  # active, signed up before t
        # tenure = the month of the relationship the customer is in at mid-month (1 = the first
        # 30.44 days after signup): hazards follow each customer's own signup day, as a Cox model
        # on days since signup sees them
        ten = ((d0 + dim / 2 - signup_day[ai]) / _MONTH).astype(np.int64) + 1
        mask = held[ai]
        n0 = _POP[mask]
        p0 = (mask & push_bit) > 0
        if t == months - 12:
            landmark = {"t": t, "cust": ai, "tier": _TIER_OF[n0], "days": d0 - signup_day[ai]}

        # adoptions of what was not held at the month's start
        scale = plan_mult[ai] * saturation[n0]
        push_rate = np.where(
            p0, 0.0, PUSH_RATE[channel[ai]] * np.where(ten <= PUSH_MONTHS, 1.0, PUSH_LATER_MULT)
        )
        w = np.flatnonzero(rng.random(ai.size) < -np.expm1(-(scale * need[ten, mask] + push_rate)))
        lam = rate[ten[w]] * free[mask[w]] * scale[w, None]
        lam[:, _PUSH] = push_rate[w]
        r, ac = np.nonzero(_cells_given_any(rng, lam))
        ar = w[r]
        sale = _draw_sales(rng, ar.size, dim)

        # cancellations of what was held at the month's start
        early = (t - push_month[ai]) <= PUSH_EARLY_MONTHS
        push_gamma = np.where(p0, push_cancel[early.astype(np.int64)], 0.0)
        w = np.flatnonzero(rng.random(ai.size) < -np.expm1(-((n0 - p0) * cancel + push_gamma)))
        gam = _HAS[mask[w]] * cancel
        gam[:, _PUSH] = push_gamma[w]
        r, cc = np.nonzero(_cells_given_any(rng, gam))
        cr = w[r]
        c_off = rng.integers(0, dim, size=cr.size)

        # churn: the hazard follows the add-ons held on each day of the month
        full = sale["ret_qty"] == sale["qty"]
        sign = np.repeat([1, -1, -1], [ar.size, full.sum(), cr.size])
        changes = _Changes(
            rows=np.concatenate([ar, ar[full], cr]),
            days=np.concatenate([sale["sold_off"], sale["ret_off"][full], c_off]),
            d_count=sign,
            d_push=np.concatenate([ac == _PUSH, ac[full] == _PUSH, cc == _PUSH]) * sign,
        )
        off = _churn_offsets(rng, dim, hazard[ten] * np.take(HR_PLAN, plan[ai]), n0, p0, changes)

        # cancellations before the churn day happen
        kept = c_off < off[cr]
        sc, sp = ai[cr[kept]], cc[kept]
        ends.add(ep=open_ep[sc, sp], day=d0 + c_off[kept])
        np.bitwise_and.at(held, sc, ~_BITS[sp])

        # sales (and their returns) before the churn day happen
        kept = sale["sold_off"] < off[ar]
        bc, bp = ai[ar[kept]], ac[kept]
        qty = sale["qty"][kept]
        ret_qty = np.where(sale["ret_off"] < off[ar], sale["ret_qty"], 0)[kept]
        sold_day = d0 + sale["sold_off"][kept]
        ret_s = (d0 + sale["ret_off"][kept]) * _DAY + sale["ret_sec"][kept]
        eps.add(
            cust=bc, prod=(bp + 1).astype(np.int8),
            sold_s=sold_day * _DAY + sale["sold_sec"][kept], qty=qty,
            unit=np.rint(price[bp] * discount[channel[bc]]).astype(np.int64), ret_qty=ret_qty,
            ret_s=np.where(ret_qty > 0, ret_s, 0),
        )
        holds = ret_qty < qty  # a full return leaves nothing held
        open_ep[bc[holds], bp[holds]] = n_ep + np.flatnonzero(holds)
        np.bitwise_or.at(held, bc[holds], _BITS[bp[holds]])
        n_ep += bc.size
        pushed = bp == _PUSH
        push_month[bc[pushed & holds]] = t
        push_first[bc[pushed]] = np.minimum(push_first[bc[pushed]], sold_day[pushed])

        # churners end everything they hold on the churn day
        gone = off < dim
        ci = ai[gone]
        cday = d0 + off[gone]
        churn_day[ci] = cday
        r, c = np.nonzero(_HAS[held[ci]])
        ends.add(ep=np.concatenate([ci, open_ep[ci[r], c]]), day=np.concatenate([cday, cday[r]]))

        # surveys answered before any churn, scored on the tier held that day
        resp = np.flatnonzero(rng.random(ai.size) < RESPONSE_RATE)
        s_off = rng.integers(0, dim, size=resp.size)
        kept = s_off < off[resp]
        resp, s_off = resp[kept], s_off[kept]
        tier = _TIER_OF[n0[resp] + changes.on(resp, s_off)[0]]
        nps = rng.random(resp.size) < NPS_SHARE
        after_push = push_first[ai[resp]] < d0 + s_off
        surveys.add(cust=ai[resp], day=d0 + s_off, score=_scores(rng, tier, after_push, nps),
                    nps=nps, tier=tier)

    return {
        "eps": eps.done(),
        "ends": ends.done(),
        "surveys": surveys.done(),
        "held": held,
        "churn_day": churn_day,
        "landmark": landmark,
        "tenure_mult": tenure_mult,
    }


def _free_multiplier() -> np.ndarray:
    """(mask x add-on) multiplier of each add-on's adoption rate given what is held.

    0 for what is held and for the pushed add-on (it has its own rate), the pair factor for the
    partner of a held pair product, 1 otherwise.
    """
    out = (~_HAS).astype(np.float64)
    for a, b, f in PAIRS:
        i, j = _ADDON_IDS.index(a), _ADDON_IDS.index(b)
        out[_HAS[:, i], j] *= f
        out[_HAS[:, j], i] *= f
    out[:, _PUSH] = 0.0
    return out


def _draw_sales(rng: np.random.Generator, k: int, dim: int) -> dict[str, np.ndarray]:
    """Quantity, returns and days (offsets in the month) of ``k`` add-on sales."""
    qty = np.where(rng.random(k) < MULTI_UNIT_SHARE, rng.integers(2, 6, size=k), 1)
    returned = rng.random(k) < RETURN_RATE
    partial = returned & (qty > 1) & (rng.random(k) < PARTIAL_RETURN_SHARE)
    ret_qty = np.where(partial, rng.integers(1, np.maximum(qty, 2)), qty) * returned
    lag = rng.integers(RETURN_DAYS[0], RETURN_DAYS[1] + 1, size=k) * returned
    # a returned sale is dated early enough for its return to fall in the same month, so the
    # churn draw of the month sees both
    sold_off = (rng.random(k) * (dim - lag)).astype(np.int64)
    return {
        "qty": qty,
        "ret_qty": ret_qty,
        "sold_off": sold_off,
        "ret_off": np.where(returned, sold_off + lag, dim),
        "sold_sec": rng.integers(0, _DAY, size=k),
        "ret_sec": rng.integers(0, _DAY, size=k),
    }


def _cells_given_any(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    """Independent events with rates ``lam`` per cell, drawn given at least one per row.

    Cell ``j`` fires with probability ``p_j / P(some cell >= j fires)`` until one has fired, and
    with ``p_j`` after; together with a first draw of "any event" per row this gives exactly the
    independent ``1 - exp(-lam)`` draws per cell.
    """
    lam = np.ascontiguousarray(lam.T)  # a cell per step of the loop below, contiguous
    p = -np.expm1(-lam)
    tail = -np.expm1(-np.cumsum(lam[::-1], axis=0)[::-1])
    first = np.divide(p, tail, out=np.zeros_like(p), where=tail > 0)
    u = rng.random(lam.shape)
    out = np.empty(lam.shape, dtype=bool)
    found = np.zeros(lam.shape[1], dtype=bool)
    for j in range(lam.shape[0]):
        out[j] = u[j] < np.where(found, p[j], first[j])
        found |= out[j]
    return out.T


class _Changes:
    """The month's changes to what customers hold, by customer (row) and day of the month.

    A change on day ``d`` counts from day ``d`` on.
    """

    def __init__(self, rows, days, d_count, d_push):
        key = rows * 64 + days
        order = np.argsort(key, kind="stable")
        self.key = key[order]
        self.count = np.concatenate([[0], np.cumsum(d_count[order])])
        self.push = np.concatenate([[0], np.cumsum(d_push[order])])
        rows = self.key // 64
        self.who = rows[np.diff(rows, prepend=-1) != 0]  # sorted, distinct

    def on(self, rows: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Net change of the add-on count and of the pushed add-on held, up to ``days``."""
        lo = np.searchsorted(self.key, rows * 64, "left")
        hi = np.searchsorted(self.key, rows * 64 + days, "right")
        return self.count[hi] - self.count[lo], self.push[hi] - self.push[lo]


def _churn_offsets(rng, dim, base, n0, p0, changes: _Changes) -> np.ndarray:
    """Day of churn in the month for each active customer (``dim`` when they stay).

    ``base`` is the monthly hazard without add-on effects.  Comparing the cumulative hazard with
    an exponential draw samples the first event of a piecewise-constant hazard exactly.
    """
    need = rng.exponential(size=base.size)
    h = base * _HR_TIER[_TIER_OF[n0]] * np.where(p0, HR_PUSH, 1.0)
    off = np.where(need < h, np.minimum(need / h * dim, dim - 1), dim).astype(np.int64)
    # customers whose holdings change follow the hazard day by day; only those who could churn
    # at the highest hazard possible need it
    who = changes.who
    off[who] = dim
    who = who[need[who] < base[who] * _HR_TIER.max() * max(HR_PUSH, 1.0)]
    if who.size:
        dc, dp = changes.on(np.repeat(who, dim), np.tile(np.arange(dim), who.size))
        count = n0[who, None] + dc.reshape(who.size, dim)
        push = p0[who, None] + dp.reshape(who.size, dim)
        daily = (base[who, None] / dim) * _HR_TIER[_TIER_OF[count]]
        daily *= np.where(push > 0, HR_PUSH, 1.0)
        hit = np.cumsum(daily, axis=1) > need[who, None]
        off[who] = np.where(hit[:, -1], np.argmax(hit, axis=1), dim)
    return off


def _baseline(tenure: int) -> float:
    """Baseline monthly churn hazard in a month of the relationship (1 = the first)."""
    for lo, hi, h in BASELINE_HAZARD:
        if tenure >= lo and (hi is None or tenure <= hi):
            return h
    return 0.0


def _scores(rng, tier: np.ndarray, pushed: np.ndarray, nps: np.ndarray) -> np.ndarray:
    """CSAT (1-5) or NPS (0-10) answers whose distribution depends on the tier and the push."""
    k = tier.size
    mean = CSAT_BASE + np.take(CSAT_SHIFT, tier) + CSAT_PUSH_SHIFT * pushed
    csat = np.clip(np.rint(mean + CSAT_SD * rng.standard_normal(k)), 1, 5)
    probs = np.array(NPS_PROBS)[tier]
    p_det = probs[:, 0] + NPS_PUSH_SHIFT * pushed
    p_pas = probs[:, 1]
    u = rng.random(k)
    group = (u >= p_det).astype(np.int64) + (u >= p_det + p_pas)
    low = np.array([0, 7, 9])[group]
    high = np.array([6, 8, 10])[group]
    score = low + (rng.random(k) * (high - low + 1)).astype(np.int64)
    return np.where(nps, score, csat).astype(np.int64)


def _episodes(sim: dict, cust: dict) -> dict[str, np.ndarray]:
    """Every sale (base signups first, then add-ons in simulation order) with its end day."""
    n = len(cust["month"])
    e = sim["eps"]
    disc = 1.0 - np.array(CHANNEL_DISCOUNT)[cust["channel"]]
    base_unit = np.rint(np.array(PLAN_PRICE)[cust["plan"]] * 100 * disc).astype(np.int64)
    out = {
        "cust": np.concatenate([np.arange(n), e["cust"]]),
        "prod": np.concatenate([np.zeros(n, np.int8), e["prod"]]),
        "sold_s": np.concatenate([cust["signup_s"], e["sold_s"]]),
        "qty": np.concatenate([np.ones(n, np.int64), e["qty"]]),
        "unit": np.concatenate([base_unit, e["unit"]]),
        "ret_qty": np.concatenate([np.zeros(n, np.int64), e["ret_qty"]]),
        "ret_s": np.concatenate([np.zeros(n, np.int64), e["ret_s"]]),
    }
    end = np.full(len(out["cust"]), _NO_DATE, dtype=np.int64)
    end[sim["ends"]["ep"]] = sim["ends"]["day"]
    out["end_day"] = end
    return out


def _upsell_rate(ep: dict, span: tuple, n: int, target: float | None) -> float:
    """The monthly top-up rate per held product that gives ``target`` rows per customer.

    Upsells do not change what is held, so the held product-months are known before they are
    drawn and the rate follows from the rows still missing.
    """
    start, stop = span
    if target is None:
        return DEFAULT_UPSELL_RATE
    fixed = ep["cust"].size + int((ep["ret_qty"] > 0).sum())
    held_months = float(np.maximum(stop - start, 0).sum()) / (_DAY * _MONTH)
    want = target * n - fixed
    if want <= 0 or held_months <= 0:
        warnings.warn(
            f"purchases_per_customer={target} is below the {fixed / n:.2f} rows per customer that "
            "signups, add-on sales and returns already make; no upsell rows are generated",
            UserWarning,
            stacklevel=3,
        )
        return 0.0
    return want / held_months


def _order(cust: np.ndarray, when: np.ndarray, prod: np.ndarray) -> np.ndarray:
    """Stable order by customer, then time, then product (``prod`` is a rank, 0-15)."""
    if not cust.size:
        return np.arange(0)
    span = int(when.max() - when.min()) + 1
    if (int(cust.max()) + 1) * span * 16 < 2**62:
        # one int64 key sorts several times faster than a three-key lexsort
        key = (cust.astype(np.int64) * span + (when - when.min())) * 16 + prod
        return np.argsort(key, kind="stable")
    return np.lexsort((prod, when, cust))


def _held_span(ep: dict, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seconds between which an episode is held after its return (if any) and before its end."""
    fully_returned = (ep["ret_qty"] > 0) & (ep["ret_qty"] == ep["qty"])
    start = np.where(ep["ret_qty"] > 0, ep["ret_s"], ep["sold_s"])
    stop = np.where(ep["end_day"] == _NO_DATE, bounds[-1], ep["end_day"]) * _DAY
    stop = np.where(fully_returned, start, stop)
    return start, stop


def _purchase_rows(rng, ep: dict, span: tuple, upsell: float) -> dict:
    """Sales, returns and upsells as purchase rows, sorted by customer, time and product."""
    start, stop = span
    span = np.maximum(stop - start - 2, 0)
    counts = rng.poisson(upsell * span / (_DAY * _MONTH))
    src = np.repeat(np.arange(span.size), counts)
    # strictly after the sale (or its return) and before the end of the episode
    up_s = start[src] + 1 + (rng.random(src.size) * span[src]).astype(np.int64)
    up_qty = rng.integers(1, 4, size=src.size)

    ret = np.flatnonzero(ep["ret_qty"] > 0)

    def stack(name: str, dtype, returned=None, upsold=None) -> np.ndarray:
        """Sale rows, then return rows, then upsell rows of one column."""
        returned = ep[name][ret] if returned is None else returned
        upsold = ep[name][src] if upsold is None else upsold
        return np.concatenate([ep[name], returned, upsold]).astype(dtype, copy=False)

    at_s = stack("sold_s", np.int64, ep["ret_s"][ret], up_s)
    cust = stack("cust", np.int32)
    prod = stack("prod", np.int8)
    order = _order(cust, at_s, _PRODUCT_RANK[prod])
    rows = {"cust": cust[order], "prod": prod[order], "at_s": at_s[order]}
    del cust, prod, at_s
    rows["qty"] = stack("qty", np.int32, -ep["ret_qty"][ret], up_qty)[order]
    rows["revenue_cents"] = stack("unit", np.int64)[order] * rows["qty"]
    # a return row carries the end of the sale it nets against (empty for a full return), so
    # "ended_at empty" rows always net to what is still held
    rows["ended"] = stack("end_day", np.int32)[order]
    rows["upsells"] = src.size
    return rows


# --------------------------------------------------------------------------------------------
# frames


def _customer_ids(n: int) -> pa.Array:
    """C000001, C000002, ...: zero-padded to six digits, or more when needed."""
    digits = pc.utf8_lpad(pa.array(np.arange(1, n + 1)).cast(pa.string()), max(6, len(str(n))), "0")
    return pc.binary_join_element_wise("C", digits, "")


def _dates(days: np.ndarray) -> pa.Array:
    """Day numbers as an Arrow timestamp column; ``_NO_DATE`` becomes null."""
    return pa.array(days.astype("datetime64[D]").astype("datetime64[us]"),
                    mask=days == _NO_DATE)


def _frame(columns: dict[str, Any]) -> pd.DataFrame:
    """A frame whose text columns use pandas' default string dtype."""
    # split_blocks: no consolidation copy of same-typed columns into one block
    return pa.table(columns).to_pandas(split_blocks=True)


def _customers_frame(ids: pa.Array, cust: dict, churn_day: np.ndarray) -> pd.DataFrame:
    return _frame({
        "customer_id": ids,
        "signup_date": _dates(cust["signup_s"] // _DAY),
        "churn_date": _dates(churn_day),
        "plan": pc.take(pa.array(PLANS), pa.array(cust["plan"])),
        "region": pc.take(pa.array(REGIONS), pa.array(cust["region"])),
        "channel": pc.take(pa.array(CHANNELS), pa.array(cust["channel"])),
    })


def _purchases_frame(ids: pa.Array, rows: dict) -> pd.DataFrame:
    products = pa.array((BASE[0],) + _ADDON_IDS)
    return _frame({
        "customer_id": pc.take(ids, pa.array(rows["cust"])),
        "product_id": pc.take(products, pa.array(rows["prod"])),
        "purchased_at": (rows["at_s"] * 1_000_000).astype("datetime64[us]"),
        "quantity": rows["qty"].astype(np.int64),
        "revenue": rows["revenue_cents"] / 100.0,
        "ended_at": _dates(rows["ended"]),
    })


def _surveys_frame(ids: pa.Array, s: dict) -> pd.DataFrame:
    order = _order(s["cust"], s["day"], np.zeros(s["day"].size, dtype=np.int64))
    return _frame({
        "customer_id": pc.take(ids, pa.array(s["cust"][order].astype(np.int64))),
        "responded_at": _dates(s["day"][order].astype(np.int64)),
        "score": s["score"][order].astype(np.int64),
        "kind": pc.take(pa.array(["csat", "nps"]), pa.array(s["nps"][order].astype(np.int8))),
    })


def _products_frame() -> pd.DataFrame:
    rows = [BASE] + sorted((a[0], a[1], a[2]) for a in ADDONS)
    return _frame({
        "product_id": [r[0] for r in rows],
        "name": [r[1] for r in rows],
        "category": [r[2] for r in rows],
        "is_base": [r[0] == BASE[0] for r in rows],
    })


# --------------------------------------------------------------------------------------------
# truth


def _truth(*, seed, n, months, start, reference, target, cust, sim, ep, rows, upsell_rate,
           bounds, table_rows) -> dict:
    # customers active at the reference date, counted by the add-on mask they hold
    masks = np.bincount(sim["held"][sim["churn_day"] == _NO_DATE], minlength=len(_HAS))
    addon = ep["prod"] > 0
    per_product = _product_truth(masks, ep, n)
    truth = {
        "seed": int(seed),
        "customers": n,
        "start": start.strftime("%Y-%m-%d"),
        "months": months,
        "reference_date": reference.strftime("%Y-%m-%d"),
        "purchases_per_customer": target,
        "rows": dict(table_rows),
        "rows_per_customer": table_rows["purchases"] / n,
        "effects": [
            f"Cohorts grow {MONTHLY_GROWTH:.1%} a month: later signup quarters are bigger.",
            "Every customer buys the base product CORE at signup; add-on adoption rises with "
            "tenure and plan (Basic < Pro < Enterprise).",
            f"{ENTRY} is the entry add-on: bought early and most often first.",
            "Planted pairs: " + "; ".join(f"owning {a} or {b} multiplies the other's adoption "
                                          f"rate by {f:g}" for a, b, f in PAIRS) + ".",
            f"{PUSHED} is pushed through the sales channel regardless of need: most buyers "
            "cancel it within 90 days, their satisfaction drops and their churn hazard is "
            f"x{HR_PUSH:g} while they hold it.",
            "Churn hazard by add-ons currently held is an inverted U in benefit: "
            + ", ".join(f"{k}: x{v:g}" for k, v in zip(TIER_LABELS, HR_TIER, strict=True))
            + "; the baseline falls with tenure, so a naive churn-by-tier comparison flatters "
            "customers with many add-ons.",
            "Satisfaction (CSAT and NPS) rises with the tier up to 3–4 add-ons and falls at 5+.",
            f"About {RETURN_RATE:.0%} of add-on sales are returned within 1-14 days (mostly in "
            "full); upsell rows add quantity to products already held.",
        ],
        "attributes": {
            "plan_shares": dict(zip(PLANS, PLAN_SHARES, strict=True)),
            "region_shares": dict(zip(REGIONS, REGION_SHARES, strict=True)),
            "channel_shares_by_plan": {
                p: dict(zip(CHANNELS, s, strict=True)) for p, s in CHANNEL_SHARES_BY_PLAN.items()
            },
            "channel_discount": dict(zip(CHANNELS, CHANNEL_DISCOUNT, strict=True)),
            "base_monthly_price_by_plan": dict(zip(PLANS, PLAN_PRICE, strict=True)),
        },
        "cohorts": _cohort_truth(cust),
        "products": per_product,
        "adoption": _adoption_truth(sim, ep, addon),
        "affinity": _affinity_truth(masks),
        "returns": {
            "rate": RETURN_RATE,
            "window_days": list(RETURN_DAYS),
            "partial_share_of_multi_unit_returns": PARTIAL_RETURN_SHARE,
            "multi_unit_share_of_sales": MULTI_UNIT_SHARE,
            "applies_to": "add-on sales (not the base product, not upsells)",
            "observed_return_rows": int((ep["ret_qty"] > 0).sum()),
            "observed_full_returns": int(((ep["ret_qty"] > 0) & (ep["ret_qty"] == ep["qty"])).sum()),
        },
        "upsell": {
            "monthly_rate_per_held_product": upsell_rate,
            "quantity": [1, 3],
            "applies_to": "every product held, the base product included; dated strictly inside "
                          "the holding (after the sale or its return, before its end)",
            "observed_rows": rows["upsells"],
        },
        "cancellation": {
            "monthly_rate": CANCEL_RATE,
            "pushed_monthly_rate_first_months": PUSH_CANCEL_EARLY,
            "pushed_first_months": PUSH_EARLY_MONTHS,
            "pushed_monthly_rate_later": PUSH_CANCEL_LATER,
            "churn_ends_everything_held": True,
            # a cancellation never falls on the churn day: churn ends the rest
            "observed_cancellations": int(
                (addon & (ep["end_day"] != _NO_DATE)
                 & (ep["end_day"] != sim["churn_day"][ep["cust"]])).sum()
            ),
        },
        "pushed_addon": _pushed_truth(ep, addon),
        "churn": _churn_truth(sim, ep, bounds),
        "surveys": _survey_truth(sim["surveys"]),
    }
    return _clean(truth)


def _product_truth(masks: np.ndarray, ep: dict, n: int) -> list[dict]:
    bought = np.zeros((n, _N_ADDONS + 1), dtype=bool)
    bought[ep["cust"], ep["prod"]] = True
    buyers = bought[:, 1:].sum(axis=0)
    holders = masks @ _HAS
    active = max(int(masks.sum()), 1)
    by_rate = sorted(
        (a for a in ADDONS if a[0] != PUSHED), key=lambda a: (-a[4], a[0])
    )
    rank = {a[0]: i + 1 for i, a in enumerate(by_rate)}
    out = [{
        "product_id": BASE[0], "name": BASE[1], "category": BASE[2], "is_base": True,
        "monthly_price_by_plan": dict(zip(PLANS, PLAN_PRICE, strict=True)),
    }]
    for j, (pid, name, cat, price, rate) in enumerate(ADDONS):
        out.append({
            "product_id": pid, "name": name, "category": cat, "is_base": False,
            "monthly_price": price,
            "monthly_adoption_rate": rate if pid != PUSHED else "pushed: see pushed_addon",
            "popularity_rank": rank.get(pid),
            "observed_buyers": buyers[j],
            "observed_penetration_held": holders[j] / active,
        })
    return out


def _cohort_truth(cust: dict) -> dict:
    month = (cust["signup_s"] // _DAY).astype("datetime64[D]").astype("datetime64[M]")
    quarter = month.astype(np.int64) // 3  # quarters since 1970
    counts = np.bincount(quarter - quarter[0])
    quarters = {f"{1970 + q // 4}Q{q % 4 + 1}": c for q, c in enumerate(counts, quarter[0])}
    return {
        "monthly_growth_rate": MONTHLY_GROWTH,
        "allocation": "signups in month t proportional to (1 + monthly_growth_rate) ** t, "
                      "rounded to whole customers",
        "signups_by_month": [int(c) for c in cust["counts"]],
        "signups_by_quarter": {k: int(v) for k, v in quarters.items()},
    }


def _adoption_truth(sim: dict, ep: dict, addon: np.ndarray) -> dict:
    # the first add-on sale of each customer (returned sales count: they were bought first)
    c, p, s = ep["cust"][addon], ep["prod"][addon], ep["sold_s"][addon]
    order = _order(c, s, _PRODUCT_RANK[p])
    c, p = c[order], p[order]
    first = np.diff(c, prepend=-1) != 0
    firsts = np.bincount(p[first] - 1, minlength=_N_ADDONS)
    share = firsts / max(firsts.sum(), 1)
    return {
        "monthly_rate_by_product": {a[0]: a[4] for a in ADDONS if a[0] != PUSHED},
        "rate_formula": "P(adopt in a month) = 1 - exp(-rate x tenure_multiplier x "
                        "plan_multiplier x saturation ** add-ons held x pair factors), for "
                        "add-ons not held at the month's start; customers act from the month "
                        "after their signup month",
        "saturation": SATURATION,
        "plan_multiplier": dict(zip(PLANS, PLAN_ADOPTION.tolist(), strict=True)),
        "tenure_multiplier": "min(0.4 + 0.15 x tenure, 2.0); tenure = month of the relationship "
                             "at mid-month (1 = the first 30.44 days after signup)",
        "tenure_multiplier_by_month": sim["tenure_mult"].tolist(),
        "entry_product": ENTRY,
        "entry_multiplier": f"x{ENTRY_MULT[0]:g} for months 1-{ENTRY_EARLY_MONTHS} after signup, "
                            f"x{ENTRY_MULT[1]:g} after (no tenure ramp)",
        "observed_first_addon_share": {
            _ADDON_IDS[j]: float(share[j]) for j in range(_N_ADDONS)
        },
        "observed_customers_with_addons": int(first.sum()),
        "observed_addon_sales": int(addon.sum()),
    }


def _affinity_truth(masks: np.ndarray) -> dict:
    has = _HAS.astype(np.int64)
    n_ab = (has.T * masks) @ has  # customers holding both a and b (a == b: holding a)
    n_a = np.diag(n_ab)
    total = int(masks.sum())
    min_support = max(20, int(np.ceil(0.005 * total)))

    def lift(a: int, b: int) -> float:
        denom = int(n_a[a]) * int(n_a[b])
        return float(int(n_ab[a, b]) * total / denom) if denom else 0.0

    pairs = []
    for a, b, f in PAIRS:
        i, j = _ADDON_IDS.index(a), _ADDON_IDS.index(b)
        pairs.append({"a": a, "b": b, "factor": f, "observed_lift": lift(i, j),
                      "observed_n_ab": int(n_ab[i, j])})
    ranked = sorted(
        ((lift(i, j), _ADDON_IDS[i], _ADDON_IDS[j], int(n_ab[i, j]))
         for i in range(_N_ADDONS) for j in range(i + 1, _N_ADDONS) if n_ab[i, j] >= min_support),
        key=lambda x: (-x[0], x[1], x[2]),
    )
    return {
        "pairs": pairs,
        "mechanism": "owning either product of a pair multiplies the monthly adoption rate of "
                     "the other by the factor (both directions)",
        "basis": "add-ons held at reference_date by customers active at reference_date; "
                 "lift = n_ab x N / (n_a x n_b)",
        "observed_active_customers": total,
        "top_pairs_min_n_ab": min_support,
        "top_pairs_observed": [
            {"a": a, "b": b, "lift": v, "n_ab": k} for v, a, b, k in ranked[:5]
        ],
    }


def _pushed_truth(ep: dict, addon: np.ndarray) -> dict:
    ended = addon & (ep["end_day"] != _NO_DATE)
    days = ep["end_day"] - ep["sold_s"] // _DAY
    push = ep["prod"] == _PUSH + 1
    sold = push.sum()

    def median(mask):
        return float(np.median(days[mask])) if mask.any() else None

    return {
        "product_id": PUSHED,
        "name": dict((a[0], a[1]) for a in ADDONS)[PUSHED],
        "monthly_adoption_rate_by_channel": dict(zip(CHANNELS, PUSH_RATE.tolist(), strict=True)),
        "adoption_multiplier_after_months": {"months": PUSH_MONTHS, "multiplier": PUSH_LATER_MULT},
        "independent_of": "tenure ramp, plan and pair factors (sold regardless of need)",
        "cancel_monthly_rate_first_months": PUSH_CANCEL_EARLY,
        "cancel_first_months": PUSH_EARLY_MONTHS,
        "churn_hazard_ratio_while_held": HR_PUSH,
        "csat_mean_shift_after_purchase": CSAT_PUSH_SHIFT,
        "nps_detractor_shift_after_purchase": NPS_PUSH_SHIFT,
        "nps_promoter_shift_after_purchase": -NPS_PUSH_SHIFT,
        "observed_sales": int(sold),
        "observed_median_days_to_end": median(ended & push),
        "observed_median_days_to_end_other_addons": median(ended & ~push),
        "observed_share_ended_within_90_days": (
            float(((days <= 90) & ended & push).sum() / sold) if sold else None
        ),
    }


def _churn_truth(sim: dict, ep: dict, bounds: np.ndarray) -> dict:
    churned = sim["churn_day"] != _NO_DATE
    # the naive view: distinct add-ons a customer ever kept (not fully returned) vs churned or not
    kept = (ep["prod"] > 0) & ~((ep["ret_qty"] > 0) & (ep["ret_qty"] == ep["qty"]))
    ever = np.zeros((churned.size, _N_ADDONS + 1), dtype=bool)
    ever[ep["cust"][kept], ep["prod"][kept]] = True
    ever = ever.sum(axis=1)
    naive = _rate_by_tier(_TIER_OF[np.minimum(ever, len(_TIER_OF) - 1)], churned)
    base0 = naive["churn_rate_by_tier"]["0"]
    naive["rate_ratio_vs_tier_0"] = {
        k: (v / base0 if base0 and v is not None else None)
        for k, v in naive["churn_rate_by_tier"].items()
    }
    naive["definition"] = ("tier = distinct add-ons ever bought and not fully returned; "
                           "rate = share of all customers churned by reference_date")
    out = {
        "hazard_ratio_by_tier": dict(zip(TIER_LABELS, HR_TIER, strict=True)),
        "tier_bins": TIER_BINS,
        "tier_definition": "number of distinct add-ons (not the base product) held, day by day: "
                           "a sale counts from its day, a cancellation (ended_at) or a full "
                           "return stops counting on its day; time-varying",
        "baseline_monthly_hazard_by_tenure": [
            {"from_month": lo, "to_month": hi, "hazard": h} for lo, hi, h in BASELINE_HAZARD
        ],
        "baseline_reference": "tier 0, plan Basic, pushed add-on not held",
        "hazard_ratio_by_plan": dict(zip(PLANS, HR_PLAN, strict=True)),
        "pushed_addon_hazard_ratio": HR_PUSH,
        "model": "hazard per month = baseline(tenure) x HR(tier) x HR(plan) x HR(pushed "
                 "add-on held), spread evenly over the days of the calendar month with the "
                 "tier and pushed add-on held each day; tenure = month of the relationship at "
                 "mid-month (1 = the first 30.44 days after signup); customers are at risk from "
                 "the first calendar month after their signup month",
        "recovery": "a Cox model with time-varying tier dummies (reference tier 0), adjusted for "
                    "plan and for holding the pushed add-on, estimates hazard_ratio_by_tier",
        "observed_churned": int(churned.sum()),
        "naive": naive,
    }
    lm = sim["landmark"]
    if lm is not None:
        start = int(bounds[lm["t"]])
        gone = churned[lm["cust"]]
        old = lm["days"] >= 365
        out["landmark_12m"] = {
            "landmark_date": str(np.datetime64(start, "D")),
            "definition": "customers active at the start of landmark_date; tier = add-ons held "
                          "then (before that day's changes); rate = share churned before "
                          "reference_date",
            **_rate_by_tier(lm["tier"], gone),
            "signed_up_365_days_before": _rate_by_tier(lm["tier"][old], gone[old]),
        }
    return out


def _rate_by_tier(tier: np.ndarray, event: np.ndarray) -> dict:
    k = len(TIER_LABELS)
    total = np.bincount(tier, minlength=k)
    hits = np.bincount(tier, weights=event.astype(np.float64), minlength=k)
    return {
        "customers_by_tier": {lab: int(total[i]) for i, lab in enumerate(TIER_LABELS)},
        "churn_rate_by_tier": {
            lab: (float(hits[i] / total[i]) if total[i] else None)
            for i, lab in enumerate(TIER_LABELS)
        },
    }


def _survey_truth(s: dict) -> dict:
    tier, score, nps = s["tier"].astype(np.int64), s["score"], s["nps"].astype(bool)
    csat_mean, nps_obs = {}, {}
    for i, lab in enumerate(TIER_LABELS):
        c = score[(tier == i) & ~nps]
        csat_mean[lab] = float(c.mean()) if c.size else None
        x = score[(tier == i) & nps]
        nps_obs[lab] = float(100 * ((x >= 9).mean() - (x <= 6).mean())) if x.size else None
    return {
        "monthly_response_rate": RESPONSE_RATE,
        "nps_share": NPS_SHARE,
        "tier_used": "add-ons held on the response day (bought that day or before, not ended "
                     "by then, not fully returned)",
        "csat": {
            "base_mean": CSAT_BASE,
            "mean_shift_by_tier": dict(zip(TIER_LABELS, CSAT_SHIFT, strict=True)),
            "latent_mean_by_tier": {
                lab: CSAT_BASE + d for lab, d in zip(TIER_LABELS, CSAT_SHIFT, strict=True)
            },
            "sd": CSAT_SD,
            "pushed_shift": CSAT_PUSH_SHIFT,
            "rounding": "score = clip(round(latent mean + sd x N(0, 1)), 1, 5), so observed "
                        "means are pulled toward 3",
            "observed_mean_by_tier": csat_mean,
        },
        "nps": {
            "probabilities_by_tier": {
                lab: {"detractor": p[0], "passive": p[1], "promoter": p[2]}
                for lab, p in zip(TIER_LABELS, NPS_PROBS, strict=True)
            },
            "score_ranges": {"detractor": [0, 6], "passive": [7, 8], "promoter": [9, 10]},
            "scores_uniform_within_group": True,
            "true_nps_by_tier": {
                lab: 100 * (p[2] - p[0]) for lab, p in zip(TIER_LABELS, NPS_PROBS, strict=True)
            },
            "pushed_shift": {"detractor": NPS_PUSH_SHIFT, "promoter": -NPS_PUSH_SHIFT},
            "observed_nps_by_tier": nps_obs,
        },
        "observed_responses": int(score.size),
    }


def _clean(obj: Any) -> Any:
    """Plain JSON types with floats rounded to 6 decimals, so truth.json is stable."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return round(float(obj), 6)
    return obj


# --------------------------------------------------------------------------------------------
# files

_DATE_COLUMNS = {"signup_date", "churn_date", "ended_at", "responded_at"}
_TIMESTAMP_COLUMNS = {"purchased_at"}
_MONEY_COLUMNS = {"revenue"}


def write_sample(
    out: str | Path,
    *,
    customers: int = 5000,
    seed: int = 42,
    format: str = "csv",
    **kw: Any,
) -> dict:
    """Generate a sample and write its four tables and ``truth.json`` into a folder.

    Parameters
    ----------
    out : str or Path
        The folder; created if missing, files in it are overwritten.
    customers : int, default 5000
        Number of customers.
    seed : int, default 42
        Seed of the random generator; the same arguments give byte-identical files.
    format : {"csv", "parquet"}, default "csv"
        File format of the tables.  CSV dates are ``YYYY-MM-DD``, timestamps
        ``YYYY-MM-DD HH:MM:SS``, money has two decimals and a missing value is empty.
    **kw
        Passed to :func:`generate` (``start``, ``months``, ``purchases_per_customer``).

    Returns
    -------
    dict
        ``{"files": [paths written], "rows": {table: row count}}``.

    Examples
    --------
    >>> import tempfile
    >>> from crosssell.sample import write_sample
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     written = write_sample(tmp, customers=200, seed=7)
    >>> sorted(written["rows"])
    ['customers', 'products', 'purchases', 'surveys']
    """
    if format not in ("csv", "parquet"):
        raise ParameterError(f"format must be 'csv' or 'parquet', got {format!r}")
    data = generate(customers=customers, seed=seed, **kw)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files, rows = [], {}
    for name in ("customers", "purchases", "surveys", "products"):
        frame = getattr(data, name)
        path = folder / f"{name}.{format}"
        if format == "csv":
            _write_csv(frame, path)
        else:
            pq.write_table(_arrow_for_file(frame), path, compression="zstd")
        files.append(str(path))
        rows[name] = len(frame)
    truth_path = folder / "truth.json"
    truth_path.write_text(
        json.dumps(data.truth, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
        + "\n",
        encoding="utf-8",
    )
    files.append(str(truth_path))
    return {"files": files, "rows": rows}


def _arrow_for_file(frame: pd.DataFrame) -> pa.Table:
    """Typed Arrow columns: dates as date32, timestamps to the second, no pandas metadata."""
    columns = {}
    for name in frame.columns:
        col = pa.array(frame[name])
        if name in _DATE_COLUMNS:
            col = col.cast(pa.date32())
        elif name in _TIMESTAMP_COLUMNS:
            col = col.cast(pa.timestamp("s"))
        elif pa.types.is_large_string(col.type):
            col = col.cast(pa.string())
        columns[name] = col
    return pa.table(columns)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV with fixed formatting and no quoting (the generated text never needs it)."""
    table = _arrow_for_file(frame)
    columns = {}
    for name in table.column_names:
        col = table[name]
        if name in _MONEY_COLUMNS:
            col = _money_text(frame[name].to_numpy())
        columns[name] = col
    with open(path, "wb") as fh:
        fh.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(
            pa.table(columns), fh,
            pacsv.WriteOptions(include_header=False, quoting_style="none"),
        )


def _money_text(values: np.ndarray) -> pa.Array:
    """Amounts as text with exactly two decimals ("19.00", "-0.50")."""
    cents = np.rint(values * 100).astype(np.int64)
    whole, frac = np.divmod(np.abs(cents), 100)
    text = pc.binary_join_element_wise(
        pa.array(whole).cast(pa.string()), pc.utf8_lpad(pa.array(frac).cast(pa.string()), 2, "0"),
        ".",
    )
    return pc.if_else(pa.array(cents < 0), pc.binary_join_element_wise("-", text, ""), text)
