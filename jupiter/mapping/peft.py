"""PEFT: Predict Earliest Finish Time with an optimistic cost table."""

from __future__ import annotations

import numpy as np

from jupiter.mapping._engine import place_eft, ready_list_order, to_schedule
from jupiter.mapping._indexed import FloatArray, IndexedProblem
from jupiter.mapping.base import Mapper
from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Schedule


def optimistic_cost_table(ix: IndexedProblem) -> FloatArray:
    """OCT[t, p]: the shortest remaining time to an exit if ``t`` runs on ``p``.

    OCT(t, p) = max over children c of min over nodes q of
    OCT(c, q) + w(c, q) + (mean comm of edge t->c if q != p else 0).
    The inner minimum equals min(M[p], min(M) + comm) with M = OCT[c] + w[c],
    which vectorises over p.
    """
    ma, mb, mc = ix.mean_link("distinct")
    oct_ = np.zeros((ix.n_tasks, ix.n_nodes))
    for t in reversed(ix.topo):
        row = oct_[t]
        for c, s in ix.children[t]:
            m = oct_[c] + ix.exec[c]
            comm = (ma * s + mb) * s + mc
            np.maximum(row, np.minimum(m, float(m.min()) + comm), out=row)
    oct_.setflags(write=False)
    return oct_


class PeftMapper(Mapper):
    """PEFT (Arabnejad and Barbosa, "List scheduling algorithm for heterogeneous
    systems by an optimistic cost table", IEEE TPDS 25(3), 2014).

    Tasks are taken from the ready list by decreasing mean OCT; each goes to
    the node minimising EFT + OCT, i.e. its finish time plus the optimistic
    time still needed after it (insertion policy, ties to the first node).
    """

    name = "peft"

    def schedule(self, problem: Problem) -> Schedule:
        """Schedule with PEFT."""
        ix = problem.indexed
        oct_ = optimistic_cost_table(ix)
        order = ready_list_order(ix, oct_.mean(axis=1).tolist())
        placed = place_eft(ix, order, bias=oct_, names=problem.tasks)
        return to_schedule(problem, placed, self.name)
