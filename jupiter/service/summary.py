"""What `jupiter run` reports: a summary of a run, read from every home's event log.

The figures come from `jupiter.report.summary.summary_document`, which is
also what `summary.json` (written beside home's outputs) and `run --output
json` hold, so the table `run` prints and the file always agree.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupiter.model.arrivals import Arrivals
from jupiter.report.run_record import load_run
from jupiter.report.summary import summary_document
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
    document: dict[str, Any] = field(default_factory=dict)
    """The whole summary, as `summary.json` holds it (schema in docs/events.md)."""

    def figure(self, section: str, key: str = "p50") -> float:
        """A figure of the document (NaN when the run has none), e.g. `figure("waiting", "p95")`."""
        value = self.document.get(section, {}).get(key)
        return float(value) if isinstance(value, int | float) else math.nan


def summarize(deployment: Deployment, started: float, arrivals: Arrivals | None = None) -> RunSummary:
    """Summary of a run from every home's event log (`started`: when `run` began submitting; `arrivals`: how)."""
    record = load_run(deployment.root)
    document = summary_document(record, arrivals.to_json() if arrivals is not None else None)
    document["backend"] = deployment.record.backend
    document["outputs"] = str(deployment.home_layout().output)
    latency = document["latency"]
    # From when `run` began submitting, so the upload of the frames counts too.
    last = max([started, *(event.time for event in record.done)])
    seconds = max(last - started, 1e-9)
    return RunSummary(
        deployment=deployment.id,
        frames=document["frames"]["submitted"],
        done=document["frames"]["done"],
        failed=document["frames"]["failed"],
        seconds=seconds,
        throughput=len(record.done) / seconds,
        makespan_p50=latency["p50"] if latency["p50"] is not None else math.nan,
        makespan_p95=latency["p95"] if latency["p95"] is not None else math.nan,
        task_means={
            task: (",".join(info["nodes"]), info["mean"], info["runs"]) for task, info in document["tasks"].items()
        },
        errors=document["errors"],
        output_dir=deployment.home_layout().output,
        per_home=dict(record.done_per_home),
        restarted=document["frames"]["restarted"],
        document=document,
    )


def write_summary(deployment: Deployment, summary: RunSummary) -> Path:
    """Write `summary.json` beside home's outputs; returns its path."""
    path = deployment.home_layout().summary
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(summary.document, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
