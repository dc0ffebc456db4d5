"""Figures for cohorts and trends: cohort heatmap, maturity curves, trend with interval band, and
the decomposition of a change.

Each takes the frame that :mod:`crosssell.cohorts` returned (and reads what it needs from its
columns and ``attrs``); nothing here computes a statistic.
"""

from __future__ import annotations

import matplotlib.patches as mpatches
import numpy as np
import pandas as pd
import seaborn as sns

from ..errors import ColumnNotFoundError, ParameterError
from ._common import caption, definition_caption, get_ax

_WORD = {"M": "month", "Q": "quarter", "Y": "year"}
_UNITS = {
    "ratio": "cross-sell ratio (products per customer)",
    "multi_product_rate": "multi-product rate (share of customers)",
    "active_customers": "active customers (count)",
    "retention": "retention (share of the cohort)",
}
_TREND_COLS = {
    "period", "complete", "customers", "numerator", "ratio", "se", "ci_low", "ci_high", "change",
    "change_low", "change_high", "change_p_value", "change_significant", "target", "gap_to_target",
    "vs_target", "small_segment",
}
_MATURITY_COLS = {
    "cohort", "pooled", "age", "customers", "numerator", "ratio", "se", "ci_low", "ci_high", "complete",
    "small_segment",
}


def _need(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ColumnNotFoundError(
            f"{what} draws the frame its analysis function returns; missing columns: "
            f"{', '.join(missing)}; the frame has: {', '.join(map(str, frame.columns))}"
        )


def _freq_word(periods: pd.Series) -> str:
    freq = getattr(periods.dtype, "freq", None)
    code = getattr(freq, "freqstr", "") or ""
    return _WORD.get(code[:1], "period")


def _interval_text(frame: pd.DataFrame) -> str:
    ci = frame.attrs.get("ci")
    return f"{ci:.0%} interval" if ci else "interval"


def cohort_heatmap(
    frame: pd.DataFrame,
    *,
    x: str = "period",
    value: str | None = None,
    ax=None,
    annot: bool | None = None,
    fmt: str = ".2f",
    cmap: str = "viridis",
    title: str | None = None,
):
    """Heatmap of a cohort table: signup cohorts down, calendar periods (or age) across.

    Parameters
    ----------
    frame : DataFrame
        From :func:`crosssell.cohort_table`, one segment only (filter ``by`` columns first).
    x : {"period", "age"}
        Calendar periods across, or age since the cohort's first period (cohorts aligned).
    value : str, optional
        The column shown; default the table's metric (``attrs["value"]``).
    ax : matplotlib Axes, optional
    annot : bool, optional
        Write the values in the cells; default when the grid is at most 16 × 16.
    fmt, cmap : str
        Number format of the annotations, colour map.
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    Cells with fewer than ``min_customers`` customers are hatched; empty cells are blank.
    """
    value = value or frame.attrs.get("value", "ratio")
    if x not in ("period", "age"):
        raise ParameterError(f"x must be 'period' or 'age', not {x!r}")
    _need(frame, ["cohort", x, value], "cohort_heatmap")
    if frame.duplicated(["cohort", x]).any():
        extra = [c for c in frame.columns if c not in {"cohort", "period", "complete", "age", "customers", "numerator",
                                                      value, "ci_low", "ci_high", "small_segment"}]
        raise ParameterError(
            f"the frame has several rows per cohort and {x} (split by {', '.join(extra) or 'a segment'}); "
            "filter it to one segment first, e.g. frame[frame.plan == 'Pro']"
        )
    ax = get_ax(ax, figsize=(9, 5.5))
    plot = frame.assign(_row=frame["cohort"].astype(str), _col=frame[x].astype(str) if x == "period" else frame[x])
    grid = plot.pivot(index="_row", columns="_col", values=value)
    grid = grid.loc[sorted(grid.index), sorted(grid.columns)]
    if annot is None:
        annot = grid.shape[0] <= 16 and grid.shape[1] <= 16
    label = _UNITS.get(value, value)
    sns.heatmap(grid, ax=ax, cmap=cmap, annot=annot, fmt=fmt, mask=grid.isna(), cbar_kws={"label": label},
                annot_kws={"fontsize": 7})
    ax.tick_params(axis="x", labelrotation=45)
    if "small_segment" in frame.columns and "customers" in frame.columns:
        small = plot[plot["small_segment"] & (plot["customers"] > 0)]
        rows = {r: i for i, r in enumerate(grid.index)}
        cols = {c: j for j, c in enumerate(grid.columns)}
        for _, r in small.iterrows():
            ax.add_patch(mpatches.Rectangle((cols[r["_col"]], rows[r["_row"]]), 1, 1, fill=False, hatch="///",
                                            edgecolor="0.55", linewidth=0, label="_small"))
    cohort_word = _WORD.get(frame.attrs.get("cohort", ""), "period")
    period_word = _freq_word(frame["period"]) if "period" in frame.columns else "period"
    ax.set_ylabel(f"signup cohort ({cohort_word})")
    ax.set_xlabel(f"calendar {period_word}" if x == "period" else f"age ({period_word}s since the cohort's first)")
    ax.set_title(title or f"{label.split(' (')[0].capitalize()} by signup cohort")
    metric = frame.attrs.get("metric", {}).get("text", "")
    text = definition_caption(frame) if value == "ratio" else (f"{value.replace('_', ' ')} = {metric}." if metric else "")
    mc = frame.attrs.get("min_customers")
    if mc:
        text += f" Hatched: fewer than {mc} customers; blank: no customers."
    caption(ax, text)
    return ax


def maturity_curves(
    frame: pd.DataFrame,
    *,
    ax=None,
    cohorts=None,
    pooled: bool = True,
    title: str | None = None,
):
    """The ratio by age since signup: one line per cohort and the pooled curve with its interval.

    Parameters
    ----------
    frame : DataFrame
        From :func:`crosssell.maturity`, one segment only.
    ax : matplotlib Axes, optional
    cohorts : list, optional
        The cohorts drawn (default all).
    pooled : bool, default True
        Draw the pooled curve and its interval band.
    title : str, optional

    Returns
    -------
    matplotlib Axes
    """
    _need(frame, ["cohort", "pooled", "age", "ratio", "ci_low", "ci_high"], "maturity_curves")
    extra = [c for c in frame.columns if c not in _MATURITY_COLS]
    if any(frame[c].nunique(dropna=False) > 1 for c in extra):
        raise ParameterError(
            f"the frame is split by {', '.join(extra)}; filter it to one segment first"
        )
    ax = get_ax(ax)
    per = frame[~frame["pooled"].astype(bool)]
    keep = sorted(per["cohort"].dropna().unique())
    if cohorts is not None:
        wanted = {str(c) for c in cohorts}
        keep = [c for c in keep if str(c) in wanted]
        if not keep:
            raise ParameterError(f"none of the cohorts {sorted(wanted)} is in the frame")
    colours = sns.color_palette("crest", max(len(keep), 1))
    for colour, c in zip(colours, keep, strict=False):
        line = per[per["cohort"] == c].sort_values("age")
        ax.plot(line["age"], line["ratio"], color=colour, linewidth=1.2, alpha=0.85, label=str(c))
    if pooled:
        pool = frame[frame["pooled"].astype(bool)].sort_values("age")
        ax.fill_between(pool["age"], pool["ci_low"], pool["ci_high"], color="0.2", alpha=0.18, linewidth=0,
                        label=f"pooled, {_interval_text(frame)}")
        ax.plot(pool["age"], pool["ratio"], color="black", linewidth=2.4, label="pooled (all cohorts)")
    step = _WORD.get(frame.attrs.get("step", ""), "period")
    ax.set_xlabel(f"age ({step}s since the signup {step})")
    ax.set_ylabel(_UNITS["ratio"])
    ax.set_title(title or "Cross-sell ratio by age since signup")
    ax.legend(title=f"signup cohort ({_WORD.get(frame.attrs.get('cohort', ''), 'period')})", fontsize=7,
              title_fontsize=8, ncol=2 if len(keep) > 8 else 1, loc="upper left")
    text = definition_caption(frame)
    if frame.attrs.get("age_definition"):
        text += f" Age: {frame.attrs['age_definition']}."
    if pooled:
        text += f" Band: {_interval_text(frame)} of the pooled curve ({frame.attrs.get('interval_method', '')})."
    caption(ax, text)
    return ax


def trend(frame: pd.DataFrame, *, ax=None, title: str | None = None):
    """The ratio per period with its interval band, the target line, and significant changes.

    Parameters
    ----------
    frame : DataFrame
        From :func:`crosssell.trend` (split ``by`` one column at most: one line per group).
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    Periods whose change from the previous one has an interval excluding zero are marked with
    a triangle (up or down); a period the reference date cuts short has a hollow marker.
    """
    _need(frame, ["period", "ratio", "ci_low", "ci_high"], "trend")
    by = [c for c in frame.columns if c not in _TREND_COLS]
    if len(by) > 1:
        raise ParameterError(f"the frame is split by {', '.join(by)}; keep one column (filter the others)")
    ax = get_ax(ax)
    labels = sorted(frame["period"].unique())
    pos = {p: i for i, p in enumerate(labels)}
    groups = [(None, frame)] if not by else list(frame.groupby(by[0], observed=True, sort=True))
    palette = sns.color_palette(n_colors=max(len(groups), 1))
    for colour, (name, g) in zip(palette, groups, strict=False):
        g = g.sort_values("period")
        xs = g["period"].map(pos).to_numpy(dtype=float)
        ax.fill_between(xs, g["ci_low"], g["ci_high"], color=colour, alpha=0.2, linewidth=0)
        ax.plot(xs, g["ratio"], color=colour, marker="o", markersize=4, linewidth=1.8,
                label="cross-sell ratio" if name is None else str(name))
        if "complete" in g.columns:
            part = g[~g["complete"].astype(bool)]
            if len(part):
                ax.plot(part["period"].map(pos), part["ratio"], linestyle="none", marker="o", markersize=8,
                        markerfacecolor="white", markeredgecolor=colour, label="_incomplete")
        if "change_significant" in g.columns:
            sig = g[g["change_significant"].fillna(False).astype(bool)]
            for sign, marker in ((1, "^"), (-1, "v")):
                s = sig[np.sign(sig["change"]) == sign]
                if len(s):
                    ax.plot(s["period"].map(pos), s["ratio"], linestyle="none", marker=marker, markersize=9,
                            color=colour, label="_significant")
    if "target" in frame.columns and frame["target"].notna().any():
        target = float(frame["target"].dropna().iloc[0])
        ax.axhline(target, color="0.35", linestyle="--", linewidth=1.2, label=f"target {target:g}")
    ax.set_xticks(range(len(labels)), [str(p) for p in labels], rotation=45, ha="right")
    ax.set_xlabel(f"calendar {_freq_word(frame['period'])}")
    ax.set_ylabel(_UNITS["ratio"])
    ax.set_title(title or "Cross-sell ratio over time")
    ax.legend(fontsize=8, title=by[0] if by else None)
    text = definition_caption(frame)
    text += f" Band: {_interval_text(frame)} ({frame.attrs.get('interval_method', 'delta method')})."
    if "change_significant" in frame.columns:
        text += " ▲/▼: the change from the previous period has an interval that excludes zero."
    caption(ax, text)
    return ax


def decomposition(frame: pd.DataFrame, *, ax=None, title: str | None = None):
    """Waterfall of a change: start ratio, mix, within-group and interaction, end ratio.

    Parameters
    ----------
    frame : DataFrame
        From :func:`crosssell.decompose_change` (its ``attrs["summary"]`` is drawn).
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes
    """
    s = frame.attrs.get("summary")
    if not s or "mix" not in s:
        raise ParameterError("decomposition needs the frame from crosssell.decompose_change (attrs['summary'])")
    ax = get_ax(ax)
    parts = [("mix", s["mix"]), ("within groups", s["within"])]
    if s.get("method", "three-way") == "three-way":
        parts.append(("interaction", s["interaction"]))
    names = [f"{s['start']}\nratio"] + [p for p, _ in parts] + [f"{s['end']}\nratio"]
    bottoms, heights, colours = [0.0], [s["ratio_start"]], ["0.55"]
    level = s["ratio_start"]
    for _, v in parts:
        bottoms.append(level if v >= 0 else level + v)
        heights.append(abs(v))
        colours.append("#2a9d8f" if v >= 0 else "#e76f51")
        level += v
    bottoms.append(0.0)
    heights.append(s["ratio_end"])
    colours.append("0.35")
    bars = ax.bar(range(len(names)), heights, bottom=bottoms, color=colours, edgecolor="white")
    signed = [s["ratio_start"], *[v for _, v in parts], s["ratio_end"]]
    ax.bar_label(bars, labels=[f"{signed[0]:.3f}"] + [f"{v:+.3f}" for v in signed[1:-1]] + [f"{signed[-1]:.3f}"],
                 fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(_UNITS["ratio"])
    by = ", ".join(s.get("by", []))
    ax.set_title(title or f"Why the ratio moved: {s['change']:+.3f} from {s['start']} to {s['end']} (groups: {by})")
    text = definition_caption(frame)
    text += (
        " Mix: customers shifting between groups at the start period's group ratios; within: the groups' "
        "own ratios moving at the start period's shares; interaction: both at once."
        if s.get("method", "three-way") == "three-way"
        else " Shapley split: mix and within-group effects weighted by the two periods' averages."
    )
    caption(ax, text)
    return ax
