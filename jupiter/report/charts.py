"""The report's pictures (matplotlib, Agg, PNG), each drawn from a run record and its frame timings.

Every time axis starts at 0 and is labelled in ms or s (never five-decimal
seconds); tasks have the colours of `jupiter.model.palette` (the dashboard's
too), nodes the palette's node colours with a legend. matplotlib is imported
when a picture is drawn, so commands that draw nothing never load it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jupiter.model.palette import node_colours, task_colours, text_colour
from jupiter.report.run_record import RunRecord, base_frame
from jupiter.report.timing import FrameTiming, node_loads

GANTT_FRAMES = 12
"""Frames the measured Gantt shows (a longer run would be bars thinner than a pixel; the trace has all)."""
LATENCY_BARS = 60
"""Frames drawn one bar each in the latency chart; more are grouped into this many bars."""
NETWORK_LINKS = 12
"""Links whose fit is drawn against its samples."""


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (files only, no display)."""
    import matplotlib  # noqa: PLC0415 - heavy, only when drawing

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def format_seconds(value: float, scale: float) -> str:
    """A tick label: ms when the axis spans less than 2 s, else s, with as few digits as the axis needs."""
    if scale < 2.0:
        ms = value * 1000
        return f"{ms:.0f} ms" if scale >= 0.02 or ms == 0 else f"{ms:.1f} ms"
    return f"{value:.0f} s" if scale >= 20 else f"{value:.1f} s"


def seconds_axis(axis: Any, values: Sequence[float], minimum: float = 0.0) -> None:
    """Make a matplotlib axis (`ax.xaxis`/`ax.yaxis`) a time axis from `minimum`, ticks in ms or s."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: PLC0415

    top = max([*values, minimum + 1e-3])
    scale = top - minimum
    # A fixed headroom, so that equal values (every frame ended together) do not become the whole axis.
    upper = minimum + scale * 1.12
    if axis.axis_name == "y":
        axis.axes.set_ylim(minimum, upper)
    else:
        axis.axes.set_xlim(minimum, upper)
    axis.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 2.5, 5, 10], min_n_ticks=3))
    axis.set_major_formatter(FuncFormatter(lambda value, _: format_seconds(value, scale)))


def _save(fig: Any, path: Path) -> Path:
    plt = pyplot()
    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def _task_legend(ax: Any, order: Sequence[str], colours: dict[str, str], **where: Any) -> None:
    plt = pyplot()
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[task]) for task in order]
    ax.legend(handles, order, fontsize=7, title="task", **where)


# ------------------------------------------------------------------ Gantt charts


def draw_gantt(record: RunRecord, timings: Sequence[FrameTiming], path: Path) -> Path:
    """Task executions of the first GANTT_FRAMES frames per node: a colour per task, each bar its frame's number."""
    plt = pyplot()
    colours = task_colours(record.order)
    frames = [timing.frame for timing in timings[:GANTT_FRAMES]]
    number = {frame: index + 1 for index, frame in enumerate(frames)}
    runs = [event for event in record.tasks if base_frame(event.frame) in number]
    nodes = record.nodes
    row = {node: index for index, node in enumerate(nodes)}
    fig, ax = plt.subplots(figsize=(11, 0.7 * len(nodes) + 2.2))
    start = min((timings[0].submitted,) if timings else (record.start,))
    ends = [event.finish - start for event in runs]
    # A run shorter than a pixel or two is drawn that wide, so that none disappears at this scale.
    thinnest = 0.002 * max([*ends, 1e-3])
    for event in runs:
        left, width = event.execute - start, max(event.finish - event.execute, thinnest)
        ax.barh(
            row[event.node],
            width,
            left=left,
            height=0.62,
            color=colours.get(event.task, "#888888"),
            edgecolor="white",
            linewidth=0.3,
        )
    seconds_axis(ax.xaxis, ends)
    span = ax.get_xlim()[1]
    for event in runs:
        width = event.finish - event.execute
        # The frame's number where it fits (a bar at least 2 % of the axis), so frames can be told apart.
        if width >= 0.02 * span:
            colour = colours.get(event.task, "#888888")
            ax.text(
                event.execute - start + width / 2,
                row[event.node],
                str(number[base_frame(event.frame)]),
                ha="center",
                va="center",
                fontsize=6,
                color=text_colour(colour),
                clip_on=True,
            )
    ax.set_yticks(range(len(nodes)), labels=nodes)
    ax.set_ylim(len(nodes) - 0.5, -0.5)
    shown = (
        f"the first {len(frames)} of {len(timings)} frames" if len(timings) > len(frames) else f"{len(frames)} frames"
    )
    ax.set_xlabel("time since the first frame was submitted (numbers in bars: frame, in submission order)")
    ax.set_title(f"{record.name}: task executions per node, {shown}")
    ax.grid(axis="x", linestyle=":", linewidth=0.5)
    _task_legend(ax, record.order, colours, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return _save(fig, path)


def _alone_or_first(timings: Sequence[FrameTiming]) -> FrameTiming | None:
    """The frame that ran alone with the median span (the one the comparison's median stands for), else the first."""
    alone = sorted((timing for timing in timings if timing.alone), key=lambda timing: timing.span)
    return alone[(len(alone) - 1) // 2] if alone else (timings[0] if timings else None)


def draw_side_by_side(record: RunRecord, timings: Sequence[FrameTiming], path: Path) -> Path | None:
    """The mapper's predicted schedule of one frame above a measured frame (one that ran alone when any did),
    on the same nodes, colours and time axis. None without a predicted schedule."""
    predicted = record.predicted.get("tasks") or {}
    frame = _alone_or_first(timings)
    if not predicted or frame is None:
        return None
    plt = pyplot()
    colours = task_colours(record.order)
    runs = [event for event in record.tasks if base_frame(event.frame) == frame.frame]
    origin = min(event.execute for event in runs)
    nodes = [node for node in record.nodes if node in {p["node"] for p in predicted.values()} | {e.node for e in runs}]
    row = {node: index for index, node in enumerate(nodes)}
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(11, 1.0 * len(nodes) + 3.0))
    ends: list[float] = []
    for task, placed in predicted.items():
        width = float(placed["finish"]) - float(placed["start"])
        top.barh(
            row[str(placed["node"])],
            width,
            left=float(placed["start"]),
            height=0.62,
            color=colours.get(task, "#888888"),
            edgecolor="white",
            linewidth=0.6,
        )
        ends.append(float(placed["finish"]))
    for event in runs:
        bottom.barh(
            row[event.node],
            event.finish - event.execute,
            left=event.execute - origin,
            height=0.62,
            color=colours.get(event.task, "#888888"),
            edgecolor="white",
            linewidth=0.6,
        )
        ends.append(event.finish - origin)
    seconds_axis(bottom.xaxis, ends)
    how = "it ran alone" if frame.alone else "none ran alone: the first, which queued behind others"
    scheduler = record.predicted.get("scheduler", "mapper")
    predicted_span = format_seconds(record.predicted.get("makespan", 0.0), 1)
    top.set_title(f"predicted by {scheduler}: one frame alone, first task to last {predicted_span}", fontsize=10)
    bottom.set_title(
        f"measured: frame {frame.frame} ({how}), first task to last {format_seconds(frame.span, 1)}", fontsize=10
    )
    for ax in (top, bottom):
        ax.set_yticks(range(len(nodes)), labels=nodes)
        ax.set_ylim(len(nodes) - 0.5, -0.5)
        ax.grid(axis="x", linestyle=":", linewidth=0.5)
    bottom.set_xlabel("time since the frame's first task started")
    _task_legend(top, record.order, colours, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------- DAG


def _layers(record: RunRecord) -> list[list[str]]:
    depth: dict[str, int] = {}
    for task in record.order:
        depth[task] = 1 + max((depth[p] for p in record.parents[task]), default=-1)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for task in record.order:
        layers[depth[task]].append(task)
    return layers


def draw_dag(record: RunRecord, path: Path) -> Path:
    """The DAG left to right by depth; each task a box with its name and node, filled with its node's colour."""
    from matplotlib.patches import FancyArrowPatch, Patch  # noqa: PLC0415

    plt = pyplot()
    layers = _layers(record)
    height = max((len(layer) for layer in layers), default=1)
    fig, ax = plt.subplots(figsize=(max(8.0, 1.9 * len(layers) + 1.5), max(3.5, 0.8 * height + 1.8)))
    hosts = record.nodes
    fills = node_colours(record.compute)
    where: dict[str, tuple[float, float]] = {}
    for depth, layer in enumerate(layers):
        for position, task in enumerate(layer):
            # Each layer centred on the middle row.
            where[task] = (float(depth), (len(layer) - 1) / 2 - position)
    boxes = {}
    for task, (x, y) in where.items():
        node = record.mapping.get(task, "?")
        fill = fills.get(node, "#ffffff")
        boxes[task] = ax.text(
            x,
            y,
            f"{task}\n@ {node}",
            ha="center",
            va="center",
            fontsize=8,
            color=text_colour(fill),
            bbox={"boxstyle": "round,pad=0.4", "facecolor": fill, "edgecolor": "#333333"},
            zorder=3,
        )
    for parent, child in record.edges:
        ax.add_patch(
            FancyArrowPatch(
                where[parent],
                where[child],
                arrowstyle="-|>",
                mutation_scale=10,
                color="#555555",
                linewidth=0.8,
                patchA=boxes[parent].get_bbox_patch(),
                patchB=boxes[child].get_bbox_patch(),
                zorder=2,
            )
        )
    ax.set_xlim(-0.7, len(layers) - 0.3)
    ax.set_ylim(-height / 2 - 0.2, height / 2 - 0.3)
    ax.axis("off")
    scheduler = record.predicted.get("scheduler", "static mapping")
    ax.set_title(f"{record.name}: the DAG and its mapping ({scheduler})")
    ax.legend(
        [Patch(facecolor=fills.get(n, "#d9d9d9"), edgecolor="#333333") for n in hosts],
        hosts,
        title="node",
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )
    fig.tight_layout()
    return _save(fig, path)


# ----------------------------------------------------------------------- latency


def _groups(timings: Sequence[FrameTiming]) -> list[tuple[str, list[FrameTiming]]]:
    if len(timings) <= LATENCY_BARS:
        return [(str(index + 1), [timing]) for index, timing in enumerate(timings)]
    size = math.ceil(len(timings) / LATENCY_BARS)
    return [
        (f"{i + 1}-{min(i + size, len(timings))}", list(timings[i : i + size])) for i in range(0, len(timings), size)
    ]


def draw_latency(record: RunRecord, timings: Sequence[FrameTiming], path: Path, predicted: float | None) -> Path:
    """Each frame's latency split into execution, transfer and waiting, in submission order (grouped means
    when there are many frames), with the single-frame prediction as a line."""
    plt = pyplot()
    groups = _groups(timings)
    parts = {
        "execution (task() running)": [sum(t.execution for t in g) / len(g) for _, g in groups],
        "transfer (on the wire)": [sum(t.transfer for t in g) / len(g) for _, g in groups],
        "waiting (queues, batching, agents)": [sum(t.waiting for t in g) / len(g) for _, g in groups],
    }
    fig, ax = plt.subplots(figsize=(11, 4.5))
    bottom = [0.0] * len(groups)
    for (label, values), colour in zip(parts.items(), ("#4363d8", "#3cb44b", "#f58231"), strict=True):
        ax.bar(range(len(groups)), values, bottom=bottom, color=colour, label=label, width=0.8)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    tops = list(bottom)
    if predicted:
        ax.axhline(predicted, color="#e6194b", linestyle="--", linewidth=1, label="predicted makespan of one frame")
        tops.append(predicted)
    seconds_axis(ax.yaxis, tops)
    step = max(1, len(groups) // 15)
    ax.set_xticks(range(0, len(groups), step), labels=[groups[i][0] for i in range(0, len(groups), step)], fontsize=7)
    grouped = "" if len(groups) == len(timings) else f" (means of {math.ceil(len(timings) / len(groups))} frames)"
    ax.set_xlabel(f"frame, in submission order{grouped}")
    ax.set_ylabel("latency")
    ax.set_title(f"{record.name}: where each frame's time went (along its critical path)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", linestyle=":", linewidth=0.5)
    fig.tight_layout()
    return _save(fig, path)


def draw_makespans(record: RunRecord, timings: Sequence[FrameTiming], path: Path, lines: dict[str, float]) -> Path:
    """Each frame's latency against when it finished; `lines`: labelled horizontal references (predictions)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 4))
    start = record.start
    xs = [timing.done - start for timing in timings]
    ys = [timing.latency for timing in timings]
    alone = [timing.alone for timing in timings]
    ax.plot(xs, ys, "-", color="#a9a9a9", linewidth=0.7)
    ax.plot(
        [x for x, a in zip(xs, alone, strict=True) if not a],
        [y for y, a in zip(ys, alone, strict=True) if not a],
        "o",
        markersize=3,
        color="#f58231",
        label="overlapped other frames",
    )
    ax.plot(
        [x for x, a in zip(xs, alone, strict=True) if a],
        [y for y, a in zip(ys, alone, strict=True) if a],
        "o",
        markersize=3,
        color="#4363d8",
        label="ran alone",
    )
    for (label, value), style in zip(lines.items(), ("--", ":", "-."), strict=False):
        ax.axhline(value, color="#e6194b", linestyle=style, linewidth=1, label=label)
    seconds_axis(ax.yaxis, ys + list(lines.values()))
    seconds_axis(ax.xaxis, xs)
    ax.set_xlabel("when the frame finished, since the first was submitted")
    ax.set_ylabel("latency (submitted to done)")
    ax.set_title(f"{record.name}: latency of each frame")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(linestyle=":", linewidth=0.5)
    fig.tight_layout()
    return _save(fig, path)


def draw_task_times(record: RunRecord, rows: Sequence[tuple[str, str, float | None, float | None]], path: Path) -> Path:
    """Predicted (profile) and measured mean time per task, side by side."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 4.5))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r[2] or 0.0 for r in rows], width=0.4, label="predicted (profile)", color="#a9a9a9")
    ax.bar([x + 0.2 for x in xs], [r[3] or 0.0 for r in rows], width=0.4, label="measured (mean)", color="#4363d8")
    seconds_axis(ax.yaxis, [r[2] or 0.0 for r in rows] + [r[3] or 0.0 for r in rows])
    ax.set_xticks(list(xs), labels=[f"{r[0]}\n@{r[1]}" for r in rows], fontsize=7, rotation=45, ha="right")
    ax.set_title(f"{record.name}: predicted vs measured execution time per task")
    ax.legend(fontsize=8)
    ax.grid(axis="y", linestyle=":", linewidth=0.5)
    fig.tight_layout()
    return _save(fig, path)


# ------------------------------------------------------------- network, nodes


def draw_network(record: RunRecord, path: Path) -> Path | None:
    """Each profiled link's fit `a·s² + b·s + c` against the probes it was fitted to (None without both)."""
    if record.profile is None or not record.samples:
        return None
    fits = {(str(link["src"]), str(link["dst"])): link for link in record.profile.get("links", [])}
    links = [key for key in fits if any((s, d) == key for s, d, _, _ in record.samples)][:NETWORK_LINKS]
    if not links:
        return None
    plt = pyplot()
    columns = min(4, len(links))
    rows = math.ceil(len(links) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(11, 2.4 * rows + 0.6), squeeze=False)
    for ax, (src, dst) in zip(axes.flat, links, strict=False):
        points = [(size, seconds) for s, d, size, seconds in record.samples if (s, d) == (src, dst)]
        sizes = [size for size, _ in points]
        ax.plot(
            [size / 1024 for size in sizes],
            [seconds * 1000 for _, seconds in points],
            "o",
            markersize=3,
            color="#4363d8",
            label="probes",
        )
        fit = fits[(src, dst)]
        top = max(sizes)
        grid = [top * i / 50 for i in range(51)]
        curve = [(float(fit["a"]) * s * s + float(fit["b"]) * s + float(fit["c"])) * 1000 for s in grid]
        ax.plot([s / 1024 for s in grid], curve, "-", color="#e6194b", linewidth=1, label="fit")
        ax.set_title(f"{src} -> {dst}", fontsize=8)
        ax.set_xlabel("KiB", fontsize=7)
        ax.set_ylabel("ms", fontsize=7)
        ax.set_ylim(bottom=0)
        ax.tick_params(labelsize=7)
        ax.grid(linestyle=":", linewidth=0.5)
    for ax in list(axes.flat)[len(links) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    more = f" (first {len(links)} of {len(fits)} links)" if len(fits) > len(links) else ""
    fig.suptitle(f"{record.name}: network fits against their probes{more}", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def draw_utilisation(record: RunRecord, seconds: float, path: Path) -> Path:
    """Per node: the share of the run its tasks ran (busy / run), and its CPU over time when agents reported it."""
    plt = pyplot()
    loads = node_loads(record, seconds)
    # Reports from the run itself (the deploy before it, profiling included, is not what it measured).
    ends = [event.time for event in record.done] + [event.time for event in record.failed]
    end = max(ends, default=record.start + seconds)
    reports = [
        event
        for event in record.resources
        if event.node in {load.node for load in loads} and record.start <= event.time <= end
    ]
    too_short = bool(record.resources) and not any(
        sum(1 for e in reports if e.node == node) >= 2 for node in record.nodes
    )
    if too_short:
        reports = []  # one report per node (a run shorter than the agents' 2 s period) draws no curve
    fig, axes = plt.subplots(1, 2 if reports else 1, figsize=(11, 3.6), squeeze=False)
    ax = axes[0][0]
    fills = node_colours(record.compute)
    ax.bar(
        [load.node for load in loads],
        [100 * load.utilisation for load in loads],
        color=[fills.get(load.node, "#d9d9d9") for load in loads],
        edgecolor="#333333",
    )
    for index, load in enumerate(loads):
        ax.text(
            index,
            100 * load.utilisation,
            f"{100 * load.utilisation:.0f} %\n{load.runs} runs",
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set_ylim(0, max([100.0, *(115 * load.utilisation for load in loads)]))
    ax.set_ylabel("% of the run a task ran")
    ax.set_title(
        "task time per node (the run was too short for a CPU curve)" if too_short else "task time per node", fontsize=10
    )
    ax.grid(axis="y", linestyle=":", linewidth=0.5)
    if reports:
        cpu = axes[0][1]
        start = record.start
        for node in record.nodes:
            points = [(e.time - start, e.process_cpu) for e in reports if e.node == node]
            if points:
                cpu.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    "-o",
                    label=node,
                    color=fills.get(node, "#808080"),
                    linewidth=1.5,
                    markersize=2.5,
                )
        cpu.set_ylim(bottom=0)
        seconds_axis(cpu.xaxis, [e.time - start for e in reports])
        cpu.set_ylabel("% of one core (agent and tasks)")
        cpu.set_title("CPU the agents reported", fontsize=10)
        cpu.legend(fontsize=7)
        cpu.grid(linestyle=":", linewidth=0.5)
    fig.tight_layout()
    return _save(fig, path)
