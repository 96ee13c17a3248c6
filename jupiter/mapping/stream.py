"""``stream``: a mapper for a stream of frames at a given rate, not for one frame.

HEFT and ``best`` minimise the makespan of one frame, which on a fast node
with cheap links usually means "everything on the fastest node": optimal for
one frame, and a saturated node — unbounded queues — as soon as frames
arrive faster than that node can run the whole DAG. This mapper keeps every
node's utilisation under a cap at the arrival rate, then minimises the
steady-state latency that :mod:`jupiter.mapping.predict` simulates.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, NamedTuple

from jupiter.mapping._engine import order_by_rank, upward_rank
from jupiter.mapping._indexed import IndexedProblem
from jupiter.mapping.base import Mapper
from jupiter.mapping.best import BestMapper
from jupiter.mapping.evaluator import evaluate_mapping
from jupiter.mapping.fastest_node import FastestNodeMapper
from jupiter.mapping.heft import HeftMapper
from jupiter.mapping.predict import ArrivalProcess, CompiledPipeline, LinkModel, QueueModel, predict_stream
from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Schedule
from jupiter.mapping.stats import percentile

Objective = Literal["p95", "mean"]

INF = math.inf
#: Relative slack below which two figures count as equal (float round-off).
_EPS = 1e-9
#: Swaps enumerated per local-search step before sampling kicks in (30 tasks ~ 435 pairs).
_MAX_SWAPS = 600

# (max period, sum of squared periods, surrogate latency) of one mapping.
Analysis = tuple[float, float, float]


class _Loads(NamedTuple):
    """Per-frame busy time of one mapping's resources, by node index."""

    load: list[float]  # execution seconds of the node's tasks
    sq: list[float]  # sum of their squares (the second moment the M/G/1 wait needs)
    up: list[float]  # seconds the node's uplink holds the bytes it sends (uplink model only)
    upsq: list[float]  # sum of their squares
    comm: list[list[tuple[int, float, int]]]  # per task: (parent, transfer seconds, parent's node)


class StreamMapper(Mapper):
    """Utilisation-capped, latency-minimising mapping of a pipelined DAG.

    The problem is the bi-criteria one of pipelined workflows — period
    (1 / throughput) and latency (Subhlok and Vondran, "Optimal
    latency-throughput tradeoffs for data parallel pipelines", SPAA 1996;
    Benoit, Rehn-Sonigo and Robert, "Multi-criteria scheduling of pipeline
    workflows", HeteroPar 2007; Benoit and Robert, "Mapping pipeline
    skeletons onto heterogeneous platforms", JPDC 68(6), 2008) — solved as
    those papers recommend: fix the throughput, then minimise latency. Here
    for general DAGs on unrelated nodes with quadratic links, the setting of
    Jupiter and its WAVE/CIRCE evaluations with streams of frames (Ghosh et
    al., "Jupiter: a networked computing architecture", arXiv:1912.10643;
    Knezevic et al., "CIRCE — a runtime scheduler for DAG-based dispersed
    computing", SEC 2017), where throughput is limited by the busiest
    resource (Yang, Pedarsani and Avestimehr, "Communication-aware
    scheduling of serial tasks for dispersed computing", IEEE/ACM ToN 2019).

    Method (deterministic for a given ``seed``):

    1. Starting mappings: HEFT's, ``best``'s, ``fastest_node``'s and two
       period-balancing greedies (tasks by upward rank, each to the node
       minimising the mapping's largest period / its own new period, ties to
       the least incoming transfer time).
    2. Throughput first. The period of a node is the execution time of its
       tasks per frame (with ``links="uplink"`` an uplink's period is the
       time it holds the bytes of the transfers leaving the node);
       utilisation = ``rate * period``. If no start is
       under ``utilisation_cap``, a local search moves and swaps tasks of
       the bottleneck resource to minimise (largest period, sum of squared
       periods) until one is. With ``rate=None`` the search runs to the end
       and the rate becomes ``utilisation_cap / best period``: "as fast as
       possible" with the cap's headroom.
    3. Latency second. Local search over moves of one task and swaps of
       two, never exceeding the cap. Each step ranks the whole neighbourhood
       by a cheap analytic surrogate — one frame run FIFO through the
       mapping with every task first waiting its node's Pollaczek-Khinchine
       M/G/1 mean wait ``rate·Σe² / 2(1-rho)`` (Kleinrock's independence
       approximation for networks of queues, "Communication Nets", 1964) —
       then simulates the ``screen`` best candidates with the predictor
       (Poisson arrivals at the rate, fixed ``seed``: the same frames for
       every candidate, so comparisons are not blurred by sampling noise)
       and takes the first that lowers the objective. It stops when none
       does or after ``max_simulations`` simulations.

    ``objective="p95"`` (default) minimises the 95th-percentile latency of
    the simulated steady state: queueing shows in the tail long before the
    mean moves, and a stream's users see the tail (a late frame is a late
    result). ``"mean"`` is the smoother alternative. The first fifth of the
    simulated frames is warm-up and left out. ``links`` and ``queues`` are
    the predictor's models (:func:`jupiter.mapping.predict.predict_stream`);
    ``queues="task"`` (default) is how Jupiter's runtime serves a node.

    If no mapping found keeps utilisation under 1, the one with the least
    utilisation is returned, and its notes say the stream is unstable. The
    returned schedule times one frame alone on the chosen mapping (so the
    checker accepts it); the stream figures are in ``Schedule.notes``.
    """

    name = "stream"

    def __init__(
        self,
        rate: float | None = None,
        *,
        seed: int = 0,
        utilisation_cap: float = 0.9,
        objective: Objective = "p95",
        links: LinkModel = "independent",
        queues: QueueModel = "task",
        frames: int = 400,
        max_simulations: int = 200,
        screen: int = 16,
    ) -> None:
        if rate is not None and not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"stream: rate must be a finite number of frames/s > 0 or None, got {rate!r}")
        if not 0 < utilisation_cap <= 1:
            raise ValueError(f"stream: utilisation_cap must lie in (0, 1], got {utilisation_cap!r}")
        if objective not in ("p95", "mean"):
            raise ValueError(f"stream: objective must be 'p95' or 'mean', got {objective!r}")
        if links not in ("independent", "uplink"):
            raise ValueError(f"stream: links must be 'independent' or 'uplink', got {links!r}")
        if queues not in ("task", "node"):
            raise ValueError(f"stream: queues must be 'task' or 'node', got {queues!r}")
        if frames < 10:
            raise ValueError(f"stream: simulate at least 10 frames, got {frames!r}")
        if max_simulations < 1 or screen < 1:
            raise ValueError("stream: max_simulations and screen must be >= 1")
        self.rate = rate
        self.seed = seed
        self.utilisation_cap = utilisation_cap
        self.objective: Objective = objective
        self.links: LinkModel = links
        self.queues: QueueModel = queues
        self.frames = frames
        self.max_simulations = max_simulations
        self.screen = screen

    def schedule(self, problem: Problem) -> Schedule:
        """A mapping for the stream, timed as one frame; stream figures in ``notes``."""
        ix = problem.indexed
        if ix.n_tasks == 0:
            return Schedule({}, mapper=self.name, notes={"rate": "0", "stable": "yes"})
        search = _Search(ix, uplink=self.links == "uplink", queues=self.queues)
        starts = self._starts(problem, search)
        if not starts:
            raise ValueError("stream: no mapping can run every task with the links and node limits given")
        cap = self.utilisation_cap
        pool = list(starts)
        if self.rate is None:
            # As fast as possible: the least bottleneck period any search reaches sets the rate.
            pool += [search.balance(m) for m in starts]
            period_limit = min(search.period_key(m)[0] for m in pool)
            rate = 0.0 if period_limit <= 0 else cap / period_limit
            source = "utilisation_cap x sustainable rate" if period_limit > 0 else "none (no task takes any time)"
        else:
            rate, source = self.rate, "given"
            period_limit = cap / rate
        feasible = _unique(m for m in pool if search.period_key(m)[0] <= period_limit * (1 + _EPS))
        if not feasible:
            # Throughput first: lower the bottleneck until the cap holds, or as far as the search gets.
            pushed = [search.balance(m, stop_at=period_limit) for m in starts]
            best = min(pushed, key=search.period_key)
            period_limit = max(period_limit, search.period_key(best)[0])
            feasible = [best]
        stable = rate * period_limit < 1
        if stable:
            chosen = self._improve(search, feasible, rate, period_limit, self._scorer(search, rate))
        else:
            # Nothing found keeps the stream stable: latency is unbounded whatever we do; least load wins.
            chosen = min(feasible, key=search.period_key)
        mapping = {problem.tasks[t]: problem.nodes[n] for t, n in enumerate(chosen)}
        single = evaluate_mapping(problem, mapping, mapper=self.name)
        notes = self._notes(problem, mapping, rate, source, stable)
        return Schedule(single.placements, mapper=self.name, notes=notes)

    # -- starting points -----------------------------------------------------------------

    def _starts(self, problem: Problem, search: _Search) -> list[list[int]]:
        ix = problem.indexed
        found: list[list[int]] = []
        mappers: list[Mapper] = [HeftMapper(), BestMapper(seed=self.seed), FastestNodeMapper()]
        for mapper in mappers:
            try:
                s = mapper.schedule(problem)
            except ValueError:  # e.g. fastest_node with no room: the other starts remain
                continue
            found.append([problem.node_index[s.node_of(t)] for t in problem.tasks])
        for rule in ("global", "own"):
            greedy = _balance_greedy(ix, rule)
            if greedy is not None:
                found.append(greedy)
        out: list[list[int]] = []
        seen: set[tuple[int, ...]] = set()
        for m in found:
            key = tuple(m)
            if key not in seen and search.valid(m):
                seen.add(key)
                out.append(m)
        return out

    # -- latency search ------------------------------------------------------------------

    def _scorer(self, search: _Search, rate: float) -> Callable[[list[int]], float]:
        """The objective of one mapping: simulated p95 or mean latency at ``rate`` (work alone at rate 0)."""
        if rate <= 0:
            # No load from other frames: the latency of one frame alone (its own tasks may still queue).
            def alone(nodes: list[int]) -> float:
                arr, done = search.pipeline(nodes).run(None, 1)
                return done[0] - arr[0]

            return alone
        arrivals = ArrivalProcess.poisson(rate, self.frames, self.seed).times()
        assert arrivals is not None
        warm = self.frames // 5
        frames = self.frames
        objective = self.objective

        def score(nodes: list[int]) -> float:
            arr, done = search.pipeline(nodes).run(arrivals, frames)
            lat = [d - a for a, d in zip(arr[warm:], done[warm:], strict=True)]
            return percentile(lat, 0.95) if objective == "p95" else math.fsum(lat) / len(lat)

        return score

    def _improve(
        self,
        search: _Search,
        starts: Sequence[list[int]],
        rate: float,
        period_limit: float,
        score: Callable[[list[int]], float],
    ) -> list[int]:
        cache: dict[tuple[int, ...], float] = {}
        sims = 0

        def scored(nodes: list[int]) -> float:
            nonlocal sims
            key = tuple(nodes)
            if key not in cache:
                sims += 1
                cache[key] = score(nodes)
            return cache[key]

        cur = min(starts, key=scored)
        cur_score = scored(cur)
        rng = random.Random(self.seed)
        while sims < self.max_simulations:
            ranked: list[tuple[float, int, list[int]]] = []
            for i, cand in enumerate(search.neighbours(cur, rng)):
                if tuple(cand) in cache:
                    continue
                peak, _sq, est = search.analyse(cand, rate)
                if peak <= period_limit * (1 + _EPS) and est < INF:
                    ranked.append((est, i, cand))
            ranked.sort(key=lambda x: (x[0], x[1]))
            improved = False
            for _est, _i, cand in ranked[: self.screen]:
                if sims >= self.max_simulations:
                    break
                s = scored(cand)
                if s < cur_score - _EPS * max(1.0, abs(cur_score)):
                    cur, cur_score, improved = cand, s, True
                    break
            if not improved:
                break
        return cur

    def _notes(
        self, problem: Problem, mapping: dict[str, str], rate: float, source: str, stable: bool
    ) -> dict[str, str]:
        if rate > 0:
            arrival = ArrivalProcess.poisson(rate, self.frames, self.seed)
            warm = self.frames // 5
        else:
            arrival, warm = ArrivalProcess.sequential(1), 0
        pred = predict_stream(problem, mapping, arrival, links=self.links, warmup=warm, queues=self.queues)
        notes = pred.notes()
        notes["rate"] = f"{rate:.6g}"
        notes["rate_source"] = source
        notes["objective"] = self.objective
        notes["utilisation_cap"] = f"{self.utilisation_cap:.4g}"
        notes["within_cap"] = "yes" if pred.max_utilisation <= self.utilisation_cap * (1 + _EPS) else "no"
        if not stable:
            notes["warning"] = (
                f"no mapping found keeps every node under utilisation 1 at {rate:.6g} frames/s"
                f" (best sustainable rate {pred.sustainable_rate:.6g}); the stream is unstable"
            )
        return notes

    def __repr__(self) -> str:
        return (
            f"StreamMapper(rate={self.rate!r}, seed={self.seed}, utilisation_cap={self.utilisation_cap},"
            f" objective={self.objective!r}, links={self.links!r}, queues={self.queues!r}, frames={self.frames},"
            f" max_simulations={self.max_simulations}, screen={self.screen})"
        )


def _unique(mappings: Iterable[list[int]]) -> list[list[int]]:
    """The mappings in order, each once."""
    seen: set[tuple[int, ...]] = set()
    out: list[list[int]] = []
    for m in mappings:
        key = tuple(m)
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


def _balance_greedy(ix: IndexedProblem, rule: str) -> list[int] | None:
    """Period-balancing list assignment (no timing): tasks by upward rank, each to the node
    that keeps periods lowest — the mapping's largest period (``"global"``) or the node's
    own new period (``"own"``, LPT-like spreading) — ties to the least incoming transfer time.

    Returns None when some task has no node it can reach (missing links, full nodes).
    """
    order = order_by_rank(ix, upward_rank(ix))
    load = [0.0] * ix.n_nodes
    count = [0] * ix.n_nodes
    node_of = [-1] * ix.n_tasks
    a_rows, b_rows, c_rows = ix.a_rows, ix.b_rows, ix.c_rows
    for t in order:
        row = ix.exec_rows[t]
        top = max(load)
        best: tuple[float, float, int] | None = None
        for v in range(ix.n_nodes):
            e = row[v]
            if not math.isfinite(e) or count[v] >= ix.limits[v]:
                continue
            comm = 0.0
            for p, s in ix.parents[t]:
                u = node_of[p]
                if u != v:
                    comm += (a_rows[u][v] * s + b_rows[u][v]) * s + c_rows[u][v]
            if not math.isfinite(comm):
                continue
            new = load[v] + e
            key = (max(top, new) if rule == "global" else new, comm, v)
            if best is None or key < best:
                best = key
        if best is None:
            return None
        v = best[2]
        node_of[t] = v
        load[v] += row[v]
        count[v] += 1
    return node_of


class _Search:
    """Analytic figures and neighbourhoods of candidate mappings (node index per task index)."""

    def __init__(self, ix: IndexedProblem, *, uplink: bool, queues: QueueModel = "task") -> None:
        self.ix = ix
        self.uplink = uplink
        self.queues: QueueModel = queues
        self.allowed: list[list[int]] = [
            [n for n in range(ix.n_nodes) if math.isfinite(ix.exec_rows[t][n])] for t in range(ix.n_tasks)
        ]
        self.linked: list[list[bool]] = [
            [u == v or math.isfinite(ix.c_rows[u][v]) for v in range(ix.n_nodes)] for u in range(ix.n_nodes)
        ]

    def pipeline(self, nodes: Sequence[int]) -> CompiledPipeline:
        """The predictor's compiled form of a mapping."""
        return CompiledPipeline(self.ix, nodes, uplink=self.uplink, queues=self.queues)

    def valid(self, nodes: Sequence[int]) -> bool:
        """Every task on a node that can run it, within node limits, every edge over a link."""
        ix = self.ix
        count = [0] * ix.n_nodes
        for t, n in enumerate(nodes):
            if not math.isfinite(ix.exec_rows[t][n]):
                return False
            count[n] += 1
        if any(c > lim for c, lim in zip(count, ix.limits, strict=True)):
            return False
        return all(self.linked[nodes[p]][nodes[c]] for c in range(ix.n_tasks) for p, _s in ix.parents[c])

    def _fits(self, nodes: Sequence[int], t: int, v: int) -> bool:
        """Task ``t`` may sit on ``v`` as far as its edges go (given the other tasks' nodes)."""
        linked = self.linked
        ix = self.ix
        return all(linked[nodes[p]][v] for p, _s in ix.parents[t]) and all(
            linked[v][nodes[c]] for c, _s in ix.children[t]
        )

    def _loads(self, nodes: Sequence[int]) -> _Loads:
        """Per node: busy seconds and sum of squared task times per frame; the same for its uplink."""
        ix = self.ix
        n_nodes = ix.n_nodes
        ex = ix.exec_rows
        a_rows, b_rows, c_rows = ix.a_rows, ix.b_rows, ix.c_rows
        load = [0.0] * n_nodes
        sq = [0.0] * n_nodes
        up = [0.0] * n_nodes
        upsq = [0.0] * n_nodes
        for t, n in enumerate(nodes):
            e = ex[t][n]
            load[n] += e
            sq[n] += e * e
        comm: list[list[tuple[int, float, int]]] = []
        for t in range(ix.n_tasks):
            v = nodes[t]
            into: list[tuple[int, float, int]] = []
            for p, s in ix.parents[t]:
                u = nodes[p]
                if u == v:
                    into.append((p, 0.0, u))
                    continue
                held = max(0.0, (a_rows[u][v] * s + b_rows[u][v]) * s)
                into.append((p, held + c_rows[u][v], u))
                if self.uplink:
                    # The uplink is busy for the size-dependent part only (as in the predictor).
                    up[u] += held
                    upsq[u] += held * held
            comm.append(into)
        return _Loads(load, sq, up, upsq, comm)

    def period_key(self, nodes: Sequence[int]) -> tuple[float, float]:
        """Sort key of the throughput phase: largest period, then the sum of squared periods."""
        loads = self._loads(nodes)
        periods = loads.load + loads.up if self.uplink else loads.load
        return max(periods), math.fsum(x * x for x in periods)

    def analyse(self, nodes: Sequence[int], rate: float) -> Analysis:
        """(largest period, sum of squared periods, surrogate latency at ``rate``).

        Surrogate: one frame run FIFO by readiness, as in the predictor, where
        each task first waits the M/G/1 mean wait of its node,
        ``rate·Σe² / 2(1-rho)`` (Pollaczek-Khinchine; Kleinrock's independence
        approximation), and each transfer takes its time plus, with
        ``uplink``, the mean wait of the sender's uplink. The frame's own
        tasks sharing a node thus also queue behind each other, which a plain
        longest path would miss. Inf when some rho >= 1.
        """
        ix = self.ix
        n_nodes = ix.n_nodes
        ex = ix.exec_rows
        loads = self._loads(nodes)
        periods = loads.load + loads.up if self.uplink else loads.load
        peak = max(periods)
        sumsq = math.fsum(x * x for x in periods)
        wait = [_pk_wait(rate, loads.load[n], loads.sq[n]) for n in range(n_nodes)]
        if self.uplink:
            up_wait = [_pk_wait(rate, loads.up[n], loads.upsq[n]) for n in range(n_nodes)]
        else:
            up_wait = [0.0] * n_nodes
        comm = loads.comm
        finish = [0.0] * ix.n_tasks
        pending = [len(ps) for ps in ix.parents]
        pos = ix.topo_pos
        heap = [(0.0, pos[t], t) for t in ix.topo if pending[t] == 0]
        free = [0.0] * n_nodes
        est = 0.0
        push, pop = heapq.heappush, heapq.heappop
        children = ix.children
        while heap:
            r, _p, t = pop(heap)
            v = nodes[t]
            start = r + wait[v]
            if free[v] > start:  # noqa: PLR1730 - hot loop: a comparison is cheaper than a max() call
                start = free[v]
            f = start + ex[t][v]
            free[v] = f
            finish[t] = f
            if f > est:  # noqa: PLR1730 - hot loop: a comparison is cheaper than a max() call
                est = f
            for c, _s in children[t]:
                left = pending[c] - 1
                pending[c] = left
                if left == 0:
                    at = 0.0
                    vc = nodes[c]
                    for q, d, u in comm[c]:
                        x = finish[q] + d + (up_wait[u] if u != vc else 0.0)
                        if x > at:  # noqa: PLR1730 - hot loop: a comparison is cheaper than a max() call
                            at = x
                    push(heap, (at, pos[c], c))
        return peak, sumsq, est

    def neighbours(self, nodes: list[int], rng: random.Random) -> list[list[int]]:
        """Every valid one-task move, then the valid swaps of two tasks on different nodes
        (all pairs when there are at most ``_MAX_SWAPS``, else that many drawn from ``rng``)."""
        ix = self.ix
        out: list[list[int]] = []
        count = [0] * ix.n_nodes
        for n in nodes:
            count[n] += 1
        for t in range(ix.n_tasks):
            here = nodes[t]
            for v in self.allowed[t]:
                if v != here and count[v] < ix.limits[v] and self._fits(nodes, t, v):
                    cand = list(nodes)
                    cand[t] = v
                    out.append(cand)
        n_tasks = ix.n_tasks
        if n_tasks * (n_tasks - 1) // 2 <= _MAX_SWAPS:
            pairs = [(a, b) for a in range(n_tasks) for b in range(a + 1, n_tasks)]
        else:
            pairs = []
            for _ in range(_MAX_SWAPS):
                a, b = rng.sample(range(n_tasks), 2)
                pairs.append((min(a, b), max(a, b)))
        for a, b in pairs:
            na, nb = nodes[a], nodes[b]
            if na == nb or not math.isfinite(ix.exec_rows[a][nb]) or not math.isfinite(ix.exec_rows[b][na]):
                continue
            cand = list(nodes)
            cand[a], cand[b] = nb, na
            if self._fits(cand, a, nb) and self._fits(cand, b, na):
                out.append(cand)
        return out

    def balance(self, nodes: list[int], stop_at: float | None = None) -> list[int]:
        """Local search on (largest period, sum of squared periods): move or swap a task of the
        bottleneck node; first improvement; stops at a local optimum or once the largest
        period is <= ``stop_at``."""
        ix = self.ix
        cur = list(nodes)
        cur_key = self.period_key(cur)
        for _ in range(20 * ix.n_tasks + 100):
            if stop_at is not None and cur_key[0] <= stop_at * (1 + _EPS):
                break
            hot = self._bottleneck_node(cur)
            moved = False
            count = [0] * ix.n_nodes
            for n in cur:
                count[n] += 1
            hot_tasks = sorted((t for t in range(ix.n_tasks) if cur[t] == hot), key=lambda t: -ix.exec_rows[t][hot])
            candidates: list[list[int]] = []
            for t in hot_tasks:
                for v in self.allowed[t]:
                    if v != hot and count[v] < ix.limits[v] and self._fits(cur, t, v):
                        cand = list(cur)
                        cand[t] = v
                        candidates.append(cand)
            for t in hot_tasks:
                for o in range(ix.n_tasks):
                    v = cur[o]
                    if v == hot or not math.isfinite(ix.exec_rows[t][v]) or hot not in self.allowed[o]:
                        continue
                    cand = list(cur)
                    cand[t], cand[o] = v, hot
                    if self._fits(cand, t, v) and self._fits(cand, o, hot):
                        candidates.append(cand)
            for cand in candidates:
                key = self.period_key(cand)
                if _better(key, cur_key):
                    cur, cur_key, moved = cand, key, True
                    break
            if not moved:
                break
        return cur

    def _bottleneck_node(self, nodes: Sequence[int]) -> int:
        """The node whose period (compute, or its uplink's) is the largest; ties to the lowest index."""
        ix = self.ix
        pipe = self.pipeline(nodes)
        load, up = pipe.periods()
        best, hot = -1.0, 0
        for n in range(ix.n_nodes):
            x = max(load[n], up[n]) if self.uplink else load[n]
            if x > best:
                best, hot = x, n
        return hot


def _pk_wait(rate: float, period: float, sumsq: float) -> float:
    """Mean queueing wait of an M/G/1 server busy ``period`` s per frame (Pollaczek-Khinchine).

    A node serving ``m`` task instances per frame at ``rate`` frames/s is an
    M/G/1 queue with arrival rate ``m·rate`` and E[S²] = Σe²/m, hence
    ``Wq = rate·Σe² / 2(1-rho)`` with ``rho = rate·period``.
    """
    rho = rate * period
    if rho >= 1:
        return INF
    return rate * sumsq / (2.0 * (1.0 - rho)) if rate > 0 else 0.0


def _better(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Lexicographic ``a < b`` on (largest period, sum of squares), blind to round-off."""
    if a[0] < b[0] * (1 - _EPS):
        return True
    if a[0] > b[0] * (1 + _EPS) + _EPS:
        return False
    return a[1] < b[1] * (1 - _EPS)
