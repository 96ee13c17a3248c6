"""What `jupiter run` reports: a summary of a run, read from every home's event log."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from jupiter.mapping.stats import percentile
from jupiter.model.events import FrameDone, FrameFailed, FrameRestarted, FrameSubmitted, TaskRun, read_events
from jupiter.model.plan import Plan
from jupiter.service.record import Deployment


@dataclass(frozen=True)
class RunSummary:
    """What `jupiter run` reports."""

    deployment: str
    frames: int
    done: int
    failed: int
    seconds: float
    throughput: float
    makespan_p50: float
    makespan_p95: float
    task_means: dict[str, tuple[str, float, int]]
    """task -> (node(s) it ran on, mean execution seconds, runs)."""
    errors: list[str]
    output_dir: Path
    per_home: dict[str, int] = field(default_factory=dict)
    """Frames done per home node."""
    restarted: int = 0
    """Frames started again because a node died (pricing)."""


def summarize(deployment: Deployment, started: float) -> RunSummary:
    """Summary of a run from every home's event log (`started`: when the first frame was submitted)."""
    makespans: list[float] = []
    durations: dict[str, list[float]] = {}
    where: dict[str, set[str]] = {}
    errors: list[str] = []
    submitted = done = failed = restarted = 0
    per_home: dict[str, int] = {}
    last = started
    for home in deployment.homes:
        for event in read_events(deployment.home_layout(home).events, on_bad=lambda _number, _why: None):
            if isinstance(event, FrameSubmitted):
                submitted += 1
            elif isinstance(event, FrameDone):
                done += 1
                per_home[home] = per_home.get(home, 0) + 1
                makespans.append(event.makespan)
                last = max(last, event.time)
            elif isinstance(event, FrameFailed):
                failed += 1
                errors.append(f"frame {event.frame} ({event.input}): {event.reason}")
            elif isinstance(event, FrameRestarted):
                restarted += 1
            elif isinstance(event, TaskRun) and event.ok:
                durations.setdefault(event.task, []).append(event.seconds)
                where.setdefault(event.task, set()).add(event.node)
    seconds = max(last - started, 1e-9)
    order = Plan.load(deployment.layout.plan).order
    return RunSummary(
        deployment=deployment.id,
        frames=submitted,
        done=done,
        failed=failed,
        seconds=seconds,
        throughput=done / seconds,
        makespan_p50=percentile(makespans, 0.5) if makespans else math.nan,
        makespan_p95=percentile(makespans, 0.95) if makespans else math.nan,
        task_means={
            task: (",".join(sorted(where[task])), sum(durations[task]) / len(durations[task]), len(durations[task]))
            for task in order
            if task in durations
        },
        errors=errors,
        output_dir=deployment.home_layout().output,
        per_home=per_home,
        restarted=restarted,
    )
