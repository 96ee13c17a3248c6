"""Home's frame tracker: starts frames, counts their final outputs, knows which are in flight.

Each input file home gets (`jupiter submit`, or a file dropped into
`home/input/`) starts one frame: the tracker gives it an id
(`f<sequence>-<random>`), keeps home's copy of the input, and sends it to
every ingress task. A frame is done when one final output per task that
lists `home` as a child has come back; it fails when a task raised on it or
a transfer of it gave up. Under pricing, a frame in flight on a node that
died is started again as a new attempt (`<frame>-r<n>`): the first complete
set of results wins.

What the tracker remembers of finished frames is counts, the last
`RECENT_FRAMES` makespans and how many frames finished in each of the last
`THROUGHPUT_WINDOW` seconds, so home's memory stays flat however many frames
stream through. The throughput `/status` reports is over that window: frames
done in the last `THROUGHPUT_WINDOW` seconds divided by the window (or by the
time since the first frame was submitted, when that is shorter), so it says
how fast frames go now, not how fast the first one went. After a restart of home, `recover` rebuilds the frames in
flight from the event log, skipping (and reporting once) lines that are not
valid events.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jupiter.mapping.stats import percentile
from jupiter.model.events import (
    BadLines,
    Event,
    FrameDone,
    FrameFailed,
    FrameRestarted,
    FrameSubmitted,
    TaskRun,
    Transfer,
    TransferFailed,
    frame_sequence,
    read_events,
)
from jupiter.model.layout import HomeLayout
from jupiter.model.plan import HOME_TASK
from jupiter.runtime.protocol import Refusal
from jupiter.runtime.services import AgentServices
from jupiter.runtime.spool import OutboxRecord, read_slots, store_input, write_atomic

log = logging.getLogger("jupiter.home")

RECENT_FRAMES = 10_000
THROUGHPUT_WINDOW = 30.0
"""Seconds over which `/status` counts the frames done to give the current throughput."""


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
    """What home remembers of finished frames: counts and recent makespans, not the frames."""

    submitted: int = 0
    done: int = 0
    failed: int = 0
    first_submit: float = 0.0
    last_done: float = 0.0
    makespans: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_FRAMES))
    recent: deque[list[int]] = field(default_factory=deque)
    """[second, frames done in that second] for the last THROUGHPUT_WINDOW seconds, oldest first."""

    def finished(self, when: float) -> None:
        """Count one frame done at `when` in its second of the throughput window."""
        second = int(when)
        if self.recent and self.recent[-1][0] == second:
            self.recent[-1][1] += 1
        else:
            self.recent.append([second, 1])
        self._prune(when)

    def _prune(self, now: float) -> None:
        while self.recent and self.recent[0][0] <= now - THROUGHPUT_WINDOW:
            self.recent.popleft()

    def recent_throughput(self, now: float) -> tuple[float, float]:
        """(frames per second, seconds) over the last THROUGHPUT_WINDOW seconds, or since the first frame."""
        self._prune(now)
        window = min(THROUGHPUT_WINDOW, now - self.first_submit) if self.first_submit else 0.0
        if window <= 0:
            return 0.0, 0.0
        return sum(count for _, count in self.recent) / window, window


class FrameTracker:
    """One home's frames (module docstring)."""

    def __init__(self, services: AgentServices, layout: HomeLayout, record: Callable[[Event], None]) -> None:
        self.services = services
        self.layout = layout
        self.record = record
        self.frames: dict[str, FrameState] = {}
        self.attempts: dict[str, str] = {}
        """Pricing: attempt id -> the frame it repeats."""
        self.totals = FrameTotals()
        self.seq = 0
        self.changed: asyncio.Event | None = None

    @property
    def expected(self) -> int:
        return self.services.plan.expected_results()

    # ---------------------------------------------------------------- waiting

    def _changed(self) -> None:
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
        return self.counts()

    def counts(self) -> dict[str, Any]:
        """The frame counters of `/status`."""
        totals = self.totals
        span = (totals.last_done - totals.first_submit) if totals.done else 0.0
        makespans = list(totals.makespans)
        throughput, window = totals.recent_throughput(time.time())
        return {
            "submitted": totals.submitted,
            "done": totals.done,
            "failed": totals.failed,
            "in_flight": len(self.frames),
            "throughput": throughput,
            "throughput_window": window,
            "throughput_overall": totals.done / span if span > 0 else 0.0,
            "makespan_p50": percentile(makespans, 0.5) if makespans else 0.0,
            "makespan_p95": percentile(makespans, 0.95) if makespans else 0.0,
        }

    # ------------------------------------------------------------- starting

    async def submit_many(self, files: list[tuple[str, bytes]]) -> list[str]:
        """Start one frame per file (one call from the control plane for a whole upload)."""
        return [await self.submit(name, data) for name, data in files]

    async def submit(self, name: str, data: bytes) -> str:
        """Start a frame from one input file; returns its id."""
        self.seq += 1
        frame = f"f{self.seq:06d}-{uuid.uuid4().hex[:6]}"
        folder = self.services.pool(str(self.layout.frames)).acquire()
        path = write_atomic(folder, name, data)
        now = time.time()
        priced = self.services.plan.priced
        # Pricing: the input is kept until the frame is done, so a frame held by a node that dies starts again.
        self.frames[frame] = FrameState(frame, name, now, path=path if priced else "")
        if not self.totals.first_submit:
            self.totals.first_submit = now
        self.totals.submitted += 1
        self.record(FrameSubmitted(frame=frame, input=name, time=now))
        await self._send_input(frame, name, path, now, None if priced else folder)
        return frame

    async def _send_input(self, frame: str, name: str, path: str, born: float, release: str | None) -> None:
        """Send a frame's input file to every ingress task."""
        services = self.services
        plan = services.plan
        records = []
        for task in plan.ingress:
            header = {
                "kind": "file",
                "token": services.token,
                "frame": frame,
                "task": task,
                "src": HOME_TASK,
                "idx": 0,
                "name": name,
                "home": services.node,
                "born": born,
            }
            records.append(OutboxRecord(services.new_id(), plan.mapping[task], header, path, release))
        await services.send(records, release)

    async def restart_frames(self, why: str) -> int:
        """Pricing: start every frame in flight again as a new attempt (after a node died)."""
        count = 0
        for frame, state in list(self.frames.items()):
            if not state.path:
                continue
            attempt = f"{frame}-r{len(state.attempts) + 1}"
            state.attempts.append(attempt)
            self.attempts[attempt] = frame
            now = time.time()
            self.record(FrameRestarted(frame=frame, attempt=attempt, time=now, why=why))
            await self._send_input(attempt, state.name, state.path, now, None)
            count += 1
        return count

    # ------------------------------------------------------------- finishing

    def _forget(self, state: FrameState) -> None:
        """A frame is over: drop its attempts and (pricing) the kept input."""
        for attempt in state.attempts:
            self.attempts.pop(attempt, None)
        if state.path:
            folder = os.path.dirname(state.path)
            self.services.pool(os.path.dirname(folder)).release(folder)

    def observe(self, event: Event) -> None:
        """An event recorded at home: a task that failed, or a transfer that gave up, fails its frame."""
        if isinstance(event, TaskRun) and not event.ok:
            self.fail(event.frame, f"{event.task} on {event.node} failed:\n{event.error}")
        elif isinstance(event, TransferFailed):
            self.fail(event.frame, f"transfer to {event.dest} failed: {event.error}")

    def fail(self, frame: str, why: str) -> None:
        frame = self.attempts.get(frame, frame)
        state = self.frames.pop(frame, None)
        if state is None:
            return
        self._forget(state)
        self.totals.failed += 1
        self._changed()
        log.error("frame %s (%s) failed: %s", frame, state.name, why.splitlines()[0])
        self.record(FrameFailed(frame=frame, input=state.name, time=time.time(), error=why))

    def accept_result(self, header: dict[str, Any], payload: bytes) -> Refusal | None:
        """A final output of a frame came home."""
        frame = str(header.get("frame"))
        frame = self.attempts.get(frame, frame)
        slot = f"{header.get('src')}@{header.get('idx')}"
        state = self.frames.get(frame)
        if state is None or slot in state.results:
            return None  # a late or repeated delivery of a finished frame
        folder = self.layout.frame_output(frame)
        folder.mkdir(parents=True, exist_ok=True)
        name = str(header["name"])
        if name in state.results.values():
            name = f"{header.get('src')}_{name}"
        path = store_input(str(folder), frame, slot, name, payload)
        state.results[slot] = name
        plan = self.services.plan
        if plan.receiver_stats:
            self.record(
                Transfer(
                    side="receiver",
                    node=self.services.node,
                    path=path,
                    time=time.time(),
                    frame=frame,
                    home=self.services.node,
                    bytes=len(payload),
                    task=HOME_TASK,
                )
            )
        if len(state.results) >= self.expected:
            now = time.time()
            del self.frames[frame]
            self._forget(state)
            makespan = now - state.submitted
            self.totals.done += 1
            self.totals.last_done = now
            self.totals.makespans.append(makespan)
            self.totals.finished(now)
            self._changed()
            self.record(
                FrameDone(
                    frame=frame,
                    input=state.name,
                    time=now,
                    makespan=makespan,
                    outputs=tuple(sorted(state.results.values())),
                )
            )
        return None

    # -------------------------------------------------------------- recovery

    def recover(self) -> None:
        """After a restart of home, take the frames still in flight from the event log."""
        bad = BadLines(self.layout.events)
        kinds = (FrameSubmitted.type, FrameDone.type, FrameFailed.type)
        self.replay(read_events(self.layout.events, on_bad=bad, types=kinds))
        if bad.lines:
            log.error("%s", bad.message())
        for frame, state in self.frames.items():
            folder = self.layout.frame_output(frame)
            if folder.is_dir():
                state.results = read_slots(str(folder))[1]

    def replay(self, events: Iterable[Event]) -> None:
        """Rebuild the frames in flight and the totals from recorded frame events."""
        for event in events:
            if isinstance(event, FrameSubmitted):
                sequence = frame_sequence(event.frame)
                if sequence is not None:
                    self.seq = max(self.seq, sequence)
                self.frames[event.frame] = FrameState(event.frame, event.input, event.time)
                self.totals.submitted += 1
                self.totals.first_submit = self.totals.first_submit or event.time
            elif isinstance(event, FrameDone) and self.frames.pop(event.frame, None) is not None:
                self.totals.done += 1
                self.totals.last_done = event.time
                self.totals.makespans.append(event.makespan)
            elif isinstance(event, FrameFailed) and self.frames.pop(event.frame, None) is not None:
                self.totals.failed += 1
