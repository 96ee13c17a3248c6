"""An agent's inbox: the inputs of each task's frames, until every one has arrived.

A received file fills one *slot* of a frame of a task (`<source task>@<output
index>`), stored under `inbox/<task>/d<n>/` (pooled folders,
`jupiter.runtime.spool`) before the sender hears `ok`. When a frame holds
NUM_INPUTS files it is queued for the task's runner. Repeated deliveries are
recognised by their slot and by the (task, frame) pairs already done, so a
sender that re-sends after a crash never makes a task run twice.

Backpressure: a task that holds TASK_QUEUE_SIZE frames refuses inputs of new
frames with a `busy` refusal (the sender keeps the file and offers it again);
inputs of frames it already holds are always taken, so fan-in tasks finish
what they started.

Recovery after a restart rebuilds the slots from the folders' markers and the
done pairs from `done.log`, whose lines also say which frames failed, so the
tasks' done and failed counters survive a restart too.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from jupiter.model.events import Event, Transfer, is_frame_id
from jupiter.model.layout import NodeLayout
from jupiter.model.plan import Plan, TaskSpec
from jupiter.runtime.counters import TaskCounters
from jupiter.runtime.protocol import Refusal
from jupiter.runtime.spool import FolderPool, read_slots, store_input

FAILED = "failed"
"""Third word of a `done.log` line of a frame that failed."""


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


def slot_order(spec: TaskSpec) -> Callable[[str], tuple[int, str]]:
    """Sort key of a task's slots: its parents' order (the order `task()` gets its files in)."""
    position = {parent: index for index, parent in enumerate(spec.parents)}

    def key(slot: str) -> tuple[int, str]:
        source, _, index = slot.rpartition("@")
        return (position.get(source, -1), index)

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
    ) -> None:
        self.node = node
        self._plan = plan
        self.layout = layout
        self.pool = pool
        self.emit = emit
        self.counters: dict[str, TaskCounters] = {}
        self.queues: dict[str, asyncio.Queue[str]] = {}
        self.frames: dict[tuple[str, str], FrameInputs] = {}
        self.done: set[tuple[str, str]] = set()
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
                frame, _, outcome = rest.partition(" ")
                if frame and (task, frame) not in self.done:
                    self.done.add((task, frame))
                    finished = self._finished.setdefault(task, TaskCounters())
                    if outcome == FAILED:
                        finished.failed += 1
                    else:
                        finished.done += 1
        for task, counters in self.counters.items():
            finished = self._finished.get(task, TaskCounters())
            counters.done, counters.failed = finished.done, finished.failed
            counters.peak = max(counters.peak, finished.peak)
        self.done_log = done_path.open("a", buffering=1)
        for task in self.counters:
            inbox = self.inbox(task)
            for name in sorted(os.listdir(inbox.parent)):
                folder = f"{inbox.parent}/{name}"
                held, names = read_slots(folder)
                if held is None or (task, held) in self.done:
                    inbox.release(folder)
                    continue
                self.frames[(task, held)] = FrameInputs(folder, names, time.time())
                self.counters[task].waiting += 1
                self._maybe_ready(task, held)

    # ----------------------------------------------------------------- inputs

    def held(self, task: str) -> int:
        return self.counters[task].held

    def accept(
        self, header: Mapping[str, Any], payload: bytes, source: str | None = None, peer: str = ""
    ) -> Refusal | None:
        """Take one input file of a frame (`source`: a file of this node handed over without a copy)."""
        task, frame = str(header.get("task")), header.get("frame")
        slot = f"{header.get('src')}@{header.get('idx')}"
        if task not in self.counters:
            return Refusal.refused(f"task {task} is not on this node ({self.node})")
        plan = self.plan
        origin = str(header.get("home") or plan.home)
        if origin not in plan.all_homes:
            return Refusal.refused(f"unknown home node {origin!r}")
        if not is_frame_id(frame):
            return Refusal.refused(f"bad frame id {frame!r}")
        assert isinstance(frame, str)
        key = (task, frame)
        if key in self.done:
            return None
        if key not in self.frames:
            limit = plan.queue_size
            if 0 <= limit <= self.held(task):
                return Refusal.full(f"{task} holds {limit} frames (TASK_QUEUE_SIZE)")
            born = header.get("born")
            self.frames[key] = FrameInputs(
                self.inbox(task).acquire(),
                first_seen=time.time(),
                home=origin,
                born=born if isinstance(born, float) else time.time(),
            )
            counters = self.counters[task]
            counters.waiting += 1
            counters.peak = max(counters.peak, counters.held)
        inputs = self.frames[key]
        if slot in inputs.names:
            return None
        inputs.names[slot] = self.store(
            inputs.folder, frame, slot, header, payload, inputs.names.values(), source, peer
        )
        self._maybe_ready(task, frame)
        return None

    def store(
        self,
        folder: str,
        frame: str,
        slot: str,
        header: Mapping[str, Any],
        payload: bytes,
        taken: Collection[str],
        source: str | None = None,
        peer: str = "",
    ) -> str:
        """Store one received file of a frame, logging the receipt; returns the name it was stored under.

        Two parents may send files of the same name to one child: the later one
        is prefixed with its source task so neither is overwritten. With
        `source` (a parent's output on this node) the file is linked, not copied.
        """
        name = str(header["name"])
        if name in taken:
            name = f"{header.get('src')}_{name}"
        path = store_input(folder, frame, slot, name, None if source is not None else payload, source)
        plan = self.plan
        if plan.receiver_stats:
            self.emit(
                Transfer(
                    side="receiver",
                    node=self.node,
                    path=path,
                    time=time.time(),
                    frame=frame,
                    home=str(header.get("home") or plan.home),
                    peer=peer,
                    bytes=len(payload) if source is None else os.path.getsize(path),
                    task=str(header.get("task", "")),
                )
            )
        return name

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
        """A ready frame's input names, in the order of the task's parents."""
        inputs = self.frames[(task, frame)]
        order = slot_order(self.plan.tasks[task])
        return [inputs.names[slot] for slot in sorted(inputs.names, key=order)]

    def finish(self, task: str, frame: str, ok: bool = True) -> None:
        """A task is done with a frame (`ok`: it succeeded): remember it, free its inputs."""
        self.done.add((task, frame))
        assert self.done_log is not None
        self.done_log.write(f"{task} {frame}\n" if ok else f"{task} {frame} {FAILED}\n")
        inputs = self.frames.pop((task, frame), None)
        if inputs is not None:
            self.inbox(task).release(inputs.folder)

    def close(self) -> None:
        if self.done_log is not None:
            self.done_log.close()
