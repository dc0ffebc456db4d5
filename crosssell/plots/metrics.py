"""Figures for the core metrics: ratio by period or segment, distribution, penetration."""

from __future__ import annotations

import pandas as pd
import seaborn as sns

from ._common import caption, definition_caption, get_ax


def _period_labels(frame: pd.DataFrame) -> pd.Series:
    return frame["period"].astype(str) if "period" in frame.columns else pd.Series(["all"] * len(frame))


def ratio_bars(frame: pd.DataFrame, *, by: str | None = None, ax=None, title: str | None = None):
    """Bars of the cross-sell ratio per period (and segment), from :func:`crosssell.cross_sell_ratio`."""
    ax = get_ax(ax)
    plot = frame.assign(_label=_period_labels(frame).to_numpy())
    sns.barplot(data=plot, x="_label", y="ratio", hue=by, ax=ax, color=None if by else "C0")
    ax.set_xlabel("period" if "period" in frame.columns else "")
    ax.set_ylabel("cross-sell ratio (products per customer)")
    ax.set_title(title or "Cross-sell ratio")
    ax.tick_params(axis="x", rotation=45)
    caption(ax, definition_caption(frame))
    return ax


def distribution(frame: pd.DataFrame, *, ax=None, title: str | None = None):
    """Share of customers by number of products, from :func:`crosssell.product_distribution`."""
    ax = get_ax(ax)
    plot = frame.groupby("products", as_index=False)["customers"].sum()
    plot["share"] = plot["customers"] / plot["customers"].sum()
    sns.barplot(data=plot, x="products", y="share", ax=ax, color="C0")
    ax.set_xlabel("counted products per customer (count)")
    ax.set_ylabel("share of customers (fraction)")
    ax.set_title(title or "How many products customers have")
    caption(ax, definition_caption(frame))
    return ax


def penetration_bars(frame: pd.DataFrame, *, ax=None, top: int = 20, title: str | None = None):
    """Penetration (share of customers) per product, from :func:`crosssell.penetration`."""
    ax = get_ax(ax)
    label = "name" if "name" in frame.columns else "product_id"
    plot = (
        frame.groupby(label, as_index=False)["share"].mean().sort_values("share", ascending=False).head(top)
    )
    sns.barplot(data=plot, y=label, x="share", ax=ax, color="C0", orient="h")
    ax.set_xlabel("penetration (share of customers who have it)")
    ax.set_ylabel("product")
    ax.set_title(title or "Product penetration")
    caption(ax, definition_caption(frame))
    return ax
