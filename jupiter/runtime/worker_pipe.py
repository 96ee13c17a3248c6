"""The agent's side of a task worker (`jupiter.runtime.worker`): start it, send jobs, enforce limits, restart it.

One worker process per task an agent hosts; it imports the task's script
once and then runs one request after another on a private pipe. A request
carries every frame that was waiting, so a backlog costs one round trip;
the worker answers in small groups as frames are done, so a frame's outputs
move on while the frames after it still run.

Limits of the task's spec (`jupiter.model.plan.TaskSpec`): the worker caps
its own memory before it imports the script; the time limit is kept here,
because a task stuck in user code cannot be trusted to stop itself. A frame
that overruns `timeout` seconds fails, the worker is killed (a forked
frame's child dies with it) and restarted, and the frames that were batched
after it are sent again to the new worker, so none is lost. The same
happens when the worker dies or, after a memory breach, asks to be replaced.
What each frame returned becomes its outputs here (`jupiter.runtime.outputs`).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from jupiter.model.plan import TaskSpec
from jupiter.model.task_settings import FRESH, show_size
from jupiter.runtime.outputs import task_outputs

FLUSH_SLACK = 0.5
"""Seconds past TASK_TIMEOUT before a frame counts as overrun (the worker writes results in small groups)."""


class WorkerCrashed(Exception):
    """The worker process died while running a task."""


class TaskWorker:
    """A worker process for one task (module docstring)."""

    def __init__(self, spec: TaskSpec, log_path: Path, env: dict[str, str]) -> None:
        self.spec = spec
        self.task = spec.name
        self.script = Path(spec.script)
        self.log_path = log_path
        self.env = {**env, "TASK": spec.name}
        self.process: asyncio.subprocess.Process | None = None
        self.load_error: str | None = None
        self.restarts = 0
        """Workers started again after a crash, a timeout or a memory breach."""
        self._started = False

    def argv(self) -> list[str]:
        """The worker's command line."""
        spec = self.spec
        return [
            sys.executable,
            "-m",
            "jupiter.runtime.worker",
            str(self.script),
            *(["--fresh"] if spec.worker == FRESH else []),
            *(["--memory", str(spec.memory)] if spec.memory else []),
        ]

    async def start(self) -> None:
        """Start the process and wait until the script is imported."""
        if self._started:
            self.restarts += 1
        self._started = True
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                cwd=str(self.script.parent),
                env=self.env,
                limit=16 * 1024 * 1024,
            )
        try:
            hello = await self._read()
        except WorkerCrashed as exc:
            hello = {"ok": False, "error": str(exc)}
        self.load_error = None if hello.get("ok") else str(hello.get("error", "worker failed to start"))

    async def _read(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            code = await self.process.wait()
            raise WorkerCrashed(f"the worker of {self.task} exited with code {code}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def _kill(self) -> None:
        """Stop the worker now (SIGKILL); a forked frame's child dies with it."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None

    def _crash_text(self, exc: Exception) -> str:
        hint = f" (its memory limit is {show_size(self.spec.memory)})" if self.spec.memory else ""
        return f"{exc}{hint} while running this frame; the worker was restarted and later frames go on"

    async def run(self, jobs: list[dict[str, Any]]) -> AsyncIterator[list[dict[str, Any]]]:
        """Run the task on several frames in one request; yields their answers in order, in groups, as they are ready.

        A group comes as soon as the worker writes it (`jupiter.runtime.worker`),
        so the first frame's outputs can move on while the others run. A frame
        that overruns the time limit, or a worker that dies or asks to be
        replaced, fails that frame only: the worker is started again and the
        frames after it are sent to the new one (module docstring).
        """
        pending = list(jobs)
        # Groups are written within FLUSH_SLACK of their last frame's end; the limit is kept with that slack.
        timeout = self.spec.timeout + FLUSH_SLACK if self.spec.timeout else None
        each = False
        """After a crash with several frames unanswered: send them again, answered one by one, to find the culprit."""
        while pending:
            if self.process is None or self.process.returncode is not None:
                await self.start()
            if self.load_error is not None:
                now = time.time()
                yield [{"ok": False, "error": self.load_error, "execute": now, "finish": now} for _ in pending]
                return
            assert self.process is not None and self.process.stdin is not None
            started = time.time()
            try:
                request = {"jobs": pending, "each": True} if each else {"jobs": pending}
                self.process.stdin.write(json.dumps(request).encode() + b"\n")
                await self.process.stdin.drain()
            except ConnectionError:
                await self._kill()  # died between two requests: a new worker takes the batch
                continue
            while pending:
                failure: dict[str, Any] | None = None
                try:
                    answers: list[dict[str, Any]] = (await asyncio.wait_for(self._read(), timeout))["results"]
                except TimeoutError:
                    # A group is written within milliseconds of its first answer, while later frames run:
                    # the first unanswered frame is the one that overran.
                    await self._kill()
                    failure = {
                        "ok": False,
                        "error": f"{self.task} ran longer than its time limit of {self.spec.timeout:g} s "
                        "(TASK_TIMEOUT) and was stopped; the worker was restarted and later frames go on",
                        "execute": started,
                        "finish": time.time(),
                    }
                except (WorkerCrashed, ConnectionError) as exc:
                    await self._kill()
                    if not each and len(pending) > 1:
                        # The frames answered just before the crash may not have been written yet: run the
                        # unanswered ones again, each answered at once, so only the one that kills its process fails.
                        each = True
                        break
                    failure = {"ok": False, "error": self._crash_text(exc), "execute": started, "finish": time.time()}
                if failure is not None:
                    answers = [failure]
                group = [self._outputs(job, answer) for job, answer in zip(pending, answers, strict=False)]
                pending = pending[len(group) :]
                started = time.time()
                if failure is not None:
                    each = False
                yield group
                if self.process is None or any(answer.get("restart") for answer in answers):
                    if self.process is not None:
                        # After a memory breach a resident worker exits on its own: reap it, then start anew.
                        await self.process.wait()
                        self.process = None
                    break

    def _outputs(self, job: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        """The answer with `outputs` (checked paths) in place of what the worker said task() returned."""
        if not answer.get("ok"):
            return answer
        found = task_outputs(self.task, job["pathout"], answer.get("returned"))
        if isinstance(found, str):
            return {**answer, "ok": False, "error": found}
        paths, written = found
        # The worker measured size and checksum of what it found; kept when the file is still that size.
        measured = answer.get("described") or {}
        outputs = []
        for path in paths:
            known = measured.get(path)
            size = os.lstat(path).st_size
            if isinstance(known, list) and len(known) == 2 and known[0] == size:
                outputs.append({"path": path, "size": size, "sum": str(known[1])})
            else:
                outputs.append({"path": path, "size": size, "sum": ""})
        return {**answer, "outputs": outputs, "written": written}

    async def stop(self) -> None:
        """Close the worker's input and wait for it to exit (killing it after a grace period)."""
        if self.process is None or self.process.returncode is not None:
            return
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), timeout=3)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
