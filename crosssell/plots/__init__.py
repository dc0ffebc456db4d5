"""Figures: ``plot_*``-style functions that draw the frames the analysis functions return.

Every function takes the frame first, everything else keyword-only, draws on ``ax`` (the current
axes when None) and returns the Axes.  Nothing here computes a statistic: intervals, counts and
definitions all come in the frame (and its ``attrs``).  Titles, axis labels with units and a
caption stating the metric definition are always set.
"""

from ._common import caption, definition_caption  # noqa: F401
from .affinity import lift_heatmap, recommendation_eval, transition_flow, whitespace_heatmap  # noqa: F401
from .cohorts import cohort_heatmap, decomposition, maturity_curves, trend  # noqa: F401
from .metrics import distribution, penetration_bars, ratio_bars  # noqa: F401
from .outcomes import forest, naive_vs_corrected, survival_curves, tier_bars  # noqa: F401
