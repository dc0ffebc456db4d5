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


def caption(ax, text: str, *, width: int = 110, min_offset: float = 40.0):
    """Put a caption under the axes (the definition used, the interval method, ...).

    It goes below whatever the axes draw under themselves — rotated tick labels, the axis
    label, an at-risk table — so it never overlaps them, and at least ``min_offset`` points
    below the axes.
    """
    if not text:
        return ax
    note = ax.annotate(
        "\n".join(textwrap.wrap(text, width)),
        xy=(0, 0),
        xycoords="axes fraction",
        xytext=(0, -min_offset),
        textcoords="offset points",
        va="top",
        ha="left",
        fontsize=8,
        color="0.3",
        annotation_clip=False,
    )
    fig = ax.figure
    if fig.subplotpars.bottom < 0.25:
        fig.subplots_adjust(bottom=0.25)
    # measure what hangs below the axes without the caption itself, then move it under that
    note.set_visible(False)
    tight = ax.get_tightbbox(fig.canvas.get_renderer())
    note.set_visible(True)
    below = (ax.bbox.y0 - tight.y0) * 72.0 / fig.dpi + 6.0
    note.xyann = (0, -max(min_offset, below))
    return ax
