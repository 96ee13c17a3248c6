"""The node agent: one long-lived process per node, composed of a few collaborators.

* the **inbox** (`jupiter.runtime.inbox`) stores each task's inputs per
  frame and queues a frame once NUM_INPUTS have arrived;
* one **task runner** per task (`jupiter.runtime.runner`) runs ready frames
  in the task's resident worker and routes the outputs by FLAG;
* the **outbox** (`jupiter.runtime.outbox`) delivers outputs, journalled
  until acknowledged, handing over on this node what stays here;
* the **event sink** (`jupiter.runtime.event_sink`) carries statistics to home;
* the **router** (`jupiter.runtime.router`) says where outputs go;
* the **helpers** (`jupiter.runtime.helpers`): the app's long-lived helper
  processes this node runs, started before the tasks;
* **extensions** (`jupiter.runtime.services.Extension`) add what only some
  nodes or deployments have: home's frames and statistics, pricing CIRCE,
  the profilers, distributed WAVE. The agent builds nothing of theirs; the
  composition root (`jupiter.runtime.node`) adds them.

This module serves the data plane (authenticated, checksummed messages,
answered once they are safe on disk) and dispatches each message kind to
its owner, adds the core control-plane routes, and runs the lifecycle:
recover, start workers and loops, serve, stop.

Crash safety: everything a sender was told is delivered is on disk before
the `ok` answer, and every output waiting to be sent is in the outbox
journal. A restarted agent rebuilds its queues from its folder; re-sent
files are recognised by their (frame, source task, output index) slot and
acknowledged without being processed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import time
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from jupiter.model.events import Event
from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import HOME_TASK, Plan
from jupiter.runtime.counters import SavedCounters, TaskCounters, whole_numbers
from jupiter.runtime.emulation import Emulation
from jupiter.runtime.event_sink import EventSink, RemoteSink
from jupiter.runtime.helpers import HelperProcess
from jupiter.runtime.inbox import Inbox
from jupiter.runtime.logs import RefusalLog
from jupiter.runtime.outbox import Outbox
from jupiter.runtime.peers import Peer
from jupiter.runtime.protocol import (
    Message,
    ProtocolError,
    Refusal,
    batch_parts,
    check,
    check_auth,
    check_file_header,
    check_sum,
    checksum,
    payload_size,
    read_header,
    read_payload,
    refusal_reply,
    refusal_result,
    reply,
    stream_payload,
)
from jupiter.runtime.router import MappedRouter, Router
from jupiter.runtime.routes import HttpError, Request, Routes
from jupiter.runtime.runner import TaskRunner
from jupiter.runtime.services import AcceptHandler, Extension, RequestHandler, ResultHandler, Sink
from jupiter.runtime.spool import FolderPool, OutboxJournal, OutboxRecord, SpaceWatch
from jupiter.runtime.staging import Staging
from jupiter.runtime.worker_pipe import TaskWorker

log = logging.getLogger("jupiter.agent")

SMALL_PAYLOAD = 256 * 1024
"""Files up to this size are read whole and stored in one write; bigger ones are streamed in chunks."""
PEER_PATIENCE = 120.0
"""Seconds an unreachable peer (an agent being restarted) is retried before its files count as failed."""
CALL_TIMEOUT = 30.0
"""Seconds a control-plane request may wait for the event loop."""
COUNTERS_SECONDS = 1.0
"""How often the counters no folder can rebuild are saved (`jupiter.runtime.counters`)."""


class Agent:
    """The agent of one node (module docstring); implements `jupiter.runtime.services.AgentServices`."""

    def __init__(self, plan: Plan, node: str, token: str, deployment: DeploymentLayout) -> None:
        self._plan = plan
        self.node = node
        self.token = token
        self.deployment = deployment
        self.layout = deployment.node(node)
        self.address = plan.nodes[node]
        self.emulation = Emulation(node, plan.testbed)
        self.staging = Staging.from_plan(plan, node, deployment.root)
        """With `TRANSFER` other than `http`: files are copied by that method, messages only name them."""
        self.peers = {
            name: Peer(
                name,
                address.host,
                address.data_port,
                retries=plan.retries,
                idle_timeout=plan.limits.idle_timeout,
                # Under pricing a dead node's frames go elsewhere: giving up early is what moves them.
                patience=0.0 if plan.priced else PEER_PATIENCE,
            )
            for name, address in plan.nodes.items()
        }
        self.pools: dict[str, FolderPool] = {}
        self.ids = itertools.count()
        self.started = time.time()
        self.background: list[asyncio.Task[Any]] = []
        self.stopping = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sink: EventSink = RemoteSink(token, plan.home, self.peer, self._home_oldest)
        self.router: Router = MappedRouter()
        self.extensions: list[Extension] = []
        self.space = SpaceWatch(str(self.layout.spool), plan.limits.spool_free)
        self.inbox = Inbox(node, lambda: self._plan, self.layout, self.pool, self.emit, self.space.low)
        self.outbox = Outbox(
            node,
            token,
            lambda: self._plan,
            OutboxJournal(str(self.layout.outbox)),
            self.peer,
            self.pool,
            self.emulation,
            self.staging,
            self.emit,
            self.spawn,
        )
        self.outbox.inbox = self.inbox
        self.workers: dict[str, TaskWorker] = {}
        self.helpers: list[HelperProcess] = []
        self.accepts: dict[str, AcceptHandler] = {}
        self.requests: dict[str, RequestHandler] = {}
        self.results: ResultHandler | None = None
        self.connections = 0
        self.saved_counters = SavedCounters(self.layout.counters)
        self.refusals = RefusalLog(log)
        """Refused messages are logged rate-limited, their peers' text escaped (`jupiter.runtime.logs`)."""
        self.routes = Routes()
        self._core_routes()
        for task in plan.tasks_on(node):
            self.inbox.add_task(task)

    # ------------------------------------------------------------ composition

    def use_sink(self, sink: EventSink) -> None:
        """Send events somewhere else (home records its own)."""
        self.sink = sink

    def use_router(self, router: Router) -> None:
        """Route outputs by another policy (pricing)."""
        self.router = router
        self.outbox.router = router

    def extend(self, extension: Extension) -> None:
        """Add an extension: its message kinds, routes, loops and status."""
        for kind, accept in extension.accepts().items():
            if kind in self.accepts:
                raise ValueError(f"two handlers for {kind} messages")
            self.accepts[kind] = accept
        results = extension.results()
        if results is not None:
            if self.results is not None:
                raise ValueError("two extensions take final outputs")
            self.results = results
        for kind, handler in extension.requests().items():
            if kind in self.requests or kind in self.accepts:
                raise ValueError(f"two handlers for {kind} messages")
            self.requests[kind] = handler
        extension.add_routes(self.routes)
        self.extensions.append(extension)

    def _home_oldest(self, home: str, sequence: int) -> None:
        """Home's oldest frame in flight: forget what is remembered of older ones."""
        self.inbox.forget_before(home, sequence)

    # --------------------------------------------------------------- services

    @property
    def plan(self) -> Plan:
        return self._plan

    def emit(self, event: Event) -> None:
        self.sink.emit(event)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self.background.append(asyncio.get_running_loop().create_task(coroutine))

    def on_loop(self, coroutine: Coroutine[Any, Any, Any], timeout: float = CALL_TIMEOUT) -> Any:
        assert self.loop is not None, "the agent is not running"
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout)

    def worker_env(self) -> dict[str, str]:
        """The environment of task workers and helpers: the node, the app's packages, where every task runs.

        `ALL_NODES`/`ALL_NODES_IPS` name every task and helper placed so far
        and the host of its node, as the original's pods had them.
        """
        env = dict(os.environ)
        env["JUPITER_NODE"] = self.node
        env.update(self.emulation.worker_env())
        plan = self._plan
        if plan.app_env:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, (plan.app_env, env.get("PYTHONPATH"))))
        placed = {task: node for task, node in plan.mapping.items() if node in plan.nodes}
        placed.update({helper.name: helper.node for helper in plan.helpers.values()})
        env["ALL_NODES"] = ":".join(placed)
        env["ALL_NODES_IPS"] = ":".join(plan.nodes[node].host for node in placed.values())
        return env

    def new_id(self) -> str:
        return f"{self.node}-{os.getpid()}-{next(self.ids)}"

    def peer(self, node: str) -> Peer:
        return self.peers[node]

    def counters(self) -> Mapping[str, TaskCounters]:
        return self.inbox.counters

    def pool(self, parent: str) -> FolderPool:
        if parent not in self.pools:
            self.pools[parent] = FolderPool(parent)
        return self.pools[parent]

    async def send(self, records: list[OutboxRecord], release: str | None = None) -> None:
        if release is not None:
            self.outbox.hold(release, len(records))
        records = await self.router.place(records)
        self.outbox.send(records)

    def deliver(self, records: list[OutboxRecord]) -> None:
        self.outbox.send(records)

    async def install_mapping(self, mapping: Mapping[str, str]) -> list[str]:
        """Dispatch: start the workers of this node's tasks under a mapping found after profiling.

        Agents start with no tasks while profiling runs. Moving a task that
        already runs is refused (no live re-mapping).
        """
        for task, node in self._plan.mapping.items():
            if mapping.get(task) != node:
                raise ValueError(f"task {task} already runs on {node}; live re-mapping is not supported")
        self._plan = dataclasses.replace(self._plan, mapping=dict(mapping))
        started = [task for task in self._plan.tasks_on(self.node) if task not in self.inbox.counters]
        for task in started:
            self.inbox.add_task(task)
        for helper in self.helpers:
            await helper.refresh()  # it now learns where every task runs, before any task starts
        await self._start_tasks(started)
        return started

    # ------------------------------------------------------------ data server

    async def handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one peer connection: read messages within the limits, answer each once it is safe.

        Nothing is read from a peer past a header before its token is checked;
        a peer that fails the check, or sends something that is not a
        message, gets one answer and the connection is closed.
        """
        peer = writer.get_extra_info("peername")
        limits = self._plan.limits
        if self.connections >= limits.max_connections:
            self.refusals.refused("connect", peer, f"too many connections (at most {limits.max_connections})")
            writer.close()
            return
        self.connections += 1
        try:
            while True:
                try:
                    header = await read_header(reader, limits)
                    if header is None:
                        return
                    problem = check_auth(header, self.token)
                    if problem is not None:
                        self.refusals.refused(header.get("kind"), peer, problem.reason)
                        writer.write(refusal_reply(problem))
                        await writer.drain()
                        return
                    answer = await self._serve(header, reader, peer)
                except ProtocolError as exc:
                    self.refusals.refused("?", peer, f"protocol error: {exc}")
                    writer.write(reply(False, f"protocol error: {exc}", refusal="refused"))
                    await writer.drain()
                    return
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            # The agent is stopping. Python 3.11's stream server logs a handler
            # that ends cancelled as an error with a traceback (one per open
            # connection at every teardown), so this one ends quietly instead.
            return
        finally:
            self.connections -= 1
            writer.close()

    async def _serve(self, header: dict[str, Any], reader: asyncio.StreamReader, peer: object) -> bytes:
        """The answer line to one authenticated message (its payload read here)."""
        limits = self._plan.limits
        kind = header["kind"]
        if kind == "batch":
            parts = batch_parts(header, limits)
            results = [refusal_result(await self._file(part, reader, peer)) for part in parts]
            return json.dumps({"ok": True, "results": results}).encode() + b"\n"
        if kind == "file":
            problem = await self._file(header, reader, peer)
            # A lone message means the pipeline is not busy: let a task runner that
            # it woke hand the frame to its worker before this acknowledgement is
            # written. (Within a batch the runner should rather wait and take every
            # frame at once.)
            await asyncio.sleep(0)
            return refusal_reply(problem)
        if kind == "ping":
            # Profiling probes may be big: verified as they stream by, never kept.
            size = payload_size(header, limits.max_payload)
            if await stream_payload(reader, size, limits, None) != header.get("sum"):
                return refusal_reply(Refusal.retry("checksum mismatch: payload corrupted in transit"))
            return refusal_reply(None)
        size = payload_size(header, limits.max_message)
        message = Message(header, await read_payload(reader, size, limits))
        problem = check(message, self.token)
        if problem is not None:
            self.refusals.refused(kind, peer, problem.reason)
            return refusal_reply(problem)
        request = self.requests.get(kind)
        if request is not None:
            return await request(message)
        accept = self.accepts.get(kind)
        if accept is None:
            return refusal_reply(Refusal.refused(f"{kind} messages go to home, not to {self.node}"))
        return refusal_reply(await accept(message))

    async def _file(self, header: dict[str, Any], reader: asyncio.StreamReader, peer: object) -> Refusal | None:
        """Take one file whose payload follows on the stream (or is staged); None once it is stored."""
        limits = self._plan.limits
        size = payload_size(header, limits.max_payload)
        problem = check_file_header(header) or check_sum(header)
        sink: Sink | None = None
        if problem is None:
            try:
                if "staged" in header:
                    await stream_payload(reader, size, limits, None)
                    return self._staged(header, peer)
                if size <= SMALL_PAYLOAD:
                    payload = await read_payload(reader, size, limits)
                    if checksum(payload) != header["sum"]:
                        problem = Refusal.retry("checksum mismatch: payload corrupted in transit")
                    else:
                        problem = self._take_file(header, payload, peer)
                    if problem is not None:
                        self._refused(problem, peer)
                    return problem
                opened = self._open_file(header, peer)
                if opened is None or isinstance(opened, Refusal):
                    problem = opened
                else:
                    sink = opened
            except OSError as exc:
                problem = Refusal.retry(f"cannot store the file: {exc.strerror or exc}")
        if sink is None:
            await stream_payload(reader, size, limits, None)  # keep the stream in step: the payload is not needed
            if problem is not None:
                self._refused(problem, peer)
            return problem
        try:
            received = await stream_payload(reader, size, limits, sink.write)
        except BaseException:
            sink.abort()
            raise
        if received != header["sum"]:
            sink.abort()
            return Refusal.retry("checksum mismatch: payload corrupted in transit")
        sink.commit()
        return None

    def _refused(self, problem: Refusal, peer: object) -> None:
        """Log a refused file; backpressure (`busy`) is the normal flow of a full pipeline, not worth a line."""
        if not problem.busy:
            self.refusals.refused("file", peer, problem.reason)

    def _peer_name(self, header: dict[str, Any]) -> str:
        """The node that sent a file (its source task's node is not known here; home for home's inputs)."""
        return str(header.get("from", "")) if isinstance(header.get("from"), str) else ""

    def _take_file(self, header: dict[str, Any], payload: bytes, peer: object) -> Refusal | None:
        """A small file, whole in memory."""
        if header.get("task") == HOME_TASK:
            if self.results is None:
                return Refusal.refused(f"final outputs go to a home node, not to {self.node}")
            opened = self.results(header, self._peer_name(header))
            if opened is None or isinstance(opened, Refusal):
                return opened
            opened.write(payload)
            opened.commit()
            return None
        return self.inbox.accept(header, payload, peer=self._peer_name(header))

    def _open_file(self, header: dict[str, Any], peer: object) -> Refusal | Sink | None:
        """Where a big file is written as it streams in."""
        if header.get("task") == HOME_TASK:
            if self.results is None:
                return Refusal.refused(f"final outputs go to a home node, not to {self.node}")
            return self.results(header, self._peer_name(header))
        return self.inbox.begin(header, self._peer_name(header))

    def _staged(self, header: dict[str, Any], peer: object) -> Refusal | None:
        """A file copied by another transfer method: the message names its staged copy."""
        if self.staging is None:
            return Refusal.refused(f"{self.node} stages no files: this deployment's TRANSFER is http")
        message, problem = self.staging.take(Message(header, b""))
        if problem is None:
            try:
                problem = self._take_file(message.header, message.payload, peer)
            except OSError as exc:
                problem = Refusal.retry(f"cannot store the file: {exc.strerror or exc}")
        if not (problem is not None and problem.busy):
            self.staging.discard(header)  # read (or refused): a busy sender offers this copy again
        return problem

    # ------------------------------------------------------------ control plane

    def _core_routes(self) -> None:
        routes = self.routes
        routes.get("/health", self._health, auth=False)
        routes.get("/status", lambda _: self.on_loop(self._snapshot()))
        routes.post("/flush", self._flush_route)
        routes.post("/mapping", self._mapping_route)
        routes.post("/testbed/speed", self._speed_route)
        routes.post("/transfer/check", self._transfer_check_route)

    def _health(self, _: Request) -> Any:
        return {"node": self.node, "deployment": self._plan.deployment, "ready": True}

    async def _snapshot(self) -> dict[str, Any]:
        return self.status()

    def _flush_route(self, _: Request) -> Any:
        self.on_loop(self.flush())
        return {"ok": True}

    def _mapping_route(self, request: Request) -> Any:
        data = request.json_object()
        mapping = data.get("mapping", {})
        if not isinstance(mapping, dict) or not all(
            isinstance(task, str) and isinstance(node, str) for task, node in mapping.items()
        ):
            raise HttpError(400, 'send {"mapping": {task: node, ...}}')
        unknown = sorted(set(mapping) - set(self._plan.tasks)) + sorted(set(mapping.values()) - set(self._plan.nodes))
        if unknown:
            raise HttpError(400, f"the mapping names unknown tasks or nodes: {', '.join(unknown[:5])}")
        try:
            started = self.on_loop(self.install_mapping(mapping), 60.0)
        except ValueError as exc:
            raise HttpError(409, str(exc)) from None
        return {"started": started}

    def _transfer_check_route(self, request: Request) -> Any:
        """Copy a probe to each peer once with `[CONFIG] TRANSFER`'s method: peer -> why it cannot be reached."""
        if self.staging is None:
            return {"method": "http", "unreachable": {}}
        peers = request.names("peers") or [name for name in self._plan.nodes if name != self.node]
        unknown = [peer for peer in peers if peer not in self._plan.nodes]
        if unknown:
            raise HttpError(400, f"not nodes of this deployment: {', '.join(unknown[:5])}")
        timeout = request.number("timeout", 60.0, minimum=1.0)
        probe = self.layout.dir / "transfer-probe"
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text(f"{self.staging.name} transfer check from {self.node}\n")
        failed = self.on_loop(self.staging.check(peers, probe), timeout)
        return {"method": self.staging.name, "unreachable": failed}

    def _speed_route(self, request: Request) -> Any:
        speed = request.json_object().get("speed")
        if isinstance(speed, bool) or not isinstance(speed, int | float):
            raise HttpError(400, 'send {"speed": factor} with 0 < factor <= 1')

        async def change() -> str | None:
            try:
                self.emulation.set_speed(float(speed))
            except ValueError as exc:
                return str(exc)
            return None

        problem = self.on_loop(change())
        if problem:
            raise HttpError(400, problem)
        return {"node": self.node, "speed": self.emulation.speed}

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        """Counters for `jupiter status`, with each extension's part."""
        status: dict[str, Any] = {
            "node": self.node,
            "role": self.address.role,
            "pid": os.getpid(),
            "uptime": time.time() - self.started,
            "tasks": {task: counters.to_json() for task, counters in self.inbox.counters.items()},
            "outbox": self.outbox.waiting(),
        }
        if self.helpers:
            status["helpers"] = {helper.spec.name: helper.status() for helper in self.helpers}
        for extension in self.extensions:
            status.update(extension.status())
        return status

    def counter_snapshot(self) -> dict[str, Any]:
        """What `counters.json` keeps: the tasks' peaks and the extensions' counters."""
        return {
            "peak": {task: counters.peak for task, counters in self.inbox.counters.items()},
            "extensions": {extension.name: dict(extension.counters()) for extension in self.extensions},
        }

    async def _keep_counters(self) -> None:
        while True:
            await asyncio.sleep(COUNTERS_SECONDS)
            self.saved_counters.save(self.counter_snapshot())

    async def flush(self) -> None:
        """Deliver every queued event and make every extension's buffers durable (before a run is summarised)."""
        await self.sink.flush()
        for extension in self.extensions:
            await extension.flush()

    # -------------------------------------------------------------- lifecycle

    def recover(self) -> None:
        """Rebuild queues and the outbox from the node's folder after a (re)start."""
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        if self.staging is not None:
            os.makedirs(self.staging.folder, exist_ok=True)
        saved = self.saved_counters.load()
        self.inbox.restore_peaks(whole_numbers(saved.get("peak")))
        extensions = saved.get("extensions")
        for extension in self.extensions:
            if isinstance(extensions, dict):
                extension.restore_counters(whole_numbers(extensions.get(extension.name)))
        self.inbox.recover()
        referenced = self.outbox.recover()
        for task in self.inbox.counters:
            work = self.pool(str(self.layout.work(task)))
            for folder in sorted(os.listdir(work.parent)):
                if f"{work.parent}/{folder}" not in referenced:
                    work.release(f"{work.parent}/{folder}")

    async def _start_tasks(self, tasks: list[str]) -> None:
        """Start the workers of some tasks side by side (each imports its script once), then their runners."""
        plan = self._plan
        workers = [TaskWorker(plan.tasks[task], self.layout.task_log(task), self.worker_env()) for task in tasks]
        await asyncio.gather(*(worker.start() for worker in workers))
        for worker in workers:
            if worker.load_error:
                log.error("task %s cannot load: %s", worker.task, worker.load_error)
            self.workers[worker.task] = worker
            runner = TaskRunner(
                worker.task,
                self.node,
                self.token,
                lambda: self._plan,
                worker,
                self.inbox,
                self.outbox,
                self.router,
                self.emulation,
                self.pool(str(self.layout.work(worker.task))),
                self.emit,
                self.new_id,
            )
            self.spawn(runner.run())

    async def _start_helpers(self) -> None:
        """Start the app's helper processes of this node and keep them running (`jupiter.runtime.helpers`)."""
        for spec in self._plan.helpers_on(self.node):
            helper = HelperProcess(
                spec, Path(self._plan.app_path), self.deployment.helper_log(self.node, spec.name), self.worker_env
            )
            await helper.start()
            self.helpers.append(helper)

    async def start(self) -> None:
        """Recover, start helpers, workers, the extensions, the data server and the background loops."""
        self.loop = asyncio.get_running_loop()
        self.recover()
        for extension in self.extensions:
            await extension.start()
        await self._start_helpers()  # before any task, which may need them
        await self._start_tasks(list(self.inbox.counters))
        self.spawn(self.sink.run())
        self.spawn(self.refusals.run())
        self.spawn(self._keep_counters())
        for extension in self.extensions:
            for coroutine in extension.loops():
                self.spawn(coroutine)
        self.server = await asyncio.start_server(
            self.handle_connection,
            self.address.host,
            self.address.data_port,
            reuse_address=True,
            limit=1024 * 1024,
        )

    async def stop(self) -> None:
        """Stop serving, flush statistics, stop workers."""
        self.server.close()
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        with contextlib.suppress(OSError):
            await asyncio.wait_for(self.sink.flush(), timeout=5.0)
        for extension in self.extensions:
            await extension.stop()
        for worker in self.workers.values():
            await worker.stop()
        for helper in self.helpers:
            await helper.stop()
        for peer in self.peers.values():
            await peer.close()
        with contextlib.suppress(OSError):
            self.saved_counters.save(self.counter_snapshot())
        self.inbox.close()
        self.outbox.journal.close()
