"""CPoP: Critical Path on a Processor."""

from __future__ import annotations

import math
from typing import Literal

from jupiter.mapping._engine import (
    downward_rank,
    harmonic_exec,
    place_eft,
    ready_list_order,
    to_schedule,
    upward_rank,
)
from jupiter.mapping.base import Mapper
from jupiter.mapping.heft import CommAverage
from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Schedule

Variant = Literal["paper", "saga"]


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


def saga_critical_set(problem: Problem) -> tuple[list[int], list[float]]:
    """The tasks SAGA's CPoP pins to one node, and every task's priority.

    SAGA (``anrg-saga`` 2.1.0) differs from the paper in four ways, all
    reproduced here: links are averaged as for ``HeftMapper(comm_average="saga")``;
    the downward rank of a task adds the task's *own* cost at the mean node
    speed (:func:`harmonic_exec`), not its parent's mean cost; a DAG with several
    entry tasks gets a zero-cost super source (so every real entry's downward
    rank is its own cost), whose priority — the largest upward rank of an
    entry — is the critical-path length; and the pinned tasks are *all* tasks
    whose priority is within ``numpy.isclose`` (rtol 1e-5, atol 1e-8) of that
    length, not a walk from the entry.
    """
    ix = problem.indexed
    up = upward_rank(ix, "saga")
    ma, mb, mc = ix.mean_link("saga")
    own = harmonic_exec(ix)
    several_entries = sum(1 for ps in ix.parents if not ps) > 1
    down = [0.0] * ix.n_tasks
    for t in ix.topo:
        if ix.parents[t]:
            down[t] = max(down[p] + ((ma * s + mb) * s + mc) for p, s in ix.parents[t]) + own[t]
        elif several_entries:
            down[t] = own[t]  # the super source's edge carries no data
    prio = [u + d for u, d in zip(up, down, strict=True)]
    entries = [t for t in range(ix.n_tasks) if not ix.parents[t]]
    cp_len = max(up[t] for t in entries) if several_entries else prio[entries[0]]
    pinned = [t for t in range(ix.n_tasks) if abs(prio[t] - cp_len) <= 1e-8 + 1e-5 * abs(cp_len)]
    return pinned, prio


class CpopMapper(Mapper):
    """CPoP (Topcuoglu, Hariri and Wu, IEEE TPDS 13(3), 2002, the companion of HEFT).

    Priority is upward plus downward rank; the tasks of the critical path (the
    entry of highest priority, then each time the child whose priority equals
    the path length) all go to the one node that runs them fastest in total;
    every other task goes to its earliest-finish node (insertion policy), in
    ready-list order of decreasing priority (ties in topological order).
    ``comm_average`` as for :class:`~jupiter.mapping.heft.HeftMapper`.

    ``variant="saga"`` computes exactly what SAGA's ``CpopScheduler`` does
    (see :func:`saga_critical_set`; ready-list ties by task name, as SAGA's
    heap compares tasks by name); ``comm_average`` is then ignored.
    """

    name = "cpop"

    def __init__(self, comm_average: CommAverage = "distinct", variant: Variant = "paper") -> None:
        if variant not in ("paper", "saga"):
            raise ValueError(f"unknown CPoP variant {variant!r}; use 'paper' or 'saga'")
        self.comm_average: CommAverage = comm_average
        self.variant: Variant = variant

    def schedule(self, problem: Problem) -> Schedule:
        """Schedule with CPoP."""
        ix = problem.indexed
        if self.variant == "saga":
            path, prio = saga_critical_set(problem)
            by_name = sorted(range(ix.n_tasks), key=lambda t: problem.tasks[t])
            tie = [0] * ix.n_tasks
            for rank, t in enumerate(by_name):
                tie[t] = rank
            order = ready_list_order(ix, prio, tie)
        else:
            path, prio = critical_path(problem, self.comm_average)
            order = ready_list_order(ix, prio)
        rows = ix.exec_rows
        # fsum matches SAGA's Python >= 3.12 sum(), so equal totals tie the same way.
        totals = [math.fsum(rows[t][n] for t in path) for n in range(ix.n_nodes)]
        cp_node = min(range(ix.n_nodes), key=lambda n: (totals[n], n))
        # SAGA pins every critical task (place_eft frees one its node cannot run);
        # the paper variant pins none when no node can run the whole path.
        pin = self.variant == "saga" or math.isfinite(totals[cp_node])
        forced = {t: cp_node for t in path} if pin else {}
        placed = place_eft(ix, order, forced=forced, names=problem.tasks)
        return to_schedule(problem, placed, self.name)

    def __repr__(self) -> str:
        if self.variant == "saga":
            return "CpopMapper(variant='saga')"
        return f"CpopMapper(comm_average={self.comm_average!r})"
