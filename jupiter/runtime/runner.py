"""Task runners: each task on a node runs its ready frames in its resident worker, then routes the outputs.

One runner per task takes the frames its inbox queued, in arrival order; a
backlog goes to the worker in one request (`MAX_BATCH` frames). On a
testbed node one task runs at a time (`Emulation.processor`). The outputs
are routed by FLAG (`route`): true = the single output to every child,
false = the i-th output to the i-th child; a child `home` sends the output
back to the frame's home node. The router then places the records (pricing
may choose the nodes), the outbox hands over what stays on this node and
journals the rest, and only then is the frame marked done in the inbox.
"""

from __future__ import annotations

import asyncio
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


def route(
    plan: Plan,
    task: str,
    frame: str,
    outputs: list[str],
    out: str,
    inputs: FrameInputs | None,
    token: str,
    new_id: Callable[[], str],
    written: bool = False,
) -> list[OutboxRecord] | str:
    """Records sending a task's outputs to its children, or why they cannot be routed.

    `written`: the task returned nothing and `outputs` are the files it wrote
    in pathout (`jupiter.runtime.outputs`), which the messages say.
    """
    spec = plan.tasks[task]
    did = (
        f"it returned nothing and wrote {len(outputs)} file{'' if len(outputs) == 1 else 's'} in pathout"
        + (f" ({', '.join(os.path.basename(path) for path in outputs[:5])})" if outputs else "")
        if written
        else f"it returned {len(outputs)}"
    )
    if spec.flag:
        if len(outputs) != 1:
            return f"{task} has FLAG true, so it must return exactly one output (sent to every child); {did}"
        pairs = [(child, outputs[0]) for child in spec.children]
    else:
        if len(outputs) != len(spec.children):
            return (
                f"{task} has FLAG false and {len(spec.children)} children, so it must return "
                f"{len(spec.children)} outputs (the i-th goes to the i-th child); {did}"
            )
        pairs = list(zip(spec.children, outputs, strict=True))
    origin = inputs.home if inputs is not None and inputs.home else plan.home
    born = inputs.born if inputs is not None else time.time()
    records = []
    for index, (child, path) in enumerate(pairs):
        # With pricing, the router replaces `dest` of a task by the node it chooses.
        dest = origin if child == HOME_TASK else plan.mapping[child]
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

    @property
    def counters(self) -> TaskCounters:
        return self.inbox.counters[self.task]

    async def run(self) -> None:
        """Take ready frames in arrival order; a backlog goes to the worker in one batch."""
        task = self.task
        queue = self.inbox.queues[task]
        counters = self.counters
        plan = self._plan()
        single = plan.tasks[task].num_inputs == 1
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
            async with self.emulation.processor():  # a testbed node runs one task at a time
                answers = await self.worker.run(jobs)
                self.router.task_finished(task, answers)
            records = self._settle(frames, jobs, outs, answers, enter)
            if records:
                records = await self.router.place(records)
                records = self.outbox.hand_over(records)
                self.outbox.send(records)
            if len(frames) == 1:
                # A lone frame means the pipeline is not busy: let the send loops
                # put its outputs on the wire before the bookkeeping below. Under
                # load, finishing first lets more outputs share a batch.
                await asyncio.sleep(0)
            for frame in frames:
                self.inbox.finish(task, frame)

    def _settle(
        self,
        frames: list[str],
        jobs: list[dict[str, Any]],
        outs: list[str],
        answers: list[dict[str, Any]],
        enter: float,
    ) -> list[OutboxRecord]:
        """Count each frame's result, report it, and make the records of its outputs."""
        plan = self._plan()
        counters = self.counters
        records: list[OutboxRecord] = []
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
        return records
