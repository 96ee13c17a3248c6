"""The mapping problem: a task DAG, heterogeneous nodes and the links between them.

Everything a scheduler may look at is here, as frozen data validated once in
the constructor, so that schedulers never re-check their input and a bad
profile fails with one clear message before any algorithm runs.

Model (unrelated machines): ``exec_times[t][n]`` is the time task ``t`` takes
on node ``n`` in seconds, ``math.inf`` meaning it cannot run there (a data
source, say). Moving ``s`` bytes over the ordered link ``(u, v)`` takes
``a·s² + b·s + c`` seconds; moving data within a node is free; a missing link
between two distinct nodes means they cannot communicate.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import TypeVar

from jupiter.mapping._indexed import IndexedProblem

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Edge:
    """A DAG edge: ``child`` needs ``size`` bytes of output from ``parent``."""

    parent: str
    child: str
    size: float = 0.0


@dataclass(frozen=True)
class LinkCost:
    """Transfer time ``a·s² + b·s + c`` seconds for ``s`` bytes over one directed link."""

    a: float = 0.0
    b: float = 0.0
    c: float = 0.0

    def time(self, size: float) -> float:
        """Seconds to move ``size`` bytes over this link."""
        return (self.a * size + self.b) * size + self.c


@dataclass(frozen=True)
class Resources:
    """Load figures of a node as profiled: CPU and memory in use, in percent."""

    cpu: float = 0.0
    memory: float = 0.0


def _freeze(mapping: Mapping[K, V] | None) -> Mapping[K, V]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, eq=False, init=False)
class Problem:
    """A validated, immutable mapping problem.

    Task order is significant: it is the stable order used for every
    deterministic tie-break. Construct with any sequences/mappings; they are
    copied into tuples and read-only mappings, then validated (ValueError
    with a message naming the offending task, node, edge or link).
    """

    tasks: tuple[str, ...]
    nodes: tuple[str, ...]
    exec_times: tuple[tuple[float, ...], ...]
    edges: tuple[Edge, ...]
    links: Mapping[tuple[str, str], LinkCost]
    max_tasks_per_node: Mapping[str, int]
    resources: Mapping[str, Resources]

    def __init__(
        self,
        tasks: Sequence[str],
        nodes: Sequence[str],
        exec_times: Sequence[Sequence[float]],
        edges: Iterable[Edge] = (),
        links: Mapping[tuple[str, str], LinkCost] | None = None,
        max_tasks_per_node: Mapping[str, int] | None = None,
        resources: Mapping[str, Resources] | None = None,
    ) -> None:
        # Frozen: fields are set once here, through object.__setattr__.
        object.__setattr__(self, "tasks", tuple(tasks))
        object.__setattr__(self, "nodes", tuple(nodes))
        object.__setattr__(self, "exec_times", tuple(tuple(float(x) for x in row) for row in exec_times))
        object.__setattr__(self, "edges", tuple(edges))
        object.__setattr__(self, "links", _freeze(links))
        object.__setattr__(self, "max_tasks_per_node", _freeze(max_tasks_per_node))
        object.__setattr__(self, "resources", _freeze(resources))
        self._validate()

    # -- validation -----------------------------------------------------------------

    def _validate(self) -> None:
        _check_names("task", self.tasks)
        _check_names("node", self.nodes)
        if not self.nodes:
            raise ValueError("the problem has no nodes; give at least one node")
        if len(self.exec_times) != len(self.tasks):
            raise ValueError(
                f"exec_times has {len(self.exec_times)} rows but there are {len(self.tasks)} tasks;"
                " give one row per task"
            )
        for task, row in zip(self.tasks, self.exec_times, strict=True):
            if len(row) != len(self.nodes):
                raise ValueError(
                    f"exec_times row of task {task!r} has {len(row)} values but there are"
                    f" {len(self.nodes)} nodes; give one value per node"
                )
            for node, x in zip(self.nodes, row, strict=True):
                if math.isnan(x) or x < 0:
                    raise ValueError(
                        f"execution time of task {task!r} on node {node!r} is {x}; it must be >= 0"
                        " (use inf for 'cannot run there')"
                    )
            if not any(math.isfinite(x) for x in row):
                raise ValueError(f"task {task!r} cannot run on any node (every execution time is inf)")
        known_tasks = set(self.tasks)
        seen: set[tuple[str, str]] = set()
        for e in self.edges:
            for end in (e.parent, e.child):
                if end not in known_tasks:
                    raise ValueError(f"edge {e.parent!r} -> {e.child!r} names unknown task {end!r}")
            if e.parent == e.child:
                raise ValueError(f"edge {e.parent!r} -> {e.child!r} is a self-loop")
            if (e.parent, e.child) in seen:
                raise ValueError(f"edge {e.parent!r} -> {e.child!r} is given twice")
            seen.add((e.parent, e.child))
            if not (math.isfinite(e.size) and e.size >= 0):
                raise ValueError(f"edge {e.parent!r} -> {e.child!r} has data size {e.size}; it must be >= 0")
        known_nodes = set(self.nodes)
        for (u, v), link in self.links.items():
            for end in (u, v):
                if end not in known_nodes:
                    raise ValueError(f"link {u!r} -> {v!r} names unknown node {end!r}")
            if u == v:
                raise ValueError(f"link {u!r} -> {v!r} is a self-link; transfers within a node are free")
            for name in ("a", "b", "c"):
                x = getattr(link, name)
                if not (math.isfinite(x) and x >= 0):
                    raise ValueError(f"link {u!r} -> {v!r} has {name} = {x}; it must be finite and >= 0")
        for node, limit in self.max_tasks_per_node.items():
            if node not in known_nodes:
                raise ValueError(f"max_tasks_per_node names unknown node {node!r}")
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
                raise ValueError(f"max_tasks_per_node of {node!r} is {limit!r}; it must be an integer >= 0")
        for node, res in self.resources.items():
            if node not in known_nodes:
                raise ValueError(f"resources name unknown node {node!r}")
            for name in ("cpu", "memory"):
                x = getattr(res, name)
                if not (math.isfinite(x) and x >= 0):
                    raise ValueError(f"resources of {node!r}: {name} is {x}; it must be a percentage >= 0")
        # Kahn's algorithm both proves acyclicity and fixes the canonical order.
        _ = self.topological_order

    # -- derived views ----------------------------------------------------------------

    @cached_property
    def task_index(self) -> Mapping[str, int]:
        """Position of each task in :attr:`tasks`."""
        return MappingProxyType({t: i for i, t in enumerate(self.tasks)})

    @cached_property
    def node_index(self) -> Mapping[str, int]:
        """Position of each node in :attr:`nodes`."""
        return MappingProxyType({n: i for i, n in enumerate(self.nodes)})

    @cached_property
    def topological_order(self) -> tuple[str, ...]:
        """The canonical topological order, used to break ties everywhere.

        If :attr:`tasks` is already in topological order (as DAG files usually
        list them) it is that order; otherwise Kahn's algorithm taking ready
        tasks in :attr:`tasks` order. Either way the caller controls ties by
        ordering the tasks.
        """
        index = {t: i for i, t in enumerate(self.tasks)}
        if len(index) == len(self.tasks) and all(
            index[e.parent] < index[e.child] for e in self.edges if e.parent in index and e.child in index
        ):
            return self.tasks
        indeg = [0] * len(self.tasks)
        succ: list[list[int]] = [[] for _ in self.tasks]
        for e in self.edges:
            indeg[index[e.child]] += 1
            succ[index[e.parent]].append(index[e.child])
        # A deque in task order is stable and linear; the order it yields is a
        # breadth-first topological order, which is all tie-breaks need.
        ready = deque(i for i, d in enumerate(indeg) if d == 0)
        order: list[int] = []
        while ready:
            i = ready.popleft()
            order.append(i)
            for j in succ[i]:
                indeg[j] -= 1
                if indeg[j] == 0:
                    ready.append(j)
        if len(order) != len(self.tasks):
            stuck = sorted(self.tasks[i] for i, d in enumerate(indeg) if d > 0)
            raise ValueError(f"the task graph has a cycle through {', '.join(repr(t) for t in stuck[:5])}")
        return tuple(self.tasks[i] for i in order)

    @cached_property
    def indexed(self) -> IndexedProblem:
        """Integer/array view used by the schedulers (built once, read-only)."""
        ti, ni = self.task_index, self.node_index
        limits = [self.max_tasks_per_node.get(n, len(self.tasks)) for n in self.nodes]
        return IndexedProblem(
            n_tasks=len(self.tasks),
            n_nodes=len(self.nodes),
            exec_times=self.exec_times,
            edges=[(ti[e.parent], ti[e.child], e.size) for e in self.edges],
            links={(ni[u], ni[v]): (lk.a, lk.b, lk.c) for (u, v), lk in self.links.items()},
            limits=limits,
            topo=[ti[t] for t in self.topological_order],
        )

    @cached_property
    def _edge_sizes(self) -> Mapping[tuple[str, str], float]:
        return MappingProxyType({(e.parent, e.child): e.size for e in self.edges})

    @cached_property
    def _parents(self) -> Mapping[str, tuple[str, ...]]:
        acc: dict[str, list[str]] = {t: [] for t in self.tasks}
        for e in self.edges:
            acc[e.child].append(e.parent)
        return MappingProxyType({t: tuple(v) for t, v in acc.items()})

    @cached_property
    def _children(self) -> Mapping[str, tuple[str, ...]]:
        acc: dict[str, list[str]] = {t: [] for t in self.tasks}
        for e in self.edges:
            acc[e.parent].append(e.child)
        return MappingProxyType({t: tuple(v) for t, v in acc.items()})

    # -- lookups ------------------------------------------------------------------------

    def exec_time(self, task: str, node: str) -> float:
        """Seconds ``task`` runs on ``node`` (inf if it cannot run there)."""
        return self.exec_times[self.task_index[task]][self.node_index[node]]

    def allowed_nodes(self, task: str) -> tuple[str, ...]:
        """Nodes on which ``task`` can run (finite execution time), in node order."""
        row = self.exec_times[self.task_index[task]]
        return tuple(n for n, x in zip(self.nodes, row, strict=True) if math.isfinite(x))

    def transfer_time(self, size: float, src: str, dst: str) -> float:
        """Seconds to move ``size`` bytes from ``src`` to ``dst``: 0 within a node, inf without a link."""
        if src == dst:
            return 0.0
        link = self.links.get((src, dst))
        return math.inf if link is None else link.time(size)

    def edge_size(self, parent: str, child: str) -> float:
        """Bytes carried by edge ``parent -> child`` (KeyError if there is no such edge)."""
        return self._edge_sizes[(parent, child)]

    def parents(self, task: str) -> tuple[str, ...]:
        """Direct predecessors of ``task``, in edge order."""
        return self._parents[task]

    def children(self, task: str) -> tuple[str, ...]:
        """Direct successors of ``task``, in edge order."""
        return self._children[task]

    def node_limit(self, node: str) -> int | None:
        """Maximum number of tasks ``node`` may hold, or None when unlimited."""
        return self.max_tasks_per_node.get(node)

    def with_limits(self, limits: Mapping[str, int]) -> Problem:
        """A copy of this problem with ``limits`` as its per-node task limits."""
        return Problem(
            tasks=self.tasks,
            nodes=self.nodes,
            exec_times=self.exec_times,
            edges=self.edges,
            links=self.links,
            max_tasks_per_node=limits,
            resources=self.resources,
        )


def _check_names(kind: str, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{kind} name {name!r} is not a non-empty string")
        if name in seen:
            raise ValueError(f"{kind} {name!r} is listed twice; {kind} names must be unique")
        seen.add(name)


def related_machines(
    task_costs: Mapping[str, float],
    node_speeds: Mapping[str, float],
    edges: Iterable[tuple[str, str, float]],
    link_speeds: Mapping[tuple[str, str], float],
    *,
    max_tasks_per_node: Mapping[str, int] | None = None,
    resources: Mapping[str, Resources] | None = None,
) -> Problem:
    """Build a problem in the related-machines model used by SAGA and most papers.

    Execution time is ``cost / speed``; moving ``s`` bytes over a link takes
    ``s / link_speed`` (``b = 1/speed``, ``a = c = 0``); self-links are free. A
    link given in one direction only is taken as symmetric. A node speed of 0
    makes every task infinite there; a link speed of 0 or a missing pair means
    no link.
    """
    tasks = tuple(task_costs)
    nodes = tuple(node_speeds)
    exec_times = tuple(
        tuple(task_costs[t] / node_speeds[n] if node_speeds[n] > 0 else math.inf for n in nodes) for t in tasks
    )
    links: dict[tuple[str, str], LinkCost] = {}
    for u in nodes:
        for v in nodes:
            if u == v:
                continue
            speed = link_speeds.get((u, v), link_speeds.get((v, u), 0.0))
            if speed > 0:
                links[(u, v)] = LinkCost(0.0, 0.0 if math.isinf(speed) else 1.0 / speed, 0.0)
    return Problem(
        tasks=tasks,
        nodes=nodes,
        exec_times=exec_times,
        edges=tuple(Edge(p, c, float(s)) for p, c, s in edges),
        links=links,
        max_tasks_per_node=max_tasks_per_node or {},
        resources=resources or {},
    )
