"""One profiling session across a deployment's agents, gathered at home.

The session asks every agent for its measurements over the control plane
(how to reach an agent is passed in as `call`, so this module depends on no
backend), stores what comes back in the profile store, and assembles the
profile document that the mapper reads (format in docs/mapping.md):

1. network: every agent profiles its outgoing links, one agent at a time.
   Probes are timed to a fraction of a millisecond; agents probing side by
   side on one machine take the CPU from each other, and late wake-ups then
   pass for link time. On a 5-agent mesh of emulated 100 Mbit/s links on
   2 CPUs the fits were off by a median 14-26% with all agents at once,
   3% one at a time (docs/profiling.md);
2. resources: every agent's smoothed CPU and memory figures;
3. execution: every compute node runs the DAG on sample data, one task at a
   time in DAG order (so each task's progress shows, and each request is
   bounded by the phase timeout on its own), each task within its runs and
   time budget on that node. Where the nodes are machines (or containers)
   of their own, they profile a task side by side (`parallel`); on the local
   backend one after the other, because nodes emulated on one machine would
   slow each other down and the ratios between them would be wrong.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from jupiter.model.errors import JupiterError
from jupiter.profiling.interface import DrupeProfiler, Profiler
from jupiter.store import ProfileStore

Call = Callable[[str, str, str, Mapping[str, Any] | None, float], Any]
"""call(node, method, path, json body or None, timeout) -> the agent's JSON answer."""

PROFILE_FORMAT = "jupiter-profile"


class ProfilingError(JupiterError):
    """A profiler could not measure what the mapper needs."""


@dataclass(frozen=True)
class SessionSpec:
    """What to profile."""

    agents: Sequence[str]
    """Every node with an agent (home included): the network profiler's mesh."""
    compute: Sequence[str]
    """Nodes that may run tasks (the execution profiler's nodes; never home or data sources)."""
    order: Sequence[str]
    """DAG tasks in topological order."""
    edges: Sequence[tuple[str, str]]
    """DAG edges (parent, child) between tasks."""
    skip: frozenset[str] = frozenset()
    """Tasks `config.json` excludes from execution profiling."""
    sizes: Sequence[int] = (1024, 10 * 1024, 100 * 1024, 1024 * 1024)
    samples: int = 3
    exec_runs: int = 2
    links: Sequence[tuple[str, str]] | None = None
    """Links to profile; None = every ordered pair of agents."""
    timeout: float = 600.0
    """Seconds one request may take: one agent's network profile, one task's execution profile on one node."""
    exec_budget: float = math.inf
    """Seconds of runs per task and node after which the execution profiler runs it no more (at least once)."""
    parallel: bool = False
    """Whether the compute nodes profile each task side by side (machines of their own), else one at a time."""


@dataclass
class SessionResult:
    """The profile document and how long each phase took."""

    profile: dict[str, Any]
    durations: dict[str, float] = field(default_factory=dict)


class ProfilingSession:
    """Runs the three profilers through `call` and keeps the results in `store`."""

    def __init__(self, spec: SessionSpec, call: Call, store: ProfileStore) -> None:
        self.spec = spec
        self.call = call
        self.store = store

    def _all(self, nodes: Sequence[str], method: str, path: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            futures = {node: pool.submit(self.call, node, method, path, body, self.spec.timeout) for node in nodes}
            return {node: future.result() for node, future in futures.items()}

    def network(self) -> list[dict[str, Any]]:
        """Profile every link; returns the fits."""
        spec = self.spec
        peers: dict[str, list[str] | None] = {node: None for node in spec.agents}
        if spec.links is not None:
            peers = {node: [dst for src, dst in spec.links if src == node] for node in spec.agents}
        body = {"sizes": list(spec.sizes), "samples": spec.samples, "timeout": spec.timeout}
        links: list[dict[str, Any]] = []
        samples: list[tuple[str, str, int, float]] = []
        # One agent at a time (module docstring): probes in parallel disturb each other.
        for node, dsts in peers.items():
            if dsts is not None and not dsts:
                continue
            answer = self.call(node, "POST", "/profile/network", {**body, "peers": dsts}, spec.timeout)
            if "error" in answer:
                raise ProfilingError(f"network profiling on {node} failed: {answer['error']}")
            links += answer["links"]
            samples += [(str(s), str(d), int(z), float(t)) for s, d, z, t in answer["samples"]]
        self.store.put_network(links, samples)
        return links

    def resources(self) -> dict[str, dict[str, Any]]:
        """Every agent's CPU and memory figures."""
        answers = self._all(self.spec.agents, "GET", "/profile/resources", None)
        self.store.put_resources(answers)
        return answers

    def _execute(self, node: str, task: str, fresh: bool) -> dict[str, Any]:
        spec = self.spec
        body: dict[str, Any] = {
            "runs": spec.exec_runs,
            "skip": sorted(spec.skip),
            "timeout": spec.timeout,
            "tasks": [task],
            "fresh": fresh,
        }
        if math.isfinite(spec.exec_budget):
            body["budget"] = spec.exec_budget
        answer = self.call(node, "POST", "/profile/execution", body, spec.timeout)
        if "error" in answer:
            raise ProfilingError(f"execution profiling of {task} on {node} failed: {answer['error']}")
        record: dict[str, Any] = answer["tasks"][task]
        return record

    def execution(self, progress: Callable[[str], None] = lambda _: None) -> dict[str, dict[str, Any]]:
        """Every compute node runs the DAG on sample data, one task at a time; a progress line per task."""
        spec = self.spec
        nodes = list(spec.compute)
        out: dict[str, dict[str, Any]] = {node: {} for node in nodes}
        workers = len(nodes) if spec.parallel else 1
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for index, task in enumerate(spec.order):
                started = time.time()
                first = index == 0
                if spec.parallel:
                    futures = {node: pool.submit(self._execute, node, task, first) for node in nodes}
                    records = {node: future.result() for node, future in futures.items()}
                else:
                    records = {node: self._execute(node, task, first) for node in nodes}
                now = time.time()
                for node, record in records.items():
                    out[node][task] = dict(record, time=now)
                progress(_task_line(task, index, len(spec.order), records, spec, now - started))
        for node in nodes:
            self.store.put_execution(node, out[node])
        return out

    def run(self, progress: Callable[[str], None] = lambda _: None, profiler: Profiler | None = None) -> SessionResult:
        """All three profilers, then the profile document; reports each phase with its duration."""
        durations: dict[str, float] = {}
        started = time.time()
        links = self.network()
        durations["network"] = time.time() - started
        progress(f"profiled network: {len(links)} links in {durations['network']:.2f} s")
        started = time.time()
        resources = self.resources()
        durations["resources"] = time.time() - started
        progress(f"profiled resources of {len(resources)} nodes in {durations['resources']:.2f} s")
        started = time.time()
        self.execution(progress)
        durations["execution"] = time.time() - started
        progress(
            f"profiled execution: {len(self.spec.order)} tasks on {len(self.spec.compute)} nodes "
            f"in {durations['execution']:.2f} s"
        )
        return SessionResult(profile_document(self.store, self.spec, profiler), durations)


def _task_line(
    task: str, index: int, count: int, records: Mapping[str, Mapping[str, Any]], spec: SessionSpec, took: float
) -> str:
    """`  aggregate0 (2/14): node1 0.0123 s, node2 0.0131 s (0.21 s)`, with what the budget cut short."""
    where = f"  {task} ({index + 1}/{count})"
    if task in spec.skip:
        return f"{where}: not profiled (config.json's exec_profiler)"
    times = ", ".join(f"{node} {float(record['seconds']):.4f} s" for node, record in records.items())
    short = [node for node, record in records.items() if int(record.get("runs", 0)) < spec.exec_runs]
    cut = ""
    if short:
        runs = ", ".join(f"{records[node]['runs']} on {node}" for node in short)
        cut = f"; over its {spec.exec_budget:g} s budget: runs {runs} instead of {spec.exec_runs}"
    return f"{where}: {times} ({took:.2f} s{cut})"


def profile_document(store: ProfileStore, spec: SessionSpec, profiler: Profiler | None = None) -> dict[str, Any]:
    """The profile file (docs/mapping.md) over the compute nodes.

    Links and resources come through the integration interface (`profiler`,
    default: DRUPE's figures in `store`), execution times from the store.
    """
    compute = list(spec.compute)
    members = set(compute)
    profiler = profiler or DrupeProfiler(store)
    network = profiler.get_network_data()
    resources = profiler.get_resource_data()
    execution = store.get_execution_data()
    return {
        "format": PROFILE_FORMAT,
        "version": 1,
        "nodes": compute,
        "links": [
            {"src": src, "dst": dst, "a": cost.a, "b": cost.b, "c": cost.c}
            for (src, dst), cost in sorted(network.items())
            if src in members and dst in members
        ],
        "resources": {n: {"cpu": r.cpu, "memory": r.memory} for n, r in resources.items() if n in members},
        "execution": {
            task: {
                node: {"seconds": r["seconds"], "output_bytes": r.get("output_bytes", {})}
                for node, r in execution.get(task, {}).items()
                if node in members
            }
            for task in spec.order
        },
        "edges": [[parent, child] for parent, child in spec.edges],
    }
