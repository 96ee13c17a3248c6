"""MinMin: repeatedly schedule the (ready task, node) pair that completes earliest."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jupiter.mapping._engine import Placed, to_schedule
from jupiter.mapping.base import Mapper
from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Schedule


class MinMinMapper(Mapper):
    """MinMin (Ibarra and Kim, "Heuristic algorithms for scheduling independent
    tasks on nonidentical processors", JACM 1977; DAG form as in Braun et al.,
    JPDC 2001, and SAGA).

    Tasks are taken in rounds: the tasks ready at the start of a round are
    scheduled one by one, each time the pair (task, node) with the smallest
    completion time, appended after the node's last task. A node that reached
    its task limit is no longer a candidate.

    This is exactly SAGA's ``MinMinScheduler``. Ties between equal completion
    times go to the task listed first, then to the node listed first. The task
    order is the problem's, or ``tie_order`` (every task name once) when given:
    SAGA scans its task set in hash order, so reproducing one of its schedules
    needs that order (identical tasks, as in WfCommons workflows, tie often).
    """

    name = "minmin"

    def __init__(self, tie_order: Sequence[str] | None = None) -> None:
        self.tie_order: tuple[str, ...] | None = None if tie_order is None else tuple(tie_order)

    def _tie_keys(self, problem: Problem) -> list[int]:
        if self.tie_order is None:
            return list(range(len(problem.tasks)))
        if len(self.tie_order) != len(problem.tasks) or set(self.tie_order) != set(problem.tasks):
            raise ValueError("minmin: tie_order must list every task of the problem exactly once")
        keys = [0] * len(problem.tasks)
        for k, name in enumerate(self.tie_order):
            keys[problem.task_index[name]] = k
        return keys

    def schedule(self, problem: Problem) -> Schedule:
        """Schedule with MinMin."""
        ix = problem.indexed
        tie = self._tie_keys(problem)
        placed = Placed(ix.n_tasks)
        avail = np.zeros(ix.n_nodes)
        counts = np.zeros(ix.n_nodes, dtype=np.int64)
        limits = np.array(ix.limits, dtype=np.int64)
        indeg = [len(ps) for ps in ix.parents]
        done = [False] * ix.n_tasks
        # Each round's ready tasks in tie order: np.argmin below then picks the
        # first of equal completion times, as SAGA's scan of its task set does.
        batch = sorted((t for t in range(ix.n_tasks) if indeg[t] == 0), key=tie.__getitem__)
        while batch:
            # Data-ready rows of the batch do not change within the round.
            ready = np.zeros((len(batch), ix.n_nodes))
            for i, t in enumerate(batch):
                for p, s in ix.parents[t]:
                    np.maximum(ready[i], ix.transfer_row(s, placed.node[p]) + placed.finish[p], out=ready[i])
            exec_ = ix.exec[batch]
            alive = np.ones(len(batch), dtype=bool)
            nxt: list[int] = []
            for _ in range(len(batch)):
                ect = np.maximum(ready, avail) + exec_
                ect[~alive] = np.inf
                ect[:, counts >= limits] = np.inf
                flat = int(np.argmin(ect))
                i, n = divmod(flat, ix.n_nodes)
                if not np.isfinite(ect[i, n]):
                    raise ValueError("minmin: a ready task has no node it can reach with room left")
                t = batch[i]
                # Recompute start then finish: finish - exec would lose the last bits.
                st = max(float(ready[i, n]), float(avail[n]))
                f = st + float(exec_[i, n])
                placed.node[t], placed.start[t], placed.finish[t] = n, st, f
                avail[n] = f
                counts[n] += 1
                alive[i] = False
                done[t] = True
                for c, _s in ix.children[t]:
                    indeg[c] -= 1
                    if indeg[c] == 0:
                        nxt.append(c)
            batch = sorted(nxt, key=tie.__getitem__)
        return to_schedule(problem, placed, self.name)

    def __repr__(self) -> str:
        given = "None" if self.tie_order is None else f"<{len(self.tie_order)} tasks>"
        return f"MinMinMapper(tie_order={given})"
