"""HEFT with a cap on the number of tasks per node (the original's HEFT_MODIFIED)."""

from __future__ import annotations

from jupiter.mapping._engine import order_by_rank, place_eft, to_schedule, upward_rank
from jupiter.mapping.base import Mapper
from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Schedule


class HeftModifiedMapper(Mapper):
    """HEFT (Topcuoglu et al., IEEE TPDS 2002) where a node holding its maximum
    number of tasks is no longer a candidate, as in Jupiter v4's
    ``HEFT_MODIFIED`` with ``MAX_TASK_ALLOWED``.

    Only the node finally chosen counts a task. The limit is the smaller of
    ``max_tasks_per_node`` (applies to every node) and the problem's own
    per-node limits; with neither this is plain HEFT.
    """

    name = "heft_modified"

    def __init__(self, max_tasks_per_node: int | None = None) -> None:
        if max_tasks_per_node is not None and max_tasks_per_node < 1:
            raise ValueError(f"max_tasks_per_node is {max_tasks_per_node}; it must be >= 1")
        self.max_tasks_per_node = max_tasks_per_node

    def caps(self, problem: Problem) -> list[int]:
        """Effective task limit of every node, in node order."""
        ix = problem.indexed
        if self.max_tasks_per_node is None:
            return list(ix.limits)
        return [min(x, self.max_tasks_per_node) for x in ix.limits]

    def schedule(self, problem: Problem) -> Schedule:
        """Schedule with capped HEFT (ValueError if the caps leave a task nowhere to go)."""
        ix = problem.indexed
        cap = self.caps(problem)
        if sum(cap) < ix.n_tasks:
            raise ValueError(
                f"{ix.n_tasks} tasks do not fit in {len(cap)} nodes holding at most {sum(cap)} tasks;"
                " raise the per-node task limit"
            )
        order = order_by_rank(ix, upward_rank(ix))
        placed = place_eft(ix, order, cap=cap, names=problem.tasks)
        return to_schedule(problem, placed, self.name)

    def __repr__(self) -> str:
        return f"HeftModifiedMapper(max_tasks_per_node={self.max_tasks_per_node!r})"
