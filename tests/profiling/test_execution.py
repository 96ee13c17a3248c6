"""The execution profiler chains tasks along the DAG and measures each one."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from jupiter.profiling.execution import ExecutionChain, TaskFailed, TaskShape, profile_chain

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


def _timed_runner(took: dict[str, float], calls: list[tuple[str, str]]) -> Any:
    """A runner whose tasks report `took[task]` seconds (no real waiting) and copy their first input."""

    async def run(task: str, names: list[str], single: bool, pathin: str, pathout: str) -> dict[str, Any]:
        calls.append((task, Path(pathin, names[0]).read_text()))
        outputs = [Path(pathout, f"{task}-{i}.txt") for i in range(2 if task == "split" else 1)]
        for output in outputs:
            output.write_text(f"{task}({Path(pathin, names[0]).read_text()})")
        return {"ok": True, "outputs": [str(p) for p in outputs], "execute": 100.0, "finish": 100.0 + took[task]}

    return run


def test_a_task_over_its_budget_is_measured_by_its_first_call_alone(tmp_path: Path) -> None:
    samples = [tmp_path / "s1.txt", tmp_path / "s2.txt"]
    for index, sample in enumerate(samples, start=1):
        sample.write_text(f"s{index}")
    took = {"split": 12.0, "upper": 0.5, "lower": 4.0, "join": 0.25}
    calls: list[tuple[str, str]] = []
    frames = [[sample] for sample in samples]
    result = asyncio.run(profile_chain(TASKS, frames, _timed_runner(took, calls), tmp_path / "w", runs=3, budget=10))
    # split (12 s) used up its 10 s on the warm-up: that call is its measurement.
    assert result["split"] == {"seconds": 12.0, "output_bytes": {"upper": len("split(s1)"), "lower": 9}, "runs": 1}
    # lower: warm-up 4 s, then 4 s (8 s spent), then 4 s (12 s): two measured runs, then the budget is spent.
    assert (result["lower"]["seconds"], result["lower"]["runs"]) == (4.0, 2)
    # Fast tasks get every run asked for.
    assert (result["upper"]["runs"], result["join"]["runs"]) == (3, 3)
    # Runs of a child beyond its parent's last run get the parent's last output.
    assert [text for task, text in calls if task == "upper"] == ["split(s1)"] * 4
    assert [task for task, _ in calls].count("split") == 1


def test_the_chain_profiles_one_task_per_call_in_dag_order(tmp_path: Path) -> None:
    sample = tmp_path / "in.txt"
    sample.write_text("x")
    calls: list[tuple[str, str]] = []
    took = dict.fromkeys(("split", "upper", "lower", "join"), 0.1)
    chain = ExecutionChain(TASKS, [[sample]], tmp_path / "w", runs=1)
    with pytest.raises(ValueError, match="upper needs its parents profiled first on this node: split"):
        asyncio.run(chain.profile("upper", _timed_runner(took, calls)))
    for task in ("split", "upper", "lower", "join"):
        record = asyncio.run(chain.profile(task, _timed_runner(took, calls)))
        assert record["runs"] == 1
    assert calls[-2:] == [("join", "upper(split(x))"), ("join", "upper(split(x))")]
    assert set(chain.results) == {"split", "upper", "lower", "join"}
