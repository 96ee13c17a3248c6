"""Predict start and finish times for a fixed task-to-node mapping.

WAVE, a static mapping and the local search of ``best`` decide *where* tasks
run but not *when*; this evaluator supplies the when, the same way for all of
them: tasks in HEFT upward-rank order, each at its earliest feasible slot on
its fixed node (insertion policy), so the result always passes the checker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from jupiter.mapping._engine import order_by_rank, place_fixed, to_schedule, upward_rank
from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Schedule


def mapping_indices(problem: Problem, mapping: Mapping[str, str]) -> list[int]:
    """Validate a task -> node mapping and return node indices per task index."""
    missing = [t for t in problem.tasks if t not in mapping]
    if missing:
        raise ValueError(f"the mapping does not place task(s) {', '.join(repr(t) for t in missing[:5])}")
    unknown = [t for t in mapping if t not in problem.task_index]
    if unknown:
        raise ValueError(f"the mapping names unknown task(s) {', '.join(repr(t) for t in unknown[:5])}")
    out: list[int] = []
    for task in problem.tasks:
        node = mapping[task]
        if node not in problem.node_index:
            raise ValueError(f"the mapping puts task {task!r} on unknown node {node!r}")
        if math.isinf(problem.exec_time(task, node)):
            raise ValueError(f"the mapping puts task {task!r} on node {node!r}, which cannot run it")
        out.append(problem.node_index[node])
    for e in problem.edges:
        u, v = mapping[e.parent], mapping[e.child]
        if math.isinf(problem.transfer_time(e.size, u, v)):
            raise ValueError(f"the mapping sends {e.parent!r} -> {e.child!r} over {u!r} -> {v!r}, which has no link")
    return out


def evaluate_mapping(
    problem: Problem, mapping: Mapping[str, str], *, order: Sequence[str] | None = None, mapper: str = ""
) -> Schedule:
    """Schedule ``mapping`` (task -> node) list-style; ``order`` overrides the upward-rank order."""
    node_of = mapping_indices(problem, mapping)
    ix = problem.indexed
    if order is None:
        idx_order = order_by_rank(ix, upward_rank(ix))
    else:
        idx_order = [problem.task_index[t] for t in order]
        _check_order(problem, idx_order)
    return to_schedule(problem, place_fixed(ix, idx_order, node_of), mapper)


def _check_order(problem: Problem, order: Sequence[int]) -> None:
    if sorted(order) != list(range(len(problem.tasks))):
        raise ValueError("the order must list every task exactly once")
    pos = {t: i for i, t in enumerate(order)}
    for e in problem.edges:
        if pos[problem.task_index[e.parent]] > pos[problem.task_index[e.child]]:
            raise ValueError(f"the order puts {e.child!r} before its parent {e.parent!r}")
