"""The node agent: one long-lived process per node.

An agent receives files for the tasks mapped to its node, groups them per
frame until the task's NUM_INPUTS have arrived, runs the task in a resident
worker process, routes the outputs by FLAG and reports timestamps to home.
The home node's agent also feeds input files to the ingress tasks and
collects final outputs and statistics (see `jupiter.runtime.home`).

Crash safety: everything a sender was told is delivered is on disk before
the `ok` answer (written under a temporary name, then renamed), and every
output waiting to be sent is recorded in the outbox. A restarted agent
rebuilds its queues from its folder. Re-sent files are recognised by their
(frame, source task, output index) slot and acknowledged without being
processed twice.

Folder layout under the node's folder (see `jupiter.runtime.store`):
`inbox/<task>/d<n>/` a frame's inputs with their slot markers,
`work/<task>/d<n>/` a frame's outputs (both folders are pooled and reused),
`outbox.log` the journal of messages not yet acknowledged,
`done.log` the (task, frame) pairs already processed,
`staging/` copies made by another transfer method (`jupiter.runtime.staging`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupiter.runtime.emulation import Emulation
from jupiter.runtime.plan import HOME_TASK, Plan
from jupiter.runtime.pricing import PRICING_MESSAGES, PricingService
from jupiter.runtime.protocol import BUSY, MAX_BATCH, Message, ProtocolError, check, read_message, reply, split_batch
from jupiter.runtime.staging import Staging
from jupiter.runtime.store import (
    FolderPool,
    OutboxJournal,
    OutboxRecord,
    link_input,
    read_slots,
    store_input,
)
from jupiter.runtime.transfer import Peer, TransferFailed

log = logging.getLogger("jupiter.agent")

EVENT_FLUSH_SECONDS = 0.1
BUSY_RETRY_SECONDS = 0.02


@dataclass
class TaskCounters:
    """Per-task progress, as `jupiter status` shows it."""

    waiting: int = 0
    """Frames with some but not all inputs."""
    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    peak: int = 0
    """Most frames held at once (waiting, queued or running)."""


@dataclass
class _Slots:
    """Inputs of one frame of one task, by slot (`<source task>.<output index>`)."""

    folder: str
    names: dict[str, str] = field(default_factory=dict)
    first_seen: float = 0.0
    home: str = ""
    """The home node the frame came from (its results go back there)."""
    born: float = 0.0
    """When that home started the frame (pricing's push choices apply by birth time)."""


class WorkerCrashed(Exception):
    """The worker process died while running a task."""


class TaskWorker:
    """A resident worker process for one task (see `jupiter.runtime.worker`)."""

    def __init__(self, task: str, script: Path, log_path: Path, env: dict[str, str]) -> None:
        self.task = task
        self.script = script
        self.log_path = log_path
        self.env = env
        self.process: asyncio.subprocess.Process | None = None
        self.load_error: str | None = None

    async def start(self) -> None:
        """Start the process and wait until the script is imported."""
        with self.log_path.open("ab") as log_file:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "jupiter.runtime.worker",
                str(self.script),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                cwd=str(self.script.parent),
                env=self.env,
                limit=16 * 1024 * 1024,
            )
        hello = await self._read()
        if not hello.get("ok"):
            self.load_error = str(hello.get("error", "worker failed to start"))

    async def _read(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            code = await self.process.wait()
            raise WorkerCrashed(f"worker of {self.task} exited with code {code}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def run(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run the task on several frames in one round trip; restarts the process if it died."""
        if self.process is None or self.process.returncode is not None:
            await self.start()
        if self.load_error is not None:
            now = time.time()
            return [{"ok": False, "error": self.load_error, "execute": now, "finish": now} for _ in jobs]
        assert self.process is not None and self.process.stdin is not None
        started = time.time()
        try:
            self.process.stdin.write(json.dumps({"jobs": jobs}).encode() + b"\n")
            await self.process.stdin.drain()
            answer = await self._read()
        except (WorkerCrashed, ConnectionError) as exc:
            self.process = None
            return [{"ok": False, "error": str(exc), "execute": started, "finish": time.time()} for _ in jobs]
        results: list[dict[str, Any]] = answer["results"]
        return results

    async def stop(self) -> None:
        """Close the worker's input and wait for it to exit."""
        if self.process is None or self.process.returncode is not None:
            return
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), timeout=3)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class Agent:
    """The agent of one node. The home node's agent is a `HomeAgent`."""

    def __init__(self, plan: Plan, node: str, token: str, root: Path, spool: Path | None = None) -> None:
        self.plan = plan
        self.node = node
        self.token = token
        self.dir = root / "nodes" / node
        self.spool = (spool or root) / "nodes" / node
        """Where the files in transit live: `inbox/<task>` (inputs) and `work/<task>` (outputs)."""
        self.address = plan.nodes[node]
        self.tasks = plan.tasks_on(node)
        self.counters = {task: TaskCounters() for task in self.tasks}
        self.peers = {
            name: Peer(name, address.host, address.data_port, retries=plan.retries)
            for name, address in plan.nodes.items()
        }
        self.slots: dict[tuple[str, str], _Slots] = {}
        self.done: set[tuple[str, str]] = set()
        self.queues: dict[str, asyncio.Queue[str]] = {task: asyncio.Queue() for task in self.tasks}
        self.outbox: dict[str, asyncio.Queue[OutboxRecord]] = {}
        self.pending_release: dict[str, int] = {}
        self.events: deque[dict[str, Any]] = deque()
        self.workers: dict[str, TaskWorker] = {}
        self.background: list[asyncio.Task[Any]] = []
        self.stopping = asyncio.Event()
        self.done_log: Any = None
        self.journal = OutboxJournal(str(self.dir / "outbox.log"))
        self.ids = itertools.count()
        self.pools: dict[str, FolderPool] = {}
        self.started = time.time()
        self.emulation = Emulation.from_plan(plan.extra, node)
        self.pricing = PricingService(self) if plan.priced else None
        self.staging = Staging.from_plan(plan, node, root)
        """With `TRANSFER` other than `http`: files are copied by that method, messages only name them."""

    # ------------------------------------------------------------------ paths

    def pool(self, parent: str) -> FolderPool:
        """The folder pool of a parent folder (one per task for inputs and for outputs)."""
        if parent not in self.pools:
            self.pools[parent] = FolderPool(parent)
        return self.pools[parent]

    def release_folder(self, folder: str) -> None:
        """Give a pooled folder back, emptied."""
        self.pool(os.path.dirname(folder)).release(folder)

    def new_id(self) -> str:
        """A message id unique to this agent process and its restarts."""
        return f"{self.node}-{os.getpid()}-{next(self.ids)}"

    # --------------------------------------------------------------- recovery

    def recover(self) -> None:
        """Rebuild queues and the outbox from the node's folder after a (re)start."""
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        if self.staging is not None:
            os.makedirs(self.staging.folder, exist_ok=True)
        done_path = self.dir / "done.log"
        if done_path.exists():
            for line in done_path.read_text().splitlines():
                task, _, frame = line.partition(" ")
                if frame:
                    self.done.add((task, frame))
        self.done_log = done_path.open("a", buffering=1)
        referenced: set[str] = set()
        for record in self.journal.recover():
            if record.release:
                referenced.add(record.release)
                self.pending_release[record.release] = self.pending_release.get(record.release, 0) + 1
            self._queue_for(record.dest).put_nowait(record)
        for task in self.tasks:
            work = self.pool(f"{self.spool}/work/{task}")
            for folder in sorted(os.listdir(work.parent)):
                if f"{work.parent}/{folder}" not in referenced:
                    work.release(f"{work.parent}/{folder}")
            inbox = self.pool(f"{self.spool}/inbox/{task}")
            for name in sorted(os.listdir(inbox.parent)):
                folder = f"{inbox.parent}/{name}"
                held, names = read_slots(folder)
                if held is None or (task, held) in self.done:
                    inbox.release(folder)
                    continue
                self.slots[(task, held)] = _Slots(folder, names, time.time())
                self.counters[task].waiting += 1
                self._maybe_ready(task, held)

    # ------------------------------------------------------------ data server

    async def handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one peer connection: read messages, answer each once it is safe."""
        try:
            while True:
                try:
                    message = await read_message(reader)
                except ProtocolError as exc:
                    writer.write(reply(False, f"protocol error: {exc}"))
                    await writer.drain()
                    return
                if message is None:
                    return
                problem = check(message, self.token)
                if problem is None and message.kind == "batch":
                    try:
                        parts = split_batch(message)
                    except ProtocolError as exc:
                        problem = f"protocol error: {exc}"
                    else:
                        results = [await self._take(part, writer) for part in parts]
                        writer.write(json.dumps({"ok": True, "results": results}).encode() + b"\n")
                        await writer.drain()
                        continue
                if problem is None and message.kind in PRICING_MESSAGES:
                    if self.pricing is None:
                        writer.write(reply(False, "this deployment does not use pricing"))
                    else:
                        writer.write(self.pricing.handle(message.kind, message.header, message.payload))
                    await writer.drain()
                    continue
                if problem is None:
                    problem = await self._take(message, writer)
                    # A lone message means the pipeline is not busy: let a task
                    # runner that it woke hand the frame to its worker before
                    # this acknowledgement is written. (Within a batch the
                    # runner should rather wait and take every frame at once.)
                    await asyncio.sleep(0)
                elif problem:
                    log.warning("refused %s from %s: %s", message.kind, writer.get_extra_info("peername"), problem)
                writer.write(reply(not problem, problem or ""))
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

    async def _take(self, message: Message, writer: asyncio.StreamWriter) -> str:
        """Check and accept one message; '' once it is stored, else why it is refused."""
        if message.kind == "batch":
            problem: str | None = "batches cannot be nested"
        else:
            problem = check(message, self.token)
        staged = problem is None and message.kind == "file" and "staged" in message.header
        if staged:
            if self.staging is None:
                problem = f"{self.node} stages no files: this deployment's TRANSFER is http"
            else:
                message, problem = self.staging.take(message)
        if problem is None:
            try:
                problem = await self.accept(message)
            except OSError as exc:
                problem = f"cannot store the file: {exc}"
        if staged and self.staging is not None and not (problem or "").startswith(BUSY):
            self.staging.discard(message.header)  # read (or refused): a busy sender offers this copy again
        if problem:
            log.warning("refused %s from %s: %s", message.kind, writer.get_extra_info("peername"), problem)
        return problem or ""

    async def accept(self, message: Message) -> str | None:
        """Take a checked message; return why it is refused, or None once it is stored."""
        header = message.header
        if message.kind == "ping":
            return None
        if message.kind == "file":
            return await self.accept_file(header, message.payload)
        return f"{message.kind} messages go to home, not to {self.node}"

    async def accept_file(self, header: dict[str, Any], payload: bytes, source: str | None = None) -> str | None:
        """Take one input file of a frame (`source`: a file of this node handed over without a copy)."""
        task, frame = str(header.get("task")), str(header.get("frame"))
        slot = f"{header.get('src')}@{header.get('idx')}"
        if task not in self.counters:
            return f"task {task} is not on this node ({self.node})"
        origin = str(header.get("home") or self.plan.home)
        if origin not in self.plan.all_homes:
            return f"unknown home node {origin!r}"
        if not frame or not frame.replace("-", "").replace("_", "").isalnum():
            return f"bad frame id {frame!r}"
        if (task, frame) in self.done:
            return None
        key = (task, frame)
        if key not in self.slots:
            limit = self.plan.queue_size
            if 0 <= limit <= self._frames_held(task):
                # Backpressure: the sender keeps this input and offers it again
                # later. Inputs of frames already started are always taken, so
                # fan-in tasks can finish the frames they hold.
                return f"{BUSY} {task} holds {limit} frames (TASK_QUEUE_SIZE)"
            folder = self.pool(f"{self.spool}/inbox/{task}").acquire()
            born = header.get("born")
            self.slots[key] = _Slots(
                folder, first_seen=time.time(), home=origin, born=born if isinstance(born, float) else time.time()
            )
            counters = self.counters[task]
            counters.waiting += 1
            counters.peak = max(counters.peak, self._frames_held(task))
        slots = self.slots[key]
        if slot in slots.names:
            return None
        slots.names[slot] = self.store_received(
            slots.folder, frame, slot, header, payload, slots.names.values(), source
        )
        self._maybe_ready(task, frame)
        return None

    def store_received(
        self,
        folder: str,
        frame: str,
        slot: str,
        header: dict[str, Any],
        payload: bytes,
        taken: Collection[str],
        source: str | None = None,
    ) -> str:
        """Store one received file of a frame, logging the receipt; returns the name it was stored under.

        Two parents may send files of the same name to one child: the later one
        is prefixed with its source task so neither is overwritten. With
        `source` (a parent's output on this node) the file is linked, not copied.
        """
        name = str(header["name"])
        if name in taken:
            name = f"{header.get('src')}_{name}"
        if source is not None:
            path = link_input(folder, frame, slot, name, source)
        else:
            path = store_input(folder, frame, slot, name, payload)
        if self.plan.receiver_stats:
            self.emit(
                {
                    "type": "transfer",
                    "side": "receiver",
                    "node": self.node,
                    "path": path,
                    "time": time.time(),
                    "frame": frame,
                    "home": header.get("home", self.plan.home),
                }
            )
        return name

    def _frames_held(self, task: str) -> int:
        counters = self.counters[task]
        return counters.waiting + counters.queued + counters.running

    def _maybe_ready(self, task: str, frame: str) -> bool:
        """Queue the frame for its task once every input is in; returns whether it was queued."""
        slots = self.slots.get((task, frame))
        if slots is None or len(slots.names) < self.plan.tasks[task].num_inputs:
            return False
        counters = self.counters[task]
        counters.waiting = max(0, counters.waiting - 1)
        counters.queued += 1
        self.queues[task].put_nowait(frame)
        return True

    # ------------------------------------------------------------ task runner

    async def run_task(self, task: str) -> None:
        """Run the frames of one task in arrival order, forever; a backlog goes to the worker in one batch."""
        spec = self.plan.tasks[task]
        worker = self.workers[task]
        queue = self.queues[task]
        counters = self.counters[task]
        order = self._slot_order(spec)
        while True:
            frames = [await queue.get()]
            while len(frames) < MAX_BATCH and not queue.empty():
                frames.append(queue.get_nowait())
            counters.queued -= len(frames)
            counters.running += len(frames)
            enter = time.time()
            jobs = []
            outs = []
            for frame in frames:
                slots = self.slots[(task, frame)]
                files = [slots.names[slot] for slot in sorted(slots.names, key=order)]
                out = self.pool(f"{self.spool}/work/{task}").acquire()
                outs.append(out)
                jobs.append(
                    {
                        "files": files,
                        "single": spec.num_inputs == 1,
                        "pathin": slots.folder,
                        "pathout": out,
                        "speed": self.emulation.speed,
                    }
                )
            async with self.emulation.processor():  # a testbed node runs one task at a time
                answers = await worker.run(jobs)
                if self.pricing is not None:
                    self.pricing.task_finished(task, answers)
            records: list[OutboxRecord] = []
            for frame, job, out, answer in zip(frames, jobs, outs, answers, strict=True):
                error = answer.get("error") if not answer.get("ok") else None
                if error is None:
                    routed = self.route(task, frame, answer["outputs"], out)
                    if isinstance(routed, str):
                        error = routed
                    else:
                        records += routed
                counters.running -= 1
                if error is None:
                    counters.done += 1
                else:
                    counters.failed += 1
                    self.release_folder(out)
                self.emit(
                    {
                        "type": "task",
                        "task": task,
                        "frame": frame,
                        "node": self.node,
                        "files": job["files"],
                        "arrive": self.slots[(task, frame)].first_seen,
                        "enter": enter,
                        "execute": answer.get("execute", enter),
                        "finish": answer.get("finish", time.time()),
                        "ok": error is None,
                        "error": error,
                        "home": self.slots[(task, frame)].home,
                    }
                )
            if records and self.pricing is not None:
                records = await self._place(records)
            if records:
                records = await self._hand_over(records)
            if records:
                self.journal.add(records)
            for record in records:
                self._queue_for(record.dest).put_nowait(record)
            if len(frames) == 1:
                # A lone frame means the pipeline is not busy: let the send loops
                # put its outputs on the wire before the bookkeeping below. Under
                # load, finishing first lets more outputs share a batch.
                await asyncio.sleep(0)
            for frame in frames:
                self._finish(task, frame)

    async def _hand_over(self, records: list[OutboxRecord]) -> list[OutboxRecord]:
        """Give outputs whose child runs on this node straight to it; returns the records still to send.

        The output file is hard-linked into the child's inbox: no copy, no
        checksum, no network, no journal entry (a crash before the parent is
        marked done runs it again, and the child recognises the slot). A
        child that is full (TASK_QUEUE_SIZE) gets it through the outbox,
        which waits and offers it again.
        """
        remote: list[OutboxRecord] = []
        linked: set[str] = set()
        for record in records:
            if record.dest != self.node or record.header.get("task") == HOME_TASK or self.staging is not None:
                remote.append(record)
                continue
            try:
                if record.payload in linked:
                    # One output for several children here (FLAG true): each gets its own copy,
                    # as over the network, so a task that writes to its input cannot touch another's.
                    with open(record.payload, "rb") as handle:
                        problem = await self.accept_file(record.header, handle.read())
                else:
                    problem = await self.accept_file(record.header, b"", source=record.payload)
                    linked.add(record.payload)
            except OSError as exc:
                problem = f"cannot hand over {record.payload}: {exc}"
            if problem:
                remote.append(record)
                continue
            self.emit(
                {
                    "type": "transfer",
                    "side": "sender",
                    "node": self.node,
                    "path": record.payload,
                    "time": time.time(),
                    "frame": record.header.get("frame"),
                    "home": record.header.get("home", self.plan.home),
                }
            )
            self._release(record.release)
        return remote

    async def _place(self, records: list[OutboxRecord]) -> list[OutboxRecord]:
        """Pricing: choose the node of each output's child task, per frame."""
        assert self.pricing is not None
        placed: list[OutboxRecord] = []
        by_frame: dict[float, list[OutboxRecord]] = {}
        for record in records:
            by_frame.setdefault(float(record.header.get("born") or 0.0), []).append(record)
        for born, group in by_frame.items():
            placed += await self.pricing.place(group, born)
        return placed

    @staticmethod
    def _slot_order(spec: Any) -> Any:
        position = {parent: index for index, parent in enumerate(spec.parents)}

        def key(slot: str) -> tuple[int, str]:
            source, _, index = slot.rpartition("@")
            return (position.get(source, -1), index)

        return key

    def _finish(self, task: str, frame: str) -> None:
        self.done.add((task, frame))
        assert self.done_log is not None
        self.done_log.write(f"{task} {frame}\n")
        slots = self.slots.pop((task, frame), None)
        if slots is not None:
            self.release_folder(slots.folder)

    def route(self, task: str, frame: str, outputs: list[str], out: str) -> list[OutboxRecord] | str:
        """Records sending a task's outputs to its children, or why they cannot be routed."""
        spec = self.plan.tasks[task]
        if spec.flag:
            if len(outputs) != 1:
                return (
                    f"{task} has FLAG true, so it must return exactly one output (sent to every child); "
                    f"it returned {len(outputs)}"
                )
            pairs = [(child, outputs[0]) for child in spec.children]
        else:
            if len(outputs) != len(spec.children):
                return (
                    f"{task} has FLAG false and {len(spec.children)} children, so it must return "
                    f"{len(spec.children)} outputs (the i-th goes to the i-th child); it returned {len(outputs)}"
                )
            pairs = list(zip(spec.children, outputs, strict=True))
        records = []
        slots = self.slots.get((task, frame))
        origin = slots.home if slots is not None and slots.home else self.plan.home
        for index, (child, path) in enumerate(pairs):
            # With pricing, `dest` of a task is replaced by the chosen node before sending.
            dest = origin if child == HOME_TASK else self.plan.mapping[child]
            header = {
                "kind": "file",
                "token": self.token,
                "frame": frame,
                "task": child,
                "src": task,
                "idx": index,
                "name": os.path.basename(path),
                "home": origin,
                "born": slots.born if slots is not None else time.time(),
            }
            records.append(OutboxRecord(self.new_id(), dest, header, path, out))
        self.pending_release[out] = self.pending_release.get(out, 0) + len(records)
        return records

    # ------------------------------------------------------------------ outbox

    def _queue_for(self, dest: str) -> asyncio.Queue[OutboxRecord]:
        if dest not in self.outbox:
            self.outbox[dest] = asyncio.Queue()
            for _ in range(2):
                self.background.append(asyncio.get_running_loop().create_task(self._send_loop(dest)))
        return self.outbox[dest]

    async def _send_loop(self, dest: str) -> None:
        """Send queued records to one peer, as many per round trip as are waiting."""
        queue = self.outbox[dest]
        peer = self.peers[dest]
        while True:
            batch = [await queue.get()]
            while len(batch) < MAX_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            started = time.time()
            parts: list[tuple[dict[str, Any], bytes]] = []
            sendable: list[OutboxRecord] = []
            errors: dict[str, str] = {}
            for record in batch:
                try:
                    with open(record.payload, "rb") as handle:
                        parts.append((dict(record.header, token=self.token), handle.read()))
                    sendable.append(record)
                except OSError as exc:
                    errors[record.ident] = f"cannot read {record.payload}: {exc.strerror}"
            if parts:
                await self.emulation.shape(dest, [len(payload) for _, payload in parts])
                if self.staging is None:
                    outcome, _ = await peer.send_batch(parts, self.token)
                else:
                    outcome = await self.staging.send_batch(peer, sendable, parts, self.token)
                errors.update((record.ident, error) for record, error in zip(sendable, outcome, strict=True) if error)
            if self.pricing is not None and errors:
                batch = await self._reroute(dest, batch, errors)
            busy = [record for record in batch if errors.get(record.ident, "").startswith(BUSY)]
            if busy:
                loop = asyncio.get_running_loop()
                for record in busy:
                    loop.call_later(BUSY_RETRY_SECONDS, queue.put_nowait, record)
                batch = [record for record in batch if record not in busy]
            for record in batch:
                error = errors.get(record.ident)
                if error:
                    log.error("transfer of %s to %s failed: %s", record.payload, dest, error)
                    self.emit(
                        {
                            "type": "transfer_failed",
                            "node": self.node,
                            "dest": dest,
                            "frame": record.header.get("frame"),
                            "task": record.header.get("task"),
                            "error": error,
                            "home": record.header.get("home", self.plan.home),
                        }
                    )
                self.emit(
                    {
                        "type": "transfer",
                        "side": "sender",
                        "node": self.node,
                        "path": record.payload,
                        "time": -1 if error else started,
                        "frame": record.header.get("frame"),
                        "home": record.header.get("home", self.plan.home),
                    }
                )
            if batch:
                self.journal.ack([record.ident for record in batch])
            for record in batch:
                self._release(record.release)

    async def _reroute(self, dest: str, batch: list[OutboxRecord], errors: dict[str, str]) -> list[OutboxRecord]:
        """Pricing: send what `dest` could not take (not mere backpressure) to another node instead.

        Returns the records still to be settled here; the others are journalled
        again for their new node and acknowledged here without a failure.
        """
        assert self.pricing is not None
        keep: list[OutboxRecord] = []
        moved: list[OutboxRecord] = []
        for record in batch:
            error = errors.get(record.ident, "")
            task = str(record.header.get("task"))
            if not error or error.startswith(BUSY) or task == HOME_TASK:
                keep.append(record)
                continue
            size = os.path.getsize(record.payload) if os.path.exists(record.payload) else 0
            new_dest = await self.pricing.destination(
                task, str(record.header.get("frame")), float(record.header.get("born") or 0.0), size, exclude={dest}
            )
            if new_dest == dest:
                keep.append(record)
                continue
            log.warning(
                "%s did not take %s of frame %s (%s); sending it to %s",
                dest,
                task,
                record.header.get("frame"),
                error,
                new_dest,
            )
            moved.append(record)
            again = OutboxRecord(self.new_id(), new_dest, record.header, record.payload, record.release)
            self.journal.add([again])
            self._queue_for(new_dest).put_nowait(again)
        if moved:
            # The moved records' folders are released when their new copies are delivered.
            self.journal.ack([record.ident for record in moved])
        return keep

    def _release(self, folder: str | None) -> None:
        if folder is None:
            return
        left = self.pending_release.get(folder, 1) - 1
        if left <= 0:
            self.pending_release.pop(folder, None)
            self.release_folder(folder)
        else:
            self.pending_release[folder] = left

    # ------------------------------------------------------------------ events

    def emit(self, event: dict[str, Any]) -> None:
        """Queue a statistics event for home."""
        self.events.append(event)

    async def flush_events(self) -> None:
        """Send queued events to home in batches."""
        home = self.peers[self.plan.home]
        while True:
            await asyncio.sleep(EVENT_FLUSH_SECONDS)
            await self.send_events(home)

    async def flush_now(self) -> None:
        """Send every queued event to home now (before a run is summarised)."""
        while self.events:
            await self.send_events(self.peers[self.plan.home])

    async def send_events(self, home: Peer) -> None:
        """Send up to 1000 queued events: each to the home of its frame (`home` when it has none)."""
        if not self.events:
            return
        groups: dict[str, list[dict[str, Any]]] = {}
        for _ in range(min(1000, len(self.events))):
            event = self.events.popleft()
            groups.setdefault(str(event.get("home") or home.name), []).append(event)
        for name, batch in groups.items():
            peer = home if name == home.name else self.peers[name]
            try:
                payload = "\n".join(json.dumps(event, separators=(",", ":")) for event in batch).encode()
                await peer.send({"kind": "event", "token": self.token}, payload)
            except TransferFailed as exc:
                log.error("lost %d statistics events for %s: %s", len(batch), name, exc)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        """Counters for `jupiter status`."""
        return {
            "node": self.node,
            "role": self.address.role,
            "pid": os.getpid(),
            "uptime": time.time() - self.started,
            "tasks": {task: counters.__dict__.copy() for task, counters in self.counters.items()},
            "outbox": sum(queue.qsize() for queue in self.outbox.values()),
            **({"pricing": self.pricing.status()} if self.pricing is not None else {}),
        }

    # -------------------------------------------------------------- lifecycle

    def worker_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["JUPITER_NODE"] = self.node
        env.update(self.emulation.worker_env())
        return env

    async def start_workers(self, tasks: Collection[str]) -> None:
        """Start the resident workers of some tasks, side by side (each imports its script once)."""
        workers = [
            TaskWorker(task, Path(self.plan.tasks[task].script), self.dir / "logs" / f"{task}.log", self.worker_env())
            for task in tasks
        ]
        await asyncio.gather(*(worker.start() for worker in workers))
        for worker in workers:
            if worker.load_error:
                log.error("task %s cannot load: %s", worker.task, worker.load_error)
            self.workers[worker.task] = worker

    async def start(self) -> None:
        """Recover, start workers, the data server, and the background loops."""
        self.recover()
        await self.start_workers(self.tasks)
        loop = asyncio.get_running_loop()
        for task in self.tasks:
            self.background.append(loop.create_task(self.run_task(task)))
        self.background.append(loop.create_task(self.flush_events()))
        if self.pricing is not None:
            self.background += [loop.create_task(coroutine) for coroutine in self.pricing.loops()]
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
        with contextlib.suppress(TransferFailed, OSError):
            if self.node != self.plan.home:
                await self.send_events(
                    Peer(
                        self.plan.home,
                        self.plan.nodes[self.plan.home].host,
                        self.plan.nodes[self.plan.home].data_port,
                        retries=1,
                    )
                )
        for worker in self.workers.values():
            await worker.stop()
        for peer in self.peers.values():
            await peer.close()
        if self.done_log is not None:
            self.done_log.close()
        self.journal.close()
