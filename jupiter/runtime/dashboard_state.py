"""What home's live dashboard shows, kept in bounded windows whatever the run's length.

Home hands every event it records to :meth:`DashboardState.observe`, which
only appends a small tuple (or adds to a counter): task executions become
bars of the task stream, sender transfers between two nodes add bytes to
their link's current second, `resource_profile` reports become per-node CPU
and memory points, failed frames a list of reasons, and every task run
counts where its frame's task went (the placements pricing chooses). Once a
second :meth:`tick` samples home's frame counters and turns each link's
bytes into a bytes/s point. Each window has a fixed size (`BARS`,
`SERIES`, ...), oldest dropped first, so home's memory stays flat.

A browser connected to the dashboard gets a :meth:`snapshot` of everything
once, then every second a :meth:`delta` of what came since its `Cursor`: a
slow client that falls more than a window behind simply misses the oldest
items. There is one copy of the state, however many clients: nothing is
queued per client. Used on the agent's event loop only.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jupiter.model.events import Event, FrameFailed, ResourceProfile, TaskRun, Transfer
from jupiter.model.palette import node_colours, task_colours
from jupiter.model.plan import Plan

BARS = 10_000
"""Task executions kept for the task stream."""
SERIES = 900
"""Points kept per time series (one per second: 15 minutes)."""
RESOURCES = 450
"""Resource reports kept per node (one every few seconds)."""
RECENT_FRAMES = 30
"""Frames whose placement (task -> node) is shown one by one."""
FAILURES = 20
"""Failed frames listed with their reason."""
MB = 1024 * 1024


@dataclass
class Cursor:
    """How far one client has been sent each window (sequence numbers)."""

    bars: int = 0
    tick: int = 0
    resources: int = 0
    failures: int = 0


def _since(window: deque[tuple[int, Any]], seq: int) -> list[Any]:
    """Items of a (seq, item) window with seq > `seq`, oldest first (walked from the newest end)."""
    out = []
    for number, item in reversed(window):
        if number <= seq:
            break
        out.append(item)
    out.reverse()
    return out


@dataclass
class DashboardState:
    """The dashboard's windows (module docstring)."""

    plan: Callable[[], Plan]
    """The plan as dispatched so far (the mapping comes after profiling)."""
    counts: Callable[[], Mapping[str, Any]]
    """Home's frame counters (`FrameTracker.counts`)."""
    node: str
    seq: int = 0
    ticks: int = 0
    last_tick: float = field(default_factory=time.time)
    bars: deque[tuple[int, list[Any]]] = field(default_factory=lambda: deque(maxlen=BARS))
    frames: deque[tuple[int, list[Any]]] = field(default_factory=lambda: deque(maxlen=SERIES))
    resources: dict[str, deque[tuple[int, list[Any]]]] = field(default_factory=dict)
    links: dict[str, deque[tuple[int, list[Any]]]] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    """Bytes sent on each link since the last tick."""
    placements: dict[str, dict[str, int]] = field(default_factory=dict)
    recent: OrderedDict[str, dict[str, str]] = field(default_factory=OrderedDict)
    failures: deque[tuple[int, list[Any]]] = field(default_factory=lambda: deque(maxlen=FAILURES))

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    # ----------------------------------------------------------------- events

    def observe(self, event: Event) -> None:
        """Take one event home recorded (cheap: an append or a sum)."""
        if isinstance(event, TaskRun):
            self._task(event)
        elif isinstance(event, Transfer):
            if event.side == "sender" and event.peer and event.peer != event.node and event.bytes > 0:
                link = f"{event.node}>{event.peer}"
                self.pending[link] = self.pending.get(link, 0) + event.bytes
        elif isinstance(event, ResourceProfile):
            window = self.resources.setdefault(event.node, deque(maxlen=RESOURCES))
            point = [event.time, event.process_cpu, event.process_memory / MB, event.cpu, event.memory]
            window.append((self._next(), point))
        elif isinstance(event, FrameFailed):
            self.failures.append((self._next(), [event.time, event.frame, event.reason[:300]]))

    def _task(self, event: TaskRun) -> None:
        self.bars.append(
            (
                self._next(),
                [
                    event.node,
                    event.task,
                    round(event.execute, 6),
                    round(event.finish, 6),
                    event.frame,
                    event.ok,
                    round(event.execute - event.arrive, 6),
                ],
            )
        )
        if event.ok:
            per_node = self.placements.setdefault(event.task, {})
            per_node[event.node] = per_node.get(event.node, 0) + 1
            frame = self.recent.get(event.frame)
            if frame is None:
                frame = self.recent[event.frame] = {}
                if len(self.recent) > RECENT_FRAMES:
                    self.recent.popitem(last=False)
            frame[event.task] = event.node

    def tick(self, now: float | None = None) -> None:
        """Once a second: sample the frame counters and each link's bytes/s."""
        now = time.time() if now is None else now
        seconds = max(now - self.last_tick, 1e-3)
        self.last_tick = now
        self.ticks += 1
        counts = self.counts()
        self.frames.append(
            (
                self.ticks,
                [
                    round(now, 3),
                    counts.get("submitted", 0),
                    counts.get("done", 0),
                    counts.get("failed", 0),
                    counts.get("in_flight", 0),
                    counts.get("throughput", 0.0),
                ],
            )
        )
        for link in set(self.links) | set(self.pending):
            rate = self.pending.pop(link, 0) / seconds
            self.links.setdefault(link, deque(maxlen=SERIES)).append((self.ticks, [round(now, 3), rate]))

    # ----------------------------------------------------------------- views

    def _static(self) -> dict[str, Any]:
        plan = self.plan()
        nodes = list(plan.nodes)
        # Compute nodes in nodes.txt order get the report's node colours; home and data sources stay grey.
        colours = node_colours([n for n in nodes if plan.nodes[n].role == "compute"])
        tasks = task_colours(plan.order)
        return {
            "deployment": plan.deployment,
            "app": plan.app_name,
            "home": self.node,
            "scheme": plan.scheme,
            "nodes": [{"name": n, "role": plan.nodes[n].role, "colour": colours.get(n, "#d9d9d9")} for n in nodes],
            "tasks": [
                {
                    "name": t,
                    "colour": tasks[t],
                    "parents": list(plan.tasks[t].parents),
                    "children": list(plan.tasks[t].children),
                }
                for t in plan.order
            ],
            "limits": {"bars": BARS, "series": SERIES, "resources": RESOURCES},
        }

    def _live(self) -> dict[str, Any]:
        return {
            "now": round(time.time(), 3),
            "mapping": dict(self.plan().mapping),
            "counts": dict(self.counts()),
            "placements": {task: dict(nodes) for task, nodes in self.placements.items()},
            "recent": [[frame, dict(tasks)] for frame, tasks in self.recent.items()],
        }

    def snapshot(self, cursor: Cursor) -> dict[str, Any]:
        """Everything (the page's first message); moves `cursor` to now."""
        cursor.bars = cursor.tick = cursor.resources = cursor.failures = 0
        return {**self._static(), **self.delta(cursor)}

    def delta(self, cursor: Cursor) -> dict[str, Any]:
        """What came since `cursor` (every later message); moves `cursor` to now."""
        answer = {
            **self._live(),
            "bars": _since(self.bars, cursor.bars),
            "frames": _since(self.frames, cursor.tick),
            "links": {link: _since(window, cursor.tick) for link, window in self.links.items()},
            "resources": {node: _since(window, cursor.resources) for node, window in self.resources.items()},
            "failures": _since(self.failures, cursor.failures),
        }
        cursor.bars = cursor.resources = cursor.failures = self.seq
        cursor.tick = self.ticks
        return answer
