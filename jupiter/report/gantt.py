"""Draw a predicted schedule as a Gantt chart (matplotlib, Agg backend, PNG).

Kept outside ``jupiter.mapping`` because it writes files; matplotlib is
imported lazily so that commands not drawing anything never pay for it.
"""

from __future__ import annotations

from pathlib import Path

from jupiter.mapping import Problem, Schedule
from jupiter.model.palette import task_colours, text_colour


def draw_gantt(problem: Problem, schedule: Schedule, path: Path | str, title: str | None = None) -> Path:
    """Write ``schedule`` as a PNG Gantt chart (one row per node) to ``path``."""
    import matplotlib  # noqa: PLC0415 - heavy import, only when a chart is asked for

    matplotlib.use("Agg")  # no display needed: render straight to a file
    import matplotlib.pyplot as plt  # noqa: PLC0415

    path = Path(path)
    nodes = list(problem.nodes)
    per_node = schedule.by_node()
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(nodes) + 1.5))
    try:
        # A colour per task (the report's and the dashboard's), not per position on its node.
        colours = task_colours(problem.tasks)
        for row, node in enumerate(nodes):
            for p in per_node.get(node, []):
                width = p.finish - p.start
                colour = colours[p.task]
                ax.barh(row, width, left=p.start, height=0.6, color=colour, edgecolor="black", linewidth=0.5)
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
        ax.set_yticks(range(len(nodes)), labels=nodes)
        ax.invert_yaxis()
        ax.set_xlabel("time (s)")
        ax.set_title(title or f"{schedule.mapper or 'schedule'}: makespan {schedule.makespan:.3f} s")
        ax.grid(axis="x", linestyle=":", linewidth=0.5)
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path
