"""An agent's inbox: the inputs of each task's frames, until every one has arrived.

A received file fills one *slot* of a frame of a task (`<source task>@<output
index>`), stored under `inbox/<task>/d<n>/` (pooled folders,
`jupiter.runtime.spool`) before the sender hears `ok`; a big file is written
in chunks as it arrives (`begin` gives a :class:`Receipt`), never held in
memory. When a frame holds NUM_INPUTS files it is queued for the task's
runner. Repeated deliveries are recognised by their slot and by the
(task, frame) pairs already done, so a sender that re-sends after a crash
never makes a task run twice.

Backpressure: a task that holds TASK_QUEUE_SIZE frames, or a spool whose
free space is low (`jupiter.runtime.spool.SpaceWatch`: below `[LIMITS]
SPOOL_FREE` for frames home starts, below a quarter of it for frames already
in the pipeline), refuses inputs of new frames with a `busy` refusal (the
sender keeps the file and offers it again); inputs of frames it already
holds are always taken, so fan-in tasks finish what they started and
nothing accepted is lost.

What the inbox remembers of finished frames is bounded: home tells every
agent the oldest frame it still has in flight (in its answer to their
events), and every frame before it is finished at home — its done pairs are
forgotten, and a late re-send of one of its inputs is acknowledged and
dropped. `done.log` is compacted as entries are forgotten.

Recovery after a restart rebuilds the slots from the folders' markers and the
done pairs from `done.log`, whose lines also say which frames failed (and,
once compacted, how many pairs were forgotten), so the tasks' done and
failed counters survive a restart too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jupiter.model.events import Event, Transfer, frame_sequence, is_frame_id
from jupiter.model.layout import NodeLayout
from jupiter.model.plan import HOME_TASK, Plan, TaskSpec
from jupiter.runtime.counters import TaskCounters
from jupiter.runtime.protocol import Refusal
from jupiter.runtime.spool import FolderPool, Incoming, read_slots, store_input

COMPACT_EVERY = 10_000
"""Forgotten done pairs after which `done.log` is rewritten with only the live ones."""

FAILED = "failed"
"""Last word of a `done.log` line of a frame that failed."""
FORGOTTEN = "#forgotten"
"""First word of a `done.log` line counting a task's pairs forgotten by compaction: `#forgotten task done failed`."""


@dataclass
class FrameInputs:
    """The inputs of one frame of one task, by slot (`<source task>@<output index>`)."""

    folder: str
    names: dict[str, str] = field(default_factory=dict)
    first_seen: float = 0.0
    home: str = ""
    """The home node the frame came from (its results go back there)."""
    born: float = 0.0
    """When that home started the frame (pricing's push choices apply by birth time)."""
    receiving: dict[str, str] = field(default_factory=dict)
    """Slots being received now (slot -> the name they will have)."""


def slot_order(spec: TaskSpec) -> Callable[[str], tuple[int, int, str]]:
    """Sort key of a task's slots: its parents' order, then the output index (the order `task()` gets its files in)."""
    position = {parent: index for index, parent in enumerate(spec.parents)}

    def key(slot: str) -> tuple[int, int, str]:
        source, _, index = slot.rpartition("@")
        return (position.get(source, -1), int(index) if index.isdigit() else 0, index)

    return key


class Inbox:
    """Inputs of the tasks on one node (module docstring)."""

    def __init__(
        self,
        node: str,
        plan: Callable[[], Plan],
        layout: NodeLayout,
        pool: Callable[[str], FolderPool],
        emit: Callable[[Event], None],
        space_low: Callable[[bool, int], str | None] = lambda new_frame, size: None,
    ) -> None:
        self.node = node
        self._plan = plan
        self.layout = layout
        self.pool = pool
        self.emit = emit
        self.space_low = space_low
        """Why the spool is too full for new frames, or None."""
        self.counters: dict[str, TaskCounters] = {}
        self.queues: dict[str, asyncio.Queue[str]] = {}
        self.frames: dict[tuple[str, str], FrameInputs] = {}
        self.done: dict[str, set[str]] = {}
        """frame -> the tasks done with it here (while its home may still send inputs of it)."""
        self.done_home: dict[str, str] = {}
        self.oldest: dict[str, int] = {}
        """home -> the sequence number of the oldest frame it has in flight (every older one is finished)."""
        self.failed: set[tuple[str, str]] = set()
        """(task, frame) pairs of `done` that failed."""
        self.forgotten = 0
        self.forgotten_counts: dict[str, list[int]] = {}
        """task -> [done, failed] pairs forgotten from `done.log` (kept there as one line per task)."""
        self.done_log: Any = None
        self._finished: dict[str, TaskCounters] = {}
        """Per task: frames done and failed before a restart, as `done.log` tells them."""

    @property
    def plan(self) -> Plan:
        return self._plan()

    def add_task(self, task: str) -> None:
        """Start taking inputs of a task (at start, or when a mapping gives it to this node)."""
        if task not in self.counters:
            before = self._finished.get(task, TaskCounters())
            self.counters[task] = TaskCounters(done=before.done, failed=before.failed, peak=before.peak)
            self.queues[task] = asyncio.Queue()

    def inbox(self, task: str) -> FolderPool:
        return self.pool(str(self.layout.inbox(task)))

    # --------------------------------------------------------------- recovery

    def restore_peaks(self, peaks: Mapping[str, int]) -> None:
        """Before `recover`: the tasks' peaks saved before a restart (`jupiter.runtime.counters`)."""
        for task, peak in peaks.items():
            self._finished.setdefault(task, TaskCounters()).peak = peak

    def recover(self) -> None:
        """Rebuild the done pairs and every frame's inputs from the node's folders."""
        done_path = self.layout.done
        if done_path.exists():
            for line in done_path.read_text().splitlines():
                task, _, rest = line.partition(" ")
                if task == FORGOTTEN:
                    name, done, failed = ([*rest.split(), "0", "0", "0"])[:3]
                    if done.isdigit() and failed.isdigit():
                        self._count_forgotten(name, int(done), int(failed))
                    continue
                frame, home, outcome = ([*rest.split(), "", "", ""])[:3]
                if home == FAILED:  # a line written before lines named the frame's home
                    home, outcome = "", FAILED
                if frame:
                    self.done.setdefault(frame, set()).add(task)
                    self.done_home[frame] = home or self.plan.home
                    if outcome == FAILED:
                        self.failed.add((task, frame))
        for frame, tasks in self.done.items():
            for task in tasks:
                finished = self._finished.setdefault(task, TaskCounters())
                if (task, frame) in self.failed:
                    finished.failed += 1
                else:
                    finished.done += 1
        for task, counters in self.counters.items():
            finished = self._finished.get(task, TaskCounters())
            counters.done, counters.failed = finished.done, finished.failed
            counters.peak = max(counters.peak, finished.peak)
        self._rewrite_done_log()
        for task in self.counters:
            inbox = self.inbox(task)
            for name in sorted(os.listdir(inbox.parent)):
                folder = f"{inbox.parent}/{name}"
                held, names = read_slots(folder)
                if held is None or task in self.done.get(held, ()):
                    inbox.release(folder)
                    continue
                self.frames[(task, held)] = FrameInputs(folder, names, time.time())
                self.counters[task].waiting += 1
                self._maybe_ready(task, held)

    def _rewrite_done_log(self) -> None:
        if self.done_log is not None:
            self.done_log.close()
        path = self.layout.done
        tmp = path.with_name(".done.log.tmp")
        with tmp.open("w") as fresh:
            for task, (done, failed) in sorted(self.forgotten_counts.items()):
                fresh.write(f"{FORGOTTEN} {task} {done} {failed}\n")
            for frame, tasks in self.done.items():
                home = self.done_home.get(frame, "")
                for task in sorted(tasks):
                    fresh.write(
                        f"{task} {frame} {home} {FAILED}\n"
                        if (task, frame) in self.failed
                        else f"{task} {frame} {home}\n"
                    )
        tmp.replace(path)
        self.done_log = path.open("a", buffering=1)
        self.forgotten = 0

    def _count_forgotten(self, task: str, done: int, failed: int) -> None:
        counts = self.forgotten_counts.setdefault(task, [0, 0])
        counts[0] += done
        counts[1] += failed
        finished = self._finished.setdefault(task, TaskCounters())
        if self.done_log is None:  # recovering: these count towards the counters restored
            finished.done += done
            finished.failed += failed

    def forget_before(self, home: str, oldest: int) -> None:
        """Home's oldest frame in flight is number `oldest`: every earlier frame of it is finished."""
        if oldest <= self.oldest.get(home, -1):
            return
        self.oldest[home] = oldest
        finished = [
            frame
            for frame, owner in self.done_home.items()
            if owner == home and (sequence := frame_sequence(frame)) is not None and sequence < oldest
        ]
        for frame in finished:
            tasks = self.done.pop(frame, set())
            self.forgotten += len(tasks)
            for task in tasks:
                failed = (task, frame) in self.failed
                self.failed.discard((task, frame))
                self._count_forgotten(task, int(not failed), int(failed))
            del self.done_home[frame]
        if self.forgotten >= COMPACT_EVERY:
            self._rewrite_done_log()

    def finished_at_home(self, frame: str, home: str) -> bool:
        """Whether the frame is older than the oldest one its home still has in flight."""
        sequence = frame_sequence(frame)
        return sequence is not None and sequence < self.oldest.get(home, -1)

    # ----------------------------------------------------------------- inputs

    def held(self, task: str) -> int:
        return self.counters[task].held

    def _frame_for(self, header: Mapping[str, Any]) -> tuple[FrameInputs | None, Refusal | None]:
        """The frame an input belongs to (made when new); (None, None) when the input is not needed."""
        task, frame = str(header.get("task")), header.get("frame")
        if task not in self.counters:
            return None, Refusal.refused(f"task {task} is not on this node ({self.node})")
        plan = self.plan
        origin = str(header.get("home") or plan.home)
        if origin not in plan.all_homes:
            return None, Refusal.refused(f"unknown home node {origin!r}")
        if not is_frame_id(frame):
            return None, Refusal.refused(f"bad frame id {str(frame)[:80]!r}")
        assert isinstance(frame, str)
        if task in self.done.get(frame, ()) or self.finished_at_home(frame, origin):
            return None, None
        key = (task, frame)
        inputs = self.frames.get(key)
        if inputs is None:
            limit = plan.queue_size
            if 0 <= limit <= self.held(task):
                return None, Refusal.full(f"{task} holds {limit} frames (TASK_QUEUE_SIZE)")
            size = header.get("size")
            low = self.space_low(header.get("src") == HOME_TASK, size if isinstance(size, int) else 0)
            if low is not None:
                return None, Refusal.full(low)
            born = header.get("born")
            inputs = FrameInputs(
                self.inbox(task).acquire(),
                first_seen=time.time(),
                home=origin,
                born=born if isinstance(born, float) else time.time(),
            )
            self.frames[key] = inputs
            counters = self.counters[task]
            counters.waiting += 1
            counters.peak = max(counters.peak, counters.held)
        return inputs, None

    def _name(self, header: Mapping[str, Any], inputs: FrameInputs) -> str:
        """The name an input is stored under: its own, or prefixed with its source task when two parents collide."""
        name = str(header["name"])
        if name in inputs.names.values() or name in inputs.receiving.values():
            name = f"{header.get('src')}_{name}"
        return name

    def begin(self, header: Mapping[str, Any], peer: str = "") -> Refusal | Receipt | None:
        """Start receiving one input: a receipt to write it into, a refusal, or None (already have it: discard)."""
        inputs, problem = self._frame_for(header)
        if inputs is None:
            return problem
        slot = f"{header.get('src')}@{header.get('idx')}"
        if slot in inputs.names:
            return None
        if slot in inputs.receiving:
            return Refusal.retry(f"slot {slot} of {header.get('frame')} is being received on another connection")
        name = self._name(header, inputs)
        inputs.receiving[slot] = name
        frame = str(header["frame"])
        return Receipt(self, dict(header), inputs, slot, Incoming(inputs.folder, frame, slot, name), peer)

    def accept(
        self,
        header: Mapping[str, Any],
        payload: bytes | None,
        source: str | None = None,
        copy: bool = False,
        peer: str = "",
    ) -> Refusal | None:
        """Take one input file whose bytes are here already, or (`source`) a file of this node, linked or copied."""
        inputs, problem = self._frame_for(header)
        if inputs is None:
            return problem
        slot = f"{header.get('src')}@{header.get('idx')}"
        if slot in inputs.names or slot in inputs.receiving:
            return None
        frame, task = str(header["frame"]), str(header["task"])
        name = self._name(header, inputs)
        path = store_input(inputs.folder, frame, slot, name, payload, source, copy)
        self._stored(header, inputs, slot, name, path, len(payload) if payload is not None else -1, peer)
        self._maybe_ready(task, frame)
        return None

    def _stored(
        self, header: Mapping[str, Any], inputs: FrameInputs, slot: str, name: str, path: str, size: int, peer: str
    ) -> None:
        inputs.names[slot] = name
        plan = self.plan
        if plan.receiver_stats:
            self.emit(
                Transfer(
                    side="receiver",
                    node=self.node,
                    path=path,
                    time=time.time(),
                    frame=str(header["frame"]),
                    home=inputs.home or plan.home,
                    peer=peer,
                    bytes=size if size >= 0 else os.path.getsize(path),
                    task=str(header.get("task", "")),
                )
            )

    def _maybe_ready(self, task: str, frame: str) -> bool:
        """Queue the frame for its task once every input is in; returns whether it was queued."""
        inputs = self.frames.get((task, frame))
        if inputs is None or len(inputs.names) < self.plan.tasks[task].num_inputs:
            return False
        counters = self.counters[task]
        counters.waiting = max(0, counters.waiting - 1)
        counters.queued += 1
        self.queues[task].put_nowait(frame)
        return True

    def files(self, task: str, frame: str) -> list[str]:
        """A ready frame's input names, in the order of the task's parents (then output index)."""
        inputs = self.frames[(task, frame)]
        order = slot_order(self.plan.tasks[task])
        return [inputs.names[slot] for slot in sorted(inputs.names, key=order)]

    def input_bytes(self, task: str, frame: str) -> int:
        """Bytes of a ready frame's inputs."""
        inputs = self.frames[(task, frame)]
        total = 0
        for name in inputs.names.values():
            with contextlib.suppress(OSError):
                total += os.path.getsize(f"{inputs.folder}/{name}")
        return total

    def finish(self, task: str, frame: str, ok: bool = True) -> None:
        """A task is done with a frame (`ok`: it succeeded): remember it, free its inputs."""
        inputs = self.frames.pop((task, frame), None)
        home = inputs.home if inputs is not None and inputs.home else self.plan.home
        self.done.setdefault(frame, set()).add(task)
        self.done_home[frame] = home
        if not ok:
            self.failed.add((task, frame))
        assert self.done_log is not None
        self.done_log.write(f"{task} {frame} {home}\n" if ok else f"{task} {frame} {home} {FAILED}\n")
        if inputs is not None:
            self.inbox(task).release(inputs.folder)

    def remembered(self) -> int:
        """Done pairs remembered now (bounded by the frames in flight at their homes)."""
        return sum(len(tasks) for tasks in self.done.values())

    def close(self) -> None:
        if self.done_log is not None:
            self.done_log.close()


class Receipt:
    """One input being received in chunks (`Inbox.begin`): `write` each chunk, then `commit` or `abort`."""

    def __init__(
        self,
        inbox: Inbox,
        header: dict[str, Any],
        inputs: FrameInputs,
        slot: str,
        incoming: Incoming,
        peer: str,
    ) -> None:
        self.inbox = inbox
        self.header = header
        self.inputs = inputs
        self.slot = slot
        self.incoming = incoming
        self.peer = peer
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.incoming.write(chunk)
        self.size += len(chunk)

    def commit(self) -> None:
        """The input arrived whole and verified: it counts towards its frame."""
        path = self.incoming.commit()
        name = self.inputs.receiving.pop(self.slot)
        self.inbox._stored(self.header, self.inputs, self.slot, name, path, self.size, self.peer)
        self.inbox._maybe_ready(str(self.header["task"]), str(self.header["frame"]))

    def abort(self) -> None:
        """The input did not arrive whole: as if it had never started (the sender sends it again)."""
        self.incoming.abort()
        self.inputs.receiving.pop(self.slot, None)
