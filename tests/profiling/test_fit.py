"""Quadratic link fits: exact recovery, relative accuracy, and the guards."""

from __future__ import annotations

import random

import pytest

from jupiter.profiling.fit import fit_link, fit_quadratic

SIZES = [1024, 10 * 1024, 100 * 1024, 1024 * 1024, 10 * 1024 * 1024]


def test_a_linear_link_is_recovered() -> None:
    samples = [(s, 0.01 + s / 1.25e6) for s in SIZES for _ in range(3)]
    a, b, c = fit_quadratic(samples)
    assert a == pytest.approx(0.0, abs=1e-18)
    assert b == pytest.approx(1 / 1.25e6, rel=1e-6)
    assert c == pytest.approx(0.01, rel=1e-6)


def test_a_quadratic_is_recovered() -> None:
    samples = [(s, 2e-15 * s * s + 3e-7 * s + 0.002) for s in SIZES]
    a, b, c = fit_quadratic(samples)
    assert (a, b, c) == pytest.approx((2e-15, 3e-7, 0.002), rel=1e-5)


def test_noisy_samples_predict_every_size_within_five_percent() -> None:
    rng = random.Random(1)
    truth = [(s, 0.05 + s / 1.25e5) for s in SIZES]
    samples = [(s, t * rng.uniform(0.97, 1.03)) for s, t in truth for _ in range(3)]
    fit = fit_link("a", "b", samples)
    for size, expected in truth:
        assert fit.predict(size) == pytest.approx(expected, rel=0.05)


def test_a_downward_quadratic_falls_back_to_a_monotone_line() -> None:
    samples = [(1000, 0.1), (2000, 0.19), (3000, 0.2)]
    a, b, c = fit_quadratic(samples)
    assert a == 0.0
    assert b >= 0 and c >= 0


def test_times_that_shrink_with_size_give_a_constant() -> None:
    a, b, c = fit_quadratic([(1000, 0.2), (100_000, 0.1)])
    assert (a, b) == (0.0, 0.0)
    assert c == pytest.approx(0.15)


def test_one_size_only_is_taken_as_proportional() -> None:
    a, b, c = fit_quadratic([(1000, 0.01), (1000, 0.03)])
    assert (a, c) == (0.0, 0.0)
    assert b == pytest.approx(0.02 / 1000)


def test_no_valid_sample_is_an_error() -> None:
    with pytest.raises(ValueError, match="no valid"):
        fit_quadratic([(100, float("nan"))])
