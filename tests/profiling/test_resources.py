"""The resource profiler's smoothing and sampling."""

from __future__ import annotations

import pytest

from jupiter.profiling.resources import ResourceMonitor, Smoother


def test_the_ema_is_seeded_by_the_mean_of_the_first_samples() -> None:
    smoother = Smoother(alpha=0.5, warmup=3)
    for value in (10.0, 20.0, 30.0):
        smoother.add(value)
    assert smoother.value == pytest.approx(20.0)
    assert smoother.add(40.0) == pytest.approx(30.0)
    assert smoother.add(30.0) == pytest.approx(30.0)


def test_one_spike_moves_the_figure_by_alpha_only() -> None:
    smoother = Smoother(alpha=0.3, warmup=5)
    for _ in range(5):
        smoother.add(10.0)
    assert smoother.add(100.0) == pytest.approx(10.0 + 0.3 * 90.0)


def test_the_monitor_reports_percentages() -> None:
    monitor = ResourceMonitor()
    sample = monitor.sample()
    assert 0.0 <= sample.cpu <= 100.0
    assert 0.0 < sample.memory <= 100.0
    assert monitor.current().samples == 1
    assert set(sample.to_json()) == {"cpu", "memory", "samples", "time"}
