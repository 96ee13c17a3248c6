"""HEFT: Heterogeneous Earliest Finish Time list scheduling."""

from __future__ import annotations

from typing import Literal

from jupiter.mapping._engine import order_by_rank, place_eft, to_schedule, upward_rank
from jupiter.mapping.base import Mapper
from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Schedule

CommAverage = Literal["distinct", "saga"]


def heft_order(problem: Problem, comm_average: CommAverage = "distinct") -> list[str]:
    """Task names in HEFT priority order (decreasing upward rank, ties by topological order)."""
    ix = problem.indexed
    return [problem.tasks[t] for t in order_by_rank(ix, upward_rank(ix, comm_average))]


class HeftMapper(Mapper):
    """HEFT (Topcuoglu, Hariri and Wu, "Performance-effective and low-complexity
    task scheduling for heterogeneous computing", IEEE TPDS 13(3), 2002).

    Tasks are taken by decreasing upward rank (mean execution time over the
    nodes that can run the task, mean transfer time over node pairs) and each
    goes to the node where it finishes earliest, filling idle gaps (insertion
    policy). Any number of entry and exit tasks is fine. Ties: equal ranks go
    in topological order, equal finish times to the node listed first.

    ``comm_average="distinct"`` averages links over ordered pairs of distinct
    nodes, as in the paper. ``"saga"`` averages as SAGA (``anrg-saga``) does —
    over its undirected link set including the free self-links — which is what
    makes our makespans equal to SAGA's HEFT on the same instance.
    """

    name = "heft"

    def __init__(self, comm_average: CommAverage = "distinct") -> None:
        self.comm_average: CommAverage = comm_average

    def schedule(self, problem: Problem) -> Schedule:
        """Schedule with HEFT."""
        ix = problem.indexed
        order = order_by_rank(ix, upward_rank(ix, self.comm_average))
        placed = place_eft(ix, order, names=problem.tasks)
        return to_schedule(problem, placed, self.name)

    def __repr__(self) -> str:
        return f"HeftMapper(comm_average={self.comm_average!r})"
