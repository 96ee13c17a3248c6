"""The resident worker: runs one task's `task()` for frame after frame.

The agent starts one worker process per task it hosts. The worker imports the
task's script once, then answers JSON-line requests on a private pipe; a
request carries every frame that was waiting (`{"jobs": [...]}`), so a
backlog costs one round trip, not one per frame. The
script's own prints go to stderr (the agent's log), never into the protocol.
A task that raises is reported with its traceback and the worker carries on;
a task that kills the process is noticed by the agent, which restarts it.

Run as `python -m jupiter.runtime.worker SCRIPT`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from jupiter.runtime.emulation import dilate


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
    paths = []
    for output in outputs:
        path = Path(request["pathout"], output)
        if not path.is_file():
            return {
                "ok": False,
                "error": f"task() returned {output!s}, which is not a file",
                "execute": started,
                "finish": finished,
            }
        paths.append(str(path))
    return {"ok": True, "outputs": paths, "execute": started, "finish": finished}


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
        answers.write(json.dumps({"results": [_run(module, job) for job in jobs]}) + "\n")
        answers.flush()


def main() -> None:
    """Entry point: keep the real stdout for the protocol, send prints to stderr."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    serve(Path(sys.argv[1]), sys.stdin, protocol)


if __name__ == "__main__":
    main()
