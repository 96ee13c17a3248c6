"""Draw a predicted schedule as a Gantt chart (matplotlib, Agg backend, PNG).

Kept outside ``jupiter.mapping`` because it writes files; matplotlib is
imported lazily so that commands not drawing anything never pay for it.
"""

from __future__ import annotations

from pathlib import Path

from jupiter.mapping import Problem, Schedule
from jupiter.model.palette import task_colours, text_colour


def draw_gantt(problem: Problem, schedule: Schedule, path: Path | str, title: str | None = None) -> Path:
    """Write ``schedule`` as a PNG Gantt chart (one row per node, a colour per task, a legend) to ``path``."""
    from jupiter.report.charts import format_seconds, pyplot, seconds_axis  # noqa: PLC0415 - matplotlib when drawing

    plt = pyplot()
    path = Path(path)
    nodes = list(problem.nodes)
    per_node = schedule.by_node()
    fig, ax = plt.subplots(figsize=(11, 0.6 * len(nodes) + 1.8))
    try:
        # A colour per task (the report's and the dashboard's), not per position on its node.
        colours = task_colours(problem.tasks)
        span = max(schedule.makespan, 1e-9)
        for row, node in enumerate(nodes):
            for p in per_node.get(node, []):
                width = p.finish - p.start
                colour = colours[p.task]
                ax.barh(row, width, left=p.start, height=0.6, color=colour, edgecolor="black", linewidth=0.5)
                # The name inside its bar only where it fits (about 0.75 % of the axis per character).
                if width >= 0.0075 * len(p.task) * span:
                    ax.text(
                        p.start + width / 2,
                        row,
                        p.task,
                        ha="center",
                        va="center",
                        fontsize=7,
                        color=text_colour(colour),
                        clip_on=True,
                    )
        seconds_axis(ax.xaxis, [schedule.makespan])
        ax.set_yticks(range(len(nodes)), labels=nodes)
        ax.set_ylim(len(nodes) - 0.5, -0.5)
        ax.set_xlabel("time")
        ax.set_title(title or f"{schedule.mapper or 'schedule'}: makespan {format_seconds(schedule.makespan, span)}")
        ax.grid(axis="x", linestyle=":", linewidth=0.5)
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours[task]) for task in problem.tasks]
        ax.legend(handles, list(problem.tasks), fontsize=7, title="task", loc="upper left", bbox_to_anchor=(1.01, 1))
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path
