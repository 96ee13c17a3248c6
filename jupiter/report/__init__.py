"""`jupiter report`: a run's event log -> one self-contained HTML page and PNG charts.

Reads a deployment folder (`events.jsonl` at home, `plan.json`, and when
the mapping came from profiles `mapping.json` with the predicted schedule)
and writes into an output folder:

* `gantt.png`: task executions per node over time, one colour per task;
* `dag.png`: the DAG, each task labelled with the node it ran on;
* `makespan.png`: each frame's makespan against when it finished;
* `predicted.png`: predicted (from profiles) and measured mean time per task;
* `report.html`: the charts (embedded, so the page stands alone) and tables.

matplotlib (Agg) is imported lazily so that other commands never load it.
"""

from __future__ import annotations

import base64
import html
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupiter.mapping.stats import percentile
from jupiter.model.errors import InputError
from jupiter.model.events import FrameDone, FrameFailed, FrameSubmitted, TaskRun, read_events
from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import Plan


@dataclass
class RunRecord:
    """What a report is drawn from."""

    name: str
    order: list[str]
    edges: list[tuple[str, str]]
    mapping: dict[str, str]
    tasks: list[TaskRun] = field(default_factory=list)
    """`task` events that succeeded."""
    frames: list[FrameDone] = field(default_factory=list)
    """`frame_done` events."""
    failed: int = 0
    submitted: list[float] = field(default_factory=list)
    predicted: dict[str, Any] = field(default_factory=dict)
    """mapping.json: scheduler, makespan, tasks {task: {node, start, finish}}."""
    pricing: str = "nonpricing"
    frame_order: list[str] = field(default_factory=list)
    """Frames in the order they were submitted (over every home)."""

    def workers(self) -> dict[str, dict[str, str]]:
        """frame -> task -> node that ran it (pricing chooses per frame)."""
        table: dict[str, dict[str, str]] = {}
        for event in self.tasks:
            table.setdefault(event.frame.split("-r")[0], {})[event.task] = event.node
        return table

    @property
    def start(self) -> float:
        times = self.submitted + [e.enter for e in self.tasks]
        return min(times) if times else 0.0

    def measured_task_means(self) -> dict[str, float]:
        durations: dict[str, list[float]] = {}
        for event in self.tasks:
            durations.setdefault(event.task, []).append(event.seconds)
        return {task: statistics.mean(values) for task, values in durations.items()}

    def makespans(self) -> list[float]:
        return [e.makespan for e in self.frames]


def load_run(root: Path) -> RunRecord:
    """Read a deployment folder (InputError naming what is missing or damaged)."""
    layout = DeploymentLayout(root)
    plan_path = layout.plan
    if not plan_path.exists():
        raise InputError(plan_path, None, "not found; pass the folder of a deployment that ran (`.jupiter/<id>`)")
    plan = Plan.load(plan_path)
    first = layout.home(plan.home, plan.home)
    if not first.events.exists():
        raise InputError(first.events, None, "not found; pass the folder of a deployment that ran (`.jupiter/<id>`)")
    order = list(plan.order)
    edges = [(name, child) for name in order for child in plan.tasks[name].children if child in plan.tasks]
    record = RunRecord(name=root.name, order=order, edges=edges, mapping=dict(plan.mapping), pricing=plan.scheme)
    # Every home keeps the log of the frames it injected (several homes only with pricing).
    submitted: list[tuple[float, str]] = []
    for home in plan.all_homes:
        for event in read_events(layout.home(home, plan.home).events):
            if isinstance(event, TaskRun) and event.ok:
                record.tasks.append(event)
            elif isinstance(event, FrameDone):
                record.frames.append(event)
            elif isinstance(event, FrameFailed):
                record.failed += 1
            elif isinstance(event, FrameSubmitted):
                record.submitted.append(event.time)
                submitted.append((event.time, event.frame))
    record.frame_order = [frame for _, frame in sorted(submitted)]
    record.frames.sort(key=lambda event: event.time)
    if layout.predicted.exists():
        record.predicted = json.loads(layout.predicted.read_text())
        record.mapping = record.mapping or dict(record.predicted.get("mapping", {}))
    if not record.mapping:
        record.mapping = {e.task: e.node for e in record.tasks}
    return record


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415 - heavy, only when drawing

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _colours(order: list[str]) -> dict[str, Any]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab20")
    return {task: cmap(i % 20) for i, task in enumerate(order)}


def draw_gantt(record: RunRecord, path: Path) -> Path:
    """Task executions per node, one colour per task."""
    plt = _pyplot()
    colours = _colours(record.order)
    nodes = sorted({e.node for e in record.tasks} | set(record.mapping.values()))
    row = {node: i for i, node in enumerate(nodes)}
    fig, ax = plt.subplots(figsize=(11, 0.6 * len(nodes) + 2))
    try:
        start = record.start
        for event in record.tasks:
            ax.barh(
                row[event.node],
                event.seconds,
                left=event.execute - start,
                height=0.6,
                color=colours.get(event.task, "grey"),
                edgecolor="black",
                linewidth=0.3,
            )
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours[t]) for t in record.order]
        ax.legend(handles, record.order, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, title="task")
        ax.set_yticks(range(len(nodes)), labels=nodes)
        ax.invert_yaxis()
        ax.set_xlabel("seconds since the first frame")
        ax.set_title(f"{record.name}: task executions per node")
        ax.grid(axis="x", linestyle=":", linewidth=0.5)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def draw_dag(record: RunRecord, path: Path) -> Path:
    """The DAG laid out by depth, each task labelled with its node."""
    import networkx as nx  # noqa: PLC0415

    plt = _pyplot()
    graph = nx.DiGraph()
    graph.add_nodes_from(record.order)
    graph.add_edges_from(record.edges)
    for depth, layer in enumerate(nx.topological_generations(graph)):
        for task in layer:
            graph.nodes[task]["layer"] = depth
    positions = nx.multipartite_layout(graph, subset_key="layer")
    hosts = sorted(set(record.mapping.values()))
    cmap = plt.get_cmap("Set3")
    colour = [cmap(hosts.index(record.mapping[t]) % 12) if t in record.mapping else "white" for t in graph.nodes]
    fig, ax = plt.subplots(figsize=(11, 6))
    try:
        nx.draw_networkx(
            graph,
            positions,
            ax=ax,
            node_color=colour,
            node_size=1800,
            edgecolors="black",
            labels={t: f"{t}\n@{record.mapping.get(t, '?')}" for t in graph.nodes},
            font_size=7,
            arrowsize=12,
        )
        ax.set_title(f"{record.name}: DAG and mapping ({record.predicted.get('scheduler', 'mapping')})")
        ax.axis("off")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def draw_makespans(record: RunRecord, path: Path) -> Path:
    """Each frame's makespan against the time it finished."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    try:
        start = record.start
        ax.plot([e.time - start for e in record.frames], record.makespans(), "o-", markersize=3)
        if record.predicted.get("makespan"):
            ax.axhline(record.predicted["makespan"], color="red", linestyle="--", label="predicted")
            ax.legend()
        ax.set_xlabel("seconds since the first frame")
        ax.set_ylabel("makespan (s)")
        ax.set_title(f"{record.name}: per-frame makespan")
        ax.grid(linestyle=":", linewidth=0.5)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def predicted_vs_measured(record: RunRecord) -> list[tuple[str, str, float | None, float | None]]:
    """(task, node, predicted seconds, measured mean seconds) per task."""
    measured = record.measured_task_means()
    tasks = record.predicted.get("tasks", {})
    rows = []
    for task in record.order:
        placed = tasks.get(task)
        predicted = placed["finish"] - placed["start"] if placed else None
        rows.append((task, record.mapping.get(task, "?"), predicted, measured.get(task)))
    return rows


def draw_predicted(record: RunRecord, path: Path) -> Path:
    """Predicted and measured mean time per task, side by side."""
    plt = _pyplot()
    rows = predicted_vs_measured(record)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    try:
        xs = range(len(rows))
        ax.bar([x - 0.2 for x in xs], [r[2] or 0.0 for r in rows], width=0.4, label="predicted (profile)")
        ax.bar([x + 0.2 for x in xs], [r[3] or 0.0 for r in rows], width=0.4, label="measured (mean)")
        ax.set_xticks(list(xs), labels=[f"{r[0]}\n@{r[1]}" for r in rows], fontsize=7, rotation=45, ha="right")
        ax.set_ylabel("seconds")
        ax.set_title(f"{record.name}: predicted vs measured time per task")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def _embed(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


WORKER_ROWS = 200


def _workers_section(record: RunRecord) -> str:
    """Pricing: which node ran each frame's tasks (and how often each node ran each task)."""
    if record.pricing == "nonpricing":
        return ""
    table = record.workers()
    counts: dict[str, dict[str, int]] = {}
    for tasks in table.values():
        for task, node in tasks.items():
            counts.setdefault(task, {}).setdefault(node, 0)
            counts[task][node] += 1
    nodes = sorted({node for per_task in counts.values() for node in per_task})
    head = "".join(f"<th>{html.escape(n)}</th>" for n in nodes)
    count_rows = "".join(
        f"<tr><td>{html.escape(task)}</td>"
        + "".join(f"<td>{counts.get(task, {}).get(node, 0)}</td>" for node in nodes)
        + "</tr>"
        for task in record.order
    )
    frames = [frame for frame in record.frame_order if frame in table][:WORKER_ROWS]
    task_head = "".join(f"<th>{html.escape(t)}</th>" for t in record.order)
    frame_rows = "".join(
        f"<tr><td>{html.escape(frame)}</td>"
        + "".join(f"<td>{html.escape(table[frame].get(task, '-'))}</td>" for task in record.order)
        + "</tr>"
        for frame in frames
    )
    more = len(table) - len(frames)
    note = f"<p>(first {len(frames)} of {len(table)} frames)</p>" if more > 0 else ""
    return f"""<h2>Worker nodes ({html.escape(record.pricing)} pricing)</h2>
<p>Frames of each task run per node:</p>
<table><tr><th>task</th>{head}</tr>{count_rows}</table>
<p>Node that ran each frame's task:</p>{note}
<table><tr><th>frame</th>{task_head}</tr>{frame_rows}</table>"""


def write_report(root: Path, out: Path) -> Path:
    """Write the PNGs and report.html for the deployment in `root` into `out`; returns the page."""
    record = load_run(root)
    out.mkdir(parents=True, exist_ok=True)
    charts = {
        "gantt": draw_gantt(record, out / "gantt.png"),
        "dag": draw_dag(record, out / "dag.png"),
        "makespan": draw_makespans(record, out / "makespan.png"),
        "predicted": draw_predicted(record, out / "predicted.png"),
    }
    spans = record.makespans()
    median = percentile(spans, 0.5) if spans else None
    predicted = record.predicted.get("makespan")
    summary = [
        ("frames done", str(len(record.frames))),
        ("frames failed", str(record.failed)),
        ("makespan median (s)", _seconds(median)),
        ("makespan p95 (s)", _seconds(percentile(spans, 0.95) if spans else None)),
        ("scheduler", str(record.predicted.get("scheduler", "static mapping"))),
        ("predicted makespan (s)", _seconds(predicted)),
    ]
    if predicted and median:
        summary.append(("measured / predicted", f"{median / predicted:.3f}"))
    rows = "".join(
        f"<tr><td>{html.escape(t)}</td><td>{html.escape(n)}</td><td>{_seconds(p)}</td><td>{_seconds(m)}</td></tr>"
        for t, n, p, m in predicted_vs_measured(record)
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Jupiter run {html.escape(record.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}img{{max-width:100%}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style></head>
<body><h1>Jupiter run {html.escape(record.name)}</h1>
<table>{"".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in summary)}</table>
<h2>Task executions per node</h2>{_embed(charts["gantt"], "Gantt chart")}
<h2>DAG and mapping</h2>{_embed(charts["dag"], "DAG")}
<h2>Per-frame makespan</h2>{_embed(charts["makespan"], "makespan over time")}
<h2>Predicted vs measured time per task</h2>{_embed(charts["predicted"], "predicted vs measured")}
<table><tr><th>task</th><th>node</th><th>predicted s</th><th>measured mean s</th></tr>{rows}</table>
{_workers_section(record)}
</body></html>
"""
    target = out / "report.html"
    target.write_text(page, encoding="utf-8")
    return target
