"""Arrival patterns: Poisson gaps checked statistically (seeded), fixed intervals exactly, bad patterns refused."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest

from jupiter.model.arrivals import Arrivals


def test_poisson_gaps_are_exponential_with_the_asked_mean() -> None:
    rate, frames = 4.0, 5001
    offsets = Arrivals.poisson(rate, seed=7).offsets(frames)
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert offsets[0] == 0.0 and all(gap >= 0 for gap in gaps)
    mean = statistics.fmean(gaps)
    # 5000 exponential gaps: the mean is within 3 % of 1/rate (its standard error is 1.4 %), the
    # coefficient of variation near 1 (an exponential's), and Kolmogorov-Smirnov below its 1 % critical value.
    assert mean == pytest.approx(1 / rate, rel=0.03)
    assert statistics.pstdev(gaps) / mean == pytest.approx(1.0, abs=0.05)
    ordered = sorted(gaps)
    n = len(ordered)
    distance = max(
        max((i + 1) / n - (1 - math.exp(-rate * gap)), (1 - math.exp(-rate * gap)) - i / n)
        for i, gap in enumerate(ordered)
    )
    assert distance < 1.63 / math.sqrt(n)


def test_the_same_seed_gives_the_same_stream_and_another_seed_another() -> None:
    assert Arrivals.poisson(2.0, seed=1).offsets(50) == Arrivals.poisson(2.0, seed=1).offsets(50)
    assert Arrivals.poisson(2.0, seed=1).offsets(50) != Arrivals.poisson(2.0, seed=2).offsets(50)


def test_fixed_and_interval_arrivals_are_evenly_spaced() -> None:
    assert Arrivals.fixed(4.0).offsets(4) == [0.0, 0.25, 0.5, 0.75]
    assert Arrivals.every(0.5).offsets(3) == [0.0, 0.5, 1.0]
    assert Arrivals.every(0.5).describe() == "fixed, a frame every 0.5 s (2 frames/s)"
    assert Arrivals().offsets(3) == [0.0, 0.0, 0.0]
    assert Arrivals("sequential").offsets(2) == [0.0, 0.0]
    assert Arrivals().offsets(0) == []


def test_patterns_that_make_no_sense_are_refused() -> None:
    with pytest.raises(ValueError, match="a poisson arrival pattern needs a rate above 0 frames/s, not 0"):
        Arrivals.poisson(0.0)
    with pytest.raises(ValueError, match="a burst arrival pattern takes no rate"):
        Arrivals("burst", 2.0)
    with pytest.raises(ValueError, match="an interval must be above 0 seconds"):
        Arrivals.every(-1.0)
    with pytest.raises(ValueError, match="unknown arrival pattern 'trickle'"):
        Arrivals("trickle")  # type: ignore[arg-type]


def test_the_pattern_is_recorded_as_asked() -> None:
    assert Arrivals.poisson(2.0, seed=3).to_json() == {"pattern": "poisson", "rate": 2.0, "interval": 0.5, "seed": 3}
    assert Arrivals().to_json() == {"pattern": "burst", "rate": None, "interval": None, "seed": None}
