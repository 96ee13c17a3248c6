"""CPoP: Critical Path on a Processor."""

from __future__ import annotations

import math

from jupiter.mapping._engine import (
    downward_rank,
    place_eft,
    ready_list_order,
    to_schedule,
    upward_rank,
)
from jupiter.mapping.base import Mapper
from jupiter.mapping.heft import CommAverage
from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Schedule


def critical_path(problem: Problem, comm_average: CommAverage = "distinct") -> tuple[list[int], list[float]]:
    """Task indices on CPoP's critical path and every task's priority (upward + downward rank)."""
    ix = problem.indexed
    up, down = upward_rank(ix, comm_average), downward_rank(ix, comm_average)
    prio = [u + d for u, d in zip(up, down, strict=True)]
    pos = ix.topo_pos
    entries = [t for t in range(ix.n_tasks) if not ix.parents[t]]
    # Highest priority entry; ties to the earlier task in topological order.
    t = min(entries, key=lambda x: (-prio[x], pos[x]))
    cp_len = prio[t]
    path = [t]
    while ix.children[t]:
        nxt = min((c for c, _ in ix.children[t]), key=lambda x: (-prio[x], pos[x]))
        if not math.isclose(prio[nxt], cp_len, rel_tol=1e-9, abs_tol=1e-12):
            break
        path.append(nxt)
        t = nxt
    return path, prio


class CpopMapper(Mapper):
    """CPoP (Topcuoglu, Hariri and Wu, IEEE TPDS 13(3), 2002, the companion of HEFT).

    Priority is upward plus downward rank; the tasks of the critical path (the
    entry of highest priority, then each time the child whose priority equals
    the path length) all go to the one node that runs them fastest in total;
    every other task goes to its earliest-finish node (insertion policy), in
    ready-list order of decreasing priority. ``comm_average`` as for
    :class:`~jupiter.mapping.heft.HeftMapper`.
    """

    name = "cpop"

    def __init__(self, comm_average: CommAverage = "distinct") -> None:
        self.comm_average: CommAverage = comm_average

    def schedule(self, problem: Problem) -> Schedule:
        """Schedule with CPoP."""
        ix = problem.indexed
        path, prio = critical_path(problem, self.comm_average)
        totals = ix.exec[path].sum(axis=0).tolist()
        cp_node = min(range(ix.n_nodes), key=lambda n: (totals[n], n))
        forced = {t: cp_node for t in path} if math.isfinite(totals[cp_node]) else {}
        order = ready_list_order(ix, prio)
        placed = place_eft(ix, order, forced=forced, names=problem.tasks)
        return to_schedule(problem, placed, self.name)

    def __repr__(self) -> str:
        return f"CpopMapper(comm_average={self.comm_average!r})"
