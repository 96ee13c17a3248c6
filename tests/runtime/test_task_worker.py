"""Task workers with real processes: fresh and resident modes, time and memory limits, crashes, outputs.

Issue 14 item 7 (state between frames), issue 12 item 8 (limits) and item 7
(outputs only inside pathout), at the level of one worker and the agent's
side of its pipe (`jupiter.runtime.worker_pipe.TaskWorker`).
"""

from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from jupiter.model.plan import TaskSpec
from jupiter.runtime.protocol import file_checksum
from jupiter.runtime.worker_pipe import TaskWorker

pytestmark = pytest.mark.processes

SCRIPT = textwrap.dedent(
    """\
    import os
    import time

    SEEN = []  # module-level state: what frames before this one left


    def task(filename, pathin, pathout):
        text = open(os.path.join(pathin, filename)).read()
        SEEN.append(filename)
        if "hang" in text:
            time.sleep(3600)
        if "crash" in text:
            os._exit(3)
        if "calloc" in text:
            block = bytes(10 * 1024**3)  # 10 GB in one allocation (untouched pages: harmless if unlimited)
        if "touch" in text:
            blocks = [b"x" * (64 * 1024**2) for _ in range(16)]  # touches up to 1 GB, 64 MB at a time
        if "passwd" in text:
            return ["/etc/passwd"]
        out = os.path.join(pathout, "seen_" + filename)
        with open(out, "w") as handle:
            handle.write(str(len(SEEN)))
        if "quiet" in text:
            return None  # written, not returned: the agent finds it
        return [out]
    """
)


def _spec(tmp_path: Path, worker: str = "fresh", timeout: float = 0.0, memory: int = 0) -> TaskSpec:
    script = tmp_path / "scripts" / "work.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(SCRIPT)
    return TaskSpec("work", 1, True, ("home",), (), str(script), worker=worker, timeout=timeout, memory=memory)


def _jobs(tmp_path: Path, texts: list[str]) -> list[dict[str, Any]]:
    jobs = []
    for index, text in enumerate(texts):
        pathin = tmp_path / "in" / f"d{index}"
        pathout = tmp_path / "out" / f"d{index}"
        pathin.mkdir(parents=True)
        pathout.mkdir(parents=True)
        (pathin / f"f{index}.txt").write_text(text)
        jobs.append({"files": [f"f{index}.txt"], "single": True, "pathin": str(pathin), "pathout": str(pathout)})
    return jobs


def _run(spec: TaskSpec, tmp_path: Path, texts: list[str]) -> tuple[list[dict[str, Any]], TaskWorker]:
    worker = TaskWorker(spec, tmp_path / "logs" / "work.log", dict(os.environ))

    async def main() -> list[dict[str, Any]]:
        await worker.start()
        try:
            return [answer async for group in worker.run(_jobs(tmp_path, texts)) for answer in group]
        finally:
            await worker.stop()

    return asyncio.run(main()), worker


def _counts(results: list[dict[str, Any]]) -> list[str]:
    return [Path(result["outputs"][0]["path"]).read_text() if result["ok"] else "failed" for result in results]


def test_fresh_frames_start_from_the_imported_script(tmp_path: Path) -> None:
    results, _ = _run(_spec(tmp_path, "fresh"), tmp_path, ["a", "b", "c"])
    assert _counts(results) == ["1", "1", "1"]


def test_resident_frames_see_what_earlier_frames_left(tmp_path: Path) -> None:
    results, _ = _run(_spec(tmp_path, "resident"), tmp_path, ["a", "b", "c"])
    assert _counts(results) == ["1", "2", "3"]


@pytest.mark.adversarial
@pytest.mark.parametrize("mode", ["fresh", "resident"])
def test_a_hanging_frame_times_out_and_the_batch_goes_on(tmp_path: Path, mode: str) -> None:
    # Generous: the limit must only catch the frame that sleeps for an hour, never a slow start on a busy machine.
    results, worker = _run(_spec(tmp_path, mode, timeout=3.0), tmp_path, ["a", "hang", "c", "d"])
    assert [result["ok"] for result in results] == [True, False, True, True]
    assert results[1]["error"] == (
        "work ran longer than its time limit of 3 s (TASK_TIMEOUT) and was stopped; "
        "the worker was restarted and later frames go on"
    )
    assert worker.restarts == 1
    # The frames after the hanging one ran in the new worker (resident: its state started again).
    expected = ["1", "failed", "1", "1"] if mode == "fresh" else ["1", "failed", "1", "2"]
    assert _counts(results) == expected


@pytest.mark.adversarial
@pytest.mark.parametrize("allocation", ["calloc", "touch"])
@pytest.mark.parametrize("mode", ["fresh", "resident"])
def test_a_frame_over_its_memory_limit_fails_and_later_frames_go_on(tmp_path: Path, mode: str, allocation: str) -> None:
    results, worker = _run(_spec(tmp_path, mode, memory=256 * 1024**2), tmp_path, ["a", allocation, "c"])
    assert [result["ok"] for result in results] == [True, False, True]
    error = results[1]["error"]
    assert error.startswith("task() ran out of memory of 256M (TASK_MEMORY) and was stopped; later frames go on\n")
    assert error.rstrip().endswith("MemoryError")
    # A resident worker may be left half-changed, so a new one takes over; a fresh frame's child just ends.
    assert worker.restarts == (1 if mode == "resident" else 0)


@pytest.mark.adversarial
@pytest.mark.parametrize("mode", ["fresh", "resident"])
def test_a_frame_that_kills_its_process_fails_alone(tmp_path: Path, mode: str) -> None:
    results, worker = _run(_spec(tmp_path, mode), tmp_path, ["a", "crash", "c"])
    assert [result["ok"] for result in results] == [True, False, True]
    if mode == "fresh":
        assert results[1]["error"] == (
            "the process running task() exited with code 3 before task() returned; later frames go on"
        )
        assert worker.restarts == 0
    else:
        assert results[1]["error"] == (
            "the worker of work exited with code 3 while running this frame; the worker was restarted "
            "and later frames go on"
        )
        # The crash came with two frames unanswered: both ran again, answered one by one, and the crash came
        # again with the culprit (an answer written just before a crash may not have reached the agent).
        assert worker.restarts == 2


@pytest.mark.adversarial
def test_outputs_outside_pathout_fail_and_written_ones_are_found(tmp_path: Path) -> None:
    results, _ = _run(_spec(tmp_path), tmp_path, ["passwd", "quiet"])
    assert results[0]["ok"] is False
    assert results[0]["error"] == (
        "work returned '/etc/passwd', which is outside its pathout; only files inside pathout are sent "
        "(write outputs into pathout and return their paths)"
    )
    assert results[1]["ok"] is True
    assert results[1]["written"] is True
    written = tmp_path / "out" / "d1" / "seen_f1.txt"
    # The worker measured the file it wrote: the agent sends it with that size and checksum.
    assert results[1]["outputs"] == [
        {"path": str(written.resolve()), "size": written.stat().st_size, "sum": file_checksum(str(written))[1]}
    ]


def test_a_script_too_big_for_its_memory_limit_says_so(tmp_path: Path) -> None:
    spec = _spec(tmp_path, memory=64 * 1024**2)
    Path(spec.script).write_text("BIG = bytes(512 * 1024**2)\n\ndef task(filename, pathin, pathout):\n    return []\n")
    results, _ = _run(spec, tmp_path, ["a"])
    assert results[0]["ok"] is False
    assert results[0]["error"].startswith(
        "importing the script ran out of its memory limit of 64M (TASK_MEMORY)\nTraceback (most recent call last)"
    )
