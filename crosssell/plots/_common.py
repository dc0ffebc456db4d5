"""Helpers shared by the figure modules: axes handling and the definition caption."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt


def get_ax(ax=None, *, figsize=(8, 4.5)):
    """The axes to draw on: ``ax`` itself, or a new figure's axes when None."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def definition_caption(frame) -> str:
    """The definition stored in a result's ``attrs`` as one readable sentence."""
    defn = frame.attrs.get("definition") or {}
    text = defn.get("text", "")
    bits = []
    if text:
        bits.append(f"Cross-sell ratio = {text}")
    if defn.get("reference_date"):
        bits.append(f"as of {defn['reference_date']}")
    if defn.get("filters"):
        bits.append("segment: " + ", ".join(f"{k}={v}" for k, v in defn["filters"].items()))
    return "; ".join(bits) + ("." if bits else "")


def caption(ax, text: str, *, width: int = 110):
    """Put a caption under the axes (the definition used, the interval method, ...)."""
    if not text:
        return ax
    wrapped = "\n".join(textwrap.wrap(text, width))
    ax.annotate(
        wrapped,
        xy=(0, 0),
        xycoords="axes fraction",
        xytext=(0, -40),
        textcoords="offset points",
        va="top",
        ha="left",
        fontsize=8,
        color="0.3",
        annotation_clip=False,
    )
    ax.figure.subplots_adjust(bottom=0.25)
    return ax
