"""Stream predictor: throughput, latency percentiles and utilisation of a mapping under an arrival process.

The single-frame mappers minimise the makespan of one frame, but a Jupiter
app is a stream: input files ("frames") keep arriving at home and flow
through the DAG while earlier frames are still in it. This module estimates
what a mapping does to such a stream, in the model of the emulated testbed:

* every compute node is one non-preemptive server shared by all the task
  instances (of every frame) mapped to it. With ``queues="task"`` (the
  default) it serves them as Jupiter's runtime does (`jupiter.runtime.runner`):
  each task has a FIFO queue of its ready instances (all inputs present) and
  one runner that takes its oldest one and then waits for the node, the node
  serves the waiting runners in the order they asked (a FIFO lock), and a
  runner asks again only when its instance is done — so the tasks of a node
  take turns, and a task with a backlog does not run it ahead of the other
  tasks' older instances. With ``queues="node"`` there is one FIFO queue per
  node, in the order the instances became ready (ties by frame, then
  topological order): the classic model, which over-states the tail on a
  node holding many tasks of each frame (a newly arrived frame's first task
  then overtakes the older frames' later ones);
* a transfer of ``s`` bytes over ``(u, v)`` takes ``a·s²+b·s+c`` seconds
  (zero on one node); with ``links="independent"`` transfers are pure delays
  that never queue, with ``links="uplink"`` each node's outgoing transfers
  share one FIFO uplink, which a transfer holds for its size-dependent part
  ``a·s²+b·s`` (the bytes on the wire) while its constant ``c`` (latency,
  per-message cost) is a delay after it that the next transfer overlaps —
  as on the emulated testbed's links and on a real one;
* home is not a compute node: bringing a frame to the entry tasks and the
  exit outputs back home is free unless per-node ``ingress`` / ``egress``
  seconds are given (ingress is always a pure delay, egress uses the uplink
  in uplink mode);
* a frame is done when all its exit tasks finished (and their egress ended).

It is the deterministic, pipelined counterpart of the steady-state model of
Benoit and Robert ("Mapping pipeline skeletons onto heterogeneous
platforms", JPDC 68(6), 2008) and of Subhlok and Vondran ("Optimal
latency-throughput tradeoffs for data parallel pipelines", SPAA 1996): the
*period* of a resource is the time it is busy per frame (the sum of the
execution times of its tasks; an uplink's transfer time when links are
serialised), the largest period bounds the sustainable rate, and a rate
whose utilisation ``rate * period`` reaches 1 makes queues, and latency,
grow without bound. The latency of each frame is split into *work* — the
longest path of execution and transfer times through the DAG, what one frame
would take with no other frame and no queueing at all — and *waiting*, the
rest (queueing behind other frames, and behind the frame's own sibling tasks
on a shared node).

The simulation is a discrete-event loop over one heap of (time, key) events
with all per-frame state in flat lists indexed ``frame * tasks + position``;
since every node (and uplink) is FIFO in event order, a server is just the
time it becomes free, so no queue is ever stored. Deterministic: Poisson
arrivals come from a ``random.Random`` seeded by the arrival process. Pure
code, no I/O.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from jupiter.mapping._indexed import IndexedProblem
from jupiter.mapping.evaluator import mapping_indices
from jupiter.mapping.problem import Problem
from jupiter.mapping.stats import summary

ArrivalKind = Literal["poisson", "fixed", "burst", "sequential"]
LinkModel = Literal["independent", "uplink"]
QueueModel = Literal["task", "node"]

_LINK_MODELS: tuple[str, ...] = ("independent", "uplink")
_QUEUE_MODELS: tuple[str, ...] = ("task", "node")


@dataclass(frozen=True)
class ArrivalProcess:
    """How frames arrive at home: ``frames`` of them, the first at time 0.

    * ``poisson``: exponential gaps of mean ``1/rate``, drawn from
      ``random.Random(seed)`` (the same seed gives the same arrivals);
    * ``fixed``: one frame every ``1/rate`` seconds;
    * ``burst``: all frames at time 0;
    * ``sequential``: each frame arrives when the previous one is done
      (the original Jupiter demo's one-file-at-a-time submission).
    """

    kind: ArrivalKind
    frames: int = 1000
    rate: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("poisson", "fixed", "burst", "sequential"):
            raise ValueError(f"unknown arrival kind {self.kind!r}; use poisson, fixed, burst or sequential")
        if isinstance(self.frames, bool) or not isinstance(self.frames, int) or self.frames < 1:
            raise ValueError(f"an arrival process needs frames >= 1, got {self.frames!r}")
        if self.kind in ("poisson", "fixed"):
            if self.rate is None or not (math.isfinite(self.rate) and self.rate > 0):
                raise ValueError(f"{self.kind} arrivals need a finite rate > 0 (frames/s), got {self.rate!r}")
        elif self.rate is not None:
            raise ValueError(f"{self.kind} arrivals take no rate (got {self.rate!r})")

    @classmethod
    def poisson(cls, rate: float, frames: int = 1000, seed: int = 0) -> ArrivalProcess:
        """Poisson arrivals at ``rate`` frames/s, reproducible from ``seed``."""
        return cls("poisson", frames, rate, seed)

    @classmethod
    def fixed(cls, rate: float, frames: int = 1000) -> ArrivalProcess:
        """One frame every ``1/rate`` seconds."""
        return cls("fixed", frames, rate)

    @classmethod
    def burst(cls, frames: int) -> ArrivalProcess:
        """``frames`` frames all at time 0."""
        return cls("burst", frames)

    @classmethod
    def sequential(cls, frames: int = 1) -> ArrivalProcess:
        """Each frame submitted when the previous one is done."""
        return cls("sequential", frames)

    @property
    def offered_rate(self) -> float | None:
        """Frames per second offered by the process (None for burst and sequential)."""
        return self.rate

    def times(self) -> list[float] | None:
        """Arrival time of every frame, or None for ``sequential`` (known only while simulating)."""
        if self.kind == "sequential":
            return None
        if self.kind == "burst":
            return [0.0] * self.frames
        assert self.rate is not None  # checked in __post_init__
        if self.kind == "fixed":
            # k / rate rather than a running sum, so no rounding drift builds up.
            return [k / self.rate for k in range(self.frames)]
        rng = random.Random(self.seed)
        gap = rng.expovariate
        rate = self.rate
        out = [0.0] * self.frames
        t = 0.0
        for k in range(1, self.frames):
            t += gap(rate)
            out[k] = t
        return out


@dataclass(frozen=True)
class Percentiles:
    """Mean and the percentiles every summary quotes, in seconds (NaN when there are no samples)."""

    mean: float
    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles:
        """Summary of ``values`` (via :func:`jupiter.mapping.stats.summary`)."""
        s = summary(values)
        return cls(s["mean"], s["p50"], s["p95"], s["p99"])


@dataclass(frozen=True)
class Periods:
    """Busy time per frame of every resource, and the bottleneck they imply.

    ``node[n]`` is the sum of execution times of the tasks on node ``n``;
    ``uplink[n]`` (uplink model only, else empty) the sum of the transfer
    times leaving ``n`` plus its egress. The period of the mapping is the
    largest of them and ``sustainable_rate = 1 / period`` (inf when every
    period is 0): no arrival rate above it can be served (Benoit and Robert,
    JPDC 2008).
    """

    node: Mapping[str, float]
    uplink: Mapping[str, float]
    period: float
    bottleneck: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "node", MappingProxyType(dict(self.node)))
        object.__setattr__(self, "uplink", MappingProxyType(dict(self.uplink)))

    @property
    def sustainable_rate(self) -> float:
        """Frames per second at which the bottleneck is busy all the time."""
        return math.inf if self.period <= 0 else 1.0 / self.period


@dataclass(frozen=True)
class Prediction:
    """What a stream of frames does under a mapping, as predicted by :func:`predict_stream`.

    ``latency`` and ``waiting`` summarise the frames after the first
    ``warmup`` ones; for each of those frames ``latencies[i] = work +
    waiting_times[i]``. ``utilisation`` is ``rate * period`` per node (and
    ``uplink_utilisation`` per uplink), with the offered rate of the arrival
    process, or for burst and sequential arrivals the measured throughput.
    ``stable`` is False when some utilisation is >= 1: then queues grow
    without bound, the simulated latencies depend on how many frames were
    simulated, and ``note`` says so.
    """

    arrival: ArrivalProcess
    links: LinkModel
    frames: int
    warmup: int
    throughput: float
    periods: Periods
    utilisation: Mapping[str, float]
    uplink_utilisation: Mapping[str, float]
    stable: bool
    work: float
    latency: Percentiles
    waiting: Percentiles
    latencies: tuple[float, ...] = field(repr=False)
    waiting_times: tuple[float, ...] = field(repr=False)
    note: str = ""
    queues: QueueModel = "task"

    def __post_init__(self) -> None:
        object.__setattr__(self, "utilisation", MappingProxyType(dict(self.utilisation)))
        object.__setattr__(self, "uplink_utilisation", MappingProxyType(dict(self.uplink_utilisation)))

    @property
    def sustainable_rate(self) -> float:
        """``1 / period`` of the mapping (inf when nothing takes any time)."""
        return self.periods.sustainable_rate

    @property
    def max_utilisation(self) -> float:
        """The largest utilisation over nodes and uplinks (0 when there are none)."""
        return max([*self.utilisation.values(), *self.uplink_utilisation.values()], default=0.0)

    def notes(self) -> dict[str, str]:
        """The figures as strings, for :attr:`jupiter.mapping.schedule.Schedule.notes`."""
        out = {
            "arrivals": self.arrival.kind,
            "frames": str(self.frames),
            "links": self.links,
            "queues": self.queues,
            "throughput": f"{self.throughput:.6g}",
            "sustainable_rate": f"{self.sustainable_rate:.6g}",
            "period": f"{self.periods.period:.6g}",
            "bottleneck": self.periods.bottleneck,
            "utilisation_max": f"{self.max_utilisation:.4g}",
            "utilisation": " ".join(f"{n}={u:.3g}" for n, u in self.utilisation.items()),
            "stable": "yes" if self.stable else "no",
            "work": f"{self.work:.6g}",
            "latency_mean": f"{self.latency.mean:.6g}",
            "latency_p50": f"{self.latency.p50:.6g}",
            "latency_p95": f"{self.latency.p95:.6g}",
            "latency_p99": f"{self.latency.p99:.6g}",
            "waiting_p95": f"{self.waiting.p95:.6g}",
        }
        if self.arrival.rate is not None:
            out["rate"] = f"{self.arrival.rate:.6g}"
        if self.note:
            out["warning"] = self.note
        return out


class CompiledPipeline:
    """One (problem, mapping) pair flattened for simulation: tasks by topological position.

    Built in O(tasks + edges); the stream mapper builds one per candidate
    mapping, so everything the event loop needs is precomputed here as plain
    lists (list indexing is several times faster than numpy scalars).
    """

    __slots__ = (
        "children",
        "egress",
        "entries",
        "exec",
        "ingress",
        "n_exits",
        "n_nodes",
        "n_tasks",
        "node_of",
        "npar",
        "queues",
        "uplink",
    )

    def __init__(
        self,
        ix: IndexedProblem,
        node_of_task: Sequence[int],
        *,
        uplink: bool = False,
        ingress: Sequence[float] | None = None,
        egress: Sequence[float] | None = None,
        queues: QueueModel = "task",
    ) -> None:
        _check_queues(queues)
        topo, pos = ix.topo, ix.topo_pos
        n = ix.n_tasks
        self.n_tasks = n
        self.n_nodes = ix.n_nodes
        self.uplink = uplink
        self.queues: QueueModel = queues
        self.node_of: list[int] = [node_of_task[t] for t in topo]
        self.exec: list[float] = [ix.exec_rows[t][node_of_task[t]] for t in topo]
        a_rows, b_rows, c_rows = ix.a_rows, ix.b_rows, ix.c_rows
        # children[p] = ((child position, transfer seconds, seconds it holds the sender's uplink), ...):
        # the uplink is held for the size-dependent part a·s²+b·s, the constant c (latency, per-message
        # cost) is a delay after it that the next transfer overlaps, as on the emulated links.
        children: list[tuple[tuple[int, float, float], ...]] = []
        for t in topo:
            u = node_of_task[t]
            kids: list[tuple[int, float, float]] = []
            for c, s in ix.children[t]:
                v = node_of_task[c]
                if u == v:
                    kids.append((pos[c], 0.0, 0.0))
                else:
                    held = (a_rows[u][v] * s + b_rows[u][v]) * s
                    d = held + c_rows[u][v]
                    if not math.isfinite(d):
                        raise ValueError(f"tasks {t} -> {c} are mapped to nodes {u} -> {v}, which have no link")
                    kids.append((pos[c], d, min(max(held, 0.0), d)))
            children.append(tuple(kids))
        self.children = children
        self.npar: list[int] = [len(ix.parents[t]) for t in topo]
        ing = list(ingress) if ingress is not None else [0.0] * ix.n_nodes
        eg = list(egress) if egress is not None else [0.0] * ix.n_nodes
        self.entries: list[tuple[int, float]] = [(p, ing[self.node_of[p]]) for p in range(n) if self.npar[p] == 0]
        self.egress: list[float] = [eg[self.node_of[p]] if not children[p] else 0.0 for p in range(n)]
        self.ingress: list[float] = [ing[self.node_of[p]] if self.npar[p] == 0 else 0.0 for p in range(n)]
        self.n_exits = sum(1 for p in range(n) if not children[p])

    def periods(self) -> tuple[list[float], list[float]]:
        """Busy seconds per frame of every node, and of every uplink (zeros unless ``uplink``)."""
        node = [0.0] * self.n_nodes
        up = [0.0] * self.n_nodes
        for p, e in enumerate(self.exec):
            node[self.node_of[p]] += e
        if self.uplink:
            for p, kids in enumerate(self.children):
                src = self.node_of[p]
                for _c, _d, held in kids:
                    up[src] += held
                up[src] += self.egress[p]
        return node, up

    def work(self) -> float:
        """Longest path of ingress, execution, transfer and egress times: a frame with no queueing at all."""
        n = self.n_tasks
        if n == 0:
            return 0.0
        start = [0.0] * n
        best = 0.0
        ex, children, egress = self.exec, self.children, self.egress
        for p, ing in self.entries:
            start[p] = ing
        for p in range(n):  # positions are a topological order
            f = start[p] + ex[p]
            kids = children[p]
            if not kids:
                g = f + egress[p]
                if g > best:  # noqa: PLR1730 - hot loop: a comparison is cheaper than a max() call
                    best = g
            for c, d, _held in kids:
                if f + d > start[c]:  # noqa: PLR1730 - hot loop: a comparison is cheaper than a max() call
                    start[c] = f + d
        return best

    def run(self, arrivals: list[float] | None, frames: int) -> tuple[list[float], list[float]]:
        """Simulate ``frames`` frames; return (arrival time, done time) of each.

        ``arrivals`` None means sequential submission: frame k+1 arrives when
        frame k is done.
        """
        if self.n_tasks == 0:
            arr = arrivals if arrivals is not None else [0.0] * frames
            return list(arr), list(arr)
        if self.queues == "task":
            return self._run_task_queues(arrivals, frames)
        if self.uplink:
            return self._run_uplink(arrivals, frames)
        return self._run_independent(arrivals, frames)

    def _run_independent(self, arrivals: list[float] | None, frames: int) -> tuple[list[float], list[float]]:
        # Keys: frame * (T + 1) + position; position T is "frame arrives".
        # With independent links a task's finish, hence its children's data
        # arrival times, are known as soon as the task starts: one event per
        # task instance.
        n = self.n_tasks
        t1 = n + 1
        sequential = arrivals is None
        arr = [0.0] * frames if arrivals is None else list(arrivals)
        node_of, ex, children, egress, entries = self.node_of, self.exec, self.children, self.egress, self.entries
        npar = self.npar
        node_free = [0.0] * self.n_nodes
        ready = [0.0] * (frames * n)
        pending = self.npar * frames
        done = [0.0] * frames
        exits_left = [self.n_exits] * frames
        heap: list[tuple[float, int]] = [(arr[0], n)]
        push, pop = heapq.heappush, heapq.heappop
        last = frames - 1
        while heap:
            now, key = pop(heap)
            k, p = divmod(key, t1)
            if p == n:
                base = key - n
                for e, ing in entries:
                    push(heap, (now + ing, base + e))
                if not sequential and k < last:
                    push(heap, (arr[k + 1], key + t1))
                continue
            m = node_of[p]
            free = node_free[m]
            fin = (now if now > free else free) + ex[p]
            node_free[m] = fin
            kids = children[p]
            if kids:
                base = k * n
                kbase = key - p
                for c, d, _held in kids:
                    if npar[c] == 1:
                        # An only parent: no bookkeeping, the child is ready when the data lands.
                        push(heap, (fin + d, kbase + c))
                        continue
                    i = base + c
                    a = fin + d
                    if a > ready[i]:  # noqa: PLR1730 - hot loop: a comparison is cheaper than a max() call
                        ready[i] = a
                    left = pending[i] - 1
                    pending[i] = left
                    if left == 0:
                        push(heap, (ready[i], kbase + c))
            else:
                g = fin + egress[p]
                if g > done[k]:  # noqa: PLR1730 - hot loop: a comparison is cheaper than a max() call
                    done[k] = g
                left = exits_left[k] - 1
                exits_left[k] = left
                if left == 0 and sequential and k < last:
                    arr[k + 1] = done[k]
                    push(heap, (done[k], key - p + t1 + n))
        return arr, done

    def _run_uplink(self, arrivals: list[float] | None, frames: int) -> tuple[list[float], list[float]]:
        # Keys: frame * (2T + 1) + code; code < T: task becomes ready, T <= code < 2T:
        # task (code - T) finishes and hands its outputs to the uplink, 2T: frame arrives.
        # Transfers must be queued in the order they are requested, i.e. at the
        # sender's finish time, hence the second event per task instance.
        n = self.n_tasks
        t2 = 2 * n + 1
        sequential = arrivals is None
        arr = [0.0] * frames if arrivals is None else list(arrivals)
        node_of, ex, children, egress, entries = self.node_of, self.exec, self.children, self.egress, self.entries
        npar = self.npar
        node_free = [0.0] * self.n_nodes
        up_free = [0.0] * self.n_nodes
        ready = [0.0] * (frames * n)
        pending = self.npar * frames
        done = [0.0] * frames
        exits_left = [self.n_exits] * frames
        heap: list[tuple[float, int]] = [(arr[0], 2 * n)]
        push, pop = heapq.heappush, heapq.heappop
        last = frames - 1
        while heap:
            now, key = pop(heap)
            k, code = divmod(key, t2)
            if code < n:
                m = node_of[code]
                free = node_free[m]
                fin = (now if now > free else free) + ex[code]
                node_free[m] = fin
                push(heap, (fin, key + n))
                continue
            if code == 2 * n:
                base = key - 2 * n
                for e, ing in entries:
                    push(heap, (now + ing, base + e))
                if not sequential and k < last:
                    push(heap, (arr[k + 1], key + t2))
                continue
            p = code - n
            m = node_of[p]
            kids = children[p]
            if kids:
                base = k * n
                kbase = key - code
                for c, d, held in kids:
                    if held > 0:
                        free = up_free[m]
                        a = (now if now > free else free) + held
                        up_free[m] = a
                        a += d - held
                    else:
                        a = now + d
                    if npar[c] == 1:
                        push(heap, (a, kbase + c))
                        continue
                    i = base + c
                    if a > ready[i]:  # noqa: PLR1730 - hot loop: a comparison is cheaper than a max() call
                        ready[i] = a
                    left = pending[i] - 1
                    pending[i] = left
                    if left == 0:
                        push(heap, (ready[i], kbase + c))
            else:
                eg = egress[p]
                if eg > 0:
                    free = up_free[m]
                    g = (now if now > free else free) + eg
                    up_free[m] = g
                else:
                    g = now
                if g > done[k]:  # noqa: PLR1730 - hot loop: a comparison is cheaper than a max() call
                    done[k] = g
                left = exits_left[k] - 1
                exits_left[k] = left
                if left == 0 and sequential and k < last:
                    arr[k + 1] = done[k]
                    push(heap, (done[k], key - code + t2 + 2 * n))
        return arr, done

    def _run_task_queues(self, arrivals: list[float] | None, frames: int) -> tuple[list[float], list[float]]:
        # The runtime's discipline (jupiter.runtime.runner): every task has its own FIFO queue of
        # ready frames and one runner, which takes its next frame and then waits for the node; the
        # node serves the waiting runners in the order they asked (a FIFO lock), and a runner asks
        # again only once its frame is done, behind the runners already waiting. Keys: frame *
        # (2T + 1) + code; code < T: task becomes ready, T <= code < 2T: task (code - T) finishes,
        # 2T: frame arrives.
        n = self.n_tasks
        t2 = 2 * n + 1
        sequential = arrivals is None
        arr = [0.0] * frames if arrivals is None else list(arrivals)
        node_of, ex, children, egress, entries = self.node_of, self.exec, self.children, self.egress, self.entries
        npar = self.npar
        uplink = self.uplink
        busy = [False] * self.n_nodes
        waiting: list[deque[int]] = [deque() for _ in range(self.n_nodes)]  # runners (task positions) in line
        queue: list[deque[int]] = [deque() for _ in range(n)]  # frames ready for each task, oldest first
        asked = [False] * n  # the task's runner is in line for its node or running there
        up_free = [0.0] * self.n_nodes
        ready = [0.0] * (frames * n)
        pending = self.npar * frames
        done = [0.0] * frames
        exits_left = [self.n_exits] * frames
        heap: list[tuple[float, int]] = [(arr[0], 2 * n)]
        push, pop = heapq.heappush, heapq.heappop
        last = frames - 1

        def became_ready(now: float, k: int, p: int) -> None:
            queue[p].append(k)
            if not asked[p]:
                asked[p] = True
                m = node_of[p]
                if busy[m]:
                    waiting[m].append(p)
                else:
                    busy[m] = True
                    push(heap, (now + ex[p], queue[p].popleft() * t2 + n + p))

        while heap:
            now, key = pop(heap)
            k, code = divmod(key, t2)
            if code < n:
                became_ready(now, k, code)
                continue
            if code == 2 * n:
                for e, ing in entries:
                    if ing > 0:
                        push(heap, (now + ing, k * t2 + e))
                    else:
                        became_ready(now, k, e)
                if not sequential and k < last:
                    push(heap, (arr[k + 1], key + t2))
                continue
            p = code - n
            m = node_of[p]
            # The node stays busy while the outputs are handed on (the runtime does it inside the
            # node's lock): a child on this node gets in line before this task's runner asks again.
            kids = children[p]
            if kids:
                base = k * n
                for c, d, held in kids:
                    if uplink and held > 0:
                        free = up_free[m]
                        a = (now if now > free else free) + held
                        up_free[m] = a
                        a += d - held
                    else:
                        a = now + d
                    if npar[c] != 1:
                        i = base + c
                        if a > ready[i]:  # noqa: PLR1730 - hot loop: a comparison is cheaper than a max() call
                            ready[i] = a
                        left = pending[i] - 1
                        pending[i] = left
                        if left:
                            continue
                        a = ready[i]
                    if a <= now:
                        became_ready(now, k, c)
                    else:
                        push(heap, (a, k * t2 + c))
            else:
                eg = egress[p]
                if eg > 0 and uplink:
                    free = up_free[m]
                    g = (now if now > free else free) + eg
                    up_free[m] = g
                else:
                    g = now + eg
                if g > done[k]:  # noqa: PLR1730 - hot loop: a comparison is cheaper than a max() call
                    done[k] = g
                left = exits_left[k] - 1
                exits_left[k] = left
                if left == 0 and sequential and k < last:
                    arr[k + 1] = done[k]
                    push(heap, (done[k], (k + 1) * t2 + 2 * n))
            line = waiting[m]
            if queue[p]:
                line.append(p)
            else:
                asked[p] = False
            if line:
                q = line.popleft()
                push(heap, (now + ex[q], queue[q].popleft() * t2 + n + q))
            else:
                busy[m] = False
        return arr, done


def _per_node(problem: Problem, values: Mapping[str, float] | None, what: str) -> list[float] | None:
    if values is None:
        return None
    out = [0.0] * len(problem.nodes)
    for node, x in values.items():
        if node not in problem.node_index:
            raise ValueError(f"{what} names unknown node {node!r}")
        if not (math.isfinite(x) and x >= 0):
            raise ValueError(f"{what} of node {node!r} is {x}; it must be finite seconds >= 0")
        out[problem.node_index[node]] = float(x)
    return out


def _check_links(links: str) -> None:
    if links not in _LINK_MODELS:
        raise ValueError(f"unknown link model {links!r}; use 'independent' or 'uplink'")


def _check_queues(queues: str) -> None:
    if queues not in _QUEUE_MODELS:
        raise ValueError(f"unknown queue model {queues!r}; use 'task' or 'node'")


def compile_pipeline(
    problem: Problem,
    mapping: Mapping[str, str],
    *,
    links: LinkModel = "independent",
    ingress: Mapping[str, float] | None = None,
    egress: Mapping[str, float] | None = None,
    queues: QueueModel = "task",
) -> CompiledPipeline:
    """Validate ``mapping`` (as the evaluator does) and flatten it for simulation."""
    _check_links(links)
    _check_queues(queues)
    node_of = mapping_indices(problem, mapping)
    return CompiledPipeline(
        problem.indexed,
        node_of,
        uplink=links == "uplink",
        ingress=_per_node(problem, ingress, "ingress"),
        egress=_per_node(problem, egress, "egress"),
        queues=queues,
    )


def periods_of(problem: Problem, pipeline: CompiledPipeline) -> Periods:
    """The :class:`Periods` of a compiled pipeline, by node name; ties go to the node listed first."""
    node, up = pipeline.periods()
    names = problem.nodes
    period, bottleneck = 0.0, ""
    for i, x in enumerate(node):
        if x > period:
            period, bottleneck = x, f"node {names[i]}"
    if pipeline.uplink:
        for i, x in enumerate(up):
            if x > period:
                period, bottleneck = x, f"uplink of {names[i]}"
    uplinks = {names[i]: x for i, x in enumerate(up)} if pipeline.uplink else {}
    return Periods({names[i]: x for i, x in enumerate(node)}, uplinks, period, bottleneck)


def pipeline_periods(
    problem: Problem,
    mapping: Mapping[str, str],
    *,
    links: LinkModel = "independent",
    egress: Mapping[str, float] | None = None,
) -> Periods:
    """Analytic periods and sustainable rate of ``mapping``, without simulating anything."""
    return periods_of(problem, compile_pipeline(problem, mapping, links=links, egress=egress))


def predict_stream(
    problem: Problem,
    mapping: Mapping[str, str],
    arrival: ArrivalProcess,
    *,
    links: LinkModel = "independent",
    ingress: Mapping[str, float] | None = None,
    egress: Mapping[str, float] | None = None,
    warmup: int = 0,
    queues: QueueModel = "task",
) -> Prediction:
    """Simulate ``arrival.frames`` frames through ``mapping`` and summarise them.

    ``links`` chooses independent transfer delays or one FIFO uplink per
    sending node; ``ingress`` / ``egress`` give per-node seconds to bring a
    frame's input from home to an entry task / an exit task's output home
    (free when omitted). ``queues`` is the order a node serves its ready
    task instances in: ``"task"`` (the runtime's: a FIFO queue per task,
    the tasks taking turns in the order they asked) or ``"node"`` (one FIFO
    queue per node, in the order the instances became ready). The first
    ``warmup`` frames, which see an emptier system than the steady state,
    are left out of the latency figures. Raises ValueError for an invalid
    mapping (as the evaluator does).
    """
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup < arrival.frames:
        raise ValueError(f"warmup must be an integer in [0, frames) = [0, {arrival.frames}), got {warmup!r}")
    pipeline = compile_pipeline(problem, mapping, links=links, ingress=ingress, egress=egress, queues=queues)
    arrivals, done = pipeline.run(arrival.times(), arrival.frames)
    work = pipeline.work()
    latencies = tuple(d - a for a, d in zip(arrivals[warmup:], done[warmup:], strict=True))
    # latency >= work holds exactly in real numbers; clip the round-off below it.
    waits = tuple(x - work if x > work else 0.0 for x in latencies)
    span = max(done) - arrivals[0]
    throughput = math.inf if span <= 0 else arrival.frames / span
    periods = periods_of(problem, pipeline)
    rate = arrival.offered_rate if arrival.offered_rate is not None else throughput
    utilisation = {n: _load(rate, x) for n, x in periods.node.items()}
    up_util = {n: _load(rate, x) for n, x in periods.uplink.items()}
    peak = max([*utilisation.values(), *up_util.values()], default=0.0)
    stable = arrival.offered_rate is None or peak < 1.0
    note = ""
    if not stable:
        note = (
            f"unstable: at {rate:.6g} frames/s the {periods.bottleneck} would be busy {peak:.3g}x the time"
            f" (period {periods.period:.6g} s per frame, sustainable rate {periods.sustainable_rate:.6g}"
            " frames/s); queues and latency grow without bound, so these latencies only describe"
            f" the first {arrival.frames} frames"
        )
    return Prediction(
        arrival=arrival,
        links=links,
        frames=arrival.frames,
        warmup=warmup,
        throughput=throughput,
        periods=periods,
        utilisation=utilisation,
        uplink_utilisation=up_util,
        stable=stable,
        work=work,
        latency=Percentiles.of(latencies),
        waiting=Percentiles.of(waits),
        latencies=latencies,
        waiting_times=waits,
        note=note,
        queues=queues,
    )


def _load(rate: float, period: float) -> float:
    # 0 * inf (a rate so high it is infinite, on a node with nothing to do) is no load.
    return 0.0 if period == 0 else rate * period
