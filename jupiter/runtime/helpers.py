"""The app's helper processes on one node: started before the DAG's tasks, kept running, stopped at teardown.

A helper (`jupiter.model.app.Helper`, the original's non-DAG tasks such as
the anomaly app's `dftslave00`) is a long-lived program of the app's
`scripts/`: a `.py` file runs with the agent's Python (unbuffered, as the
original's `python3 -u`), anything else with `sh`, each with its arguments,
in the scripts folder. The agent of the helper's node starts it before it
starts any task worker (so the execution profiler finds it too) and
restarts it when it exits (after 1 s, doubling up to 30 s while it keeps
exiting within 10 s of its start). When the mapping is dispatched, a helper
that started before the tasks had nodes is started once more, so that its
`ALL_NODES` names every task's host. Its output goes
to `logs/<node>-<helper>.log` of the deployment folder, with a line for each
start and exit. It dies with the agent (`jupiter.runtime.processes`), so an
agent the supervisor restarts does not find the old helper on its port.

Helpers and tasks find each other by the environment every one of them
gets, as in the original: `TASK` (its own name), and `ALL_NODES` /
`ALL_NODES_IPS`, the names of every task and helper and the host each runs
on (`:`-separated, in the same order). The ports they listen on are the
app's own (`app_config.ini`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from jupiter.model.plan import HelperSpec

log = logging.getLogger("jupiter.helpers")

FIRST_DELAY = 1.0
"""Seconds before a helper that exited is started again."""
MAX_DELAY = 30.0
STEADY = 10.0
"""A helper that ran this long before exiting is restarted after FIRST_DELAY again."""
STOP_GRACE = 3.0


class HelperProcess:
    """One supervised helper (module docstring)."""

    def __init__(
        self, spec: HelperSpec, app_path: Path, log_path: Path, environment: Callable[[], dict[str, str]]
    ) -> None:
        self.spec = spec
        self.script = app_path / spec.script
        self.log_path = log_path
        self.environment = environment
        """The agent's environment for its workers, read again at every start (`ALL_NODES` grows at dispatch)."""
        self.env: dict[str, str] = {}
        self.process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.starts = 0
        self.last_exit: int | None = None
        self._log: IO[bytes] | None = None
        self._watch: asyncio.Task[None] | None = None

    def argv(self) -> list[str]:
        """The command line: through `jupiter.runtime.helper_exec`, which ties the helper's life to the agent's."""
        program = [sys.executable, "-u"] if self.script.suffix == ".py" else ["sh"]
        return [
            sys.executable,
            "-m",
            "jupiter.runtime.helper_exec",
            "--",
            *program,
            str(self.script),
            *self.spec.args,
        ]

    def _note(self, text: str) -> None:
        if self._log is not None:
            self._log.write(f"[jupiter {time.strftime('%H:%M:%S')}] {text}\n".encode())
            self._log.flush()

    def _environment(self) -> dict[str, str]:
        return {**self.environment(), "TASK": self.spec.name, "JUPITER_HELPER": self.spec.name}

    async def _spawn(self) -> None:
        if self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self.starts += 1
        self.env = self._environment()
        self._note(f"starting helper {self.spec.name}: {' '.join(self.argv()[4:])}")
        self.process = await asyncio.create_subprocess_exec(
            *self.argv(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            cwd=str(self.script.parent),
            env=self.env,
        )
        self.started_at = time.monotonic()

    async def start(self) -> None:
        """Start the helper and keep it running (it is not waited for: tasks that need it retry, as the original's)."""
        await self._spawn()
        self._watch = asyncio.get_running_loop().create_task(self._supervise())

    async def _supervise(self) -> None:
        """Start the helper again whenever it exits, until stopped."""
        delay = FIRST_DELAY
        while True:
            assert self.process is not None
            code = await self.process.wait()
            ran = time.monotonic() - self.started_at
            self.last_exit = code
            if ran >= STEADY:
                delay = FIRST_DELAY
            self._note(f"helper {self.spec.name} exited with code {code} after {ran:.1f} s; restarting in {delay:g} s")
            log.warning("helper %s exited with code %s; restarting in %g s", self.spec.name, code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
            await self._spawn()

    async def refresh(self) -> bool:
        """Start the helper again if the agent's environment changed since it started (dispatch placed the tasks)."""
        if self._environment().get("ALL_NODES") == self.env.get("ALL_NODES"):
            return False
        self._note(f"restarting helper {self.spec.name}: the tasks were placed (ALL_NODES changed)")
        await self._end()
        await self.start()
        return True

    async def _end(self) -> None:
        """Stop supervising, then SIGTERM the process and SIGKILL it after a grace period."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        process = self.process
        if process is None:
            return
        # At teardown the process group may have had the signal already.
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        try:
            code = await asyncio.wait_for(process.wait(), STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            code = await process.wait()
        self.last_exit = code
        self._note(f"helper {self.spec.name} stopped (exit code {code})")

    async def stop(self) -> None:
        """Stop the helper for good (the agent stops)."""
        await self._end()
        if self._log is not None:
            self._log.close()
            self._log = None

    def status(self) -> dict[str, Any]:
        """For `jupiter status`: pid, whether it runs, how often it was started."""
        process = self.process
        running = process is not None and process.returncode is None
        return {
            "pid": process.pid if process is not None else None,
            "running": running,
            "starts": self.starts,
            "last_exit": self.last_exit,
        }
