"""The execution profiler chains tasks along the DAG and measures each one."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from jupiter.profiling.execution import TaskFailed, TaskShape, profile_chain

# split (FLAG false) -> upper, lower -> join (2 inputs) -> home
TASKS = [
    TaskShape("split", 1, False, ("upper", "lower"), ()),
    TaskShape("upper", 1, True, ("join",), ("split",)),
    TaskShape("lower", 1, True, ("join",), ("split",)),
    TaskShape("join", 2, True, ("home",), ("upper", "lower")),
]


def _runner(seen: dict[str, list[str]], fail: str = "") -> Any:
    async def run(task: str, names: list[str], single: bool, pathin: str, pathout: str) -> dict[str, Any]:
        started = time.time()
        if task == fail:
            return {"ok": False, "error": "Traceback...\nValueError: boom", "execute": started, "finish": started}
        texts = [Path(pathin, name).read_text() for name in names]
        seen.setdefault(task, []).append("|".join(texts))
        assert single == (len(names) == 1)
        if task == "split":
            outputs = [Path(pathout, "a.txt"), Path(pathout, "b.txt")]
            outputs[0].write_text("A" * 100 + texts[0])
            outputs[1].write_text("B" * 10 + texts[0])
        else:
            outputs = [Path(pathout, f"{task}.txt")]
            outputs[0].write_text(task + ":" + "+".join(texts))
        await asyncio.sleep(0.01)
        return {"ok": True, "outputs": [str(p) for p in outputs], "execute": started, "finish": time.time()}

    return run


def test_each_task_gets_its_parents_outputs_and_edges_get_their_sizes(tmp_path: Path) -> None:
    sample = tmp_path / "in.txt"
    sample.write_text("x" * 50)
    seen: dict[str, list[str]] = {}
    result = asyncio.run(profile_chain(TASKS, [[sample]], _runner(seen), tmp_path / "work", runs=2))
    assert seen["upper"][-1] == "A" * 100 + "x" * 50
    assert seen["lower"][-1] == "B" * 10 + "x" * 50
    assert sorted(seen["join"][-1].split("|")) == sorted(
        ["upper:" + "A" * 100 + "x" * 50, "lower:" + "B" * 10 + "x" * 50]
    )
    assert len(seen["split"]) == 3  # one warm-up run, then the two measured ones
    assert result["split"]["output_bytes"] == {"upper": 150, "lower": 60}
    assert result["upper"]["output_bytes"] == {"join": len("upper:") + 150}
    assert result["join"]["runs"] == 2
    for record in result.values():
        assert 0.005 < record["seconds"] < 0.5


def test_skipped_tasks_are_not_run_and_their_children_get_the_sample(tmp_path: Path) -> None:
    sample = tmp_path / "in.txt"
    sample.write_text("raw")
    seen: dict[str, list[str]] = {}
    result = asyncio.run(profile_chain(TASKS, [[sample]], _runner(seen), tmp_path / "w", skip=frozenset({"split"})))
    assert "split" not in seen
    assert seen["upper"][-1] == "raw"
    assert result["split"] == {"seconds": 0.0, "output_bytes": {}, "runs": 0, "profiled": False}


def test_a_failing_task_is_reported_with_its_error(tmp_path: Path) -> None:
    sample = tmp_path / "in.txt"
    sample.write_text("raw")
    with pytest.raises(TaskFailed, match="lower failed on its sample input: ValueError: boom"):
        asyncio.run(profile_chain(TASKS, [[sample]], _runner({}, fail="lower"), tmp_path / "w"))


def test_no_sample_input_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one sample input"):
        asyncio.run(profile_chain(TASKS, [], _runner({}), tmp_path))
    assert not os.path.exists(tmp_path / "run0")
