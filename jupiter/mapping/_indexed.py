"""Integer-indexed, array-backed view of a mapping problem.

The public :class:`~jupiter.mapping.problem.Problem` speaks in task and node
names, which is what users and the checker want. Schedulers want integers and
contiguous arrays: name look-ups in the inner loops of HEFT are what makes
naive Python schedulers slow. This module builds that view once per problem;
it imports nothing from the rest of the package so that ``problem.py`` can
cache it without an import cycle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class IndexedProblem:
    """Arrays and adjacency lists of one problem, tasks and nodes by index.

    Everything here is derived data and must never be mutated; numpy arrays are
    flagged read-only to make an accidental write fail loudly.
    """

    __slots__ = (
        "a",
        "a_rows",
        "b",
        "b_rows",
        "c",
        "c_rows",
        "children",
        "exec",
        "exec_rows",
        "finite",
        "limits",
        "n_nodes",
        "n_tasks",
        "parents",
        "topo",
        "topo_pos",
    )

    def __init__(
        self,
        n_tasks: int,
        n_nodes: int,
        exec_times: Sequence[Sequence[float]],
        edges: Sequence[tuple[int, int, float]],
        links: Mapping[tuple[int, int], tuple[float, float, float]],
        limits: Sequence[int],
        topo: Sequence[int],
    ) -> None:
        self.n_tasks = n_tasks
        self.n_nodes = n_nodes
        ex = np.array(exec_times, dtype=np.float64).reshape(n_tasks, n_nodes)
        ex.setflags(write=False)
        self.exec: FloatArray = ex
        # Plain lists are several times faster than numpy scalars in scalar loops.
        self.exec_rows: list[list[float]] = ex.tolist()
        fin = np.isfinite(ex)
        fin.setflags(write=False)
        self.finite: npt.NDArray[np.bool_] = fin
        parents: list[list[tuple[int, float]]] = [[] for _ in range(n_tasks)]
        children: list[list[tuple[int, float]]] = [[] for _ in range(n_tasks)]
        for p, ch, size in edges:
            parents[ch].append((p, size))
            children[p].append((ch, size))
        self.parents = parents
        self.children = children
        # A missing link is "cannot communicate": an infinite constant term makes
        # every transfer over it infinite, including a zero-byte one.
        a = np.zeros((n_nodes, n_nodes))
        b = np.zeros((n_nodes, n_nodes))
        c = np.full((n_nodes, n_nodes), math.inf)
        np.fill_diagonal(c, 0.0)
        for (u, v), (qa, qb, qc) in links.items():
            a[u, v], b[u, v], c[u, v] = qa, qb, qc
        for arr in (a, b, c):
            arr.setflags(write=False)
        self.a: FloatArray = a
        self.b: FloatArray = b
        self.c: FloatArray = c
        self.a_rows: list[list[float]] = a.tolist()
        self.b_rows: list[list[float]] = b.tolist()
        self.c_rows: list[list[float]] = c.tolist()
        self.limits: list[int] = list(limits)
        self.topo: list[int] = list(topo)
        pos = [0] * n_tasks
        for i, t in enumerate(self.topo):
            pos[t] = i
        self.topo_pos: list[int] = pos

    def transfer(self, size: float, src: int, dst: int) -> float:
        """Seconds to move ``size`` bytes from node ``src`` to node ``dst``."""
        if src == dst:
            return 0.0
        return float((self.a[src, dst] * size + self.b[src, dst]) * size + self.c[src, dst])

    def transfer_row(self, size: float, src: int) -> FloatArray:
        """Seconds to move ``size`` bytes from ``src`` to every node (0 to itself)."""
        row: FloatArray = (self.a[src] * size + self.b[src]) * size + self.c[src]
        return row

    def mean_link(self, convention: str) -> tuple[float, float, float]:
        """Average quadratic coefficients over node pairs, ignoring missing links.

        ``"distinct"`` averages over ordered pairs of distinct nodes (Topcuoglu
        et al.). ``"saga"`` reproduces SAGA's average over its undirected link
        set, which holds every unordered pair once *and* every self-link (free):
        the sum over ordered distinct pairs divided by n(n+1). Averaging the
        coefficients is exact because the cost is linear in them.
        """
        n = self.n_nodes
        if n < 2:
            return (0.0, 0.0, 0.0)
        off = ~np.eye(n, dtype=bool) & np.isfinite(self.c)
        count = int(off.sum())
        if count == 0:
            return (0.0, 0.0, 0.0)
        sums = (float(self.a[off].sum()), float(self.b[off].sum()), float(self.c[off].sum()))
        if convention == "distinct":
            denom = float(count)
        elif convention == "saga":
            # Scale the missing-link-free case exactly to SAGA's n(n+1) denominator.
            denom = count * (n + 1) / (n - 1)
        else:
            raise ValueError(f"unknown averaging convention {convention!r}; use 'distinct' or 'saga'")
        return (sums[0] / denom, sums[1] / denom, sums[2] / denom)
