"""The node agent: one long-lived process per node, composed of a few collaborators.

* the **inbox** (`jupiter.runtime.inbox`) stores each task's inputs per
  frame and queues a frame once NUM_INPUTS have arrived;
* one **task runner** per task (`jupiter.runtime.runner`) runs ready frames
  in the task's resident worker and routes the outputs by FLAG;
* the **outbox** (`jupiter.runtime.outbox`) delivers outputs, journalled
  until acknowledged, handing over on this node what stays here;
* the **event sink** (`jupiter.runtime.event_sink`) carries statistics to home;
* the **router** (`jupiter.runtime.router`) says where outputs go;
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
from jupiter.runtime.counters import TaskCounters
from jupiter.runtime.emulation import Emulation
from jupiter.runtime.event_sink import EventSink, RemoteSink
from jupiter.runtime.inbox import Inbox
from jupiter.runtime.outbox import Outbox
from jupiter.runtime.peers import Peer
from jupiter.runtime.protocol import (
    Message,
    ProtocolError,
    Refusal,
    check,
    read_message,
    refusal_reply,
    refusal_result,
    reply,
    split_batch,
)
from jupiter.runtime.router import MappedRouter, Router
from jupiter.runtime.routes import HttpError, Request, Routes
from jupiter.runtime.runner import TaskRunner
from jupiter.runtime.services import AcceptHandler, Extension, RequestHandler
from jupiter.runtime.spool import FolderPool, OutboxJournal, OutboxRecord
from jupiter.runtime.staging import Staging
from jupiter.runtime.worker_pipe import TaskWorker

log = logging.getLogger("jupiter.agent")

RESULT = "result"
"""Key under which home's extension accepts files for the `home` task (a frame's final outputs)."""
CALL_TIMEOUT = 30.0
"""Seconds a control-plane request may wait for the event loop."""


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
            name: Peer(name, address.host, address.data_port, retries=plan.retries)
            for name, address in plan.nodes.items()
        }
        self.pools: dict[str, FolderPool] = {}
        self.ids = itertools.count()
        self.started = time.time()
        self.background: list[asyncio.Task[Any]] = []
        self.stopping = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sink: EventSink = RemoteSink(token, plan.home, self.peer)
        self.router: Router = MappedRouter()
        self.extensions: list[Extension] = []
        self.inbox = Inbox(node, lambda: self._plan, self.layout, self.pool, self.emit)
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
        self.accepts: dict[str, AcceptHandler] = {"ping": self._ping, "file": self._file}
        self.requests: dict[str, RequestHandler] = {}
        self.results: AcceptHandler | None = None
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
            if kind == RESULT:
                self.results = accept
            elif kind in self.accepts:
                raise ValueError(f"two handlers for {kind} messages")
            else:
                self.accepts[kind] = accept
        for kind, handler in extension.requests().items():
            if kind in self.requests or kind in self.accepts:
                raise ValueError(f"two handlers for {kind} messages")
            self.requests[kind] = handler
        extension.add_routes(self.routes)
        self.extensions.append(extension)

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
        env = dict(os.environ)
        env["JUPITER_NODE"] = self.node
        env.update(self.emulation.worker_env())
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
        await self._start_tasks(started)
        return started

    # ------------------------------------------------------------ data server

    async def handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one peer connection: read messages, answer each once it is safe."""
        peername = writer.get_extra_info("peername")
        try:
            while True:
                try:
                    message = await read_message(reader)
                except ProtocolError as exc:
                    writer.write(reply(False, f"protocol error: {exc}", refusal="refused"))
                    await writer.drain()
                    return
                if message is None:
                    return
                writer.write(await self._answer(message, peername))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            # The agent is stopping. Python 3.11's stream server logs a handler
            # that ends cancelled as an error with a traceback (one per open
            # connection at every teardown), so this one ends quietly instead.
            return
        finally:
            writer.close()

    async def _answer(self, message: Message, peername: object) -> bytes:
        """The answer line to one message."""
        problem = check(message, self.token)
        if problem is not None:
            log.warning("refused %s from %s: %s", message.kind, peername, problem)
            return refusal_reply(problem)
        if message.kind == "batch":
            try:
                parts = split_batch(message)
            except ProtocolError as exc:
                return refusal_reply(Refusal.refused(f"protocol error: {exc}"))
            results = [refusal_result(await self._take(part, peername)) for part in parts]
            return json.dumps({"ok": True, "results": results}).encode() + b"\n"
        request = self.requests.get(message.kind)
        if request is not None:
            return await request(message)
        problem = await self._take(message, peername)
        # A lone message means the pipeline is not busy: let a task runner that
        # it woke hand the frame to its worker before this acknowledgement is
        # written. (Within a batch the runner should rather wait and take every
        # frame at once.)
        await asyncio.sleep(0)
        return refusal_reply(problem)

    async def _take(self, message: Message, peername: object) -> Refusal | None:
        """Check and accept one message; None once it is stored, else why it is refused."""
        problem = Refusal.refused("batches cannot be nested") if message.kind == "batch" else check(message, self.token)
        staged = problem is None and message.kind == "file" and "staged" in message.header
        if staged:
            if self.staging is None:
                problem = Refusal.refused(f"{self.node} stages no files: this deployment's TRANSFER is http")
            else:
                message, problem = self.staging.take(message)
        if problem is None:
            accept = self.accepts.get(message.kind)
            if accept is None:
                problem = Refusal.refused(f"{message.kind} messages go to home, not to {self.node}")
            else:
                try:
                    problem = await accept(message)
                except OSError as exc:
                    problem = Refusal.retry(f"cannot store the file: {exc}")
        if staged and self.staging is not None and not (problem is not None and problem.busy):
            self.staging.discard(message.header)  # read (or refused): a busy sender offers this copy again
        if problem is not None:
            log.warning("refused %s from %s: %s", message.kind, peername, problem)
        return problem

    async def _ping(self, message: Message) -> Refusal | None:
        return None

    async def _file(self, message: Message) -> Refusal | None:
        if message.header.get("task") == HOME_TASK:
            if self.results is None:
                return Refusal.refused(f"final outputs go to a home node, not to {self.node}")
            return await self.results(message)
        return self.inbox.accept(message.header, message.payload)

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
        for extension in self.extensions:
            status.update(extension.status())
        return status

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
        self.inbox.recover()
        referenced = self.outbox.recover()
        for task in self.inbox.counters:
            work = self.pool(str(self.layout.work(task)))
            for folder in sorted(os.listdir(work.parent)):
                if f"{work.parent}/{folder}" not in referenced:
                    work.release(f"{work.parent}/{folder}")

    async def _start_tasks(self, tasks: list[str]) -> None:
        """Start the resident workers of some tasks side by side (each imports its script once), then their runners."""
        plan = self._plan
        workers = [
            TaskWorker(task, Path(plan.tasks[task].script), self.layout.task_log(task), self.worker_env())
            for task in tasks
        ]
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

    async def start(self) -> None:
        """Recover, start workers, the extensions, the data server and the background loops."""
        self.loop = asyncio.get_running_loop()
        self.recover()
        for extension in self.extensions:
            await extension.start()
        await self._start_tasks(list(self.inbox.counters))
        self.spawn(self.sink.run())
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
        for peer in self.peers.values():
            await peer.close()
        self.inbox.close()
        self.outbox.journal.close()
