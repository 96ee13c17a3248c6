"""``best``: the best of all our mappers, then improved by iterated local search.

The portfolio guarantees it is never worse than any other registered mapper
on the same problem; the local search usually makes it better. The search
works on (priority order, mapping) pairs timed by the fixed-mapping engine,
which reproduces a list schedule exactly, so every step is an honest
feasible schedule and the result passes the checker.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from itertools import pairwise

from jupiter.mapping._engine import Placed, place_fixed, to_schedule
from jupiter.mapping._indexed import IndexedProblem
from jupiter.mapping.base import Mapper
from jupiter.mapping.cpop import CpopMapper
from jupiter.mapping.fastest_node import FastestNodeMapper
from jupiter.mapping.heft import HeftMapper
from jupiter.mapping.minmin import MinMinMapper
from jupiter.mapping.peft import PeftMapper
from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Schedule
from jupiter.mapping.wave import WaveGreedyMapper, WaveRandomMapper

#: Default search effort in task+edge visits of the timing engine (1-2 s of CPU at 1000 tasks).
DEFAULT_WORK = 4_000_000
MAX_EVALUATIONS = 3000
_EPS = 1e-9


def portfolio(seed: int = 0) -> list[Mapper]:
    """Every mapper ``best`` runs first: all registered ones that need no extra
    input, each list scheduler both as in its paper and as SAGA computes it."""
    return [
        HeftMapper(),
        HeftMapper(comm_average="saga"),
        CpopMapper(),
        CpopMapper(variant="saga"),
        PeftMapper(),
        PeftMapper(variant="saga"),
        MinMinMapper(),
        FastestNodeMapper(),
        WaveGreedyMapper(),
        WaveRandomMapper(seed=seed),
    ]


def _start_order(ix: IndexedProblem, placed: Placed) -> list[int]:
    """Tasks by start time (ties in topological order): replaying a schedule in this
    order on the same nodes never starts any task later."""
    start, pos = placed.start, ix.topo_pos
    return sorted(range(ix.n_tasks), key=lambda t: (start[t], pos[t]))


def _critical_tasks(ix: IndexedProblem, placed: Placed) -> list[int]:
    """Tasks on one critical path of a timed schedule, last task first.

    From the task finishing last, repeatedly step to what made the current
    task start when it did: the parent whose data arrived last if the task
    started as soon as its data was there, else the task before it on its node.
    """
    node, start, finish = placed.node, placed.start, placed.finish
    per_node: list[list[int]] = [[] for _ in range(ix.n_nodes)]
    for t in sorted(range(ix.n_tasks), key=lambda t: (start[t], finish[t])):
        per_node[node[t]].append(t)
    prev_on_node = [-1] * ix.n_tasks
    for lst in per_node:
        for a, b in pairwise(lst):
            prev_on_node[b] = a
    t = max(range(ix.n_tasks), key=lambda x: finish[x])
    path = [t]
    seen = {t}
    while True:
        n = node[t]
        ready, who = 0.0, -1
        for p, s in ix.parents[t]:
            v = finish[p] + ix.transfer(s, node[p], n)
            if v > ready:
                ready, who = v, p
        if who >= 0 and ready >= start[t] - _EPS * (1.0 + abs(start[t])):
            t = who
        elif prev_on_node[t] >= 0:
            t = prev_on_node[t]
        else:
            break
        if t in seen:
            break
        seen.add(t)
        path.append(t)
    return path


class BestMapper(Mapper):
    """Portfolio plus iterated local search (ILS; Lourenço, Martin and Stützle,
    "Iterated local search", Handbook of Metaheuristics, 2003) over the
    critical path, in the spirit of the re-assignment steps of HEFT follow-ups.

    1. Run every mapper of :func:`portfolio` (plus ``extra`` ones) and keep
       the shortest schedule; so ``best`` is never worse than any of them.
    2. Repeatedly take the tasks of the current critical path and try each on
       every other node it can run on; re-time the whole mapping (tasks in
       start-time order of the current schedule, insertion policy) and keep a
       move if it shortens the makespan (first improvement).
    3. When no move helps, perturb a few critical tasks at random and search
       again, always remembering the best schedule seen.

    Effort is bounded by ``work`` (task and edge visits of the timing engine,
    deterministic) and optionally by ``time_limit`` seconds (not deterministic
    under load). ``seed`` fixes the perturbations. ``extra`` adds mappers to
    the portfolio, e.g. ``MinMinMapper(tie_order=...)`` with another tie order.
    """

    name = "best"

    def __init__(
        self,
        *,
        work: int = DEFAULT_WORK,
        time_limit: float | None = None,
        seed: int = 0,
        extra: Sequence[Mapper] = (),
    ) -> None:
        self.work = work
        self.time_limit = time_limit
        self.seed = seed
        self.extra: tuple[Mapper, ...] = tuple(extra)

    def schedule(self, problem: Problem) -> Schedule:
        """The best portfolio schedule, improved by local search."""
        results: list[Schedule] = []
        errors: list[str] = []
        for mapper in [*portfolio(self.seed), *self.extra]:
            try:
                results.append(mapper.schedule(problem))
            except ValueError as exc:  # e.g. a WAVE mapping that needs a missing link
                errors.append(f"{mapper.name}: {exc}")
        feasible = [s for s in results if math.isfinite(s.makespan)]
        if not feasible:
            raise ValueError("no mapper found a schedule: " + "; ".join(errors))
        start = min(feasible, key=lambda s: s.makespan)
        improved = self._improve(problem, start)
        if improved is not None and improved.makespan < start.makespan - _EPS * start.makespan:
            return improved
        return start.renamed(self.name)

    def _improve(self, problem: Problem, seed_schedule: Schedule) -> Schedule | None:
        ix = problem.indexed
        if ix.n_tasks == 0 or ix.n_nodes < 2:
            return None
        rng = random.Random(self.seed)
        unit = ix.n_tasks + sum(len(c) for c in ix.children)
        budget = max(20, min(MAX_EVALUATIONS, self.work // max(unit, 1)))
        deadline = None if self.time_limit is None else time.perf_counter() + self.time_limit
        evals = 0

        def out_of_budget() -> bool:
            if evals >= budget:
                return True
            return deadline is not None and time.perf_counter() > deadline

        node_of = [problem.node_index[seed_schedule.placements[t].node] for t in problem.tasks]
        pos = ix.topo_pos
        start0 = [seed_schedule.placements[t].start for t in problem.tasks]
        order = sorted(range(ix.n_tasks), key=lambda t: (start0[t], pos[t]))
        cur = place_fixed(ix, order, node_of)
        evals += 1
        best_nodes, best_placed = list(node_of), cur
        allowed = [[n for n in range(ix.n_nodes) if ix.finite[t, n]] for t in range(ix.n_tasks)]

        def evaluate(nodes: Sequence[int], base: Placed) -> Placed:
            nonlocal evals
            evals += 1
            return place_fixed(ix, _start_order(ix, base), nodes)

        def descend(nodes: list[int], placed: Placed) -> tuple[list[int], Placed]:
            improved = True
            while improved and not out_of_budget():
                improved = False
                for t in _critical_tasks(ix, placed):
                    here = nodes[t]
                    cands = [n for n in allowed[t] if n != here]
                    rng.shuffle(cands)
                    for n in cands:
                        if out_of_budget():
                            return nodes, placed
                        nodes[t] = n
                        trial = evaluate(nodes, placed)
                        if trial.makespan < placed.makespan * (1.0 - _EPS):
                            placed, improved = trial, True
                            break
                        nodes[t] = here
                    if improved:
                        break
            return nodes, placed

        nodes, cur = descend(list(node_of), cur)
        if cur.makespan < best_placed.makespan:
            best_nodes, best_placed = list(nodes), cur
        while not out_of_budget():
            # Perturb: send a few critical tasks to random nodes, then descend again.
            nodes = list(best_nodes)
            crit = _critical_tasks(ix, best_placed)
            for t in rng.sample(crit, k=min(len(crit), rng.randint(1, 3))):
                nodes[t] = rng.choice(allowed[t])
            trial = evaluate(nodes, best_placed)
            nodes, trial = descend(nodes, trial)
            if trial.makespan < best_placed.makespan * (1.0 - _EPS):
                best_nodes, best_placed = list(nodes), trial
        if not math.isfinite(best_placed.makespan):
            return None
        return to_schedule(problem, best_placed, self.name)

    def __repr__(self) -> str:
        extra = f", extra={list(self.extra)!r}" if self.extra else ""
        return f"BestMapper(work={self.work}, time_limit={self.time_limit}, seed={self.seed}{extra})"
