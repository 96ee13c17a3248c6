"""Fastest node: every task on the single node that runs the whole DAG fastest."""

from __future__ import annotations

import math

from jupiter.mapping._engine import order_by_rank, place_fixed, to_schedule, upward_rank
from jupiter.mapping.base import Mapper
from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Schedule


class FastestNodeMapper(Mapper):
    """The serial baseline used in SAGA's benchmarks (Coleman and Krishnamachari,
    "Comparing task graph scheduling algorithms: an adversarial approach", 2023):
    no communication at all, the total work on one node.

    When no node can run every task (or limits forbid it) tasks overflow, in
    upward-rank order, to the next-fastest node that can take them.
    """

    name = "fastest_node"

    def schedule(self, problem: Problem) -> Schedule:
        """All tasks on the node with the least total execution time."""
        ix = problem.indexed
        totals = ix.exec.sum(axis=0).tolist()
        by_speed = sorted(range(ix.n_nodes), key=lambda n: (totals[n], n))
        order = order_by_rank(ix, upward_rank(ix))
        counts = [0] * ix.n_nodes
        node_of = [0] * ix.n_tasks
        for t in order:
            row = ix.exec_rows[t]
            choice = next((n for n in by_speed if math.isfinite(row[n]) and counts[n] < ix.limits[n]), None)
            if choice is None:
                raise ValueError(f"fastest_node: no node with room can run task {problem.tasks[t]!r}")
            node_of[t] = choice
            counts[choice] += 1
        return to_schedule(problem, place_fixed(ix, order, node_of), self.name)
