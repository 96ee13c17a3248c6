"""The profilers as they run inside every agent (DRUPE network and resource, execution).

* **Network.** On request (and every `interval` seconds when re-profiling
  is on) the agent sends test payloads of several sizes to each peer over
  the data plane, as `ping` messages the receiver checks and acknowledges,
  several samples per size, and fits a guarded quadratic per outgoing link
  (`jupiter.profiling.fit`). Peers are probed one after the other so that
  probes never queue behind each other on the node's emulated uplink; each
  probe goes through `Emulation.transmit`, so on a testbed it takes as long
  as the emulated link, not the link plus the loopback. The agent keeps its
  own latest fits: distributed WAVE decides with them.
* **Resources.** A background loop samples CPU and memory (psutil) and
  keeps the smoothed figures (`jupiter.profiling.resources`).
* **Execution.** On request, every DAG task runs on the app's sample inputs,
  chained along the DAG (`jupiter.profiling.execution`), in resident workers
  with the node's testbed speed.

Periodic re-profiles are sent to home as `network_profile` and
`resource_profile` events, where they land in the profile store. The HTTP
routes are added to the agent's control plane by :func:`register_routes`;
the mapping found afterwards is installed with :func:`apply_mapping`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, abort, jsonify, request

from jupiter.profiling.execution import TaskFailed, profile_chain, shapes_from_plan
from jupiter.profiling.fit import LinkFit, fit_link
from jupiter.profiling.resources import ResourceMonitor
from jupiter.runtime.agent import TaskCounters, TaskWorker, log
from jupiter.runtime.protocol import token_ok
from jupiter.runtime.transfer import Peer, TransferFailed
from jupiter.store import open_store

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from jupiter.runtime.agent import Agent

DEFAULT_SIZES = (1024, 10 * 1024, 100 * 1024, 1024 * 1024)
DEFAULT_SAMPLES = 3
RESOURCE_INTERVAL = 1.0
PROFILE_EVENTS = ("network_profile", "resource_profile")


class ProfilerService:
    """One agent's profilers."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.settings: Mapping[str, Any] = agent.plan.extra.get("profiling", {})
        self.monitor = ResourceMonitor()
        self.fits: dict[str, LinkFit] = {}
        """This node's latest fit of each outgoing link, by destination."""
        self._payloads: dict[int, bytes] = {}
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start the resource sampler and, when configured, periodic network re-profiling."""
        loop = asyncio.get_running_loop()
        self.agent.background.append(loop.create_task(self._sample_resources()))
        interval = float(self.settings.get("interval", 0) or 0)
        if interval > 0:
            self.agent.background.append(loop.create_task(self._reprofile(interval)))

    async def _sample_resources(self) -> None:
        period = float(self.settings.get("resource_interval", RESOURCE_INTERVAL))
        while True:
            self.monitor.sample()
            await asyncio.sleep(period)

    async def _reprofile(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                result = await self.network(None, self._sizes(None), self._samples(None))
            except TransferFailed as exc:
                log.error("periodic network profiling failed: %s", exc)
                continue
            now = time.time()
            self.agent.emit({"type": "network_profile", "node": self.agent.node, "time": now, **result})
            self.agent.emit(
                {"type": "resource_profile", "node": self.agent.node, "time": now, **self.monitor.current().to_json()}
            )

    # --------------------------------------------------------------- network

    def _sizes(self, sizes: Sequence[int] | None) -> list[int]:
        return [int(s) for s in (sizes or self.settings.get("sizes") or DEFAULT_SIZES)]

    def _samples(self, samples: int | None) -> int:
        return int(samples or self.settings.get("samples") or DEFAULT_SAMPLES)

    def peers_to_probe(self, peers: Sequence[str] | None) -> list[str]:
        """The peers this node profiles: the given ones, the plan's link list, or every other agent."""
        if peers is not None:
            return [p for p in peers if p != self.agent.node and p in self.agent.plan.nodes]
        links = self.settings.get("links")
        if links:
            return [dst for src, dst in links if src == self.agent.node and dst in self.agent.plan.nodes]
        return [name for name in self.agent.plan.nodes if name != self.agent.node]

    def _payload(self, size: int) -> bytes:
        if size not in self._payloads:
            # Random bytes, so that nothing on the way could compress them.
            self._payloads[size] = os.urandom(size)
        return self._payloads[size]

    async def measure(self, dst: str, sizes: Sequence[int], samples: int) -> list[tuple[int, float]]:
        """(size, seconds) of `samples` transfers of each size to `dst` (emulated link included)."""
        address = self.agent.plan.nodes[dst]
        peer = Peer(dst, address.host, address.data_port, retries=3, pool_size=1)
        header = {"kind": "ping", "token": self.agent.token}
        points: list[tuple[int, float]] = []
        emulation = self.agent.emulation
        try:
            # Open the connection first: the data plane keeps its connections, so
            # connecting is not part of what a transfer costs.
            await peer.send(header, b"")
            for size in sizes:
                payload = self._payload(size)
                # An unshaped send first shows the emulation what really sending this
                # size takes, so that even the first probe costs max(real, emulated).
                started = time.perf_counter()
                await peer.send(header, payload)
                emulation.send_cost(dst).add(size, time.perf_counter() - started)
                for _ in range(samples):
                    started = time.perf_counter()
                    async with emulation.transmit(dst, [size]):
                        await peer.send(header, payload)
                    points.append((size, time.perf_counter() - started))
        finally:
            await peer.close()
        return points

    async def network(self, peers: Sequence[str] | None, sizes: Sequence[int], samples: int) -> dict[str, Any]:
        """Profile this node's outgoing links; returns their fits and raw samples."""
        async with self._lock:
            links: list[dict[str, object]] = []
            raw: list[list[Any]] = []
            for dst in self.peers_to_probe(peers):
                points = await self.measure(dst, sizes, samples)
                fit = fit_link(self.agent.node, dst, points, time.time())
                self.fits[dst] = fit
                links.append(fit.to_json())
                raw += [[self.agent.node, dst, size, seconds] for size, seconds in points]
            return {"links": links, "samples": raw}

    # ------------------------------------------------------------- execution

    async def execution(self, runs: int, skip: Sequence[str]) -> dict[str, Any]:
        """Run every DAG task on the sample inputs, chained; task -> {seconds, output_bytes, runs}."""
        agent = self.agent
        plan = agent.plan
        samples = sorted(
            p for p in (Path(plan.app_path) / "sample_input").iterdir() if p.is_file() and not p.name.startswith(".")
        )
        workers: dict[str, TaskWorker] = {}
        (agent.dir / "logs").mkdir(parents=True, exist_ok=True)

        async def runner(task: str, names: list[str], single: bool, pathin: str, pathout: str) -> dict[str, Any]:
            if task not in workers:
                workers[task] = TaskWorker(
                    task, Path(plan.tasks[task].script), agent.dir / "logs" / f"profile-{task}.log", agent.worker_env()
                )
                await workers[task].start()
            (answer,) = await workers[task].run(
                [{"files": names, "single": single, "pathin": pathin, "pathout": pathout}]
            )
            return answer

        try:
            return await profile_chain(
                shapes_from_plan(plan.tasks, plan.order),
                samples,
                runner,
                agent.dir / "profile" / "exec",
                runs=runs,
                skip=frozenset(skip),
            )
        finally:
            for worker in workers.values():
                await worker.stop()


def _service(agent: Agent) -> ProfilerService:
    service: ProfilerService | None = getattr(agent, "profiler", None)
    if service is None:
        service = ProfilerService(agent)
        agent.profiler = service  # type: ignore[attr-defined]
    return service


async def apply_mapping(agent: Agent, mapping: Mapping[str, str]) -> list[str]:
    """Install the mapping found after profiling: start the workers of this node's new tasks.

    Agents start with no tasks while profiling runs; this is the dispatch
    step. Moving a task that already runs is refused (no live re-mapping).
    """
    for task, node in agent.plan.mapping.items():
        if mapping.get(task) != node:
            raise ValueError(f"task {task} already runs on {node}; live re-mapping is not supported")
    agent.plan = dataclasses.replace(agent.plan, mapping=dict(mapping))
    tasks = agent.plan.tasks_on(agent.node)
    started = [task for task in tasks if task not in agent.counters]
    agent.tasks = tasks
    loop = asyncio.get_running_loop()
    for task in started:
        agent.counters[task] = TaskCounters()
        agent.queues[task] = asyncio.Queue()
    await agent.start_workers(started)
    for task in started:
        agent.background.append(loop.create_task(agent.run_task(task)))
    return started


def store_profile_event(extra: Mapping[str, Any], event: Mapping[str, Any]) -> None:
    """Home: put a periodic re-profile into the profile store (when the plan names one)."""
    settings = extra.get("store")
    if not settings:
        return
    with open_store(settings) as store:
        if event.get("type") == "network_profile":
            store.put_network(event.get("links", []), [tuple(s) for s in event.get("samples", [])])
        else:
            store.put_resources({str(event["node"]): {k: event[k] for k in ("cpu", "memory", "samples", "time")}})


def register_routes(app: Flask, agent: Agent, loop: asyncio.AbstractEventLoop) -> None:
    """Add the profiling, dispatch and WAVE routes to an agent's control plane."""
    from jupiter.runtime import wave  # noqa: PLC0415 - wave imports this module

    service = _service(agent)
    asyncio.run_coroutine_threadsafe(service.start(), loop)

    def on_loop(coroutine: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=timeout)

    def body() -> dict[str, Any]:
        if not token_ok(agent.token, request.headers.get("X-Jupiter-Token")):
            abort(401, description="missing or wrong deployment token")
        data = request.get_json(silent=True) if request.data else {}
        if not isinstance(data, dict):
            abort(400, description="expected a JSON object")
        return data

    @app.get("/profile/resources")
    def resources() -> ResponseReturnValue:
        body()
        return jsonify(service.monitor.current().to_json())

    @app.post("/profile/network")
    def network() -> ResponseReturnValue:
        data = body()
        peers = data.get("peers")
        coroutine = service.network(peers, service._sizes(data.get("sizes")), service._samples(data.get("samples")))
        try:
            return jsonify(on_loop(coroutine, float(data.get("timeout", 600))))
        except TransferFailed as exc:
            return jsonify({"error": f"{agent.node} could not reach a peer: {exc}"}), 502

    @app.post("/profile/execution")
    def execution() -> ResponseReturnValue:
        data = body()
        coroutine = service.execution(int(data.get("runs", 1)), list(data.get("skip", [])))
        try:
            return jsonify({"tasks": on_loop(coroutine, float(data.get("timeout", 600)))})
        except TaskFailed as exc:
            log_path = agent.dir / "logs"
            return jsonify({"error": f"{exc} (logs in {log_path})"}), 500

    @app.post("/mapping")
    def mapping() -> ResponseReturnValue:
        data = body()
        try:
            if agent.pricing is not None and data.get("pricing_model"):
                agent.pricing.set_model(data["pricing_model"], network=True)
            started = on_loop(apply_mapping(agent, dict(data.get("mapping", {}))), 60.0)
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 409
        return jsonify({"started": started})

    wave.register_routes(app, agent, body)


def _json(data: Any) -> bytes:
    return json.dumps(data).encode()
