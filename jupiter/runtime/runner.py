"""Task runners: each task on a node runs its ready frames in its resident worker, then routes the outputs.

One runner per task takes the frames its inbox queued, in arrival order. A
backlog goes to the worker in one request, bounded by count (`MAX_BATCH`),
by input bytes (`BATCH_BYTES`) and by expected time (`BATCH_SECONDS` of
the task's recent per-frame time), so a thousand tiny frames share a round
trip while a slow or big frame goes alone. Results come back as they are
ready (`TaskWorker.run` yields groups), and each frame's outputs move on at
once: stages overlap, no stage waits for a whole batch. On a testbed node
one task runs at a time (`Emulation.processor`).

The outputs are routed by FLAG (`route`): true = every output to every
child, false = the i-th output to the i-th child; a child `home` sends the
output back to the frame's home node. The router then places the records
(pricing may choose the nodes), the outbox hands over what stays on this
node and journals the rest, and only then is the frame marked done in the
inbox.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from jupiter.model.events import Event, TaskRun, clip
from jupiter.model.plan import HOME_TASK, Plan
from jupiter.runtime.counters import TaskCounters
from jupiter.runtime.emulation import Emulation
from jupiter.runtime.inbox import FrameInputs, Inbox
from jupiter.runtime.outbox import Outbox
from jupiter.runtime.protocol import MAX_BATCH
from jupiter.runtime.router import Router
from jupiter.runtime.spool import FolderPool, OutboxRecord
from jupiter.runtime.worker_pipe import TaskWorker

log = logging.getLogger("jupiter.agent")

BATCH_SECONDS = 0.01
"""A request to the worker holds about this much of the task's expected time (at least one frame)."""
BATCH_BYTES = 16 * 1024**2
"""... and at most this many bytes of inputs (at least one frame)."""
SMOOTHING = 0.3
FULL_DISK_RETRY_SECONDS = 1.0
"""A frame whose task ran out of disk space runs again after this long (its outputs are dropped meanwhile)."""


def route(
    plan: Plan,
    task: str,
    frame: str,
    outputs: list[dict[str, Any]],
    out: str,
    inputs: FrameInputs | None,
    token: str,
    new_id: Callable[[], str],
    written: bool = False,
) -> list[OutboxRecord] | str:
    """Records sending a task's outputs (`path`, `size`, `sum` each) to its children, or why they cannot be routed.

    `written`: the task returned nothing and `outputs` are the files it wrote
    in pathout (`jupiter.runtime.outputs`), which the messages say.
    """
    spec = plan.tasks[task]
    did = (
        f"it returned nothing and wrote {len(outputs)} file{'' if len(outputs) == 1 else 's'} in pathout"
        + (f" ({', '.join(os.path.basename(str(output['path'])) for output in outputs[:5])})" if outputs else "")
        if written
        else f"it returned {len(outputs)}"
    )
    if spec.flag:
        if not outputs:
            return f"{task} has FLAG true, so it must return at least one output (each goes to every child); {did}"
        # Slot `idx` is the output's index: a child gets one slot per output of this parent.
        pairs = [(child, index, output) for child in spec.children for index, output in enumerate(outputs)]
    else:
        if len(outputs) != len(spec.children):
            return (
                f"{task} has FLAG false and {len(spec.children)} children, so it must return "
                f"{len(spec.children)} outputs (the i-th goes to the i-th child); {did}"
            )
        pairs = [
            (child, position, output)
            for position, (child, output) in enumerate(zip(spec.children, outputs, strict=True))
        ]
    origin = inputs.home if inputs is not None and inputs.home else plan.home
    born = inputs.born if inputs is not None else time.time()
    records = []
    for child, index, output in pairs:
        # With pricing, the router replaces `dest` of a task by the node it chooses.
        dest = origin if child == HOME_TASK else plan.mapping[child]
        path = str(output["path"])
        header = {
            "kind": "file",
            "token": token,
            "frame": frame,
            "task": child,
            "src": task,
            "idx": index,
            "name": os.path.basename(path),
            "home": origin,
            "born": born,
            "size": int(output["size"]),
            "sum": str(output["sum"]),
        }
        records.append(OutboxRecord(new_id(), dest, header, path, out))
    return records


class TaskRunner:
    """Runs one task's frames on one node, forever (module docstring)."""

    def __init__(
        self,
        task: str,
        node: str,
        token: str,
        plan: Callable[[], Plan],
        worker: TaskWorker,
        inbox: Inbox,
        outbox: Outbox,
        router: Router,
        emulation: Emulation,
        work: FolderPool,
        emit: Callable[[Event], None],
        new_id: Callable[[], str],
    ) -> None:
        self.task = task
        self.node = node
        self.token = token
        self._plan = plan
        self.worker = worker
        self.inbox = inbox
        self.outbox = outbox
        self.router = router
        self.emulation = emulation
        self.work = work
        self.emit = emit
        self.new_id = new_id
        self.seconds: float | None = None
        """The task's recent per-frame time here (smoothed), which bounds how many frames share a request."""

    @property
    def counters(self) -> TaskCounters:
        return self.inbox.counters[self.task]

    async def run(self) -> None:
        """Take ready frames in arrival order, forever; each batch's results move on as they come."""
        task = self.task
        queue = self.inbox.queues[task]
        counters = self.counters
        plan = self._plan()
        single = plan.tasks[task].num_inputs == 1
        while True:
            frames = [await queue.get()]
            budget = self._batch_size()
            total = self.inbox.input_bytes(task, frames[0])
            while len(frames) < budget and not queue.empty() and total < BATCH_BYTES:
                frame = queue.get_nowait()
                frames.append(frame)
                total += self.inbox.input_bytes(task, frame)
            counters.queued -= len(frames)
            counters.running += len(frames)
            enter = time.time()
            jobs = []
            outs = []
            for frame in frames:
                out = self.work.acquire()
                outs.append(out)
                jobs.append(
                    {
                        "files": self.inbox.files(task, frame),
                        "single": single,
                        "pathin": self.inbox.frames[(task, frame)].folder,
                        "pathout": out,
                        "speed": self.emulation.speed,
                    }
                )
            settled = 0
            async with self.emulation.processor():  # a testbed node runs one task at a time
                async for answers in self.worker.run(jobs):
                    self.router.task_finished(task, answers)
                    done = slice(settled, settled + len(answers))
                    settled += len(answers)
                    await self._move_on(frames[done], jobs[done], outs[done], answers, enter)
            if len(frames) == 1:
                # A lone frame means the pipeline is not busy: let the send loops put its
                # outputs on the wire before whatever comes next.
                await asyncio.sleep(0)

    def _batch_size(self) -> int:
        """Frames to hand the worker at once: about BATCH_SECONDS of the task's recent per-frame time.

        One until the task has run once: a task of unknown cost might be slow,
        and its first frame should not wait for a whole backlog.
        """
        if self.seconds is None:
            return 1
        return max(1, min(MAX_BATCH, int(BATCH_SECONDS / max(self.seconds, 1e-6))))

    async def _move_on(
        self,
        frames: list[str],
        jobs: list[dict[str, Any]],
        outs: list[str],
        answers: list[dict[str, Any]],
        enter: float,
    ) -> None:
        """Frames the worker finished: report them, send their outputs on, and only then mark them done."""
        for answer in answers:
            if answer.get("ok"):
                spent = max(0.0, float(answer.get("finish", 0.0)) - float(answer.get("execute", 0.0)))
                self.seconds = spent if self.seconds is None else self.seconds + SMOOTHING * (spent - self.seconds)
        retry = [frame for frame, answer in zip(frames, answers, strict=True) if answer.get("retry")]
        if retry:
            self._run_again(retry, [out for out, answer in zip(outs, answers, strict=True) if answer.get("retry")])
            kept = [index for index, answer in enumerate(answers) if not answer.get("retry")]
            frames, outs = [frames[i] for i in kept], [outs[i] for i in kept]
            jobs, answers = [jobs[i] for i in kept], [answers[i] for i in kept]
        records, failed = self._settle(frames, jobs, outs, answers, enter)
        if records:
            records = await self.router.place(records)
            records = self.outbox.hand_over(records)
            self.outbox.send(records)
        for frame in frames:
            self.inbox.finish(self.task, frame, ok=frame not in failed)

    def _run_again(self, frames: list[str], outs: list[str]) -> None:
        """Frames whose task found the disk full: their partial outputs dropped, queued again in a while."""
        for out in outs:
            self.work.release(out)
        counters = self.counters
        counters.running -= len(frames)
        counters.queued += len(frames)
        log.warning(
            "%s on %s: no disk space for the outputs of %d frame(s); running them again in %.0f s",
            self.task,
            self.node,
            len(frames),
            FULL_DISK_RETRY_SECONDS,
        )
        queue = self.inbox.queues[self.task]
        loop = asyncio.get_running_loop()
        for frame in frames:
            loop.call_later(FULL_DISK_RETRY_SECONDS, queue.put_nowait, frame)

    def _settle(
        self,
        frames: list[str],
        jobs: list[dict[str, Any]],
        outs: list[str],
        answers: list[dict[str, Any]],
        enter: float,
    ) -> tuple[list[OutboxRecord], set[str]]:
        """Count each frame's result, report it, and make the records of its outputs; also returns the failed frames."""
        plan = self._plan()
        counters = self.counters
        records: list[OutboxRecord] = []
        failed: set[str] = set()
        for frame, job, out, answer in zip(frames, jobs, outs, answers, strict=True):
            inputs = self.inbox.frames[(self.task, frame)]
            error = str(answer.get("error")) if not answer.get("ok") else None
            if error is None:
                routed = route(
                    plan,
                    self.task,
                    frame,
                    answer["outputs"],
                    out,
                    inputs,
                    self.token,
                    self.new_id,
                    written=bool(answer.get("written")),
                )
                if isinstance(routed, str):
                    error = routed
                else:
                    self.outbox.hold(out, len(routed))
                    records += routed
            counters.running -= 1
            if error is None:
                counters.done += 1
            else:
                counters.failed += 1
                failed.add(frame)
                self.work.release(out)
            self.emit(
                TaskRun(
                    task=self.task,
                    frame=frame,
                    node=self.node,
                    files=tuple(job["files"]),
                    arrive=inputs.first_seen,
                    enter=enter,
                    execute=float(answer.get("execute", enter)),
                    finish=float(answer.get("finish", time.time())),
                    ok=error is None,
                    error=clip(error) if error is not None else None,
                    home=inputs.home or plan.home,
                )
            )
        return records, failed
