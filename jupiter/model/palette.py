"""The colours tasks and nodes get in every picture: the report, `map --gantt` and the live dashboard.

A task keeps one colour everywhere, chosen by its position in the DAG's
order, so the dashboard and the report of the same run agree. The task
colours are twenty hues picked to be told apart at a glance (Sasha
Trubetskoy's "20 simple, distinct colours"), most distinct first, so a DAG of
up to twenty tasks never repeats one and neighbours in the order never look
alike; beyond twenty they cycle. Nodes get a separate, paler set, so a
picture that colours both (the DAG with its mapping) never confuses them.
"""

from __future__ import annotations

from collections.abc import Sequence

TASK_COLOURS: tuple[str, ...] = (
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#469990",
    "#9a6324",
    "#800000",
    "#808000",
    "#000075",
    "#ffe119",
    "#fabed4",
    "#dcbeff",
    "#aaffc3",
    "#ffd8b1",
    "#a9a9a9",
    "#fffac8",
)
"""Twenty distinct colours, most distinct first."""

NODE_COLOURS: tuple[str, ...] = (
    "#8dd3c7",
    "#ffffb3",
    "#bebada",
    "#fb8072",
    "#80b1d3",
    "#fdb462",
    "#b3de69",
    "#fccde5",
    "#d9d9d9",
    "#bc80bd",
    "#ccebc5",
    "#ffed6f",
)
"""Pale colours for nodes (ColorBrewer's Set3), so text on them stays readable."""


def task_colours(order: Sequence[str]) -> dict[str, str]:
    """Each task's colour (`#rrggbb`) by its position in `order`."""
    return {task: TASK_COLOURS[index % len(TASK_COLOURS)] for index, task in enumerate(order)}


def node_colours(nodes: Sequence[str]) -> dict[str, str]:
    """Each node's colour (`#rrggbb`) by its position in `nodes`."""
    return {node: NODE_COLOURS[index % len(NODE_COLOURS)] for index, node in enumerate(nodes)}


def text_colour(background: str) -> str:
    """Black or white, whichever reads better on a `#rrggbb` background (by its luminance)."""
    red, green, blue = (int(background[i : i + 2], 16) for i in (1, 3, 5))
    return "#000000" if 0.299 * red + 0.587 * green + 0.114 * blue > 140 else "#ffffff"
