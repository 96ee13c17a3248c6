"""Pricing CIRCE's price function: which compute node should run a task now.

Pure code, no I/O: the agents (`jupiter.runtime.extensions.pricing`) feed it what the
compute nodes report and what the profilers measured.

A compute node's price for running a task on a frame whose input is held at
node `h` is made of five terms, all in **seconds**:

* **network**: the link's fitted transfer model `a·s² + b·s + c` from `h`
  to the node at the input's size `s` (0 on the same node, and 0 when no
  network profile exists);
* **execution**: the smoothed duration the node measured for the task
  lately; for a task it has not run, the profiled execution time scaled by
  the node's *slowdown* — the smoothed ratio of the durations it measured
  lately to their profiled durations. So a node that became slower raises
  its price as soon as it runs a task;
* **queue**: the backlog there — the expected execution time of every frame
  the node holds (waiting, queued or running), as the node reports it, plus
  what the controller itself sent there since that report;
* **cpu** and **memory**: utilisation turned into time with the M/M/1
  queueing relation: a job whose service takes `x` seconds on a resource
  busy a fraction `u` of the time waits on average `x·u/(1-u)` for it. `u`
  is capped at 0.95 so one saturated node does not make every price
  infinite. CPU utilisation is the share of the node's CPU used by anything
  but Jupiter's own processes (their work is the queue term already);
  memory utilisation is the share of memory in use.

Each term is multiplied by its weight (`[PRICING] W_*`, default 1) and the
terms are aggregated by `sum` or `max` (`PRICE_OPTION`). A node whose last
report is older than the staleness limit, or that is excluded (dead, or
just failed a transfer), is never chosen. Ties go to the node listed first.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from jupiter.mapping import LinkCost, Problem

AGGREGATES = ("sum", "max")
UTILISATION_CAP = 0.95


@dataclass(frozen=True)
class PriceWeights:
    """Weight of each term (dimensionless; every term is already in seconds)."""

    network: float = 1.0
    execution: float = 1.0
    queue: float = 1.0
    cpu: float = 1.0
    memory: float = 1.0

    def __post_init__(self) -> None:
        for name in ("network", "execution", "queue", "cpu", "memory"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"price weight {name} must be a finite number >= 0, got {value}")


@dataclass(frozen=True)
class NodeReport:
    """What a compute node says about itself, every report interval."""

    node: str
    time: float
    """When the figures were taken (the node's clock, seconds since the epoch)."""
    slowdown: float = 1.0
    """Measured / profiled execution time of its recent tasks (smoothed)."""
    backlog: float = 0.0
    """Expected seconds of work the node holds (waiting, queued or running frames)."""
    cpu: float = 0.0
    """Share of its CPU used lately by anything but its own tasks (0-1)."""
    memory: float = 0.0
    """Share of memory in use (0-1)."""
    exec_times: Mapping[str, float] = field(default_factory=dict)
    """Smoothed measured seconds of the tasks it ran lately."""

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "time": self.time,
            "slowdown": self.slowdown,
            "backlog": self.backlog,
            "cpu": self.cpu,
            "memory": self.memory,
            "exec": dict(self.exec_times),
        }

    @classmethod
    def from_json(cls, data: Any) -> NodeReport:
        """Parse a report received from the network; ValueError when it is malformed."""
        if not isinstance(data, dict) or not isinstance(data.get("node"), str):
            raise ValueError("a price report is an object with a node name")
        values: dict[str, float] = {}
        for key in ("time", "slowdown", "backlog", "cpu", "memory"):
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"price report of {data['node']}: {key} must be a number >= 0")
            values[key] = float(value)
        measured = data.get("exec", {})
        if not isinstance(measured, dict) or not all(
            isinstance(task, str) and isinstance(seconds, int | float) and math.isfinite(seconds) and seconds >= 0
            for task, seconds in measured.items()
        ):
            raise ValueError(f"price report of {data['node']}: exec must map task names to seconds >= 0")
        return cls(node=data["node"], **values, exec_times={task: float(s) for task, s in measured.items()})


@dataclass(frozen=True)
class CostModel:
    """What the profilers measured, as the price function reads it."""

    exec_times: Mapping[tuple[str, str], float]
    """(task, node) -> profiled seconds."""
    links: Mapping[tuple[str, str], LinkCost] = field(default_factory=dict)
    """(src, dst) -> fitted transfer model; a missing link costs nothing."""
    edge_bytes: Mapping[tuple[str, str], float] = field(default_factory=dict)
    """(parent, child) -> profiled output size."""

    @classmethod
    def from_problem(cls, problem: Problem, network: bool = True) -> CostModel:
        """The model of a mapping problem; `network=False` drops the links (no network profile)."""
        exec_times = {
            (task, node): problem.exec_times[i][j]
            for i, task in enumerate(problem.tasks)
            for j, node in enumerate(problem.nodes)
            if math.isfinite(problem.exec_times[i][j])
        }
        return cls(
            exec_times=MappingProxyType(exec_times),
            links=MappingProxyType(dict(problem.links) if network else {}),
            edge_bytes=MappingProxyType({(edge.parent, edge.child): edge.size for edge in problem.edges}),
        )

    def transfer(self, src: str, dst: str, size: float) -> float:
        """Seconds to move `size` bytes from `src` to `dst`."""
        if src == dst:
            return 0.0
        link = self.links.get((src, dst))
        if link is None:
            return 0.0
        return max(0.0, link.a * size * size + link.b * size + link.c)

    def exec_time(self, task: str, node: str) -> float:
        """Profiled seconds of a task on a node (the task's mean elsewhere when that node was not profiled)."""
        known = self.exec_times.get((task, node))
        if known is not None:
            return known
        others = [seconds for (name, _), seconds in self.exec_times.items() if name == task]
        return sum(others) / len(others) if others else 0.0


def waiting_time(service: float, utilisation: float) -> float:
    """Expected wait of a job of `service` seconds on a resource busy `utilisation` of the time (M/M/1)."""
    u = min(max(utilisation, 0.0), UTILISATION_CAP)
    return service * u / (1.0 - u)


@dataclass(frozen=True)
class PriceTerms:
    """The five terms of a price, in seconds, before weighting."""

    network: float
    execution: float
    queue: float
    cpu: float
    memory: float

    def weighted(self, weights: PriceWeights) -> tuple[float, float, float, float, float]:
        return (
            weights.network * self.network,
            weights.execution * self.execution,
            weights.queue * self.queue,
            weights.cpu * self.cpu,
            weights.memory * self.memory,
        )

    def total(self, weights: PriceWeights, aggregate: str) -> float:
        """The price: weighted terms aggregated by `sum` or `max`."""
        terms = self.weighted(weights)
        if aggregate == "sum":
            return sum(terms)
        if aggregate == "max":
            return max(terms)
        raise ValueError(f"unknown price aggregate {aggregate!r}; use one of {', '.join(AGGREGATES)}")


def price_terms(
    model: CostModel,
    task: str,
    report: NodeReport,
    holder: str,
    size: float,
    extra_backlog: float = 0.0,
) -> PriceTerms:
    """The terms of `report.node`'s price for running `task` on an input of `size` bytes held at `holder`.

    The execution term is what the node measured for the task lately, or,
    for a task it has not run, the profiled time scaled by its slowdown.
    """
    measured = report.exec_times.get(task)
    execution = measured if measured is not None else model.exec_time(task, report.node) * report.slowdown
    return PriceTerms(
        network=model.transfer(holder, report.node, size),
        execution=execution,
        queue=max(0.0, report.backlog + extra_backlog),
        cpu=waiting_time(execution, report.cpu),
        memory=waiting_time(execution, report.memory),
    )


@dataclass(frozen=True)
class Choice:
    """The cheapest node and why."""

    node: str
    price: float
    terms: PriceTerms


def choose(
    model: CostModel,
    task: str,
    reports: Mapping[str, NodeReport],
    holder: str,
    size: float,
    now: float,
    stale: float,
    weights: PriceWeights,
    aggregate: str,
    exclude: Collection[str] = (),
    extra_backlog: Mapping[str, float] | None = None,
    preferred: str | None = None,
    margin: float = 0.0,
) -> Choice | None:
    """The compute node with the lowest price for `task`, or None when no fresh report is left.

    `reports` are considered in their order (ties go to the earlier one);
    a report older than `stale` seconds, or from an excluded node, is skipped.
    `extra_backlog` corrects a node's reported backlog (the caller's
    prediction of its queue now; negative once reported work has drained).
    The `preferred` node (the mapper's choice) is kept unless another node
    is cheaper by more than `margin` (a fraction of its price): measurements
    are noisy, and moving a task costs what the mapper's plan saved.
    """
    best: Choice | None = None
    kept: Choice | None = None
    for node, report in reports.items():
        if node in exclude or now - report.time > stale:
            continue
        terms = price_terms(model, task, report, holder, size, (extra_backlog or {}).get(node, 0.0))
        total = terms.total(weights, aggregate)
        if node == preferred:
            kept = Choice(node, total, terms)
        if best is None or total < best.price:
            best = Choice(node, total, terms)
    if kept is not None and best is not None and kept.price <= best.price * (1.0 + margin):
        return kept
    return best
