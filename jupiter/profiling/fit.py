"""Quadratic fits of transfer time against file size, one per ordered link (DRUPE's model).

The original network profiler fits `t(s) = a·s² + b·s + c` by least squares
to the transfer times of test files of several sizes. Two details differ on
purpose and are worth knowing:

* **Relative weighting.** Times span four orders of magnitude (1 KB in
  milliseconds, 10 MB in seconds), so a plain least-squares fit is decided
  by the largest files and can be wrong by several times for small ones.
  Each point is weighted by 1/t, which minimises the *relative* error at
  every size.
* **Medians per size.** A transfer of a few kilobytes takes about a
  millisecond, the same order as the scheduling jitter of a busy machine, so
  single samples have long tails. The samples of each size are reduced to
  their median before fitting, which keeps one slow sample from bending the
  curve.
* **Guards.** A fit must never predict a negative time, nor less time for
  more bytes within the measured range. A quadratic with `a < 0`, `b < 0` or
  `c < 0` falls back to a straight line, and a line with a negative term is
  clamped (no latency, or no size dependence). With one size only, the time
  is taken as proportional to size; with none, the link has no fit.

Pure code (numpy only): no files, processes or network.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinkFit:
    """The fitted transfer model of one ordered link."""

    src: str
    dst: str
    a: float
    """Seconds per byte squared."""
    b: float
    """Seconds per byte."""
    c: float
    """Seconds (per-transfer overhead: latency, handshakes)."""
    points: int = 0
    """Samples the fit was made from."""
    time: float = 0.0
    """When the samples were taken (Unix seconds)."""

    def predict(self, size: float) -> float:
        """Predicted transfer time of `size` bytes."""
        return self.a * size * size + self.b * size + self.c

    def to_json(self) -> dict[str, object]:
        """The profile file's link entry (see docs/mapping.md), with the sample count and time."""
        return {
            "src": self.src,
            "dst": self.dst,
            "a": self.a,
            "b": self.b,
            "c": self.c,
            "points": self.points,
            "time": self.time,
        }


def _weighted_lstsq(columns: Sequence[np.ndarray], y: np.ndarray) -> np.ndarray:
    weights = 1.0 / np.maximum(y, 1e-9)
    design = np.column_stack(columns) * weights[:, None]
    solution, *_ = np.linalg.lstsq(design, y * weights, rcond=None)
    return np.asarray(solution, dtype=float)


def fit_quadratic(samples: Iterable[tuple[float, float]]) -> tuple[float, float, float]:
    """(a, b, c) of `t = a·s² + b·s + c` from (size in bytes, seconds) samples, guarded (see module doc)."""
    raw = [(float(s), float(t)) for s, t in samples if math.isfinite(s) and math.isfinite(t) and s >= 0 and t >= 0]
    if not raw:
        raise ValueError("no valid (size, seconds) samples to fit")
    by_size: dict[float, list[float]] = {}
    for size, seconds in raw:
        by_size.setdefault(size, []).append(seconds)
    points = [(size, float(np.median(times))) for size, times in sorted(by_size.items())]
    sizes = np.array([s for s, _ in points])
    times = np.array([t for _, t in points])
    distinct = len(set(sizes.tolist()))
    scale = float(sizes.max()) or 1.0
    x = sizes / scale  # sizes up to 1e7 squared would make the system badly conditioned
    ones = np.ones_like(x)
    if distinct >= 3:
        qa, qb, qc = _weighted_lstsq([x * x, x, ones], times)
        if qa >= 0 and qb >= 0 and qc >= 0:
            return float(qa / scale**2), float(qb / scale), float(qc)
    if distinct >= 2:
        lb, lc = _weighted_lstsq([x, ones], times)
        if lb >= 0 and lc >= 0:
            return 0.0, float(lb / scale), float(lc)
        if lb < 0:
            # More bytes never take less time: no measurable size dependence.
            return 0.0, 0.0, float(np.mean(times))
        (only_b,) = _weighted_lstsq([x], times)
        return 0.0, float(max(only_b, 0.0) / scale), 0.0
    size = float(sizes[0])
    mean = float(np.mean(times))
    if size <= 0:
        return 0.0, 0.0, mean
    return 0.0, mean / size, 0.0


def fit_link(src: str, dst: str, samples: Sequence[tuple[float, float]], when: float = 0.0) -> LinkFit:
    """A guarded quadratic fit of one link's samples."""
    a, b, c = fit_quadratic(samples)
    return LinkFit(src, dst, a, b, c, points=len(samples), time=when)
