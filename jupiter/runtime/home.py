"""The home node's agent: feeds frames in, collects results and statistics.

Each file dropped into `home/input/` or sent with `jupiter submit` starts one
frame. Home gives it an id, sends it to every ingress task, and counts the
final outputs that come back (one per task that lists `home` as a child);
when all have arrived the frame is done. Agents send their timestamps here,
and home writes the original's statistics files (`runtime_tasks.txt`,
`runtime_transfer_sender.txt`, `runtime_transfer_receiver.txt`) and a JSON
lines event log (`events.jsonl`) that reports are built from.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from jupiter.runtime.agent import Agent, log
from jupiter.runtime.plan import HOME_TASK, Plan
from jupiter.runtime.profiler import PROFILE_EVENTS, store_profile_event
from jupiter.runtime.protocol import Message, safe_name
from jupiter.runtime.store import OutboxRecord, read_slots, write_atomic
from jupiter.store import ProfileStore, StoreError, open_store

INPUT_POLL_SECONDS = 0.1
STATISTICS_SECONDS = 1.0
"""How often home adds the events it recorded to the deployment's store, in one transaction."""
RECENT_FRAMES = 10_000


@dataclass
class FrameState:
    """A frame in flight."""

    frame: str
    name: str
    submitted: float
    results: dict[str, str] = field(default_factory=dict)
    path: str = ""
    """Pricing: the input file, kept until the frame is done so it can be started again."""
    attempts: list[str] = field(default_factory=list)
    """Pricing: ids of the frame's later attempts (started again after a node died)."""


@dataclass
class FrameTotals:
    """What home remembers of finished frames: counts and recent makespans, not the frames.

    Only the last `RECENT_FRAMES` makespans are kept (for `jupiter status`), so
    home's memory stays flat however many frames stream through; run
    summaries read every frame from the event log instead.
    """

    submitted: int = 0
    done: int = 0
    failed: int = 0
    first_submit: float = 0.0
    last_done: float = 0.0
    makespans: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_FRAMES))


def _percentile(values: Iterable[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class HomeAgent(Agent):
    """Agent of the home node."""

    def __init__(self, plan: Plan, node: str, token: str, root: Path, spool: Path | None = None) -> None:
        super().__init__(plan, node, token, root, spool)
        # The first home keeps the original's folder name; other homes (pricing) have their own.
        self.home_dir = root / "home" if node == plan.home else root / node
        self.attempts: dict[str, str] = {}
        """Pricing: attempt id -> the frame it repeats."""
        self.last_report: dict[str, float] = {}
        self.unsaved: list[dict[str, Any]] = []
        """Events recorded since the last save to the store (runtime statistics live there too)."""
        self.stats_store: ProfileStore | None = None
        self.stats_store_failed = False
        self.frames: dict[str, FrameState] = {}
        self.totals = FrameTotals()
        self.expected = plan.expected_results()
        self.files: dict[str, IO[str]] = {}
        self.seq = 0
        self.changed: asyncio.Event | None = None

    def _frames_changed(self) -> None:
        """Wake everyone waiting in `wait_finished`."""
        if self.changed is not None:
            self.changed.set()
            self.changed = None

    async def wait_finished(self, count: int, timeout: float) -> dict[str, Any]:
        """Wait until `count` frames are done or failed (or the timeout); returns the frame counters."""
        deadline = time.monotonic() + timeout
        while self.totals.done + self.totals.failed < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self.changed is None:
                self.changed = asyncio.Event()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                break
        frames: dict[str, Any] = self.status()["frames"]
        return frames

    # ------------------------------------------------------------- statistics

    def _open_stats(self) -> None:
        self.home_dir.mkdir(parents=True, exist_ok=True)
        headers = {
            "runtime_tasks.txt": ("Worker_node " if self.plan.priced else "")
            + "Task_name local_input_file Enter_time Execute_time Finish_time "
            "Elapse_time Duration_time Waiting_time",
            "runtime_transfer_sender.txt": "Node_name Transfer_Type File_Path Time_stamp",
            "runtime_transfer_receiver.txt": "Node_name Transfer_Type File_Path Time_stamp",
            "events.jsonl": None,
        }
        for name, header in headers.items():
            if name == "runtime_transfer_receiver.txt" and not self.plan.receiver_stats:
                continue
            path = self.home_dir / name
            fresh = not path.exists()
            handle = path.open("a", buffering=1)
            if fresh and header:
                handle.write(header + "\n")
            self.files[name] = handle

    def record(self, event: dict[str, Any], line: str | None = None) -> None:
        """Write one event to the log and the original's statistics files (and, batched, to the store).

        `line`: the event already serialised (as agents send it), written as is.
        """
        self.files["events.jsonl"].write((line or json.dumps(event, separators=(",", ":"))) + "\n")
        if not self.stats_store_failed and self.plan.extra.get("store"):
            self.unsaved.append(event)
        kind = event.get("type")
        if kind == "task":
            enter, execute, finish = event["enter"], event["execute"], event["finish"]
            files = ",".join(event["files"]) or "-"
            worker = f"{event['node']} " if self.plan.priced else ""
            self.files["runtime_tasks.txt"].write(
                f"{worker}{event['task']} {files} {enter:.6f} {execute:.6f} {finish:.6f} "
                f"{finish - enter:.6f} {finish - execute:.6f} {execute - enter:.6f}\n"
            )
            if not event["ok"]:
                self._fail(
                    self.attempts.get(event["frame"], event["frame"]),
                    f"{event['task']} on {event['node']} failed:\n{event['error']}",
                )
        elif kind == "transfer":
            target = f"runtime_transfer_{event['side']}.txt"
            if target in self.files:
                stamp = event["time"]
                shown = "-1" if stamp == -1 else f"{stamp:.6f}"
                self.files[target].write(f"{event['node']} {self.plan.transfer} {event['path']} {shown}\n")
        elif kind == "transfer_failed":
            frame = str(event.get("frame"))
            self._fail(self.attempts.get(frame, frame), f"transfer to {event['dest']} failed: {event['error']}")
        elif kind in PROFILE_EVENTS:
            store_profile_event(self.plan.extra, event)  # periodic re-profiles go to the profile store

    def emit(self, event: dict[str, Any]) -> None:
        """Home records its own events directly."""
        if self.files:
            self.record(event)
        else:
            super().emit(event)

    def _fail(self, frame: str, why: str) -> None:
        state = self.frames.pop(frame, None)
        if state is None:
            return
        self._forget(state)
        self.totals.failed += 1
        self._frames_changed()
        log.error("frame %s (%s) failed: %s", frame, state.name, why.splitlines()[0])
        self.files["events.jsonl"].write(
            json.dumps(
                {
                    "type": "frame_failed",
                    "frame": frame,
                    "input": state.name,
                    "time": time.time(),
                    "error": why,
                }
            )
            + "\n"
        )

    # ----------------------------------------------------------------- frames

    async def submit_many(self, files: list[tuple[str, bytes]]) -> list[str]:
        """Start one frame per file (one call from the control plane for a whole upload)."""
        return [await self.submit(name, data) for name, data in files]

    async def submit(self, name: str, data: bytes) -> str:
        """Start a frame from one input file; returns its id."""
        self.seq += 1
        frame = f"f{self.seq:06d}-{uuid.uuid4().hex[:6]}"
        folder = self.pool(f"{self.home_dir}/frames").acquire()
        path = write_atomic(folder, name, data)
        now = time.time()
        self.frames[frame] = FrameState(frame, name, now)
        if not self.totals.first_submit:
            self.totals.first_submit = now
        self.totals.submitted += 1
        self.record({"type": "frame_submitted", "frame": frame, "input": name, "time": now})
        if self.plan.priced:
            # Kept until the frame is done: a frame held by a node that dies is started again.
            self.frames[frame].path = path
        await self._send_input(frame, name, path, now, None if self.plan.priced else folder)
        return frame

    async def _send_input(self, frame: str, name: str, path: str, born: float, release: str | None) -> None:
        """Send a frame's input file to every ingress task."""
        records = []
        for task in self.plan.ingress:
            header = {
                "kind": "file",
                "token": self.token,
                "frame": frame,
                "task": task,
                "src": HOME_TASK,
                "idx": 0,
                "name": name,
                "home": self.node,
                "born": born,
            }
            records.append(OutboxRecord(self.new_id(), self.plan.mapping[task], header, path, release))
        if release is not None:
            self.pending_release[release] = len(records)
        if self.pricing is not None:
            records = await self.pricing.place(records, born)
        self.journal.add(records)
        for record in records:
            self._queue_for(record.dest).put_nowait(record)

    def _forget(self, state: FrameState) -> None:
        """A frame is over: drop its attempts and (pricing) the kept input."""
        for attempt in state.attempts:
            self.attempts.pop(attempt, None)
        if state.path:
            self.release_folder(os.path.dirname(state.path))

    async def restart_frames(self, why: str) -> int:
        """Pricing: start every frame in flight again as a new attempt (after a node died).

        The first complete set of results wins; results of the other attempt
        are recognised by their slot and ignored.
        """
        count = 0
        for frame, state in list(self.frames.items()):
            if not state.path:
                continue
            attempt = f"{frame}-r{len(state.attempts) + 1}"
            state.attempts.append(attempt)
            self.attempts[attempt] = frame
            now = time.time()
            self.record({"type": "frame_restarted", "frame": frame, "attempt": attempt, "time": now, "why": why})
            await self._send_input(attempt, state.name, state.path, now, None)
            count += 1
        return count

    async def watch_nodes(self) -> None:
        """Pricing: declare a compute node dead when its price reports stop; restart frames in flight.

        A node silent for STALE seconds is pinged first: one that still
        answers on its data port is only late (busy), not dead. A round in
        which this loop itself woke up late judges nobody (the silence may
        be ours).
        """
        assert self.pricing is not None
        settings = self.pricing.settings
        dead: set[str] = set()
        loop = asyncio.get_running_loop()
        while True:
            asleep = loop.time()
            await asyncio.sleep(settings.interval)
            if loop.time() - asleep > settings.interval + settings.stale / 2:
                continue
            now = time.time()
            silent = {node for node, report in self.pricing.reports.items() if now - report.time > settings.stale}
            for node in sorted(silent - dead):
                if await self.pricing.tell(node, {"kind": "ping"}, b""):
                    silent.discard(node)
            if silent == dead:
                continue
            newly = sorted(silent - dead)
            dead = silent
            self.pricing.dead = set(dead)
            self.record({"type": "nodes_dead", "dead": sorted(dead), "time": now})
            payload = json.dumps({"dead": sorted(dead)}).encode()
            await asyncio.gather(
                *(self.pricing.tell(node, {"kind": "dead"}, payload) for node in self.plan.nodes if node != self.node)
            )
            if newly:
                count = await self.restart_frames(f"{', '.join(newly)} stopped reporting")
                log.error("%s stopped reporting; %d frames in flight started again", ", ".join(newly), count)

    async def watch_inputs(self) -> None:
        """Start a frame for every file that appears in `home/input/`."""
        inbox = self.home_dir / "input"
        inbox.mkdir(parents=True, exist_ok=True)
        while True:
            for path in sorted(inbox.iterdir()):
                if path.name.startswith(".") or not path.is_file():
                    continue
                if not safe_name(path.name):
                    log.error("ignoring input %s: plain names only", path.name)
                    path.rename(path.with_name(f".rejected-{path.name}"))
                    continue
                data = path.read_bytes()
                path.unlink()
                await self.submit(path.name, data)
            await asyncio.sleep(INPUT_POLL_SECONDS)

    # ---------------------------------------------------------------- network

    async def accept(self, message: Message) -> str | None:
        header = message.header
        if message.kind == "event":
            # JSON lines, one event per line: each line goes to events.jsonl as it came.
            try:
                lines = message.payload.decode().splitlines()
                events = [json.loads(line) for line in lines]
            except (UnicodeDecodeError, json.JSONDecodeError):
                return "event payload is not JSON lines"
            for event, line in zip(events, lines, strict=True):
                if isinstance(event, dict) and "\n" not in line:
                    self.record(event, line)
            return None
        if message.kind == "submit":
            await self.submit(str(header["name"]), message.payload)
            return None
        if message.kind == "file" and header.get("task") == HOME_TASK:
            return self.accept_result(header, message.payload)
        return await super().accept(message)

    def accept_result(self, header: dict[str, Any], payload: bytes) -> str | None:
        frame = str(header.get("frame"))
        frame = self.attempts.get(frame, frame)
        slot = f"{header.get('src')}@{header.get('idx')}"
        state = self.frames.get(frame)
        if state is None or slot in state.results:
            return None  # a late or repeated delivery of a finished frame
        folder = f"{self.home_dir}/output/{frame}"
        os.makedirs(folder, exist_ok=True)
        state.results[slot] = self.store_received(folder, frame, slot, header, payload, state.results.values())
        if len(state.results) >= self.expected:
            now = time.time()
            del self.frames[frame]
            self._forget(state)
            makespan = now - state.submitted
            self.totals.done += 1
            self.totals.last_done = now
            self.totals.makespans.append(makespan)
            self._frames_changed()
            self.record(
                {
                    "type": "frame_done",
                    "frame": frame,
                    "input": state.name,
                    "time": now,
                    "makespan": makespan,
                    "outputs": sorted(state.results.values()),
                }
            )
        return None

    async def flush_now(self) -> None:
        """Home records its events as they happen; the files need flushing, the store the last batch."""
        for handle in self.files.values():
            handle.flush()
        self.save_statistics()

    def save_statistics(self) -> None:
        """Add the events recorded since the last call to the deployment's store (one transaction).

        A store home cannot open or write (e.g. a path of the CLI's machine
        inside a pod) is reported once; the files stay the record then.
        """
        if not self.unsaved:
            return
        batch, self.unsaved = self.unsaved, []
        try:
            if self.stats_store is None:
                self.stats_store = open_store(self.plan.extra["store"])
            self.stats_store.add_events(batch)
        except (OSError, sqlite3.Error, StoreError) as exc:
            self.stats_store_failed = True
            log.error("runtime statistics are not saved in the store (%s); they stay in %s", exc, self.home_dir)

    async def keep_statistics(self) -> None:
        """Save recorded events to the store every STATISTICS_SECONDS."""
        while True:
            await asyncio.sleep(STATISTICS_SECONDS)
            self.save_statistics()

    def status(self) -> dict[str, Any]:
        base = super().status()
        totals = self.totals
        span = (totals.last_done - totals.first_submit) if totals.done else 0.0
        base["frames"] = {
            "submitted": totals.submitted,
            "done": totals.done,
            "failed": totals.failed,
            "in_flight": len(self.frames),
            "throughput": totals.done / span if span > 0 else 0.0,
            "makespan_p50": _percentile(totals.makespans, 0.5),
            "makespan_p95": _percentile(totals.makespans, 0.95),
        }
        return base

    async def start(self) -> None:
        self._open_stats()
        self.recover_frames()
        await super().start()
        self.background.append(asyncio.get_running_loop().create_task(self.watch_inputs()))
        self.background.append(asyncio.get_running_loop().create_task(self.keep_statistics()))
        if self.pricing is not None:
            self.background.append(asyncio.get_running_loop().create_task(self.watch_nodes()))

    def recover_frames(self) -> None:
        """After a restart of home, frames still in flight are taken from the event log."""
        log_path = self.home_dir / "events.jsonl"
        if not log_path.exists():
            return
        for line in log_path.read_text().splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            kind = event.get("type")
            if kind == "frame_submitted":
                self.seq = max(self.seq, int(event["frame"][1:7]))
                self.frames[event["frame"]] = FrameState(event["frame"], event["input"], event["time"])
                self.totals.submitted += 1
                self.totals.first_submit = self.totals.first_submit or event["time"]
            elif kind == "frame_done" and self.frames.pop(event["frame"], None):
                self.totals.done += 1
                self.totals.last_done = event["time"]
                self.totals.makespans.append(event["makespan"])
            elif kind == "frame_failed" and self.frames.pop(event["frame"], None):
                self.totals.failed += 1
        for frame, state in self.frames.items():
            folder = self.home_dir / "output" / frame
            if folder.is_dir():
                state.results = read_slots(str(folder))[1]

    async def stop(self) -> None:
        await super().stop()
        self.save_statistics()
        if self.stats_store is not None:
            self.stats_store.close()
        for handle in self.files.values():
            handle.close()
