"""Where each frame's time went: its latency split into work and waiting, from the task and transfer events.

A frame's **latency** is its makespan: from `frame_submitted` to
`frame_done` at home. It is split along the frame's **critical path**: start
at the exit task that finished last; at each task, step to the parent whose
run of this frame finished last (the input the task waited for longest),
until an ingress task. Along that path:

* **execution** is the sum of `finish - execute` of the task runs on it:
  the time `task()` ran;
* **transfer** is the time files of the frame spent on the wire along it:
  for each hop (home to the first task, parent to child, the last task back
  home) the sender's measured `seconds` of that file's transfer (of the
  whole batch it went in, when files shared a round trip), capped by the
  time between the two ends (a hand-over on one node costs 0);
* **waiting** is the rest, `latency - execution - transfer`: time a file of
  the frame sat in a queue — behind other frames in a task's inbox, waiting
  for a worker or its batch, or refused by a busy receiver — and the
  agents' own bookkeeping. This is the queueing a stream adds to a frame.

**work** = execution + transfer: what the frame would take with nothing in
its way. A frame **ran alone** when no other frame (done, failed or still in
flight) was in the system at any time between its submission and its end:
those are the frames a single-frame prediction speaks for. The **span** of a
frame is from its first task's `execute` to its last task's `finish`, the
quantity a mapper's predicted makespan is (it leaves out home's legs).

Pure functions of a :class:`jupiter.report.run_record.RunRecord`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from jupiter.mapping.stats import percentile
from jupiter.model.events import TaskRun, Transfer
from jupiter.model.plan import HOME_TASK
from jupiter.report.run_record import RunRecord, base_frame


@dataclass(frozen=True)
class FrameTiming:
    """One finished frame's latency and its parts (module docstring), in seconds."""

    frame: str
    input: str
    submitted: float
    """When home started the frame (epoch seconds)."""
    done: float
    latency: float
    execution: float
    transfer: float
    waiting: float
    span: float
    """First task's execute to last task's finish."""
    last_finish: float
    """When the frame's last task finished (epoch seconds)."""
    path: tuple[str, ...]
    """The critical path's tasks, first to last."""
    alone: bool

    @property
    def work(self) -> float:
        return self.execution + self.transfer

    def to_json(self, start: float) -> dict[str, object]:
        """The frame as summary.json writes it (times relative to the run's start)."""
        return {
            "frame": self.frame,
            "input": self.input,
            "submitted": round(self.submitted - start, 6),
            "done": round(self.done - start, 6),
            "latency": self.latency,
            "work": self.work,
            "execution": self.execution,
            "transfer": self.transfer,
            "waiting": self.waiting,
            "span": self.span,
            "alone": self.alone,
            "path": list(self.path),
        }


def _runs_by_frame(tasks: Iterable[TaskRun]) -> dict[str, dict[str, TaskRun]]:
    """frame -> task -> its run (the one that finished last, when an attempt repeated it)."""
    table: dict[str, dict[str, TaskRun]] = {}
    for event in tasks:
        runs = table.setdefault(base_frame(event.frame), {})
        kept = runs.get(event.task)
        if kept is None or event.finish > kept.finish:
            runs[event.task] = event
    return table


def _transfer_seconds(transfers: Iterable[Transfer]) -> dict[tuple[str, str, str, str], float]:
    """(frame, destination task, sender, receiver) -> seconds the sender measured."""
    table: dict[tuple[str, str, str, str], float] = {}
    for event in transfers:
        key = (base_frame(event.frame), event.task, event.node, event.peer)
        table[key] = max(table.get(key, 0.0), event.seconds)
    return table


def ran_alone(intervals: Sequence[tuple[float, float]]) -> list[bool]:
    """For each (start, end) interval, whether it overlaps no other one (touching ends do not overlap)."""
    order = sorted(range(len(intervals)), key=lambda i: intervals[i][0])
    alone = [False] * len(intervals)
    latest_end = -math.inf
    for position, index in enumerate(order):
        start, end = intervals[index]
        next_start = intervals[order[position + 1]][0] if position + 1 < len(order) else math.inf
        alone[index] = start >= latest_end and end <= next_start
        latest_end = max(latest_end, end)
    return alone


def frame_timings(record: RunRecord) -> list[FrameTiming]:
    """The timing of every frame that finished, in submission order (module docstring)."""
    runs = _runs_by_frame(record.tasks)
    seconds = _transfer_seconds(record.transfers)
    ends = {event.frame: event for event in record.done}
    failed = {event.frame: event.time for event in record.failed}
    frames = list(record.submitted.values())
    intervals = [
        (event.time, ends[event.frame].time if event.frame in ends else failed.get(event.frame, math.inf))
        for event in frames
    ]
    alone = ran_alone(intervals)
    homes = {node for node, role in record.roles.items() if role == "home"}
    timings = []
    for submitted, lonely in zip(frames, alone, strict=True):
        done = ends.get(submitted.frame)
        frame_runs = runs.get(submitted.frame, {})
        if done is None or not frame_runs:
            continue
        timings.append(
            _timing(
                record, submitted.frame, submitted.input, submitted.time, done.time, frame_runs, seconds, homes, lonely
            )
        )
    return timings


def _timing(
    record: RunRecord,
    frame: str,
    name: str,
    submitted: float,
    done: float,
    runs: Mapping[str, TaskRun],
    seconds: Mapping[tuple[str, str, str, str], float],
    homes: set[str],
    alone: bool,
) -> FrameTiming:
    exits = [runs[task] for task in record.exits if task in runs] or list(runs.values())
    last = max(exits, key=lambda run: run.finish)
    latency = done - submitted
    # The last task back home: the sender measured that file's transfer.
    to_home = max((seconds.get((frame, HOME_TASK, last.node, home), 0.0) for home in homes), default=0.0)
    transfer = min(to_home, max(0.0, done - last.finish))
    execution = 0.0
    path = [last]
    current = last
    while True:
        execution += max(0.0, current.finish - current.execute)
        parents = [runs[parent] for parent in record.parents.get(current.task, ()) if parent in runs]
        if not parents:
            break
        parent = max(parents, key=lambda run: run.finish)
        hop = seconds.get((frame, current.task, parent.node, current.node), 0.0)
        transfer += min(hop, max(0.0, current.execute - parent.finish))
        path.append(parent)
        current = parent
    from_home = max((seconds.get((frame, current.task, home, current.node), 0.0) for home in homes), default=0.0)
    transfer += min(from_home, max(0.0, current.execute - submitted))
    first_execute = min(run.execute for run in runs.values())
    return FrameTiming(
        frame=frame,
        input=name,
        submitted=submitted,
        done=done,
        latency=latency,
        execution=execution,
        transfer=transfer,
        waiting=max(0.0, latency - execution - transfer),
        span=max(run.finish for run in runs.values()) - first_execute,
        last_finish=max(run.finish for run in runs.values()),
        path=tuple(run.task for run in reversed(path)),
        alone=alone,
    )


@dataclass(frozen=True)
class Spread:
    """Summary figures of a set of durations, in seconds (None when there are none)."""

    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            return cls(0, None, None, None, None, None)
        return cls(
            len(values),
            sum(values) / len(values),
            percentile(values, 0.5),
            percentile(values, 0.95),
            percentile(values, 0.99),
            max(values),
        )

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "mean": self.mean,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "max": self.max,
        }


def submission(record: RunRecord) -> str:
    """How the frames were submitted: `single`, `burst` (all before the first finished),
    `sequential` (each after the previous one finished) or `spread`."""
    frames = list(record.submitted.values())
    if len(frames) <= 1:
        return "single" if frames else "none"
    ends = sorted([event.time for event in record.done] + [event.time for event in record.failed])
    if not ends or frames[-1].time <= ends[0]:
        return "burst"
    finish = {event.frame: event.time for event in record.done} | {event.frame: event.time for event in record.failed}
    if all(finish.get(a.frame, math.inf) <= b.time for a, b in itertools.pairwise(frames)):
        return "sequential"
    return "spread"


def steady_throughput(done_times: Sequence[float]) -> tuple[float, float, float] | None:
    """(frames/s, from, to) between the frames that finished at 10 % and 90 % of the run.

    The first and last frames see an emptier pipeline than the rest (it
    fills up, then drains), so the rate in between is the one a long stream
    keeps. None with fewer than 10 frames.
    """
    if len(done_times) < 10:
        return None
    times = sorted(done_times)
    low, high = int(0.1 * (len(times) - 1)), int(0.9 * (len(times) - 1))
    if times[high] <= times[low]:
        return None
    return (high - low) / (times[high] - times[low]), times[low], times[high]


@dataclass(frozen=True)
class NodeLoad:
    """One node's share of a run."""

    node: str
    runs: int
    busy: float
    """Seconds `task()` ran on it (summed over its tasks, which may run side by side)."""
    utilisation: float
    """busy / the run's seconds (above 1 when its tasks ran side by side on several cores)."""


def node_loads(record: RunRecord, seconds: float) -> list[NodeLoad]:
    """Per node (those that ran or were mapped a task): runs, busy seconds and utilisation over `seconds`."""
    busy: dict[str, float] = {}
    runs: dict[str, int] = {}
    for event in record.tasks:
        busy[event.node] = busy.get(event.node, 0.0) + event.seconds
        runs[event.node] = runs.get(event.node, 0) + 1
    return [
        NodeLoad(node, runs.get(node, 0), busy.get(node, 0.0), busy.get(node, 0.0) / seconds if seconds > 0 else 0.0)
        for node in record.nodes
    ]


def task_times(record: RunRecord) -> dict[str, tuple[list[str], list[float]]]:
    """task -> (nodes that ran it, execution seconds of every run), in DAG order."""
    nodes: dict[str, set[str]] = {}
    times: dict[str, list[float]] = {}
    for event in record.tasks:
        nodes.setdefault(event.task, set()).add(event.node)
        times.setdefault(event.task, []).append(event.seconds)
    return {task: (sorted(nodes[task]), times[task]) for task in record.order if task in times}
