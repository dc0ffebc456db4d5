"""Figures for satisfaction and churn by tier: survival curves, tier bars, forest plots and the
naive-versus-corrected comparison.

Each function draws what :mod:`crosssell.outcomes` computed (estimates, intervals, at-risk counts,
the method text in ``attrs``) and computes nothing itself.
"""

from __future__ import annotations

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd

from ._common import caption, get_ax

__all__ = ["survival_curves", "tier_bars", "forest", "naive_vs_corrected"]

_METHOD_STYLE = {"naive": ("C7", "o"), "landmark": ("C0", "s"), "time-varying": ("C3", "D")}


def _plain_log(axis):
    """Log-scale ticks labelled 0.5, 1, 2 rather than 5×10⁻¹."""
    axis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(mticker.NullFormatter())


def _tiers_in(frame: pd.DataFrame, column: str = "tier") -> list[str]:
    col = frame[column]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return [str(c) for c in col.cat.categories if (col == c).any()]
    return list(dict.fromkeys(col.astype(str)))


def survival_curves(result, *, ax=None, at_risk: bool = True, tiers=None, title: str | None = None):
    """Kaplan–Meier curves by tier with their bands and an at-risk table.

    Parameters
    ----------
    result : SurvivalResult
        From :func:`crosssell.survival_by_tier`.
    ax : matplotlib Axes, optional
    at_risk : bool, default True
        Print the customers still at risk under the axes.
    tiers : list of str, optional
        Only these tiers.
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import crosssell as cs
    >>> res = cs.survival_by_tier(cs.load(cs.sample_path()), at="90D")
    >>> ax = cs.plots.survival_curves(res)
    """
    curves, table = result.curves, result.at_risk
    ax = get_ax(ax, figsize=(8, 6))
    shown = [t for t in _tiers_in(curves) if tiers is None or t in {str(x) for x in tiers}]
    summary = result.summary.set_index(result.summary["tier"].astype(str))
    for i, tier in enumerate(shown):
        sub = curves[curves["tier"].astype(str) == tier]
        color = f"C{i % 10}"
        n = int(summary.loc[tier, "customers"]) if tier in summary.index else len(sub)
        ax.step(sub["time"], sub["survival"], where="post", color=color, label=f"{tier} (n={n:,})")
        ax.fill_between(sub["time"], sub["low"], sub["high"], step="post", color=color, alpha=0.15,
                        linewidth=0)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_xlabel("days since the landmark")
    ax.set_ylabel("share of customers still active (fraction)")
    lr = result.logrank.iloc[0]
    ax.set_title(title or "Survival by cross-sell tier (Kaplan–Meier)")
    ax.legend(title="tier", fontsize=8, loc="lower left")
    rows = 0
    if at_risk and len(table.columns):
        ax.set_xticks(list(table.columns))
        first = 38  # points below the axes: under the tick labels and the axis label
        ax.annotate("at risk", xy=(0, 0), xycoords="axes fraction", xytext=(-30, -first),
                    textcoords="offset points", ha="right", va="top", fontsize=8, fontweight="bold")
        for i, tier in enumerate(shown):
            dy = -first - 11 * (i + 1)
            ax.annotate(tier, xy=(0, 0), xycoords="axes fraction", xytext=(-30, dy),
                        textcoords="offset points", ha="right", va="top", fontsize=8, color=f"C{i % 10}")
            for t in table.columns:
                ax.annotate(f"{int(table.loc[tier, t]):,}", xy=(t, 0), xycoords=("data", "axes fraction"),
                            xytext=(0, dy), textcoords="offset points", ha="center", va="top", fontsize=8,
                            annotation_clip=False)
        rows = len(shown) + 1
    text = (f"{result.method}. Log-rank chi² = {lr['statistic']:.2f} (df {int(lr['df'])}), "
            f"p = {lr['p_value']:.3g}. Bands: {100 * result.attrs.get('ci', 0.95):.0f}% pointwise. "
            f"{result.attrs.get('definition', '')}.")
    caption(ax, text)
    ax.figure.subplots_adjust(bottom=min(0.22 + 0.03 * rows, 0.5), left=0.14)
    return ax


_BAR_CHOICES = {
    "churn_rate": ("churn_rate", "ci_low", "ci_high", "churn rate (share of customers)", "Churn by tier"),
    "landmark": ("churn_rate", "rate_low", "rate_high", "churn rate after the landmark (share)", "Churn by tier"),
    "csat": ("mean_score", "mean_low", "mean_high", "mean CSAT (1–5)", "Satisfaction by tier"),
    "satisfied": ("satisfied_share", "satisfied_low", "satisfied_high", "share satisfied (CSAT 4–5)",
                  "Satisfaction by tier"),
    "nps": ("nps", "nps_low", "nps_high", "NPS (% promoters − % detractors)", "NPS by tier"),
    "cltv": ("cltv", "cltv_low", "cltv_high", "CLTV over the horizon (revenue × margin)", "Value by tier"),
}


def tier_bars(frame: pd.DataFrame, *, y: str | None = None, ax=None, title: str | None = None):
    """Bars per tier with their intervals: churn, CSAT, share satisfied, NPS or CLTV.

    Parameters
    ----------
    frame : DataFrame
        From :func:`crosssell.churn_by_tier`, :func:`crosssell.landmark`,
        :func:`crosssell.satisfaction_by_tier` or :func:`crosssell.cltv_by_tier`.
    y : {"churn_rate", "csat", "satisfied", "nps", "cltv"}, optional
        What to draw; default: churn for churn frames, CSAT (else NPS) for satisfaction frames.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Tiers flagged ``small`` are hatched.

    Examples
    --------
    >>> import crosssell as cs
    >>> ax = cs.plots.tier_bars(cs.churn_by_tier(cs.load(cs.sample_path())))
    """
    if y is None:
        if "kind" in frame.columns:
            y = "csat" if (frame["kind"] == "csat").any() else "nps"
        elif "cltv" in frame.columns:
            y = "cltv"
        elif "rate_low" in frame.columns:
            y = "landmark"
        else:
            y = "churn_rate"
    if y == "churn_rate" and "rate_low" in frame.columns:
        y = "landmark"
    if y not in _BAR_CHOICES:
        raise ValueError(f"y must be one of {sorted(_BAR_CHOICES)}, not {y!r}")
    col, lo, hi, ylabel, default_title = _BAR_CHOICES[y]
    missing = [c for c in (col, lo, hi, "tier") if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame has no {', '.join(missing)} column(s); y={y!r} needs a frame from "
                         "churn_by_tier, landmark, satisfaction_by_tier or cltv_by_tier")
    data = frame
    if "kind" in frame.columns:
        want = "nps" if y == "nps" else "csat"
        data = frame[frame["kind"] == want]
    by = [b for b in frame.attrs.get("by", []) if b in data.columns]
    ax = get_ax(ax)
    tiers = [str(t) for t in (data["tier"].cat.categories if isinstance(data["tier"].dtype, pd.CategoricalDtype)
                              else dict.fromkeys(data["tier"].astype(str)))]
    groups = [None] if not by else list(dict.fromkeys(data[by[0]].astype(str)))
    width = 0.8 / len(groups)
    x = np.arange(len(tiers))
    for g, group in enumerate(groups):
        sub = data if group is None else data[data[by[0]].astype(str) == group]
        sub = sub.set_index(sub["tier"].astype(str)).reindex(tiers)
        est = sub[col].to_numpy(float)
        err = np.vstack([est - sub[lo].to_numpy(float), sub[hi].to_numpy(float) - est])
        err = np.where(np.isfinite(err), np.maximum(err, 0), 0)
        pos = x - 0.4 + width * (g + 0.5)
        small = sub["small"].fillna(True).to_numpy(bool) if "small" in sub else np.zeros(len(tiers), bool)
        bars = ax.bar(pos, np.nan_to_num(est), width=width * 0.95, color=f"C{g % 10}",
                      label=None if group is None else group, yerr=err, capsize=3,
                      error_kw={"elinewidth": 1, "ecolor": "0.2"})
        for bar, sm in zip(bars, small, strict=True):
            if sm:
                bar.set_hatch("//")
                bar.set_alpha(0.5)
    ax.set_xticks(x)
    ax.set_xticklabels(tiers)
    ax.set_xlabel("cross-sell tier (products held)")
    ax.set_ylabel(ylabel)
    if y == "nps":
        ax.axhline(0, color="0.5", linewidth=0.8)
    ax.set_title(title or default_title)
    if by:
        ax.legend(title=by[0], fontsize=8)
    interval = frame.attrs.get("interval") or ("t interval" if y == "csat" else "closed-form SE" if y == "nps"
                                               else "Wilson interval" if y in ("satisfied", "churn_rate", "landmark")
                                               else "delta method")
    text = (f"{frame.attrs.get('method', '')}. Error bars: {100 * frame.attrs.get('ci', 0.95):.0f}% "
            f"{interval}; hatched tiers have fewer customers than min_customers. "
            f"{frame.attrs.get('definition', '')}.")
    caption(ax, text)
    ax.figure.subplots_adjust(bottom=0.3)
    return ax


def forest(frame: pd.DataFrame, *, ax=None, title: str | None = None, groups=None):
    """Hazard ratios with their intervals on a log scale (a forest plot).

    Parameters
    ----------
    frame : DataFrame
        From :func:`crosssell.churn_model` (one row per term).
    ax : matplotlib Axes, optional
    title : str, optional
    groups : list of str, optional
        Only these term groups (e.g. ``["tier"]``); default all.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import crosssell as cs
    >>> hr = cs.churn_model(cs.load(cs.sample_path()), adjust="plan")
    >>> ax = cs.plots.forest(hr)
    """
    need = [c for c in ("term", "hazard_ratio", "low", "high") if c not in frame.columns]
    if need:
        raise ValueError(f"the frame has no {', '.join(need)} column(s); pass the result of churn_model")
    data = frame if groups is None else frame[frame["group"].isin(groups)]
    data = data.reset_index(drop=True)
    ax = get_ax(ax, figsize=(8, max(3.0, 0.35 * len(data) + 1.5)))
    ypos = np.arange(len(data))[::-1]
    est = data["hazard_ratio"].to_numpy(float)
    lo, hi = data["low"].to_numpy(float), data["high"].to_numpy(float)
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(est[ok], ypos[ok], xerr=[est[ok] - lo[ok], hi[ok] - est[ok]], fmt="o", color="C3",
                ecolor="0.3", capsize=3)
    ref = ~ok & np.isfinite(est)
    ax.plot(est[ref], ypos[ref], marker="|", linestyle="none", color="0.3", markersize=12)
    ax.axvline(1.0, color="0.5", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    _plain_log(ax.xaxis)
    ax.set_yticks(ypos)
    ax.set_yticklabels(data["term"])
    for y, e, low, high, okk in zip(ypos, est, lo, hi, ok, strict=True):
        label = f"{e:.2f} [{low:.2f}, {high:.2f}]" if okk else ("reference" if np.isfinite(e) else "not estimable")
        ax.annotate(label, xy=(1.01, y), xycoords=("axes fraction", "data"), va="center", fontsize=8)
    ax.set_xlabel("hazard ratio (log scale; < 1 = churns less)")
    ax.set_title(title or "Churn hazard ratios")
    text = (f"{frame.attrs.get('method', '')}. {100 * frame.attrs.get('ci', 0.95):.0f}% intervals; "
            f"{frame.attrs.get('customers', '?')} customers, {frame.attrs.get('events', '?')} churned. "
            f"{frame.attrs.get('definition', '')}.")
    caption(ax, text, width=85)
    ax.figure.subplots_adjust(bottom=0.3, right=0.78, left=0.22)
    return ax


def naive_vs_corrected(frame: pd.DataFrame, *, ax=None, title: str | None = None):
    """The naive churn-rate ratio beside the landmark and time-varying hazard ratios, per tier.

    Parameters
    ----------
    frame : DataFrame
        From :func:`crosssell.compare_naive`.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import crosssell as cs
    >>> ax = cs.plots.naive_vs_corrected(cs.compare_naive(cs.load(cs.sample_path())))
    """
    need = [c for c in ("tier", "method", "estimate", "low", "high") if c not in frame.columns]
    if need:
        raise ValueError(f"the frame has no {', '.join(need)} column(s); pass the result of compare_naive")
    ax = get_ax(ax)
    tiers = _tiers_in(frame)
    methods = [m for m in _METHOD_STYLE if (frame["method"].astype(str) == m).any()]
    x = np.arange(len(tiers))
    for j, method in enumerate(methods):
        sub = frame[frame["method"].astype(str) == method]
        sub = sub.set_index(sub["tier"].astype(str)).reindex(tiers)
        est = sub["estimate"].to_numpy(float)
        lo, hi = sub["low"].to_numpy(float), sub["high"].to_numpy(float)
        err = np.vstack([est - lo, hi - est])
        err = np.where(np.isfinite(err), np.maximum(err, 0), 0)
        color, marker = _METHOD_STYLE[method]
        pos = x + (j - (len(methods) - 1) / 2) * 0.22
        measure = sub["measure"].dropna().iloc[0] if "measure" in sub and sub["measure"].notna().any() else ""
        ok = np.isfinite(est) & (est > 0)
        ax.errorbar(pos[ok], est[ok], yerr=err[:, ok], fmt=marker, color=color, capsize=3,
                    label=f"{method} ({measure})")
    ax.axhline(1.0, color="0.5", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    _plain_log(ax.yaxis)
    ax.set_xticks(x)
    ax.set_xticklabels(tiers)
    ax.set_xlabel("cross-sell tier (products held)")
    ax.set_ylabel(f"ratio against tier {frame.attrs.get('reference', tiers[0] if tiers else '')} (log scale)")
    ax.set_title(title or "Naive versus tenure-corrected churn comparison")
    ax.legend(fontsize=8)
    caption(ax, f"{frame.attrs.get('reading', '')} {frame.attrs.get('definition', '')}.")
    ax.figure.subplots_adjust(bottom=0.3)
    return ax
