"""`summary.json`: a finished run in one stable JSON document (schema in docs/events.md).

`jupiter run` writes it beside home's outputs and prints it with `--output
json`. Built from a :class:`jupiter.report.run_record.RunRecord`: frame
counts, how the frames arrived and the rate the run sustained, the latency
of every frame split into work (execution, transfer) and waiting
(`jupiter.report.timing`), throughput overall and in the steady part of the
run, per-task and per-node times, the mapping, and the
prediction compared on the same thing (`jupiter.report.prediction`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jupiter.model.outputs import SUMMARY_FORMAT, VERSION
from jupiter.report.prediction import compare
from jupiter.report.run_record import RunRecord
from jupiter.report.timing import Spread, frame_timings, node_loads, steady_throughput, submission, task_times

PER_FRAME_LIMIT = 10_000
"""Frames listed one by one in `per_frame` (events.jsonl has every one)."""


KEPT_UP = 0.95
"""A stream kept up when frames finished, in the steady part of the run, at this share of the offered rate or more."""


def stream_figures(record: RunRecord, arrivals: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `arrivals` and `sustained` sections: how frames came (as asked, and as measured) and the rate kept.

    The offered rate is measured from home's submission times (frames - 1
    gaps over the span); the sustained rate is the steady throughput (frames
    finished between the 10th and 90th percentile of the finish times), or
    the overall one for fewer than 10 frames. A paced stream kept up when
    the sustained rate is at least KEPT_UP of the offered one; above what a
    mapping sustains, frames queue and the sustained rate stays below.
    """
    asked: dict[str, Any] = dict(arrivals) if arrivals is not None else {"pattern": submission(record)}
    times = sorted(event.time for event in record.submitted.values())
    offered = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None
    paced = asked.get("pattern") in ("poisson", "fixed")
    asked["offered"] = offered if paced else None
    done = [event.time for event in record.done]
    steady = steady_throughput(done)
    ends = done + [event.time for event in record.failed]
    overall = len(done) / (max(ends) - record.start) if ends and max(ends) > record.start else None
    rate = steady[0] if steady else overall
    kept_up = None if not paced or offered is None or rate is None else rate >= KEPT_UP * offered
    return asked, {"rate": rate, "kept_up": kept_up}


def summary_document(record: RunRecord, arrivals: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The summary of a run (module docstring); times are seconds, relative to the first submission.

    `arrivals`: how `run` submitted the frames (`jupiter.model.arrivals.Arrivals.to_json`), when it is known.
    """
    timings = frame_timings(record)
    asked, sustained = stream_figures(record, arrivals)
    start = record.start
    ends = [event.time for event in record.done] + [event.time for event in record.failed]
    seconds = max(ends) - start if ends else 0.0
    steady = steady_throughput([event.time for event in record.done])
    tasks = {}
    for task, (ran_on, times) in task_times(record).items():
        spread = Spread.of(times)
        tasks[task] = {
            "nodes": ran_on,
            "runs": len(times),
            "failed": sum(1 for event in record.failed_tasks if event.task == task),
            "total": sum(times),
            "mean": spread.mean,
            "p50": spread.p50,
            "p95": spread.p95,
        }
    nodes = {
        load.node: {
            "role": record.roles.get(load.node, ""),
            "tasks": sorted({task for task, node in record.mapping.items() if node == load.node}),
            "runs": load.runs,
            "busy": load.busy,
            "utilisation": load.utilisation,
        }
        for load in node_loads(record, seconds)
    }
    return {
        "format": SUMMARY_FORMAT,
        "version": VERSION,
        "deployment": record.name,
        "app": record.app,
        "scheme": record.scheme,
        "start": start,
        "seconds": seconds,
        "submission": submission(record),
        "arrivals": asked,
        "sustained": sustained,
        "frames": {
            "submitted": len(record.submitted),
            "done": len(record.done),
            "failed": len(record.failed),
            "restarted": len(record.restarts),
            "alone": sum(1 for timing in timings if timing.alone),
        },
        "throughput": {
            "overall": len(record.done) / seconds if seconds > 0 else None,
            "steady": steady[0] if steady else None,
            "steady_from": steady[1] - start if steady else None,
            "steady_to": steady[2] - start if steady else None,
        },
        "latency": Spread.of([timing.latency for timing in timings]).to_json(),
        "work": Spread.of([timing.work for timing in timings]).to_json(),
        "execution": Spread.of([timing.execution for timing in timings]).to_json(),
        "transfer": Spread.of([timing.transfer for timing in timings]).to_json(),
        "waiting": Spread.of([timing.waiting for timing in timings]).to_json(),
        "span": Spread.of([timing.span for timing in timings]).to_json(),
        "tasks": tasks,
        "nodes": nodes,
        "mapping": dict(record.mapping),
        "prediction": compare(record, timings).to_json(),
        "errors": [f"frame {event.frame} ({event.input}): {event.reason}" for event in record.failed],
        "per_frame": [timing.to_json(start) for timing in timings[:PER_FRAME_LIMIT]],
        "per_frame_truncated": len(timings) > PER_FRAME_LIMIT,
    }
