"""The task worker: runs one task's `task()` for frame after frame.

The agent starts one worker process per task it hosts. The worker caps its
memory (`--memory`, before anything of the script runs), imports the task's
script once, then answers JSON-line requests on a private pipe; a request
carries every frame that was waiting (`{"jobs": [...]}`) and the worker
answers the frames in order as they are done (in groups, below), so the
agent knows which frames finished when one of them overruns its time limit.

Two modes (`jupiter.model.task_settings`):

* `--fresh` (by default for a script that changes module-level state): each
  frame runs in a child forked from the worker right after the import, as
  the original forked a process per invocation, so what a frame leaves in
  module-level variables dies with it; a crash or a memory breach only ends
  that child;
* resident: the worker calls `task()` itself; module-level state carries
  over from frame to frame, and a memory breach ends the worker (the agent
  starts a new one for the next frames).

The script's own prints go to stderr (the agent's log), never into the
protocol. A task that raises is reported with its traceback and the worker
carries on (one that ran out of disk space is marked `retry`: the agent runs
it again once there is room, the frame is not failed). What `task()`
returned travels as text (`returned`); the agent decides which files are its
outputs (`jupiter.runtime.outputs`). The worker also measures the size and
checksum of the files it would be (`described`), so the agent's data plane
never reads an output only to hash it.

Answers go back in groups (`{"results": [...]}`), in order: a group is
written once its first answer is `FLUSH_SECONDS` old (by a thread, if the
next frame is still running), so a slow task's frame leaves the moment it is
done while a thousand tiny ones share a few writes.

Run as `python -m jupiter.runtime.worker SCRIPT [--fresh] [--memory BYTES]`.
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import json
import os
import signal
import sys
import threading
import time
import traceback
import zlib
from pathlib import Path
from typing import Any, TextIO

from jupiter.model.task_settings import show_size
from jupiter.runtime.emulation import dilate
from jupiter.runtime.processes import die_with_parent, limit_memory

FLUSH_SECONDS = 0.005
"""A group of answers is written once its first answer is this old."""
CHUNK = 1024 * 1024


def _load(script: Path) -> Any:
    sys.path.insert(0, str(script.parent))
    spec = importlib.util.spec_from_file_location(f"jupiter_task_{script.stem}", script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {script}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _returned(outputs: object) -> list[str] | str:
    """What task() returned as a list of texts (empty for nothing), or why it cannot be outputs."""
    if outputs is None:
        return []
    if isinstance(outputs, str | os.PathLike):
        outputs = [outputs]
    if not isinstance(outputs, list | tuple) or not all(isinstance(item, str | os.PathLike) for item in outputs):
        return f"task() returned {type(outputs).__name__}; it must return a list of output paths (or nothing)"
    return [os.fspath(item) for item in outputs]


def _describe(pathout: str, returned: list[str]) -> dict[str, list[Any]]:
    """Size and checksum of the files that will be the outputs, by real path (what the agent checks and sends).

    Only measured here; which files count (regular, inside pathout) is the
    agent's decision (`jupiter.runtime.outputs`), which keeps a figure only
    for a file that still has the size measured.
    """
    if returned:
        candidates = [os.path.join(pathout, output) for output in returned]
    else:
        with os.scandir(pathout) as entries:
            candidates = [entry.path for entry in entries if not entry.name.startswith(".") and entry.is_file()]
    described: dict[str, list[Any]] = {}
    for path in candidates:
        if os.path.isfile(path) and not os.path.islink(path):
            size, digest = _checksum(path)
            described[os.path.realpath(path)] = [size, digest]
    return described


def _checksum(path: str) -> tuple[int, str]:
    """Size and CRC-32 of a file, as the data plane's `sum`.

    The same computation as `jupiter.runtime.protocol.file_checksum`, kept here
    so that a worker process imports little besides the user's script.
    """
    running = 0
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            running = zlib.crc32(chunk, running)
            size += len(chunk)
    return size, f"{running:08x}"


class Worker:
    """Runs jobs of one imported script (module docstring)."""

    def __init__(self, module: Any, fresh: bool, memory: int) -> None:
        self.module = module
        self.fresh = fresh
        self.memory = memory

    def _call(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run task() on one job in this process."""
        files: list[str] = job["files"]
        argument: str | list[str] = files[0] if job["single"] else files
        started = time.time()
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        try:
            outputs = self.module.task(argument, job["pathin"], job["pathout"])
        except MemoryError:
            error = traceback.format_exc()
            limit = f" of {show_size(self.memory)} (TASK_MEMORY)" if self.memory else ""
            return {
                "ok": False,
                "error": f"task() ran out of memory{limit} and was stopped; later frames go on\n{error}",
                "limit": "memory",
                "restart": not self.fresh,  # a resident process may be left half-changed: start a new one
                "execute": started,
                "finish": time.time(),
            }
        except OSError as exc:
            # A full disk is the node's state, not the frame's fault: the agent runs it again later.
            retry = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            return {
                "ok": False,
                "retry": retry,
                "error": traceback.format_exc(),
                "execute": started,
                "finish": time.time(),
            }
        # The task is user code: any exception is reported with its traceback.
        except Exception:  # noqa: BLE001
            return {"ok": False, "error": traceback.format_exc(), "execute": started, "finish": time.time()}
        speed = job.get("speed")
        # A testbed's slower node: pad to cpu_time / speed (the agent sends its current speed with each job).
        dilate(wall_start, cpu_start, float(speed) if isinstance(speed, int | float) else None)
        finished = time.time()
        returned = _returned(outputs)
        if isinstance(returned, str):  # not outputs at all: the message
            return {"ok": False, "error": returned, "execute": started, "finish": finished}
        return {
            "ok": True,
            "returned": returned,
            "described": _describe(job["pathout"], returned),
            "execute": started,
            "finish": finished,
        }

    def _forked(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run task() on one job in a child forked from the imported script (`--fresh`)."""
        sys.stdout.flush()
        sys.stderr.flush()
        started = time.time()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: one frame, then gone
            os.close(read_end)
            code = 0
            try:
                die_with_parent()
                payload = json.dumps(self._call(job)).encode()
                with os.fdopen(write_end, "wb") as answer:
                    answer.write(payload)
            # Whatever happens, the child must end here and never return into the worker's loop.
            except BaseException:  # noqa: BLE001
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as answer:
            payload = answer.read()
        _, status = os.waitpid(pid, 0)
        if payload:
            result: dict[str, Any] = json.loads(payload)
            return result
        return {"ok": False, "error": self._death(status), "execute": started, "finish": time.time()}

    def _death(self, status: int) -> str:
        """Why a frame's child ended without an answer."""
        if os.WIFSIGNALED(status):
            how = f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
        else:
            how = f"exited with code {os.WEXITSTATUS(status)}"
        hint = f" (its memory limit is {show_size(self.memory)}, TASK_MEMORY)" if self.memory else ""
        return f"the process running task() {how} before task() returned{hint}; later frames go on"

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """One job's answer."""
        return self._forked(job) if self.fresh else self._call(job)


def serve(script: Path, requests: TextIO, answers: TextIO, fresh: bool = False, memory: int = 0) -> None:
    """Import the script, then answer requests (in groups of answers, module docstring) until stdin closes."""
    try:
        module = _load(script)
    # Import errors of user code are reported to the agent, then the worker exits.
    except BaseException as exc:  # noqa: BLE001
        error = traceback.format_exc()
        if isinstance(exc, MemoryError) and memory:
            error = f"importing the script ran out of its memory limit of {show_size(memory)} (TASK_MEMORY)\n{error}"
        answers.write(json.dumps({"ok": False, "fatal": True, "error": error}) + "\n")
        answers.flush()
        return
    worker = Worker(module, fresh, memory)
    answers.write(json.dumps({"ok": True, "ready": True}) + "\n")
    answers.flush()
    grouped = Answers(answers)
    threading.Thread(target=grouped.flush_when_due, name="answers", daemon=True).start()
    for line in requests:
        request = json.loads(line)
        for job in request["jobs"]:
            result = worker.run(job)
            grouped.add(result)
            if request.get("each"):  # the agent is finding which frame kills the process: answer at once
                grouped.flush()
            if result.get("restart"):
                grouped.flush()
                return  # the agent sends the frames left to a new worker
        grouped.flush()  # the request is done: nothing more comes until the next one


class Answers:
    """Answers written in groups: a group goes once its first answer is FLUSH_SECONDS old (module docstring).

    A thread writes a group that came due while the next frame still runs,
    so a quick frame's answer never waits for a slow one after it. (In
    `--fresh` mode the worker forks while this thread lives; the child never
    touches it and ends with `os._exit`.)
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.group: list[dict[str, Any]] = []
        self.opened = 0.0
        self.changed = threading.Condition()

    def add(self, result: dict[str, Any]) -> None:
        with self.changed:
            if not self.group:
                self.opened = time.monotonic()
                self.changed.notify()
            self.group.append(result)
            if time.monotonic() - self.opened >= FLUSH_SECONDS:
                self._write()

    def flush(self) -> None:
        with self.changed:
            self._write()

    def _write(self) -> None:
        if self.group:
            self.out.write(json.dumps({"results": self.group}) + "\n")
            self.out.flush()
            self.group = []

    def flush_when_due(self) -> None:
        """The thread's loop: write each group once it is due."""
        with self.changed:
            while True:
                if not self.group:
                    self.changed.wait()
                    continue
                left = self.opened + FLUSH_SECONDS - time.monotonic()
                if left > 0:
                    self.changed.wait(left)
                    continue
                self._write()


def main(argv: list[str] | None = None) -> None:
    """Entry point: die with the agent, cap memory, keep the real stdout for the protocol, send prints to stderr."""
    parser = argparse.ArgumentParser(prog="python -m jupiter.runtime.worker")
    parser.add_argument("script", type=Path)
    parser.add_argument("--fresh", action="store_true", help="run each frame in a fresh fork of the imported script")
    parser.add_argument("--memory", type=int, default=0, help="bytes of data the process may allocate; 0 = no limit")
    args = parser.parse_args(argv)
    die_with_parent()
    if args.memory:
        limit_memory(args.memory)
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    serve(args.script, sys.stdin, protocol, fresh=args.fresh, memory=args.memory)


if __name__ == "__main__":
    main()
