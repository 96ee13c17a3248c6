"""The one independent feasibility checker for schedules.

It shares no code with the schedulers on purpose: it recomputes everything
from the :class:`~jupiter.mapping.problem.Problem` by name, so a bug in the
array engine cannot hide itself. Every mapper's output is run through it in
the test suite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import pairwise

from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Schedule

#: Absolute slack (seconds) on top of the relative one, for float round-off.
ABS_TOL = 1e-9
REL_TOL = 1e-9


class ScheduleViolation(ValueError):
    """A schedule breaks the problem's constraints; ``violations`` lists every breach."""

    def __init__(self, violations: list[str]) -> None:
        self.violations = violations
        super().__init__("infeasible schedule:\n" + "\n".join(f"  - {v}" for v in violations))


def _tol(x: float) -> float:
    return ABS_TOL + REL_TOL * abs(x)


def violations(
    problem: Problem, schedule: Schedule, max_tasks_per_node: int | Mapping[str, int] | None = None
) -> list[str]:
    """Every constraint the schedule breaks, as readable sentences (empty = feasible).

    ``max_tasks_per_node`` adds a limit on top of the problem's own per-node limits
    (an int applies to every node).
    """
    out: list[str] = []
    placements = schedule.placements
    known_nodes = set(problem.nodes)
    for task in problem.tasks:
        if task not in placements:
            out.append(f"task {task!r} is not placed")
    for task, p in placements.items():
        if p.task != task:
            out.append(f"placement under key {task!r} names task {p.task!r}")
        if task not in problem.task_index:
            out.append(f"unknown task {task!r} is placed")
            continue
        if p.node not in known_nodes:
            out.append(f"task {task!r} is placed on unknown node {p.node!r}")
            continue
        ex = problem.exec_time(task, p.node)
        if math.isinf(ex):
            out.append(f"task {task!r} cannot run on node {p.node!r} but is placed there")
            continue
        if not (math.isfinite(p.start) and p.start >= -ABS_TOL):
            out.append(f"task {task!r} starts at {p.start}; starts must be finite and >= 0")
        if abs((p.finish - p.start) - ex) > _tol(ex) + _tol(p.finish):
            out.append(
                f"task {task!r} on {p.node!r} runs {p.finish - p.start:.9g}s but its execution time is {ex:.9g}s"
            )
    for e in problem.edges:
        pp, cp = placements.get(e.parent), placements.get(e.child)
        if pp is None or cp is None or pp.node not in known_nodes or cp.node not in known_nodes:
            continue
        delay = problem.transfer_time(e.size, pp.node, cp.node)
        ready = pp.finish + delay
        if cp.start < ready - _tol(ready):
            where = "same node" if pp.node == cp.node else f"{pp.node!r} -> {cp.node!r}"
            out.append(
                f"task {e.child!r} starts at {cp.start:.9g} before its input from {e.parent!r}"
                f" arrives at {ready:.9g} ({where}, transfer {delay:.9g}s)"
            )
    for node, plist in schedule.by_node().items():
        for prev, nxt in pairwise(plist):
            if nxt.start < prev.finish - _tol(prev.finish):
                out.append(
                    f"tasks {prev.task!r} [{prev.start:.9g}, {prev.finish:.9g}] and {nxt.task!r}"
                    f" [{nxt.start:.9g}, {nxt.finish:.9g}] overlap on node {node!r}"
                )
        limits = [problem.node_limit(node)]
        if isinstance(max_tasks_per_node, int):
            limits.append(max_tasks_per_node)
        elif max_tasks_per_node is not None:
            limits.append(max_tasks_per_node.get(node))
        cap = min((x for x in limits if x is not None), default=None)
        if cap is not None and len(plist) > cap:
            out.append(f"node {node!r} holds {len(plist)} tasks but its limit is {cap}")
    return out


def check(problem: Problem, schedule: Schedule, max_tasks_per_node: int | Mapping[str, int] | None = None) -> None:
    """Raise :class:`ScheduleViolation` listing every breach if the schedule is infeasible."""
    found = violations(problem, schedule, max_tasks_per_node)
    if found:
        raise ScheduleViolation(found)
