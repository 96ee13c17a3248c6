"""The agent's side of a resident task worker (`jupiter.runtime.worker`): start it, send jobs, restart it.

One worker process per task an agent hosts; it imports the task's script
once and then runs one request after another on a private pipe. A request
carries every frame that was waiting, so a backlog costs one round trip.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any


class WorkerCrashed(Exception):
    """The worker process died while running a task."""


class TaskWorker:
    """A resident worker process for one task."""

    def __init__(self, task: str, script: Path, log_path: Path, env: dict[str, str]) -> None:
        self.task = task
        self.script = script
        self.log_path = log_path
        self.env = env
        self.process: asyncio.subprocess.Process | None = None
        self.load_error: str | None = None

    async def start(self) -> None:
        """Start the process and wait until the script is imported."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
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

    async def run(self, jobs: list[dict[str, Any]]) -> AsyncIterator[list[dict[str, Any]]]:
        """Run the task on several frames in one request; yields their results in order, as they are ready.

        A group comes as soon as the worker writes it (`jupiter.runtime.worker`),
        so the first frame's outputs can move on while the others run. A worker
        that dies fails the frames it had not answered, and is restarted by the
        next request.
        """
        if self.process is None or self.process.returncode is not None:
            await self.start()
        if self.load_error is not None:
            now = time.time()
            yield [{"ok": False, "error": self.load_error, "execute": now, "finish": now} for _ in jobs]
            return
        assert self.process is not None and self.process.stdin is not None
        started = time.time()
        answered = 0
        try:
            self.process.stdin.write(json.dumps({"jobs": jobs}).encode() + b"\n")
            await self.process.stdin.drain()
            while answered < len(jobs):
                results: list[dict[str, Any]] = (await self._read())["results"]
                answered += len(results)
                yield results
        except (WorkerCrashed, ConnectionError) as exc:
            self.process = None
            now = time.time()
            yield [{"ok": False, "error": str(exc), "execute": started, "finish": now} for _ in jobs[answered:]]

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
