"""A finished run, read back from its deployment folder: the one input of summaries, reports and traces.

`load_run` reads `plan.json`, every home's `events.jsonl` (several homes
only with pricing), and, when the mapping came from profiles, `mapping.json`
(the predicted schedule) and `profile.json` (the measurements it came from),
plus the raw network samples from home's SQLite store when it is there.
`latest_run` picks the newest deployment folder that holds a run, skipping
folders of deployments that failed before any frame was submitted.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupiter.model.errors import InputError
from jupiter.model.events import (
    BadLines,
    FrameDone,
    FrameFailed,
    FrameRestarted,
    FrameSubmitted,
    ResourceProfile,
    TaskRun,
    Transfer,
    read_events,
)
from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import HOME_TASK, Plan, StoreSpec
from jupiter.store import StoreError, open_store

_ATTEMPT = re.compile(r"-r[0-9]+$")


def base_frame(frame: str) -> str:
    """The frame an attempt repeats (`f000001-abcdef-r2` -> `f000001-abcdef`); any other id unchanged."""
    return _ATTEMPT.sub("", frame)


@dataclass
class RunRecord:
    """Everything a summary, a report or a trace is drawn from."""

    name: str
    """The deployment id (its folder's name)."""
    app: str
    order: list[str]
    """Tasks in topological order."""
    parents: dict[str, tuple[str, ...]]
    """task -> its DAG parents."""
    exits: tuple[str, ...]
    """Tasks that send a final output home."""
    mapping: dict[str, str]
    roles: dict[str, str]
    """node -> home, compute or datasource."""
    scheme: str = "nonpricing"
    tasks: list[TaskRun] = field(default_factory=list)
    """`task` events that succeeded."""
    failed_tasks: list[TaskRun] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    """Sender-side `transfer` events that delivered (hand-overs on one node included, with 0 bytes)."""
    submitted: dict[str, FrameSubmitted] = field(default_factory=dict)
    """frame -> its `frame_submitted`, in submission order."""
    done: list[FrameDone] = field(default_factory=list)
    """`frame_done` events, by the time they finished."""
    done_per_home: dict[str, int] = field(default_factory=dict)
    failed: list[FrameFailed] = field(default_factory=list)
    restarts: list[FrameRestarted] = field(default_factory=list)
    resources: list[ResourceProfile] = field(default_factory=list)
    predicted: dict[str, Any] = field(default_factory=dict)
    """mapping.json: scheduler, makespan, mapping, tasks {task: {node, start, finish}}."""
    profile: dict[str, Any] | None = None
    """profile.json, when the deployment was profiled."""
    samples: list[tuple[str, str, int, float]] = field(default_factory=list)
    """Raw network probes (src, dst, bytes, seconds) from home's SQLite store, when it is readable."""
    warnings: list[str] = field(default_factory=list)
    """Lines skipped in an event log, and what could not be read."""

    @property
    def edges(self) -> list[tuple[str, str]]:
        return [(parent, task) for task in self.order for parent in self.parents[task]]

    @property
    def start(self) -> float:
        """When the first frame was submitted (or the first task started, without submissions)."""
        times = [event.time for event in self.submitted.values()] + [event.execute for event in self.tasks]
        return min(times) if times else 0.0

    @property
    def nodes(self) -> list[str]:
        """Nodes that ran tasks or were mapped some, in nodes.txt order (home and data sources after)."""
        used = {event.node for event in self.tasks} | set(self.mapping.values())
        return [node for node in self.roles if node in used]

    @property
    def compute(self) -> list[str]:
        """Compute nodes in nodes.txt order (the order node colours follow, as on the dashboard)."""
        return [node for node, role in self.roles.items() if role == "compute"]

    def workers(self) -> dict[str, dict[str, str]]:
        """frame -> task -> node that ran it (pricing chooses per frame)."""
        table: dict[str, dict[str, str]] = {}
        for event in self.tasks:
            table.setdefault(base_frame(event.frame), {})[event.task] = event.node
        return table


def load_run(root: Path) -> RunRecord:
    """Read a deployment folder (InputError naming what is missing or damaged)."""
    layout = DeploymentLayout(root)
    if not layout.plan.exists():
        raise InputError(layout.plan, None, "not found; pass the folder of a deployment that ran (`.jupiter/<id>`)")
    plan = Plan.load(layout.plan)
    first = layout.home(plan.home, plan.home)
    if not first.events.exists():
        raise InputError(first.events, None, "not found; pass the folder of a deployment that ran (`.jupiter/<id>`)")
    order = list(plan.order)
    record = RunRecord(
        name=root.name,
        app=plan.app_name,
        order=order,
        parents={task: tuple(p for p in plan.tasks[task].parents if p in plan.tasks) for task in order},
        exits=tuple(task for task in order if HOME_TASK in plan.tasks[task].children),
        mapping=dict(plan.mapping),
        roles={name: address.role for name, address in plan.nodes.items()},
        scheme=plan.scheme,
    )
    submitted: list[FrameSubmitted] = []
    for home in plan.all_homes:
        events = layout.home(home, plan.home).events
        bad = BadLines(events)
        for event in read_events(events, on_bad=bad):
            if isinstance(event, TaskRun):
                (record.tasks if event.ok else record.failed_tasks).append(event)
            elif isinstance(event, Transfer):
                if event.side == "sender" and not event.failed:
                    record.transfers.append(event)
            elif isinstance(event, FrameSubmitted):
                submitted.append(event)
            elif isinstance(event, FrameDone):
                record.done.append(event)
                record.done_per_home[home] = record.done_per_home.get(home, 0) + 1
            elif isinstance(event, FrameFailed):
                record.failed.append(event)
            elif isinstance(event, FrameRestarted):
                record.restarts.append(event)
            elif isinstance(event, ResourceProfile):
                record.resources.append(event)
        if bad.lines:
            record.warnings.append(bad.message())
    record.submitted = {event.frame: event for event in sorted(submitted, key=lambda event: event.time)}
    record.done.sort(key=lambda event: event.time)
    if layout.predicted.exists():
        record.predicted = json.loads(layout.predicted.read_text())
        record.mapping = record.mapping or dict(record.predicted.get("mapping", {}))
    if not record.mapping:
        record.mapping = {event.task: event.node for event in record.tasks}
    if layout.profile.exists():
        record.profile = json.loads(layout.profile.read_text())
        record.samples = _network_samples(plan, first.store)
    return record


def _network_samples(plan: Plan, local_store: Path) -> list[tuple[str, str, int, float]]:
    """The raw network probes, from home's SQLite store when this machine has it (none otherwise)."""
    store = plan.store
    if store is None or store.kind != "sqlite":
        return []
    path = Path(store.path) if store.path and Path(store.path).exists() else local_store
    if not path.exists():
        return []
    try:
        with open_store(StoreSpec(kind="sqlite", path=str(path))) as opened:
            return opened.network_samples()
    except (OSError, sqlite3.Error, StoreError):
        return []


def has_run(root: Path) -> bool:
    """Whether a deployment folder holds a run: a plan and an event log in which a frame was submitted."""
    layout = DeploymentLayout(root)
    if not layout.plan.exists():
        return False
    events = layout.root / "home" / "events.jsonl"
    try:
        with events.open(encoding="utf-8", errors="replace") as handle:
            return any(f'"{FrameSubmitted.type}"' in line for line in handle)
    except OSError:
        return False


def latest_run(state_dir: Path) -> Path:
    """The newest deployment folder of a state folder that holds a run (failed deployments are skipped)."""
    folders = sorted((p for p in state_dir.iterdir() if p.is_dir()), reverse=True) if state_dir.is_dir() else []
    for folder in folders:
        if has_run(folder):
            return folder
    skipped = f" ({len(folders)} deployment folders without a frame skipped)" if folders else ""
    raise InputError(
        state_dir, None, f"no deployment has run a frame here{skipped}; run `jupiter run` first or pass --deployment"
    )
