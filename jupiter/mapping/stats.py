"""Order statistics of samples: the one percentile helper of the project.

Run summaries, `jupiter status`, reports and the stream predictor all quote
percentiles of latencies; they all use :func:`percentile`, so a p95 means the
same thing everywhere. Pure code, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], fraction: float) -> float:
    """The `fraction` quantile (0..1) of `values` by linear interpolation; NaN when there are none.

    Linear interpolation between the closest ranks (numpy's default,
    "type 7"): p50 of [1, 2, 3, 4] is 2.5, p0 the minimum, p100 the maximum.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"a percentile fraction lies in [0, 1], got {fraction}")
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = fraction * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    weight = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * weight


def summary(values: Iterable[float]) -> dict[str, float]:
    """Count, mean and the percentiles every summary quotes (p50, p95, p99); NaN figures when empty."""
    ordered = sorted(values)
    mean = sum(ordered) / len(ordered) if ordered else math.nan
    return {
        "count": float(len(ordered)),
        "mean": mean,
        "p50": percentile(ordered, 0.50),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
    }
