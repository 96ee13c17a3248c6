"""Each frame's latency split along its critical path, frames that ran alone, how frames were submitted."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from jupiter.model.events import Event, FrameDone, FrameFailed, FrameSubmitted, TaskRun, Transfer
from jupiter.report.run_record import base_frame, load_run
from jupiter.report.timing import frame_timings, node_loads, ran_alone, steady_throughput, submission
from tests.report.helpers import frame_events, make_deployment


def test_a_frame_splits_into_execution_transfer_and_waiting(tmp_path: Path) -> None:
    record = load_run(make_deployment(tmp_path / "dep", frame_events(1, 100.0)))
    (timing,) = frame_timings(record)
    assert timing.path == ("split", "join")
    assert timing.latency == pytest.approx(0.45)
    assert timing.execution == pytest.approx(0.2 + 0.1)
    assert timing.transfer == pytest.approx(0.004 + 0.05 + 0.02)
    assert timing.waiting == pytest.approx(0.45 - 0.3 - 0.074)
    assert timing.work == pytest.approx(timing.execution + timing.transfer)
    assert timing.span == pytest.approx(0.39)  # split's execute to join's finish
    assert timing.alone


def test_a_transfer_never_counts_for_more_than_the_gap_it_sits_in(tmp_path: Path) -> None:
    events = frame_events(1, 100.0)
    # The sender measured 0.3 s (a retried batch), but join ran 0.09 s after split finished.
    sent = events[3]
    assert isinstance(sent, Transfer)
    events[3] = dataclasses.replace(sent, seconds=0.3)
    (timing,) = frame_timings(load_run(make_deployment(tmp_path / "dep", events)))
    assert timing.transfer == pytest.approx(0.004 + 0.09 + 0.02)
    assert timing.waiting == pytest.approx(0.45 - 0.3 - 0.114)


def test_the_critical_path_follows_the_parent_that_finished_last(tmp_path: Path) -> None:
    events: list[Event] = [FrameSubmitted("f000001-abcdef", "a", 0.0)]
    runs = {"split": (0.0, 0.1), "left": (0.1, 0.2), "right": (0.1, 0.5), "join": (0.5, 0.6)}
    for task, (start, end) in runs.items():
        events.append(TaskRun(task, "f000001-abcdef", "n1", ("a",), start, start, start, end, True, None, "home"))
    events.append(FrameDone("f000001-abcdef", "a", 0.6, 0.6))
    root = make_deployment(tmp_path / "dep", events, predicted=False, profile=False)
    record = load_run(root)
    record.order = ["split", "left", "right", "join"]
    record.parents = {"split": (), "left": ("split",), "right": ("split",), "join": ("left", "right")}
    record.exits = ("join",)
    (timing,) = frame_timings(record)
    assert timing.path == ("split", "right", "join")
    assert timing.execution == pytest.approx(0.1 + 0.4 + 0.1)


def test_frames_that_overlap_did_not_run_alone() -> None:
    # a alone; b and c overlap; d touches c's end (not an overlap); e never finished.
    intervals = [(0.0, 1.0), (2.0, 3.0), (2.5, 4.0), (4.0, 5.0), (6.0, float("inf"))]
    assert ran_alone(intervals) == [True, False, False, True, True]
    assert ran_alone([(0.0, 2.0), (1.0, float("inf")), (3.0, 4.0)]) == [False, False, False]


def test_submission_patterns(tmp_path: Path) -> None:
    sequential = frame_events(1, 100.0) + frame_events(2, 101.0) + frame_events(3, 102.0)
    assert submission(load_run(make_deployment(tmp_path / "a", sequential))) == "sequential"
    burst = frame_events(1, 100.0) + frame_events(2, 100.01) + frame_events(3, 100.02)
    assert submission(load_run(make_deployment(tmp_path / "b", burst))) == "burst"
    spread = frame_events(1, 100.0) + frame_events(2, 100.2) + frame_events(3, 103.0)
    assert submission(load_run(make_deployment(tmp_path / "c", spread))) == "spread"
    assert submission(load_run(make_deployment(tmp_path / "d", frame_events(1, 100.0)))) == "single"


def test_a_failed_frame_has_no_timing_but_still_keeps_others_from_running_alone(tmp_path: Path) -> None:
    events = [
        *frame_events(1, 100.0),
        FrameSubmitted("f000002-abcdef", "2.txt", 100.1),
        FrameFailed("f000002-abcdef", "2.txt", 100.2, "Traceback\nValueError: boom"),
    ]
    (timing,) = frame_timings(load_run(make_deployment(tmp_path / "dep", events)))
    assert timing.frame == "f000001-abcdef" and not timing.alone


def test_steady_throughput_leaves_out_the_first_and_last_tenth() -> None:
    assert steady_throughput([1.0] * 9) is None
    rate, start, end = steady_throughput([float(i) for i in range(11)]) or (0, 0, 0)
    assert (rate, start, end) == (8 / 8.0, 1.0, 9.0)


def test_node_load_is_task_time_over_the_run(tmp_path: Path) -> None:
    record = load_run(make_deployment(tmp_path / "dep", frame_events(1, 100.0) + frame_events(2, 101.0)))
    loads = {load.node: load for load in node_loads(record, 2.0)}
    assert loads["n1"].runs == 2
    assert (loads["n1"].busy, loads["n1"].utilisation) == pytest.approx((0.4, 0.2))
    assert loads["n2"].busy == pytest.approx(0.2)


def test_attempts_count_as_their_frame() -> None:
    assert base_frame("f000001-abcdef-r2") == "f000001-abcdef"
    assert base_frame("f000001-abcdef") == "f000001-abcdef"
