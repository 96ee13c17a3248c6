"""`report.html`: one self-contained page (charts embedded as PNG data, no external file) of a finished run."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jupiter.report.charts import format_seconds
from jupiter.report.run_record import RunRecord

WORKER_ROWS = 200
"""Frames listed one by one in the pricing section."""

STYLE = """body{font-family:sans-serif;max-width:1120px;margin:2em auto;color:#222}img{max-width:100%}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}p.note{color:#555;font-size:0.9em;max-width:60em}
.warn{color:#9a6324}"""


def embed(path: Path | None, alt: str) -> str:
    """An image as a data URL (the page stands alone), or nothing."""
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def seconds(value: float | None) -> str:
    """A duration for a table cell: ms below 2 s, '-' when there is none."""
    return "-" if value is None else format_seconds(value, value)


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(rows: Sequence[Sequence[str]], head: Sequence[str] = ()) -> str:
    """A table of already-escaped cells; the first column left-aligned."""
    top = "<tr>" + "".join(f"<th{' class=l' if i == 0 else ''}>{cell}</th>" for i, cell in enumerate(head)) + "</tr>"
    body = "".join(
        "<tr>" + "".join(f"<td{' class=l' if i == 0 else ''}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table>{top if head else ''}{body}</table>"


def prediction_section(prediction: Mapping[str, Any]) -> str:
    """Predicted against measured, each on the same thing, with what is not compared and why."""
    rows = []
    single = prediction.get("single_frame")
    if single is not None:
        alone = single["alone_frames"]
        measured = (
            f"{seconds(single['measured_span_p50'])} (median of the {alone} frames that ran alone)"
            if alone
            else "no frame ran alone"
        )
        rows.append(
            [
                f"one frame alone ({html.escape(str(single['scheduler']))}): first task start to last task finish",
                seconds(single["predicted_makespan"]),
                measured,
                ratio(single["ratio"]),
            ]
        )
    stream = prediction.get("stream")
    if stream is not None:
        arrivals = "as a burst" if stream["arrivals"] == "burst" else f"at {stream['rate']:.3g} frames/s"
        what = f"the stream, pipelined ({stream['frames']} frames arriving {arrivals}): latency to the last task"
        rows.append(
            [
                html.escape(what) + ", p50",
                seconds(stream["predicted_latency_p50"]),
                seconds(stream["measured_latency_p50"]),
                ratio(stream["ratio"]),
            ]
        )
        p95 = stream["predicted_latency_p95"]
        rows.append(
            [
                "same, p95",
                seconds(p95),
                seconds(stream["measured_latency_p95"]),
                ratio(stream["measured_latency_p95"] / p95 if p95 else None),
            ]
        )
        throughput = stream["predicted_throughput"]
        rows.append(
            [
                "same, throughput (frames/s)",
                f"{throughput:.2f}",
                f"{stream['measured_throughput']:.2f}",
                ratio(stream["measured_throughput"] / throughput if throughput else None),
            ]
        )
    notes = "".join(f'<p class="note">{html.escape(note)}</p>' for note in prediction.get("notes", []))
    if stream is not None and stream.get("note"):
        notes += f'<p class="note warn">{html.escape(stream["note"])}</p>'
    body = table(rows, ["compared", "predicted", "measured", "measured / predicted"]) if rows else ""
    return f"<h2>Predicted and measured</h2>{body}{notes}"


def latency_table(document: Mapping[str, Any]) -> str:
    rows = []
    for key, label in (
        ("latency", "latency (submitted to done)"),
        ("work", "work = execution + transfer"),
        ("execution", "execution (task() running, critical path)"),
        ("transfer", "transfer (on the wire, critical path)"),
        ("waiting", "waiting (queueing: latency - work)"),
        ("span", "span (first task start to last task finish)"),
    ):
        figures = document[key]
        rows.append([label, seconds(figures["p50"]), seconds(figures["p95"]), seconds(figures["max"])])
    return table(rows, ["per frame", "p50", "p95", "max"])


def workers_section(record: RunRecord) -> str:
    """Pricing: which node ran each frame's tasks (and how often each node ran each task)."""
    if record.scheme == "nonpricing":
        return ""
    workers = record.workers()
    counts: dict[str, dict[str, int]] = {}
    for tasks in workers.values():
        for task, node in tasks.items():
            counts.setdefault(task, {}).setdefault(node, 0)
            counts[task][node] += 1
    nodes = [node for node in record.roles if any(node in per_task for per_task in counts.values())]
    count_rows = [
        [html.escape(task), *(str(counts.get(task, {}).get(node, 0)) for node in nodes)] for task in record.order
    ]
    frames = [frame for frame in record.submitted if frame in workers][:WORKER_ROWS]
    frame_rows = [
        [html.escape(frame), *(html.escape(workers[frame].get(task, "-")) for task in record.order)] for frame in frames
    ]
    note = f'<p class="note">(first {len(frames)} of {len(workers)} frames)</p>' if len(workers) > len(frames) else ""
    return (
        f"<h2>Where each frame went ({html.escape(record.scheme)} pricing)</h2><p>Frames of each task run per node:</p>"
        + table(count_rows, ["task", *(html.escape(n) for n in nodes)])
        + f"<p>Node that ran each frame's task:</p>{note}"
        + table(frame_rows, ["frame", *(html.escape(t) for t in record.order)])
    )


def render_page(
    record: RunRecord,
    document: Mapping[str, Any],
    charts: Mapping[str, Path | None],
    task_rows: Sequence[tuple[str, str, float | None, float | None]],
) -> str:
    """The whole page."""
    frames = document["frames"]
    throughput = document["throughput"]
    steady = throughput["steady"]
    how = {
        "burst": "all at once (each before the first finished)",
        "sequential": "one at a time (each after the previous finished)",
        "spread": "spread out (some overlapped)",
        "single": "one frame",
        "none": "none",
    }[document["submission"]]
    overview = [
        [
            "frames",
            f"{frames['done']} done, {frames['failed']} failed of {frames['submitted']} submitted"
            + (f", {frames['restarted']} started again" if frames["restarted"] else ""),
        ],
        ["submitted", html.escape(how)],
        ["frames that ran alone", str(frames["alone"])],
        ["run", f"{seconds(document['seconds'])} from the first submission to the last frame"],
        [
            "throughput",
            (f"{throughput['overall']:.2f} frames/s overall" if throughput["overall"] else "-")
            + (f", {steady:.2f} frames/s steady (10 % to 90 % of the frames)" if steady else ""),
        ],
        ["mapping", html.escape(str(record.predicted.get("scheduler", "static mapping")))],
    ]
    task_table = table(
        [[html.escape(t), html.escape(n), seconds(p), seconds(m)] for t, n, p, m in task_rows],
        ["task", "node", "predicted", "measured mean"],
    )
    node_table = table(
        [
            [
                html.escape(node),
                html.escape(", ".join(info["tasks"])),
                str(info["runs"]),
                seconds(info["busy"]),
                f"{100 * info['utilisation']:.0f} %",
            ]
            for node, info in document["nodes"].items()
        ],
        ["node", "tasks", "runs", "task time", "of the run"],
    )
    warnings = "".join(f'<p class="note warn">{html.escape(w)}</p>' for w in record.warnings)
    sections = [
        f"<h1>Jupiter run {html.escape(record.name)} ({html.escape(record.app)})</h1>{warnings}",
        table(overview),
        prediction_section(document["prediction"]),
        "<h2>Where the time went</h2>"
        '<p class="note">Along each frame\'s critical path: execution is task() running, transfer the files on the '
        "wire, waiting the rest (queues behind other frames, batching, the agents' own work). docs/events.md "
        "defines each.</p>"
        + latency_table(document)
        + embed(charts.get("latency"), "latency split")
        + embed(charts.get("makespan"), "latency over time"),
        "<h2>Predicted and measured schedule of one frame</h2>"
        + (
            embed(charts.get("side_by_side"), "predicted and measured Gantt")
            or '<p class="note">No predicted schedule: the mapping was static.</p>'
        ),
        "<h2>Task executions per node</h2>"
        + embed(charts.get("gantt"), "Gantt chart")
        + '<p class="note">`jupiter report --trace trace.json` has every frame, for Perfetto or chrome://tracing.</p>',
        "<h2>DAG and mapping</h2>" + embed(charts.get("dag"), "DAG"),
        "<h2>Time per task</h2>" + embed(charts.get("tasks"), "predicted vs measured per task") + task_table,
        "<h2>Nodes</h2>" + embed(charts.get("utilisation"), "utilisation") + node_table,
        ("<h2>Network: fits against their probes</h2>" + embed(charts.get("network"), "network fits"))
        if charts.get("network")
        else "",
        workers_section(record),
    ]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Jupiter run {html.escape(record.name)}'
        f"</title><style>{STYLE}</style></head><body>\n" + "\n".join(s for s in sections if s) + "\n</body></html>\n"
    )
