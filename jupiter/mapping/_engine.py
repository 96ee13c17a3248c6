"""Shared list-scheduling machinery: ranks, insertion slots and placement loops.

Every list scheduler in this package (HEFT and its capped variant, CPoP, PEFT,
the fixed-mapping evaluator behind WAVE/static/best) is "walk the tasks in a
priority order, put each on a node at its earliest feasible slot". The loops
live here once, written for speed: integer indices, Python lists for scalar
work (numpy scalars are slow), numpy only where a whole row of nodes is
computed at once, and per-node slot lists searched with ``bisect`` so the
insertion policy costs O(log k) to find the first candidate gap.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Sequence

import numpy as np

from jupiter.mapping._indexed import FloatArray, IndexedProblem
from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Placement, Schedule

INF = math.inf


class NoFeasibleNode(ValueError):
    """A task has no node it can run on under the current constraints."""


def mean_exec(ix: IndexedProblem) -> list[float]:
    """Mean execution time of each task over the nodes that can run it."""
    ex = np.where(ix.finite, ix.exec, 0.0)
    counts = ix.finite.sum(axis=1)
    means: list[float] = (ex.sum(axis=1) / np.maximum(counts, 1)).tolist()
    return means


def harmonic_exec(ix: IndexedProblem) -> list[float]:
    """Each task's execution time at the *mean speed* of all nodes.

    In the related-machines model ``exec = cost / speed`` this is ``cost /
    mean(speed)`` = n / sum(1 / exec), the harmonic mean of the execution times
    (a node that cannot run the task counts as speed 0). SAGA's CPoP uses it in
    the downward rank.
    """
    with np.errstate(divide="ignore"):
        speed_sum = (1.0 / ix.exec).sum(axis=1)
    out: list[float] = [float(ix.n_nodes / x) if x > 0 else INF for x in speed_sum.tolist()]
    return out


def upward_rank(ix: IndexedProblem, convention: str = "distinct") -> list[float]:
    """HEFT's upward rank: mean cost of the task plus the costliest mean path to an exit.

    ``convention`` picks how communication is averaged (see
    :meth:`IndexedProblem.mean_link`).
    """
    ma, mb, mc = ix.mean_link(convention)
    w = mean_exec(ix)
    rank = [0.0] * ix.n_tasks
    children = ix.children
    for t in reversed(ix.topo):
        best = 0.0
        for c, s in children[t]:
            best = max(best, rank[c] + ((ma * s + mb) * s + mc))
        rank[t] = w[t] + best
    return rank


def downward_rank(ix: IndexedProblem, convention: str = "distinct") -> list[float]:
    """CPoP's downward rank: the costliest mean path from an entry task, excluding the task."""
    ma, mb, mc = ix.mean_link(convention)
    w = mean_exec(ix)
    rank = [0.0] * ix.n_tasks
    parents = ix.parents
    for t in ix.topo:
        best = 0.0
        for p, s in parents[t]:
            best = max(best, rank[p] + w[p] + ((ma * s + mb) * s + mc))
        rank[t] = best
    return rank


def order_by_rank(ix: IndexedProblem, rank: Sequence[float]) -> list[int]:
    """Tasks by decreasing rank; ties go to the task earlier in topological order."""
    pos = ix.topo_pos
    return sorted(range(ix.n_tasks), key=lambda t: (-rank[t], pos[t]))


def ready_list_order(ix: IndexedProblem, priority: Sequence[float], tie: Sequence[int] | None = None) -> list[int]:
    """Topological order that always takes the ready task of highest priority.

    CPoP and PEFT pick from a ready queue; since the pick depends only on the
    priorities, the whole order can be fixed before any placement. Equal
    priorities go to the smaller ``tie`` key (default: topological position).
    """
    indeg = [len(ps) for ps in ix.parents]
    pos = ix.topo_pos if tie is None else tie
    heap = [(-priority[t], pos[t], t) for t in range(ix.n_tasks) if indeg[t] == 0]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        _, _, t = heapq.heappop(heap)
        order.append(t)
        for c, _s in ix.children[t]:
            indeg[c] -= 1
            if indeg[c] == 0:
                heapq.heappush(heap, (-priority[c], pos[c], c))
    return order


def earliest_start(starts: list[float], ends: list[float], ready: float, dur: float) -> float:
    """Earliest start >= ``ready`` of a ``dur``-long slot among sorted busy intervals.

    Slots ending at or before ``ready`` cannot bound a useful gap, so the scan
    starts at the first slot ending after it (found by bisection).
    """
    k = bisect_right(ends, ready)
    t = ready
    m = len(starts)
    while k < m:
        if t + dur <= starts[k]:
            return t
        e = ends[k]
        if e > t:  # noqa: PLR1730 - hot loop: a comparison is cheaper than a max() call
            t = e
        k += 1
    return t


def no_gap_fits(gap_bound: float, last_end: float, dur: float) -> bool:
    """True when a ``dur``-long task cannot fit in any gap of a node whose gaps are
    all at most ``gap_bound`` long, so it can only go after ``last_end``.

    The relative slack (1e-9 of the horizon) keeps this exactly equivalent to
    the full scan of :func:`earliest_start` despite rounding. Without this test a
    node packed with back-to-back tasks (no gaps) makes every insertion scan all
    of them: quadratic, and what made local search slow on fan-in workflows.
    """
    return dur > gap_bound + 1e-9 * (gap_bound + last_end)


class Timelines:
    """Busy intervals of every node, kept sorted for insertion-based scheduling.

    ``gap_bound[n]`` is an upper bound on the length of every idle gap of node
    ``n`` (before its first task, or between two tasks). Placing a task inside
    a gap only splits it, so the bound need only grow with the gap a task opens
    after the one before it.
    """

    __slots__ = ("count", "ends", "gap_bound", "starts")

    def __init__(self, n_nodes: int) -> None:
        self.starts: list[list[float]] = [[] for _ in range(n_nodes)]
        self.ends: list[list[float]] = [[] for _ in range(n_nodes)]
        self.count: list[int] = [0] * n_nodes
        self.gap_bound: list[float] = [0.0] * n_nodes

    def est(self, node: int, ready: float, dur: float) -> float:
        """Earliest start on ``node`` (insertion policy)."""
        ends = self.ends[node]
        if not ends or ready >= ends[-1]:
            return ready
        if no_gap_fits(self.gap_bound[node], ends[-1], dur):
            return ends[-1]
        return earliest_start(self.starts[node], ends, ready, dur)

    def add(self, node: int, start: float, finish: float) -> None:
        """Record ``[start, finish]`` as busy on ``node``."""
        ends = self.ends[node]
        i = bisect_right(ends, start)
        gap = start - (ends[i - 1] if i else 0.0)
        self.gap_bound[node] = max(self.gap_bound[node], gap)
        self.starts[node].insert(i, start)
        ends.insert(i, finish)
        self.count[node] += 1


class Placed:
    """Result arrays of a placement loop: node, start and finish per task index."""

    __slots__ = ("finish", "node", "start")

    def __init__(self, n_tasks: int) -> None:
        self.node: list[int] = [-1] * n_tasks
        self.start: list[float] = [0.0] * n_tasks
        self.finish: list[float] = [0.0] * n_tasks

    @property
    def makespan(self) -> float:
        """Latest finish time."""
        return max(self.finish, default=0.0)


def _ready_row(ix: IndexedProblem, placed: Placed, t: int) -> FloatArray:
    """Data-ready time of task ``t`` on every node, given its placed parents."""
    ready = np.zeros(ix.n_nodes)
    node, finish = placed.node, placed.finish
    a, b, c = ix.a, ix.b, ix.c
    for p, s in ix.parents[t]:
        pn = node[p]
        if pn < 0:
            raise ValueError("internal error: a task is scheduled before its parent")
        np.maximum(ready, (a[pn] * s + b[pn]) * s + c[pn] + finish[p], out=ready)
    return ready


def place_eft(
    ix: IndexedProblem,
    order: Sequence[int],
    *,
    cap: Sequence[int] | None = None,
    forced: dict[int, int] | None = None,
    bias: FloatArray | None = None,
    names: Sequence[str] = (),
) -> Placed:
    """Place tasks in ``order``, each on the node of earliest finish (insertion policy).

    ``cap`` limits tasks per node (a full node is not a candidate); ``forced``
    pins some tasks to a node; ``bias[t, n]`` is added to the finish time when
    *choosing* a node (PEFT's optimistic cost) but not to the recorded times.
    Ties go to the lowest node index, so results are deterministic.
    """
    if cap is None:
        # The problem's own per-node limits bind every EFT mapper (unlimited = n_tasks).
        cap = ix.limits
    placed = Placed(ix.n_tasks)
    tl = Timelines(ix.n_nodes)
    starts_all, ends_all, count, gap_all = tl.starts, tl.ends, tl.count, tl.gap_bound
    exec_rows = ix.exec_rows
    n_nodes = ix.n_nodes
    all_nodes = range(n_nodes)
    for t in order:
        rl: list[float] = _ready_row(ix, placed, t).tolist() if ix.parents[t] else [0.0] * n_nodes
        er = exec_rows[t]
        br: list[float] | None = bias[t].tolist() if bias is not None else None
        cands: Sequence[int] = all_nodes
        if forced is not None and t in forced and count[forced[t]] < cap[forced[t]] and er[forced[t]] < INF:
            # A pinned task whose node is full or cannot run it falls back to the free choice.
            cands = (forced[t],)
        best_key = INF
        best_n = -1
        best_s = 0.0
        for n in cands:
            e = er[n]
            r = rl[n]
            lb = r + e if br is None else r + e + br[n]
            if lb >= best_key or count[n] >= cap[n]:
                continue
            ends = ends_all[n]
            if not ends or r >= ends[-1]:
                s0 = r
            elif no_gap_fits(gap_all[n], ends[-1], e):
                s0 = ends[-1]
            else:
                s0 = earliest_start(starts_all[n], ends, r, e)
            key = s0 + e if br is None else s0 + e + br[n]
            if key < best_key:
                best_key, best_n, best_s = key, n, s0
        if best_n < 0:
            who = names[t] if names else str(t)
            why = " (every node it can run on may be full)" if min(cap) < ix.n_tasks else ""
            raise NoFeasibleNode(f"task {who!r} cannot be placed on any node it can reach{why}")
        f = best_s + er[best_n]
        placed.node[t], placed.start[t], placed.finish[t] = best_n, best_s, f
        tl.add(best_n, best_s, f)
    return placed


def place_fixed(ix: IndexedProblem, order: Sequence[int], node_of: Sequence[int]) -> Placed:
    """Time a fixed mapping: tasks in ``order``, each at its earliest slot on its node.

    Pure scalar code: with the node known there is no row of nodes to
    vectorise, and this loop is what local search calls thousands of times.
    """
    placed = Placed(ix.n_tasks)
    tl = Timelines(ix.n_nodes)
    starts_all, ends_all, gap_all = tl.starts, tl.ends, tl.gap_bound
    a_rows, b_rows, c_rows = ix.a_rows, ix.b_rows, ix.c_rows
    exec_rows, parents = ix.exec_rows, ix.parents
    finish, start, pnode = placed.finish, placed.start, placed.node
    for t in order:
        n = node_of[t]
        r = 0.0
        for p, s in parents[t]:
            pn = pnode[p]
            # Same-node data is free; the branch also skips the link arithmetic.
            if pn == n:  # noqa: SIM108
                v = finish[p]
            else:
                v = finish[p] + ((a_rows[pn][n] * s + b_rows[pn][n]) * s + c_rows[pn][n])
            if v > r:  # noqa: PLR1730 - hot loop: a comparison is cheaper than a max() call
                r = v
        e = exec_rows[t][n]
        ends = ends_all[n]
        if not ends or r >= ends[-1]:
            s0 = r
        elif no_gap_fits(gap_all[n], ends[-1], e):
            s0 = ends[-1]
        else:
            s0 = earliest_start(starts_all[n], ends, r, e)
        f = s0 + e
        pnode[t], start[t], finish[t] = n, s0, f
        # Inlined Timelines.add: this loop is the local search's inner loop.
        i = bisect_right(ends, s0)
        gap = s0 - (ends[i - 1] if i else 0.0)
        if gap > gap_all[n]:  # noqa: PLR1730 - hot loop: a comparison is cheaper than a max() call
            gap_all[n] = gap
        starts_all[n].insert(i, s0)
        ends.insert(i, f)
    return placed


def to_schedule(problem: Problem, placed: Placed, mapper: str) -> Schedule:
    """Turn index arrays back into a named :class:`Schedule`."""
    tasks, nodes = problem.tasks, problem.nodes
    return Schedule(
        {
            tasks[t]: Placement(tasks[t], nodes[placed.node[t]], placed.start[t], placed.finish[t])
            for t in range(len(tasks))
        },
        mapper=mapper,
    )
