"""When a cell's figures say the estimator is not estimating the gradient at all.

A zero gradient has zero variance and the lowest MSE of every estimator whose variance exceeds
||g*||^2: on `tucker-0.45` such an estimator once got the star for the lowest MSE. A cell is
degenerate, and never starred or ranked first, when any of these holds:

    zero variance with a significant bias   a constant that is not the gradient
    relative bias ||E g - g*|| / ||g*|| >= 0.5   off by half the gradient's length or more
    cosine(E g, g*) < 0.5                   pointing more than 60 degrees away from the gradient
    some estimates not finite               its figures describe only the estimates that were finite:
                                            one that gave nan in 159 of 500 once got the star

The last two need g* != 0 (the relative bias and the cosine are undefined at a stationary point),
and both must be the estimator's, not the run's noise: both count only when the bias is significant
(bias_significant, family-wise level 0.999), and the relative bias by the lower end of its interval. A noisy unbiased estimator measured
with too few estimates is not degenerate, only imprecise (its '?' and 'n.s.' marks say so).
"""
from __future__ import annotations

import math

REL_BIAS_LIMIT = 0.5
COSINE_LIMIT = 0.5


def _number(row, name: str) -> float:
    try:
        value = float(row[name])
    except (KeyError, TypeError, ValueError):
        return math.nan
    return value


def degenerate_reason(row) -> str:
    """Why the cell is degenerate, in words, or '' when it is not."""
    reasons = []
    significant = row.get("bias_significant", False) if hasattr(row, "get") else False
    if _number(row, "variance_trace") == 0 and bool(significant):
        reasons.append("zero variance with a significant bias")
    rel_bias = _number(row, "rel_bias_lo")
    if math.isnan(rel_bias):
        rel_bias = _number(row, "rel_bias")
    # Significant too: the 95% interval excludes 0 in 1 cell in 20 of an unbiased estimator, and where g* is
    # tiny (tucker-0.499) its lower end alone made unbiased MuProp "degenerate" beside its own "n.s." mark.
    if rel_bias >= REL_BIAS_LIMIT and bool(significant):
        reasons.append(f"relative bias {_number(row, 'rel_bias'):.2g} >= {REL_BIAS_LIMIT}")
    cosine = _number(row, "cosine")
    if cosine < COSINE_LIMIT and bool(significant):
        reasons.append(f"cosine to g* {cosine:.2g} < {COSINE_LIMIT}")
    nonfinite = _number(row, "nonfinite")
    if nonfinite > 0:
        reasons.append(f"{nonfinite:.0f} estimates not finite (left out of its figures)")
    return "; ".join(reasons)
