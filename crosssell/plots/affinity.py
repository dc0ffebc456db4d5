"""Figures for product affinity: lift heatmap, first → second flow, whitespace, recommendation check.

Each function draws a frame returned by :mod:`crosssell.affinity` and computes no statistic:
counts, lifts, p-values and intervals all come in the frame.  The heatmap orders its products by
hierarchical clustering of their lift rows, which is a layout choice (as in
``seaborn.clustermap``), not an estimate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path
from matplotlib.ticker import PercentFormatter

from ..errors import ParameterError
from ._common import caption, get_ax

_ADJUST_NAMES = {"fdr_bh": "Benjamini–Hochberg", "holm": "Holm", "bonferroni": "Bonferroni"}

__all__ = ["lift_heatmap", "transition_flow", "whitespace_heatmap", "recommendation_eval"]


def _require(frame, needed: list[str], what: str, source: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ParameterError(f"{what} draws the DataFrame returned by {source}, not {type(frame).__name__}")
    if frame.empty:
        reason = frame.attrs.get("reason") or "the frame is empty"
        raise ParameterError(f"nothing to draw in {what}: {reason}")
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ParameterError(
            f"{what} needs the columns {missing}, which this frame lacks; pass the frame returned by {source}"
        )
    return frame


def _ownership_text(frame) -> str:
    d = frame.attrs.get("definition") or {}
    bits = []
    if d.get("ownership"):
        bits.append(d["ownership"][0].upper() + d["ownership"][1:])
    if d.get("reference_date"):
        bits.append(f"as of {d['reference_date']}")
    if d.get("filters"):
        bits.append("segment: " + ", ".join(f"{k}={v}" for k, v in d["filters"].items()))
    return "; ".join(bits) + ("." if bits else "")


def _one_segment(frame: pd.DataFrame, segment, what: str) -> pd.DataFrame:
    by = [c for c in frame.attrs.get("by", []) if c in frame.columns]
    if not by:
        return frame
    if segment is None:
        groups = frame[by].drop_duplicates()
        if len(groups) == 1:
            return frame
        example = ", ".join(f"{c}={groups.iloc[0][c]!r}" for c in by)
        raise ParameterError(
            f"{what} draws one segment at a time and this frame has {len(groups)} ({', '.join(by)}); "
            f"pass segment={{{example}}}"
        )
    if not isinstance(segment, dict):
        if len(by) != 1:
            raise ParameterError(f"segment must be a dict of {by} values")
        segment = {by[0]: segment}
    keep = np.ones(len(frame), dtype=bool)
    for col, value in segment.items():
        if col not in by:
            raise ParameterError(f"segment names {col!r}, which is not a segment column of this frame ({by})")
        keep &= frame[col].astype(str).to_numpy() == str(value)
    if not keep.any():
        raise ParameterError(f"nothing to draw: no rows for segment {segment}")
    return frame[keep]


# --------------------------------------------------------------------------------------------
# lift heatmap


def lift_heatmap(pairs: pd.DataFrame, *, top: int = 20, segment=None, ax=None, title: str | None = None):
    """Lift between the most owned products, clustered; only significant pairs carry a number.

    Parameters
    ----------
    pairs : DataFrame
        From :func:`crosssell.affinity`.
    top : int, default 20
        How many products (the most owned) to show.
    segment : value or dict, optional
        Which segment to draw when the pairs were computed ``by`` a segment.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import crosssell as cs, crosssell.plots
    >>> ax = cs.plots.lift_heatmap(cs.affinity(cs.load(cs.sample_path())))
    """
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import pdist

    pairs = _require(pairs, ["product_a", "product_b", "customers_a", "customers_b", "lift", "significant"],
                     "lift_heatmap", "crosssell.affinity")
    if not isinstance(top, int) or top < 2:
        raise ParameterError(f"top must be a whole number of at least 2, not {top!r}")
    pairs = _one_segment(pairs, segment, "lift_heatmap")
    owners = pd.concat([
        pairs[["product_a", "customers_a"]].set_axis(["product", "n"], axis=1),
        pairs[["product_b", "customers_b"]].set_axis(["product", "n"], axis=1),
    ]).groupby("product")["n"].max().sort_values(ascending=False, kind="stable")
    products = owners.index[:top].tolist()
    pos = {p: i for i, p in enumerate(products)}
    sub = pairs[pairs["product_a"].isin(pos) & pairs["product_b"].isin(pos)]
    n = len(products)
    log_lift = np.full((n, n), np.nan)
    sig = np.zeros((n, n), dtype=bool)
    text = np.full((n, n), "", dtype=object)
    for a, b, lift, s in sub[["product_a", "product_b", "lift", "significant"]].itertuples(index=False):
        i, j = pos[a], pos[b]
        value = np.log2(lift) if lift > 0 else np.nan
        log_lift[i, j] = log_lift[j, i] = value
        sig[i, j] = sig[j, i] = bool(s)
        if s:
            text[i, j] = text[j, i] = f"{lift:.1f}"
    if n >= 3:
        # display order: products with similar lift rows sit together (0 = independent or unknown)
        rows = np.nan_to_num(log_lift, nan=0.0)
        order = leaves_list(linkage(pdist(rows), "average", optimal_ordering=True))
    else:
        order = np.arange(n)
    labels = [products[i] for i in order]
    grid = pd.DataFrame(log_lift[np.ix_(order, order)], index=labels, columns=labels)
    ax = get_ax(ax, figsize=(max(6, 0.45 * n + 3), max(5, 0.45 * n + 2)))
    finite = np.abs(grid.to_numpy()[np.isfinite(grid.to_numpy())])
    span = max(1.0, float(finite.max())) if finite.size else 1.0
    sns.heatmap(grid, mask=grid.isna(), cmap="RdBu_r", center=0, vmin=-span, vmax=span, annot=text[np.ix_(order, order)],
                fmt="", annot_kws={"fontsize": 7}, linewidths=0.5, linecolor="0.9", square=True, ax=ax,
                cbar_kws={"label": "lift (log scale; ×1 = independent)"})
    cbar = ax.collections[0].colorbar
    ticks = np.arange(-np.floor(span), np.floor(span) + 1)
    cbar.set_ticks(ticks)
    cbar.set_ticklabels([f"×{2.0 ** t:g}" for t in ticks])
    ax.set_xlabel("product")
    ax.set_ylabel("product")
    ax.set_title(title or "Which products go together (lift)")
    d = pairs.attrs.get("definition") or {}
    n_cust = int(pairs["customers"].iloc[0]) if "customers" in pairs.columns else None
    caption(ax, " ".join(filter(None, [
        f"Lift = share owning both / (share owning A × share owning B), among {n_cust:,} customers."
        if n_cust else "Lift = P(A and B) / (P(A)·P(B)).",
        _ownership_text(pairs),
        f"Numbers only where the pair is significant after {_ADJUST_NAMES.get(d.get('adjust'), 'multiple-comparison')} "
        f"correction (adjusted p < {d.get('alpha', 0.05):g}); blank: owned together by fewer than "
        f"min_support = {d.get('min_support', '?')} of customers.",
        f"The {n} most owned products, ordered by clustering of their lift rows.",
    ])))
    return ax


# --------------------------------------------------------------------------------------------
# first → second flow


def _band(ax, x0, x1, y0a, y0b, y1a, y1b, color):
    """A filled band from [y0a, y0b] at x0 to [y1a, y1b] at x1 with smooth (cubic) edges."""
    xm = (x0 + x1) / 2
    verts = [(x0, y0a), (xm, y0a), (xm, y1a), (x1, y1a), (x1, y1b), (xm, y1b), (xm, y0b), (x0, y0b), (x0, y0a)]
    codes = [Path.MOVETO, Path.CURVE4, Path.CURVE4, Path.CURVE4, Path.LINETO, Path.CURVE4, Path.CURVE4,
             Path.CURVE4, Path.CLOSEPOLY]
    ax.add_patch(PathPatch(Path(verts, codes), facecolor=color, edgecolor="none", alpha=0.45))


def transition_flow(transitions, *, top: int = 8, show_none: bool = True, ax=None, title: str | None = None):
    """Flow from each customer's first product to their second (``"(none yet)"`` included).

    Parameters
    ----------
    transitions : DataFrame or AcquisitionOrder
        ``AcquisitionOrder.transitions`` from :func:`crosssell.acquisition_order` (or the
        object itself).
    top : int, default 8
        Products shown on each side; the rest are pooled as "other".
    show_none : bool, default True
        Show the customers with no second product yet (usually the largest flow: leaving them
        out would flatter the picture).
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import crosssell as cs, crosssell.plots
    >>> ax = cs.plots.transition_flow(cs.acquisition_order(cs.load(cs.sample_path())))
    """
    if hasattr(transitions, "transitions") and not isinstance(transitions, pd.DataFrame):
        transitions = transitions.transitions
    t = _require(transitions, ["first_product", "second_product", "customers"], "transition_flow",
                 "crosssell.acquisition_order(...).transitions")
    if not isinstance(top, int) or top < 1:
        raise ParameterError(f"top must be a whole number of at least 1, not {top!r}")
    none = "(none yet)"
    t = t if show_none else t[t["second_product"] != none]
    if t.empty:
        raise ParameterError("nothing to draw in transition_flow: no customer has a second product yet")
    total = float(t["customers"].sum())
    left_rank = t.groupby("first_product")["customers"].sum().sort_values(ascending=False, kind="stable")
    right_rank = t[t["second_product"] != none].groupby("second_product")["customers"].sum()
    right_rank = right_rank.sort_values(ascending=False, kind="stable")
    keep_l = list(left_rank.index[:top])
    keep_r = list(right_rank.index[:top])
    flows = t.assign(
        left=np.where(t["first_product"].isin(keep_l), t["first_product"], "other"),
        right=np.where(t["second_product"].isin(keep_r) | (t["second_product"] == none), t["second_product"], "other"),
    ).groupby(["left", "right"], sort=False)["customers"].sum().reset_index()
    left_nodes = keep_l + (["other"] if (flows["left"] == "other").any() else [])
    right_nodes = keep_r + (["other"] if (flows["right"] == "other").any() else []) + (
        [none] if (flows["right"] == none).any() else [])
    gap = 0.02
    ax = get_ax(ax, figsize=(9, 6))

    def layout(nodes, side):
        size = flows.groupby(side)["customers"].sum().reindex(nodes).fillna(0) / total
        scale = (1 - gap * (len(nodes) - 1))
        tops, y = {}, 1.0
        for node in nodes:
            tops[node] = y
            y -= size[node] * scale + gap
        return size * scale, tops

    lsize, ltop = layout(left_nodes, "left")
    rsize, rtop = layout(right_nodes, "right")
    scale = 1 - gap * (max(len(left_nodes), len(right_nodes)) - 1)
    palette = dict(zip(left_nodes, sns.color_palette("tab10", len(left_nodes)), strict=True))
    lcur, rcur = dict(ltop), dict(rtop)
    flows = flows.assign(
        __l=flows["left"].map({n: i for i, n in enumerate(left_nodes)}),
        __r=flows["right"].map({n: i for i, n in enumerate(right_nodes)}),
    ).sort_values(["__l", "__r"])
    x0, x1, width = 0.0, 1.0, 0.04
    for left, right, value in flows[["left", "right", "customers"]].itertuples(index=False):
        h = value / total * (1 - gap * (len(left_nodes) - 1))
        h_r = value / total * (1 - gap * (len(right_nodes) - 1))
        _band(ax, x0 + width, x1, lcur[left], lcur[left] - h, rcur[right], rcur[right] - h_r, palette[left])
        lcur[left] -= h
        rcur[right] -= h_r
    for nodes, sizes, tops, x, ha, side in ((left_nodes, lsize, ltop, x0, "right", "left"),
                                            (right_nodes, rsize, rtop, x1, "left", "right")):
        shares = flows.groupby(side)["customers"].sum() / total
        for node in nodes:
            color = palette.get(node, "0.6") if side == "left" else ("0.8" if node == none else "0.45")
            ax.add_patch(Rectangle((x, tops[node] - sizes[node]), width, sizes[node], color=color))
            tx = x - 0.01 if side == "left" else x + width + 0.01
            ax.text(tx, tops[node] - sizes[node] / 2, f"{node}  {shares[node]:.0%}", ha=ha, va="center", fontsize=8)
    ax.set_xlim(-0.45, 1.5)
    ax.set_ylim(min(0.0, 1 - scale - 0.05), 1.02)
    ax.axis("off")
    ax.text(x0 + width / 2, 1.04, "first product", ha="center", fontsize=9, weight="bold")
    ax.text(x1 + width / 2, 1.04, "second product", ha="center", fontsize=9, weight="bold")
    ax.set_title(title or "What customers buy after their first product", pad=18)
    d = transitions.attrs.get("definition") or {}
    caption(ax, " ".join(filter(None, [
        f"Shares of {total:,.0f} customers with a counted product.",
        "(none yet): no second product by the reference date." if show_none else
        "Customers with no second product yet are left out.",
        d.get("ties", "").capitalize() + "." if d.get("ties") else "",
        f"The {top} largest products per side; the rest pooled as 'other'.",
    ])))
    return ax


# --------------------------------------------------------------------------------------------
# whitespace heatmap


def whitespace_heatmap(frame: pd.DataFrame, *, value: str = "share", top: int = 15, ax=None,
                       title: str | None = None):
    """Segment × product penetration (or gap to the best segment), from :func:`crosssell.whitespace`.

    Parameters
    ----------
    frame : DataFrame
        From :func:`crosssell.whitespace`.
    value : {"share", "gap"}
        Colour by the segment's penetration, or by its gap to the best segment.
    top : int, default 15
        Products with the most untapped customers in total.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import crosssell as cs, crosssell.plots
    >>> ax = cs.plots.whitespace_heatmap(cs.whitespace(cs.load(cs.sample_path()), by="plan"))
    """
    frame = _require(frame, ["product_id", "share", "gap", "untapped", "population"], "whitespace_heatmap",
                     "crosssell.whitespace")
    if value not in ("share", "gap"):
        raise ParameterError(f"value must be 'share' or 'gap', not {value!r}")
    if not isinstance(top, int) or top < 1:
        raise ParameterError(f"top must be a whole number of at least 1, not {top!r}")
    by = [c for c in frame.attrs.get("by", []) if c in frame.columns]
    if not by:
        raise ParameterError("whitespace_heatmap needs the segment columns of crosssell.whitespace's frame")
    label = frame[by[0]].astype(str)
    for col in by[1:]:
        label = label + " / " + frame[col].astype(str)
    if "small" in frame.columns:
        label = label.where(~frame["small"].astype(bool), label + " (small)")
    f = frame.assign(__segment=label.to_numpy())
    products = f.groupby("product_id")["untapped"].sum().sort_values(ascending=False, kind="stable")
    products = products.index[:top].tolist()
    f = f[f["product_id"].isin(products)]
    grid = f.pivot_table(index="__segment", columns="product_id", values=value, aggfunc="first")
    grid = grid.reindex(columns=products)
    grid.index.name = ", ".join(by)
    ax = get_ax(ax, figsize=(max(7, 0.6 * len(products) + 3), max(3.5, 0.45 * len(grid) + 2)))
    cmap = "Blues" if value == "share" else "Oranges"
    sns.heatmap(grid, cmap=cmap, vmin=0, annot=True, fmt=".0%", annot_kws={"fontsize": 7}, linewidths=0.5,
                linecolor="white", ax=ax,
                cbar_kws={"label": "share of the segment's customers who own it" if value == "share"
                          else "gap to the best segment (percentage points)"})
    ax.set_xlabel("product")
    ax.set_ylabel(", ".join(by))
    ax.tick_params(axis="x", rotation=45)
    ax.set_title(title or ("Penetration by segment" if value == "share" else "Untapped cross-sell: gap to the best segment"))
    ax.collections[0].colorbar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    caption(ax, " ".join(filter(None, [
        _ownership_text(frame),
        "Gap = best segment's share − this segment's share; the best segment is chosen among those with "
        f"at least {frame.attrs.get('min_customers', '?')} customers (smaller ones are marked 'small').",
        f"The {len(products)} products with the most untapped customers (gap × segment size).",
    ])))
    return ax


# --------------------------------------------------------------------------------------------
# recommendation evaluation


def recommendation_eval(frame: pd.DataFrame, *, ax=None, title: str | None = None):
    """Hit rate, precision and coverage of the recommender beside the popularity baseline.

    Parameters
    ----------
    frame : DataFrame
        From :func:`crosssell.evaluate_recommendations`.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import crosssell as cs, crosssell.plots
    >>> ev = cs.evaluate_recommendations(cs.load(cs.sample_path()))
    >>> ax = cs.plots.recommendation_eval(ev)
    """
    frame = _require(frame, ["method", "metric", "estimate", "ci_low", "ci_high"], "recommendation_eval",
                     "crosssell.evaluate_recommendations")
    ax = get_ax(ax, figsize=(7, 4.5))
    metrics = [m for m in ("hit_rate", "precision", "coverage") if m in set(frame["metric"])]
    methods = list(dict.fromkeys(frame["method"]))
    width = 0.8 / len(methods)
    colors = {"next_best_product": "C0", "popularity": "0.6"}
    for i, method in enumerate(methods):
        sub = frame[frame["method"] == method].set_index("metric").reindex(metrics)
        x = np.arange(len(metrics)) + (i - (len(methods) - 1) / 2) * width
        est = sub["estimate"].to_numpy(float)
        ax.bar(x, est, width=width * 0.95, color=colors.get(method, f"C{i + 1}"),
               label=method.replace("_", " "))
        low, high = sub["ci_low"].to_numpy(float), sub["ci_high"].to_numpy(float)
        ok = np.isfinite(low) & np.isfinite(high)
        ax.errorbar(x[ok], est[ok], yerr=[est[ok] - low[ok], high[ok] - est[ok]], fmt="none", ecolor="0.2",
                    capsize=3, lw=1)
        for xi, e in zip(x, est, strict=True):
            if np.isfinite(e):
                ax.annotate(f"{e:.0%}" if e >= 0.1 else f"{e:.1%}", (xi, e), xytext=(0, 3),
                            textcoords="offset points", ha="center", va="bottom", fontsize=7)
    k = frame.attrs.get("k", "k")
    ax.set_xticks(np.arange(len(metrics)))
    ax.set_xticklabels([{"hit_rate": f"hit rate@{k}", "precision": f"precision@{k}",
                         "coverage": "catalog coverage"}[m] for m in metrics])
    ax.set_ylabel("share (0–1)")
    ax.set_ylim(0, min(1.05, max(0.1, float(np.nanmax(frame["ci_high"].fillna(frame["estimate"]))) * 1.2)))
    ax.legend(frameon=False)
    ax.set_title(title or "Do the recommendations beat 'offer the most popular'?")
    d = frame.attrs.get("definition") or {}
    comp = frame.attrs.get("comparison") or {}
    diff = ""
    if comp:
        diff = (f"Hit-rate difference (recommender − popularity): {comp['difference']:+.1%} "
                f"[{comp['low']:+.1%}, {comp['high']:+.1%}], McNemar p = {comp['p_value']:.2g}.")
    caption(ax, " ".join(filter(None, [
        f"Each of {frame.attrs.get('customers', 0):,} customers with two or more products has their "
        f"{d.get('holdout', 'last')} product hidden; both methods recommend {k} products from the rest, "
        "leave-one-out (the customer's own row is not counted).",
        "Bars: Wilson intervals.", diff, _ownership_text(frame),
    ])))
    return ax

