"""The JSON documents of `--output json` and `summary.json`: their names, versions and the builders they share.

Every document a command prints with `--output json` is one JSON object
whose `format` names it (`jupiter-validate`, `jupiter-status`,
`jupiter-map`, `jupiter-summary` for `run`; `profile` prints the profile
document, `jupiter-profile`) and whose `version` is bumped when a field
changes meaning or goes away (adding a field is not a change). The schemas
are in docs/events.md. `map_document` is here because two programs read it:
`jupiter map --out` writes it as `mapping.json` and the kubernetes backend
reads it from the mapper Job's log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jupiter.mapping import Problem, Schedule

VERSION = 1
"""The version every document below has."""
VALIDATE_FORMAT = "jupiter-validate"
STATUS_FORMAT = "jupiter-status"
MAP_FORMAT = "jupiter-map"
SUMMARY_FORMAT = "jupiter-summary"
LIST_FORMAT = "jupiter-list"


def node_load(problem: Problem, schedule: Schedule) -> list[tuple[str, int, float, float]]:
    """Per node of the problem: task count, busy seconds and utilisation (busy / makespan) of a schedule."""
    span = schedule.makespan
    rows = []
    per_node = schedule.by_node()
    for node in problem.nodes:
        placed = per_node.get(node, [])
        busy = sum(p.finish - p.start for p in placed)
        rows.append((node, len(placed), busy, busy / span if span > 0 else 0.0))
    return rows


def map_document(problem: Problem, schedule: Schedule, scheduler: str) -> dict[str, Any]:
    """What `jupiter map --output json` prints and `--out` writes as mapping.json."""
    return {
        "format": MAP_FORMAT,
        "version": VERSION,
        "scheduler": scheduler,
        "makespan": schedule.makespan,
        "mapping": {task: schedule.placements[task].node for task in problem.tasks},
        "schedule": [
            {"task": task, "node": placed.node, "start": placed.start, "finish": placed.finish}
            for task in problem.tasks
            for placed in (schedule.placements[task],)
        ],
        "load": [
            {"node": node, "tasks": count, "busy": busy, "utilisation": utilisation}
            for node, count, busy, utilisation in node_load(problem, schedule)
        ],
    }


def dumps(document: Mapping[str, Any]) -> str:
    """A document as printed: indented JSON, keys in the order they were built."""
    return json.dumps(document, indent=2)
