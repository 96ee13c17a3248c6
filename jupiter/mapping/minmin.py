"""MinMin: repeatedly schedule the (ready task, node) pair that completes earliest."""

from __future__ import annotations

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
    """

    name = "minmin"

    def schedule(self, problem: Problem) -> Schedule:
        """Schedule with MinMin."""
        ix = problem.indexed
        placed = Placed(ix.n_tasks)
        avail = np.zeros(ix.n_nodes)
        counts = np.zeros(ix.n_nodes, dtype=np.int64)
        limits = np.array(ix.limits, dtype=np.int64)
        indeg = [len(ps) for ps in ix.parents]
        done = [False] * ix.n_tasks
        batch = [t for t in ix.topo if indeg[t] == 0]
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
            batch = nxt
        return to_schedule(problem, placed, self.name)
