"""A run's summary, read from home's event log: counts, percentiles, per-task means, failures."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jupiter.model.arrivals import Arrivals
from jupiter.model.events import Event, FrameDone, FrameFailed, FrameSubmitted, TaskRun, encode
from jupiter.model.plan import NodeAddress, Plan, TaskSpec
from jupiter.service.record import Deployment, DeploymentRecord
from jupiter.service.summary import summarize
from tests.report.helpers import frame_events, make_deployment


def _deployment(root: Path, events: list[Event]) -> Deployment:
    nodes = {name: NodeAddress(name, role, "127.0.0.1", 1, 2) for name, role in (("home", "home"), ("n1", "compute"))}
    tasks = {"t": TaskSpec("t", 1, True, ("home",), (), "t.py")}
    (root / "home").mkdir(parents=True)
    Plan("dep", "app", "/app", tasks, ("t",), {"t": "n1"}, nodes, ("t",), "home").save(root / "plan.json")
    (root / "home" / "events.jsonl").write_text("".join(encode(event) + "\n" for event in events))
    return Deployment(DeploymentRecord("dep", root, "local", {}, "home", nodes, 0.0, "app"))


def test_percentiles_are_of_every_frame_not_the_fastest(tmp_path: Path) -> None:
    # Ten frames whose makespans are 0.1 .. 1.0 s, finishing in a shuffled order.
    makespans = [0.4, 0.1, 1.0, 0.7, 0.2, 0.9, 0.3, 0.6, 0.8, 0.5]
    events: list[Event] = []
    for index, makespan in enumerate(makespans):
        frame = f"f{index:06d}-abcdef"
        events.append(FrameSubmitted(frame, "a.txt", 100.0))
        events.append(
            TaskRun("t", frame, "n1", ("a.txt",), 100.0, 100.0, 100.0, 100.0 + makespan / 2, True, None, "home")
        )
        events.append(FrameDone(frame, "a.txt", 100.0 + makespan, makespan))
    summary = summarize(_deployment(tmp_path, events), started=100.0)
    assert (summary.frames, summary.done, summary.failed) == (10, 10, 0)
    # Linear interpolation between ranks (numpy's default): p50 of 0.1..1.0 is 0.55, p95 is 0.955.
    assert summary.makespan_p50 == pytest.approx(0.55)
    assert summary.makespan_p95 == pytest.approx(0.955)
    assert summary.seconds == pytest.approx(1.0)  # the last frame finished 1 s after the first was submitted
    assert summary.throughput == pytest.approx(10.0)
    node, mean, runs = summary.task_means["t"]
    assert (node, runs) == ("n1", 10)
    assert mean == pytest.approx(sum(makespans) / 2 / 10)


def test_failed_frames_are_counted_and_named_and_no_frame_done_gives_no_percentile(tmp_path: Path) -> None:
    events: list[Event] = [
        FrameSubmitted("f000001-abcdef", "a.txt", 1.0),
        FrameFailed("f000001-abcdef", "a.txt", 2.0, "Traceback ...\nValueError: boom in a.txt"),
    ]
    summary = summarize(_deployment(tmp_path, events), started=1.0)
    assert (summary.frames, summary.done, summary.failed) == (1, 0, 1)
    assert summary.errors == ["frame f000001-abcdef (a.txt): ValueError: boom in a.txt"]
    assert math.isnan(summary.makespan_p50) and math.isnan(summary.makespan_p95)


def test_a_line_that_is_not_an_event_is_skipped(tmp_path: Path) -> None:
    deployment = _deployment(tmp_path, [FrameSubmitted("f000001-abcdef", "a.txt", 1.0)])
    with (deployment.home_layout().events).open("a") as log:
        log.write('{"type":"frame_done","frame":"../../x"}\n')
    summary = summarize(deployment, started=1.0)
    assert (summary.frames, summary.done) == (1, 0)


def test_a_paced_stream_that_kept_up_and_one_that_fell_behind(tmp_path: Path) -> None:
    nodes = {name: NodeAddress(name, role, "127.0.0.1", 1, 2) for name, role in (("home", "home"), ("n1", "compute"))}

    def summary(name: str, makespan: Callable[[int], float]) -> dict[str, Any]:
        events: list[Event] = []
        for index in range(40):  # a frame every 0.5 s, as `--interval 0.5` sends them
            frame, submitted = f"f{index:06d}-abcdef", 100.0 + 0.5 * index
            events.append(FrameSubmitted(frame, "a.txt", submitted))
            events.append(FrameDone(frame, "a.txt", submitted + makespan(index), makespan(index)))
        root = make_deployment(tmp_path / name, events)
        deployment = Deployment(DeploymentRecord(name, root, "local", {}, "home", nodes, 0.0, "demo"))
        return summarize(deployment, started=100.0, arrivals=Arrivals.every(0.5)).document

    kept = summary("kept", lambda index: 0.2)  # each frame done before the next comes
    assert kept["arrivals"] == {"pattern": "fixed", "rate": 2.0, "interval": 0.5, "seed": None, "offered": 2.0}
    assert kept["sustained"]["rate"] == pytest.approx(2.0)
    assert kept["sustained"]["kept_up"] is True
    # Frames finish one a second while they come two a second: the queue grows.
    behind = summary("behind", lambda index: 0.2 + 0.5 * index)
    assert behind["sustained"]["rate"] == pytest.approx(1.0)
    assert behind["sustained"]["kept_up"] is False


def test_summary_json_has_every_section_of_its_schema(tmp_path: Path) -> None:
    root = make_deployment(tmp_path / "dep", frame_events(1, 100.0) + frame_events(2, 101.0))
    nodes = {name: NodeAddress(name, role, "127.0.0.1", 1, 2) for name, role in (("home", "home"), ("n1", "compute"))}
    deployment = Deployment(DeploymentRecord("dep", root, "local", {}, "home", nodes, 0.0, "demo"))
    summary = summarize(deployment, started=100.0)
    document = summary.document
    assert list(document) == [
        "format", "version", "deployment", "app", "scheme", "start", "seconds", "submission", "arrivals",
        "sustained", "frames",
        "throughput", "latency", "work", "execution", "transfer", "waiting", "span", "tasks", "nodes", "mapping",
        "prediction", "errors", "per_frame", "per_frame_truncated", "backend", "outputs",
    ]  # fmt: skip
    assert (document["format"], document["version"], document["submission"]) == ("jupiter-summary", 1, "sequential")
    assert document["frames"] == {"submitted": 2, "done": 2, "failed": 0, "restarted": 0, "alone": 2}
    # No arrival pattern given (a report of an older run): the pattern as the submissions show it.
    assert document["arrivals"] == {"pattern": "sequential", "offered": None}
    assert document["sustained"]["kept_up"] is None
    assert document["latency"]["p50"] == pytest.approx(0.45)
    assert document["waiting"]["p50"] == pytest.approx(0.076)
    assert document["tasks"]["split"]["nodes"] == ["n1"] and document["tasks"]["split"]["runs"] == 2
    assert document["nodes"]["n2"]["tasks"] == ["join"]
    single = document["prediction"]["single_frame"]
    assert (single["predicted_makespan"], single["alone_frames"]) == (0.3, 2)
    assert single["ratio"] == pytest.approx(0.39 / 0.3)
    first = document["per_frame"][0]
    assert (first["frame"], first["submitted"], first["path"]) == ("f000001-abcdef", 0.0, ["split", "join"])
    assert summary.figure("work") == pytest.approx(0.374)
    assert math.isnan(summary.figure("nothing"))
