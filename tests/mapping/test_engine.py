"""The insertion engine's shortcut (a per-node bound on gap lengths) never changes a start time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from jupiter.mapping._engine import Timelines, earliest_start

durations = st.one_of(st.just(0.0), st.floats(0.0, 10.0), st.sampled_from([0.1, 1.0, 2.5]))


@settings(max_examples=200, deadline=None)
@given(tasks=st.lists(st.tuples(st.floats(0.0, 50.0), durations, st.integers(0, 2)), max_size=40))
def test_gap_bound_shortcut_matches_full_scan(tasks: list[tuple[float, float, int]]) -> None:
    tl = Timelines(3)
    for ready, dur, node in tasks:
        full = ready
        ends = tl.ends[node]
        if ends and ready < ends[-1]:
            full = earliest_start(tl.starts[node], ends, ready, dur)
        assert tl.est(node, ready, dur) == full
        tl.add(node, full, full + dur)
        gaps = [b - a for a, b in zip([0.0, *tl.ends[node][:-1]], tl.starts[node], strict=True)]
        assert max(gaps, default=0.0) <= tl.gap_bound[node]
