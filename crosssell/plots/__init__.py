"""Figures: ``plot_*``-style functions that draw the frames the analysis functions return.

Every function takes the frame first, everything else keyword-only, draws on ``ax`` (the current
axes when None) and returns the Axes.  Nothing here computes a statistic: intervals, counts and
definitions all come in the frame (and its ``attrs``).  Titles, axis labels with units and a
caption stating the metric definition are always set.
"""

from ._common import caption, definition_caption  # noqa: F401
from .metrics import distribution, ratio_bars, penetration_bars  # noqa: F401
