"""Home's frame tracker: starts frames, counts their final outputs, knows which are in flight.

Each frame home gets — one input file, or several (`jupiter submit --frame
a b`, or files grouped by name when an entry task waits for more than one,
`jupiter.model.inputs`) — gets an id (`f<sequence>-<random>`): the tracker
keeps home's copy of the inputs and sends every file to every ingress task
(slot `home@<i>` for the i-th file). A frame is done when one final output
per task that lists `home` as a child has come back; it fails when a task
raised on it or a transfer of it gave up. Under pricing, a frame in flight
on a node that died is started again as a new attempt (`<frame>-r<n>`): the
first complete set of results wins.

Submitting is idempotent: a client may give each frame an id of its own
(`client`), and a frame submitted again with an id home has seen is not
started twice — home answers with the frame it started the first time. Ids
are remembered for the last `CLIENT_IDS_KEPT` frames (a restart of home
rebuilds them from the event log), in a few bytes a frame for the ids
`jupiter submit` gives (:class:`ClientIds`).

What the tracker remembers of finished frames is counts, the last
`RECENT_FRAMES` makespans and how many frames finished in each of the last
`THROUGHPUT_WINDOW` seconds, so home's memory stays flat however many frames
stream through. The throughput `/status` reports is over that window: frames
done in the last `THROUGHPUT_WINDOW` seconds divided by the window (or by the
time since the first frame was submitted, when that is shorter), so it says
how fast frames go now, not how fast the first one went. After a restart of home, `recover` rebuilds the frames in
flight from the event log, skipping (and reporting once) lines that are not
valid events. Final outputs land in `home/output/<frame>/` (outputs only);
their slot markers live in `home/results/<frame>/` until the frame is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
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
from jupiter.runtime.protocol import Refusal, file_checksum
from jupiter.runtime.services import AgentServices
from jupiter.runtime.spool import Incoming, OutboxRecord, read_slots

log = logging.getLogger("jupiter.home")

RECENT_FRAMES = 10_000
CLIENT_IDS_KEPT = 100_000
THROUGHPUT_WINDOW = 30.0
"""Seconds over which `/status` counts the frames done to give the current throughput."""


@dataclass
class FrameState:
    """A frame in flight."""

    frame: str
    name: str
    """What the frame is called in messages: its input file's name, or its files' names."""
    submitted: float
    results: dict[str, str] = field(default_factory=dict)
    paths: tuple[str, ...] = ()
    """Pricing: the input files, kept until the frame is done so it can be started again."""
    attempts: list[str] = field(default_factory=list)
    """Pricing: ids of the frame's later attempts (started again after a node died)."""
    receiving: dict[str, str] = field(default_factory=dict)
    """Final outputs being received now (slot -> name)."""


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


_FRAME_ID = re.compile(r"^f(\d+)-([0-9a-f]{6})$")
"""A frame id as `FrameTracker.start` makes it: sequence number, then 6 random hex digits."""


@dataclass(slots=True)
class _Run:
    """Frames `first_index`, `first_index + 1`, ... of one submission, started as frames `first_seq`, ... in a row."""

    first_index: int
    first_seq: int
    suffixes: bytearray
    """Each frame's 6 random hex digits, as 3 bytes."""

    def __len__(self) -> int:
        return len(self.suffixes) // 3

    def frame(self, index: int) -> str:
        offset = index - self.first_index
        return f"f{self.first_seq + offset:06d}-{self.suffixes[3 * offset : 3 * offset + 3].hex()}"


class ClientIds:
    """Client ids of the last `limit` frames -> the frame each started, in a few bytes a frame for the CLI's ids.

    `jupiter submit` names frame i of a submission `<submission>-<i>`, and
    home starts a submission's frames in order, so they mostly get
    consecutive sequence numbers: such ids are kept as runs (first index,
    first sequence number, 3 bytes per frame for the random part of its id)
    instead of two strings and a dictionary entry each (about 200 bytes a
    frame, which grew home by 20 MiB over its first 100,000 frames). Any
    other id is kept as it is. The oldest frames are forgotten first.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.runs: dict[str, list[_Run]] = {}
        """Submission -> its runs, oldest first."""
        self.single: dict[str, str] = {}
        """Ids of any other form -> frame."""
        self.order: deque[tuple[str, _Run | None]] = deque()
        """What to forget first: (submission, run) or (id, None), oldest first."""
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def __contains__(self, client: str) -> bool:
        return self.get(client) is not None

    def get(self, client: str) -> str | None:
        """The frame `client` started, or None."""
        frame = self.single.get(client)
        if frame is not None:
            return frame
        parsed = _submission_index(client)
        if parsed is None:
            return None
        submission, index = parsed
        for run in self.runs.get(submission, ()):
            if run.first_index <= index < run.first_index + len(run):
                return run.frame(index)
        return None

    def add(self, client: str, frame: str) -> None:
        """Remember that `client` started `frame`; the oldest frame is forgotten past the limit."""
        parsed, numbered = _submission_index(client), _FRAME_ID.match(frame)
        if numbered is not None and f"f{int(numbered.group(1)):06d}" != frame[: numbered.end(1)]:
            numbered = None  # a sequence number written with a leading zero too many: not rebuilt exactly
        if parsed is None or numbered is None:
            self.single[client] = frame
            self.order.append((client, None))
        else:
            submission, index = parsed
            seq, suffix = int(numbered.group(1)), bytes.fromhex(numbered.group(2))
            runs = self.runs.setdefault(submission, [])
            last = runs[-1] if runs else None
            if last is not None and index == last.first_index + len(last) and seq == last.first_seq + len(last):
                last.suffixes += suffix
            else:
                run = _Run(index, seq, bytearray(suffix))
                runs.append(run)
                self.order.append((submission, run))
        self.count += 1
        while self.count > self.limit:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        key, run = self.order[0]
        self.count -= 1
        if run is None:
            self.order.popleft()
            self.single.pop(key, None)
            return
        del run.suffixes[:3]  # the run's oldest frame (a bytearray drops its front without copying)
        run.first_index += 1
        run.first_seq += 1
        if not len(run):
            self.order.popleft()
            runs = self.runs[key]
            runs.remove(run)
            if not runs:
                del self.runs[key]


def _submission_index(client: str) -> tuple[str, int] | None:
    """(`submission`, `i`) of an id `<submission>-<i>` (`i` written without leading zeros), else None."""
    submission, dash, index = client.rpartition("-")
    if not dash or not submission or not index.isdigit() or index != str(int(index)):
        return None
    return submission, int(index)


@dataclass(frozen=True)
class Submitted:
    """One frame of an upload: its id, and whether this upload started it (False: seen before, by its client id)."""

    frame: str
    started: bool


class FrameTracker:
    """One home's frames (module docstring)."""

    def __init__(self, services: AgentServices, layout: HomeLayout, record: Callable[[Event], None]) -> None:
        self.services = services
        self.layout = layout
        self.record = record
        self.frames: dict[str, FrameState] = {}
        """Frames in flight, in the order they were submitted (the first is the oldest)."""
        self.attempts: dict[str, str] = {}
        """Pricing: attempt id -> the frame it repeats."""
        self.clients = ClientIds(CLIENT_IDS_KEPT)
        """Client ids of recent frames -> the frame each started."""
        self.totals = FrameTotals()
        self.seq = 0
        self.changed: asyncio.Event | None = None

    @property
    def expected(self) -> int:
        return self.services.plan.expected_results()

    def oldest(self) -> int:
        """The sequence number of the oldest frame in flight (the next one when none is): every older one is over."""
        for frame in self.frames:
            sequence = frame_sequence(frame)
            if sequence is not None:
                return sequence
        return self.seq + 1

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
        """The frame counters of `/status`; throughput is frames done per second over the last THROUGHPUT_WINDOW."""
        totals = self.totals
        makespans = list(totals.makespans)
        throughput, window = totals.recent_throughput(time.time())
        span = (totals.last_done - totals.first_submit) if totals.done else 0.0
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

    def frame_folder(self) -> str:
        """A pooled folder for a new frame's inputs."""
        return self.services.pool(str(self.layout.frames)).acquire()

    async def submit(self, name: str, data: bytes, client: str = "") -> str:
        """Start a frame from one input file in memory; returns its id."""
        folder = self.frame_folder()
        path = f"{folder}/{name}"
        tmp = f"{folder}/.tmp-{name}"
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
        return (await self.start([path], folder, client)).frame

    async def start(self, paths: Sequence[str], folder: str, client: str = "") -> Submitted:
        """Start a frame whose input files are already in `folder` (a pooled folder of home's frames).

        With a `client` id seen before, nothing starts: the frame it started
        then is the answer (and `folder` is given back).
        """
        known = self.clients.get(client) if client else None
        if known is not None:
            self.services.pool(os.path.dirname(folder)).release(folder)
            return Submitted(known, started=False)
        self.seq += 1
        frame = f"f{self.seq:06d}-{uuid.uuid4().hex[:6]}"
        now = time.time()
        names = tuple(os.path.basename(path) for path in paths)
        priced = self.services.plan.priced
        # Pricing: the inputs are kept until the frame is done, so a frame held by a node that dies starts again.
        self.frames[frame] = FrameState(frame, ",".join(names), now, paths=tuple(paths) if priced else ())
        if not self.totals.first_submit:
            self.totals.first_submit = now
        self.totals.submitted += 1
        if client:
            self._remember_client(client, frame)
        # Journalled first, recorded second: killed in between, home has sent a frame it does not know (its
        # results are dropped and the client, without an answer, submits it again); the other way round it
        # would know a frame whose inputs were never sent, in flight for ever.
        await self._send_inputs(frame, paths, now, None if priced else folder)
        self.record(FrameSubmitted(frame=frame, input=",".join(names), time=now, files=names, client=client))
        return Submitted(frame, started=True)

    def _remember_client(self, client: str, frame: str) -> None:
        self.clients.add(client, frame)

    async def _send_inputs(self, frame: str, paths: Sequence[str], born: float, release: str | None) -> None:
        """Send a frame's input files to every ingress task (the i-th file fills slot `home@<i>`)."""
        services = self.services
        plan = services.plan
        records = []
        for index, path in enumerate(paths):
            size, digest = file_checksum(path)
            for task in plan.ingress:
                header = {
                    "kind": "file",
                    "token": services.token,
                    "frame": frame,
                    "task": task,
                    "src": HOME_TASK,
                    "idx": index,
                    "name": os.path.basename(path),
                    "home": services.node,
                    "born": born,
                    "size": size,
                    "sum": digest,
                }
                records.append(OutboxRecord(services.new_id(), plan.mapping[task], header, path, release))
        await services.send(records, release)

    async def restart_frames(self, why: str) -> int:
        """Pricing: start every frame in flight again as a new attempt (after a node died)."""
        count = 0
        for frame, state in list(self.frames.items()):
            if not state.paths:
                continue
            attempt = f"{frame}-r{len(state.attempts) + 1}"
            state.attempts.append(attempt)
            self.attempts[attempt] = frame
            now = time.time()
            self.record(FrameRestarted(frame=frame, attempt=attempt, time=now, why=why))
            await self._send_inputs(attempt, state.paths, now, None)
            count += 1
        return count

    # ------------------------------------------------------------- finishing

    def _forget(self, state: FrameState) -> None:
        """A frame is over: drop its attempts, its result markers and (pricing) the kept inputs."""
        for attempt in state.attempts:
            self.attempts.pop(attempt, None)
        shutil.rmtree(self.layout.frame_results(state.frame), ignore_errors=True)
        if state.paths:
            folder = os.path.dirname(state.paths[0])
            self.services.pool(os.path.dirname(folder)).release(folder)

    def observe(self, event: Event) -> None:
        """An event recorded at home: a task that failed, or a transfer that gave up, fails its frame."""
        if isinstance(event, TaskRun) and not event.ok:
            error = event.error or ""
            lines = [line.strip() for line in error.splitlines() if line.strip()]
            # The log's one line names the exception (a traceback's last line); the event keeps it all.
            self.fail(
                event.frame,
                f"{event.task} on {event.node} failed: {lines[-1] if lines else 'no reason given'}",
                f"{event.task} on {event.node} failed:\n{error}",
            )
        elif isinstance(event, TransferFailed):
            self.fail(event.frame, f"transfer to {event.dest} failed: {event.error}")

    def fail(self, frame: str, why: str, detail: str = "") -> None:
        """A frame failed: `why` in one line for the log, `detail` (default: `why`) for its event."""
        frame = self.attempts.get(frame, frame)
        state = self.frames.pop(frame, None)
        if state is None:
            return
        self._forget(state)
        self.totals.failed += 1
        self._changed()
        log.error("frame %s (%s) failed: %s", frame, state.name, why.splitlines()[0])
        error = detail or why  # the event keeps the whole text (a traceback); the log line, its gist
        self.record(FrameFailed(frame=frame, input=state.name, time=time.time(), error=error))

    def begin_result(self, header: dict[str, Any], peer: str) -> Refusal | Result | None:
        """A final output of a frame is arriving: where its bytes go (None: not needed, a late or repeated one)."""
        frame = str(header.get("frame"))
        frame = self.attempts.get(frame, frame)
        slot = f"{header.get('src')}@{header.get('idx')}"
        state = self.frames.get(frame)
        if state is None or slot in state.results:
            return None
        if slot in state.receiving:
            return Refusal.retry(f"final output {slot} of {frame} is being received on another connection")
        name = str(header["name"])
        if name in state.results.values() or name in state.receiving.values():
            name = f"{header.get('src')}_{name}"
        markers = self.layout.frame_results(frame)
        markers.mkdir(parents=True, exist_ok=True)
        state.receiving[slot] = name
        return Result(self, state, slot, name, Incoming(str(markers), frame, slot, name), peer)

    def _completed(self, state: FrameState, slot: str, name: str, path: str, size: int, peer: str) -> None:
        """One final output is in (its marker committed): show it in `output/`, and finish the frame when all are."""
        output = self.layout.frame_output(state.frame)
        output.mkdir(parents=True, exist_ok=True)
        final = output / name
        with contextlib.suppress(FileExistsError):
            os.link(path, final)
        state.results[slot] = name
        plan = self.services.plan
        if plan.receiver_stats:
            self.record(
                Transfer(
                    side="receiver",
                    node=self.services.node,
                    path=str(final),
                    time=time.time(),
                    frame=state.frame,
                    home=self.services.node,
                    peer=peer,
                    bytes=size,
                    task=HOME_TASK,
                )
            )
        self._finish_if_complete(state)

    def _finish_if_complete(self, state: FrameState) -> None:
        """Record a frame done once every final output is in."""
        if len(state.results) >= self.expected and state.frame in self.frames:
            now = time.time()
            del self.frames[state.frame]
            self._forget(state)
            makespan = now - state.submitted
            self.totals.done += 1
            self.totals.last_done = now
            self.totals.makespans.append(makespan)
            self.totals.finished(now)
            self._changed()
            self.record(
                FrameDone(
                    frame=state.frame,
                    input=state.name,
                    time=now,
                    makespan=makespan,
                    outputs=tuple(sorted(state.results.values())),
                )
            )

    def accept_result(self, header: dict[str, Any], payload: bytes) -> Refusal | None:
        """A final output whose bytes are here already (small files, tests)."""
        opened = self.begin_result(header, "")
        if opened is None or isinstance(opened, Refusal):
            return opened
        opened.write(payload)
        opened.commit()
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
            markers = self.layout.frame_results(frame)
            if markers.is_dir():
                state.results = read_slots(str(markers))[1]
                output = self.layout.frame_output(frame)
                output.mkdir(parents=True, exist_ok=True)
                for name in state.results.values():
                    with contextlib.suppress(FileExistsError):
                        os.link(markers / name, output / name)  # a crash came between the two links
        # A home stopped after taking a frame's last output and before recording it done: done now.
        for state in list(self.frames.values()):
            self._finish_if_complete(state)
        # A home stopped between recording a frame finished and dropping its markers left them behind.
        results = self.layout.frame_results("x").parent
        if results.is_dir():
            for folder in results.iterdir():
                if folder.name not in self.frames:
                    shutil.rmtree(folder, ignore_errors=True)

    def replay(self, events: Iterable[Event]) -> None:
        """Rebuild the frames in flight, the client ids and the totals from recorded frame events."""
        for event in events:
            if isinstance(event, FrameSubmitted):
                sequence = frame_sequence(event.frame)
                if sequence is not None:
                    self.seq = max(self.seq, sequence)
                self.frames[event.frame] = FrameState(event.frame, event.input, event.time)
                if event.client:
                    self._remember_client(event.client, event.frame)
                self.totals.submitted += 1
                self.totals.first_submit = self.totals.first_submit or event.time
            elif isinstance(event, FrameDone) and self.frames.pop(event.frame, None) is not None:
                self.totals.done += 1
                self.totals.last_done = event.time
                self.totals.makespans.append(event.makespan)
            elif isinstance(event, FrameFailed) and self.frames.pop(event.frame, None) is not None:
                self.totals.failed += 1


class Result:
    """A final output being received (`FrameTracker.begin_result`): written under its marker, then shown."""

    def __init__(
        self, tracker: FrameTracker, state: FrameState, slot: str, name: str, incoming: Incoming, peer: str
    ) -> None:
        self.tracker = tracker
        self.state = state
        self.slot = slot
        self.name = name
        self.incoming = incoming
        self.peer = peer
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.incoming.write(chunk)
        self.size += len(chunk)

    def commit(self) -> None:
        path = self.incoming.commit()
        self.state.receiving.pop(self.slot, None)
        self.tracker._completed(self.state, self.slot, self.name, path, self.size, self.peer)

    def abort(self) -> None:
        self.incoming.abort()
        self.state.receiving.pop(self.slot, None)
