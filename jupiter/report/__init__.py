"""Reports of finished runs: `summary.json`, `report.html` with its charts, and a Chrome trace.

* `run_record` reads a deployment folder back (plan, every home's event log,
  the predicted schedule, the profile and its network probes);
* `timing` splits each frame's latency into execution, transfer and waiting
  along its critical path and finds the frames that ran alone;
* `prediction` compares predictions on the same thing as what was measured;
* `summary` builds `summary.json`; `charts` draws the PNGs and `page` the
  self-contained `report.html`; `trace` writes the Chrome trace;
* `gantt` draws a predicted schedule (`jupiter map --gantt`).

matplotlib (Agg) is imported only by the drawing functions, so that other
commands never load it.
"""

from __future__ import annotations

from pathlib import Path

from jupiter.report.run_record import RunRecord, latest_run, load_run
from jupiter.report.summary import summary_document
from jupiter.report.timing import frame_timings
from jupiter.report.trace import trace_document, write_trace


def predicted_vs_measured(record: RunRecord) -> list[tuple[str, str, float | None, float | None]]:
    """(task, node, predicted seconds from the profile, measured mean seconds) per task."""
    measured: dict[str, list[float]] = {}
    for event in record.tasks:
        measured.setdefault(event.task, []).append(event.seconds)
    placed = record.predicted.get("tasks", {})
    rows = []
    for task in record.order:
        entry = placed.get(task)
        predicted = float(entry["finish"]) - float(entry["start"]) if entry else None
        times = measured.get(task)
        rows.append((task, record.mapping.get(task, "?"), predicted, sum(times) / len(times) if times else None))
    return rows


def write_report(root: Path, out: Path) -> Path:
    """Write the PNGs and report.html for the deployment in `root` into `out`; returns the page."""
    from jupiter.report import charts  # noqa: PLC0415 - matplotlib only when drawing
    from jupiter.report.page import render_page  # noqa: PLC0415

    record = load_run(root)
    out.mkdir(parents=True, exist_ok=True)
    document = summary_document(record)
    timings = frame_timings(record)
    prediction = document["prediction"]
    single = prediction["single_frame"]
    stream = prediction["stream"]
    references: dict[str, float] = {}
    if single is not None:
        references["predicted: one frame alone"] = single["predicted_makespan"]
    if stream is not None:
        references["predicted: pipelined latency p50"] = stream["predicted_latency_p50"]
    rows = predicted_vs_measured(record)
    drawn = {
        "latency": charts.draw_latency(
            record, timings, out / "latency.png", single["predicted_makespan"] if single else None
        ),
        "makespan": charts.draw_makespans(record, timings, out / "makespan.png", references),
        "side_by_side": charts.draw_side_by_side(record, timings, out / "predicted_gantt.png"),
        "gantt": charts.draw_gantt(record, timings, out / "gantt.png"),
        "dag": charts.draw_dag(record, out / "dag.png"),
        "tasks": charts.draw_task_times(record, rows, out / "predicted.png"),
        "utilisation": charts.draw_utilisation(record, document["seconds"], out / "utilisation.png"),
        "network": charts.draw_network(record, out / "network.png"),
    }
    target = out / "report.html"
    target.write_text(render_page(record, document, drawn, rows), encoding="utf-8")
    return target


__all__ = [
    "RunRecord",
    "latest_run",
    "load_run",
    "predicted_vs_measured",
    "summary_document",
    "trace_document",
    "write_report",
    "write_trace",
]
