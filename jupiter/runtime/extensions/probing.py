"""The profilers as they run inside every agent (DRUPE network and resource, execution).

* **Network.** On request (and every `interval` seconds when re-profiling
  is on) the agent sends test payloads of several sizes to each peer over
  the data plane, as `ping` messages the receiver checks and acknowledges,
  several samples per size, and fits a guarded quadratic per outgoing link
  (`jupiter.profiling.fit`). Peers are probed one after the other so that
  probes never queue behind each other on the node's emulated uplink; each
  probe goes through `Emulation.transmit`, so on a testbed it takes as long
  as the emulated link, not the link plus the loopback. The agent keeps its
  own latest fits (`fits`): distributed WAVE decides with them.
* **Resources.** A background loop samples CPU and memory (psutil) and
  keeps the smoothed figures (`jupiter.profiling.resources`); every
  `REPORT_SECONDS` the agent reports them to home as a `resource_profile`
  event, with its own CPU and memory (agent and task workers), for the live
  dashboard and the report.
* **Execution.** On request, DAG tasks run on the app's sample inputs,
  chained along the DAG (`jupiter.profiling.execution`), in resident workers
  with the node's testbed speed, within each task's runs and time budget. A
  request names the tasks to profile (the session asks for one at a time, in
  DAG order, to show progress; the first request of a session is `fresh`),
  or profiles them all.

Periodic re-profiles are sent to home as `network_profile` and
`resource_profile` events, where they land in the profile store. The routes
are `POST /profile/network`, `GET /profile/resources` and
`POST /profile/execution`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import shutil
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from jupiter.model.events import NetworkProfile, ResourceProfile
from jupiter.model.inputs import group_frames
from jupiter.profiling.execution import ExecutionChain, TaskFailed, shapes_from_plan
from jupiter.profiling.fit import LinkFit, fit_link
from jupiter.profiling.resources import ProcessMonitor, ResourceMonitor
from jupiter.runtime.peers import Peer, TransferFailed
from jupiter.runtime.routes import HttpError, Request, Routes
from jupiter.runtime.services import AgentServices, Extension
from jupiter.runtime.worker_pipe import TaskWorker

log = logging.getLogger("jupiter.agent")

PHASE_TIMEOUT = 600.0
"""Default seconds a profiling request may take (the request's `timeout` overrides it)."""
REPORT_SECONDS = 2.0
"""How often an agent reports its CPU and memory to home (one small event)."""


class Probing(Extension):
    """One agent's profilers (module docstring)."""

    name = "probing"

    def __init__(self, services: AgentServices) -> None:
        self.services = services
        self.settings = services.plan.profiling
        self.monitor = ResourceMonitor()
        self.own = ProcessMonitor()
        self.fits: dict[str, LinkFit] = {}
        """This node's latest fit of each outgoing link, by destination."""
        self._payloads: dict[int, bytes] = {}
        self._lock = asyncio.Lock()
        self.chain: ExecutionChain | None = None
        """The execution profile being built, kept between the requests of one session."""

    # ------------------------------------------------------------- lifecycle

    def loops(self) -> list[Coroutine[Any, Any, Any]]:
        """The resource sampler and, when configured, periodic network re-profiling."""
        loops: list[Coroutine[Any, Any, Any]] = [self._sample_resources(), self._report_resources()]
        if self.settings.interval > 0:
            loops.append(self._reprofile(self.settings.interval))
        return loops

    async def _sample_resources(self) -> None:
        while True:
            self.monitor.sample()
            await asyncio.sleep(self.settings.resource_interval)

    def resource_event(self) -> ResourceProfile:
        """This node's CPU and memory now: the machine's (smoothed) and its agent's own."""
        current = self.monitor.current()
        cpu, rss = self.own.sample()
        return ResourceProfile(
            node=self.services.node,
            time=time.time(),
            cpu=current.cpu,
            memory=current.memory,
            samples=current.samples,
            process_cpu=cpu,
            process_memory=rss,
        )

    async def _report_resources(self) -> None:
        while True:
            await asyncio.sleep(REPORT_SECONDS)
            self.services.emit(self.resource_event())

    async def _reprofile(self, interval: float) -> None:
        node = self.services.node
        while True:
            await asyncio.sleep(interval)
            try:
                result = await self.network(None, self.settings.sizes, self.settings.samples)
            except TransferFailed as exc:
                log.error("periodic network profiling failed: %s", exc)
                continue
            now = time.time()
            samples = tuple((str(s), str(d), int(z), float(t)) for s, d, z, t in result["samples"])
            self.services.emit(NetworkProfile(node=node, time=now, links=tuple(result["links"]), samples=samples))

    # ----------------------------------------------------------------- routes

    def add_routes(self, routes: Routes) -> None:
        routes.get("/profile/resources", lambda _: self.monitor.current().to_json())
        routes.post("/profile/network", self._network_route)
        routes.post("/profile/execution", self._execution_route)

    def _network_route(self, request: Request) -> Any:
        peers = request.names("peers")
        sizes = request.json_object().get("sizes") or list(self.settings.sizes)
        if not isinstance(sizes, list) or not all(isinstance(size, int) and size > 0 for size in sizes):
            raise HttpError(400, "sizes must be a list of byte counts > 0")
        samples = request.integer("samples", self.settings.samples, minimum=1, maximum=1000)
        timeout = request.number("timeout", PHASE_TIMEOUT, minimum=1.0)
        try:
            return self.services.on_loop(self.network(peers, sizes, samples), timeout)
        except TransferFailed as exc:
            raise HttpError(502, f"{self.services.node} could not reach a peer: {exc}") from None

    def _execution_route(self, request: Request) -> Any:
        runs = request.integer("runs", 1, minimum=1, maximum=1000)
        skip = request.names("skip", []) or []
        timeout = request.number("timeout", PHASE_TIMEOUT, minimum=1.0)
        budget = request.number("budget", math.inf, minimum=0.0) if "budget" in request.json_object() else math.inf
        tasks = request.names("tasks")
        fresh = request.json_object().get("fresh", True) is not False
        plan = self.services.plan
        unknown = [task for task in tasks or [] if task not in plan.tasks]
        if unknown:
            raise HttpError(400, f"not tasks of this app: {', '.join(unknown)}")
        try:
            result = self.services.on_loop(self.execution(runs, skip, tasks, fresh, budget), timeout)
        except TaskFailed as exc:
            raise HttpError(500, f"{exc} (logs in {self.services.layout.logs})") from None
        except ValueError as exc:  # a task asked for before its parents
            raise HttpError(400, str(exc)) from None
        return {"tasks": result}

    # --------------------------------------------------------------- network

    def peers_to_probe(self, peers: Sequence[str] | None) -> list[str]:
        """The peers this node profiles: the given ones, the plan's link list, or every other agent."""
        node, plan = self.services.node, self.services.plan
        if peers is not None:
            return [p for p in peers if p != node and p in plan.nodes]
        links = self.settings.links
        if links:
            return [dst for src, dst in links if src == node and dst in plan.nodes]
        return [name for name in plan.nodes if name != node]

    def _payload(self, size: int) -> bytes:
        if size not in self._payloads:
            # Random bytes, so that nothing on the way could compress them.
            self._payloads[size] = os.urandom(size)
        return self._payloads[size]

    async def measure(self, dst: str, sizes: Sequence[int], samples: int) -> list[tuple[int, float]]:
        """(size, seconds) of `samples` transfers of each size to `dst` (emulated link included)."""
        address = self.services.plan.nodes[dst]
        peer = Peer(dst, address.host, address.data_port, retries=3, pool_size=1)
        header = {"kind": "ping", "token": self.services.token}
        points: list[tuple[int, float]] = []
        emulation = self.services.emulation
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
                fit = fit_link(self.services.node, dst, points, time.time())
                self.fits[dst] = fit
                links.append(fit.to_json())
                raw += [[self.services.node, dst, size, seconds] for size, seconds in points]
            return {"links": links, "samples": raw}

    # ------------------------------------------------------------- execution

    async def execution(
        self,
        runs: int,
        skip: Sequence[str],
        tasks: Sequence[str] | None = None,
        fresh: bool = True,
        budget: float = math.inf,
    ) -> dict[str, Any]:
        """Run DAG tasks (`tasks`, default all) on the sample inputs, chained; task -> {seconds, output_bytes, runs}.

        `fresh` starts a new profile; otherwise the tasks chain onto what
        earlier requests of the same session profiled.
        """
        services = self.services
        plan = services.plan
        if fresh or self.chain is None:
            files = sorted(
                p
                for p in (Path(plan.app_path) / "sample_input").iterdir()
                if p.is_file() and not p.name.startswith(".")
            )
            per_frame = max((plan.tasks[task].num_inputs for task in plan.ingress), default=1)
            samples = group_frames(files, per_frame)
            shutil.rmtree(services.layout.profiling, ignore_errors=True)
            self.chain = ExecutionChain(
                shapes_from_plan(plan.tasks, plan.order),
                samples,
                services.layout.profiling,
                runs=runs,
                skip=frozenset(skip),
                budget=budget,
            )
        chain = self.chain
        workers: dict[str, TaskWorker] = {}

        async def runner(task: str, names: list[str], single: bool, pathin: str, pathout: str) -> dict[str, Any]:
            if task not in workers:
                workers[task] = TaskWorker(
                    plan.tasks[task],
                    services.layout.task_log(f"profile-{task}"),
                    services.worker_env(),
                )
                await workers[task].start()
            answers: list[dict[str, Any]] = []
            async for group in workers[task].run(
                [{"files": names, "single": single, "pathin": pathin, "pathout": pathout}]
            ):
                answers += group
            (answer,) = answers
            if answer.get("ok"):
                answer = dict(answer, outputs=[output["path"] for output in answer["outputs"]])
            return answer

        try:
            return {task: await chain.profile(task, runner) for task in (tasks or plan.order)}
        finally:
            for worker in workers.values():
                await worker.stop()
