"""The resident worker: runs one task's `task()` for frame after frame.

The agent starts one worker process per task it hosts. The worker imports the
task's script once, then answers JSON-line requests on a private pipe; a
request carries every frame that was waiting (`{"jobs": [...]}`), so a
backlog costs one round trip, not one per frame. Results come back as they
are ready, in groups (`{"results": [...]}`): a group is written as soon as
`FLUSH_SECONDS` have passed since it started, so a slow task's frame leaves
the moment it is done while a thousand tiny ones share a few writes. Each
output comes with its size and checksum, computed here (in the worker's
process, not the agent's), so the data plane never reads it to hash it. The
script's own prints go to stderr (the agent's log), never into the protocol.
A task that raises is reported with its traceback and the worker carries on
(one that ran out of disk space is marked `retry`: the agent runs it again
once there is room, the frame is not failed); a task that kills the process is noticed by the agent, which restarts it.

Run as `python -m jupiter.runtime.worker SCRIPT`.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import sys
import time
import traceback
import zlib
from pathlib import Path
from typing import Any, TextIO

from jupiter.runtime.emulation import dilate

FLUSH_SECONDS = 0.005
"""A group of results is written once its first result is this old (or the request is done)."""
CHUNK = 1024 * 1024


def _load(script: Path) -> Any:
    sys.path.insert(0, str(script.parent))
    spec = importlib.util.spec_from_file_location(f"jupiter_task_{script.stem}", script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {script}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(module: Any, request: dict[str, Any]) -> dict[str, Any]:
    files: list[str] = request["files"]
    argument: str | list[str] = files[0] if request["single"] else files
    started = time.time()
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    try:
        outputs = module.task(argument, request["pathin"], request["pathout"])
    except OSError as exc:
        # A full disk is the node's state, not the frame's fault: the agent runs it again later.
        retry = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        return {"ok": False, "retry": retry, "error": traceback.format_exc(), "execute": started, "finish": time.time()}
    # The task is user code: any exception is reported with its traceback.
    except Exception:  # noqa: BLE001
        return {"ok": False, "error": traceback.format_exc(), "execute": started, "finish": time.time()}
    speed = request.get("speed")
    # A testbed's slower node: pad to cpu_time / speed (the agent sends its current speed with each job).
    dilate(wall_start, cpu_start, float(speed) if isinstance(speed, int | float) else None)
    finished = time.time()
    if isinstance(outputs, str | os.PathLike):
        outputs = [outputs]
    if not isinstance(outputs, list | tuple):
        return {
            "ok": False,
            "error": f"task() returned {type(outputs).__name__}; it must return a list of output paths",
            "execute": started,
            "finish": finished,
        }
    described = []
    for output in outputs:
        path = Path(request["pathout"], output)
        if not path.is_file():
            return {
                "ok": False,
                "error": f"task() returned {output!s}, which is not a file",
                "execute": started,
                "finish": finished,
            }
        size, digest = _checksum(path)
        described.append({"path": str(path), "size": size, "sum": digest})
    return {"ok": True, "outputs": described, "execute": started, "finish": finished}


def _checksum(path: Path) -> tuple[int, str]:
    """Size and CRC-32 of an output, as the data plane's `sum`.

    The same computation as `jupiter.runtime.protocol.file_checksum`, kept here
    so that a worker process imports nothing but the user's script and this.
    """
    running = 0
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            running = zlib.crc32(chunk, running)
            size += len(chunk)
    return size, f"{running:08x}"


def serve(script: Path, requests: TextIO, answers: TextIO) -> None:
    """Import the script, then answer requests until stdin closes."""
    try:
        module = _load(script)
    # Import errors of user code are reported to the agent, then the worker exits.
    except BaseException:  # noqa: BLE001
        answers.write(json.dumps({"ok": False, "fatal": True, "error": traceback.format_exc()}) + "\n")
        answers.flush()
        return
    answers.write(json.dumps({"ok": True, "ready": True}) + "\n")
    answers.flush()
    for line in requests:
        jobs = json.loads(line)["jobs"]
        group: list[dict[str, Any]] = []
        opened = 0.0
        for job in jobs:
            if not group:
                opened = time.perf_counter()
            group.append(_run(module, job))
            if time.perf_counter() - opened >= FLUSH_SECONDS:
                answers.write(json.dumps({"results": group}) + "\n")
                answers.flush()
                group = []
        if group:
            answers.write(json.dumps({"results": group}) + "\n")
            answers.flush()


def main() -> None:
    """Entry point: keep the real stdout for the protocol, send prints to stderr."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    serve(Path(sys.argv[1]), sys.stdin, protocol)


if __name__ == "__main__":
    main()
