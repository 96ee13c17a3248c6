"""PEFT: Predict Earliest Finish Time with an optimistic cost table."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from jupiter.mapping._engine import place_eft, ready_list_order, to_schedule
from jupiter.mapping._indexed import FloatArray, IndexedProblem
from jupiter.mapping.base import Mapper
from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Schedule

Variant = Literal["paper", "saga"]


def optimistic_cost_table(ix: IndexedProblem, variant: Variant = "paper") -> FloatArray:
    """OCT[t, p]: the shortest remaining time to an exit if ``t`` runs on ``p``.

    OCT(t, p) = max over children c of min over nodes q of
    OCT(c, q) + w(c, q) + comm(t->c, p->q), comm being 0 when q = p.

    ``"paper"``: comm is the edge's mean transfer time over pairs of distinct
    nodes; the inner minimum is then min(M[p], min(M) + comm) with
    M = OCT[c] + w[c], which vectorises over p. ``"saga"``: comm is the transfer
    time over the actual link p -> q, as SAGA's ``OCT_table`` does (a full
    n x n minimum per edge).
    """
    oct_ = np.zeros((ix.n_tasks, ix.n_nodes))
    if variant == "saga":
        diag = np.eye(ix.n_nodes, dtype=bool)
        for t in reversed(ix.topo):
            row = oct_[t]
            for c, s in ix.children[t]:
                comm = (ix.a * s + ix.b) * s + ix.c
                comm[diag] = 0.0
                # Summed in SAGA's order, so that its exact ties stay ties here.
                np.maximum(row, ((comm + ix.exec[c][None, :]) + oct_[c][None, :]).min(axis=1), out=row)
    else:
        ma, mb, mc = ix.mean_link("distinct")
        for t in reversed(ix.topo):
            row = oct_[t]
            for c, s in ix.children[t]:
                m = oct_[c] + ix.exec[c]
                comm_mean = (ma * s + mb) * s + mc
                np.maximum(row, np.minimum(m, float(m.min()) + comm_mean), out=row)
    oct_.setflags(write=False)
    return oct_


class PeftMapper(Mapper):
    """PEFT (Arabnejad and Barbosa, "List scheduling algorithm for heterogeneous
    systems by an optimistic cost table", IEEE TPDS 25(3), 2014).

    Tasks are taken from the ready list by decreasing mean OCT; each goes to
    the node minimising EFT + OCT, i.e. its finish time plus the optimistic
    time still needed after it (insertion policy, ties to the first node).
    Equal mean OCTs go in topological order.

    ``variant="saga"`` reproduces SAGA's ``PEFTScheduler``, whose OCT uses the
    actual link between the two nodes instead of the edge's mean transfer time
    (see :func:`optimistic_cost_table`); everything else is the same.
    """

    name = "peft"

    def __init__(self, variant: Variant = "paper") -> None:
        if variant not in ("paper", "saga"):
            raise ValueError(f"unknown PEFT variant {variant!r}; use 'paper' or 'saga'")
        self.variant: Variant = variant

    def schedule(self, problem: Problem) -> Schedule:
        """Schedule with PEFT."""
        ix = problem.indexed
        oct_ = optimistic_cost_table(ix, self.variant)
        # fsum: SAGA sums with Python >= 3.12's compensated sum(), and exact ties
        # (identical tasks) must come out identical or the ready list reorders them.
        order = ready_list_order(ix, [math.fsum(row) / ix.n_nodes for row in oct_.tolist()])
        placed = place_eft(ix, order, bias=oct_, names=problem.tasks)
        return to_schedule(problem, placed, self.name)

    def __repr__(self) -> str:
        return f"PeftMapper(variant={self.variant!r})"
