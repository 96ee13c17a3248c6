"""The committed dummy_app: its shape, its costs, and outputs that are deterministic and checkable."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from jupiter.model.bundled import example_apps
from jupiter.tools.dummy import DummySpec, app_files, expected_outputs, generate_dag
from jupiter.tools.dummy_task import SPEED_ENV
from tests.apps.executor import HOME, Executor, load_script, read_configuration, shuffled
from tests.apps.structure import structure_problems

APP = example_apps()["dummy_app"]
# The spec in the scripts' docstrings; test_app_is_what_the_generator_makes keeps them in step.
SPEC = DummySpec(tasks=10, layers=4, fan_out=3, seed=4)


def test_app_is_what_the_generator_makes() -> None:
    files = app_files(generate_dag(SPEC))
    shipped = {
        path.relative_to(APP).as_posix(): path.read_bytes()
        for path in APP.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert shipped == files


def test_shape_has_fan_out_fan_in_and_both_flags() -> None:
    lines = read_configuration(APP)
    assert structure_problems(lines) == []
    assert len(lines) == 10
    assert max(len(line.children) for line in lines) >= 3
    assert max(line.num_inputs for line in lines) >= 3
    assert {line.flag for line in lines} == {True, False}
    app = generate_dag(SPEC)
    assert all(0.005 <= task.cpu_seconds <= 0.02 for task in app.tasks)
    assert all(1024 <= size <= 20 * 1024 for task in app.tasks for size in task.output_sizes)
    assert len(app.samples) == 3


def test_outputs_are_deterministic_and_of_the_configured_sizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = generate_dag(SPEC)
    executor = Executor(APP)
    for number, frame in enumerate(sorted((APP / "sample_input").iterdir())):
        first = tmp_path / f"{number}-a"
        home = executor.run(frame, first)
        expected = expected_outputs(app, frame.read_bytes())
        exits = [task for task in app.tasks if task.children == (HOME,)]
        assert sorted(path.name for path in home) == sorted(f"{frame.stem}__{task.name}_0.txt" for task in exits)
        for task in app.tasks:
            produced = sorted((first / task.name / "out").iterdir())
            assert [path.stat().st_size for path in produced] == list(task.output_sizes)
            assert [path.read_bytes() for path in produced] == expected[task.name]
        # Again, with inputs in another order and a very fast "node": the same bytes.
        monkeypatch.setenv(SPEED_ENV, "1000")
        again = executor.run(frame, tmp_path / f"{number}-b", order=shuffled(number))
        monkeypatch.delenv(SPEED_ENV)
        assert [path.read_bytes() for path in again] == [path.read_bytes() for path in home]


def test_speed_factor_stretches_cpu_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task = max(generate_dag(SPEC).tasks, key=lambda task: task.cpu_seconds)
    script = load_script(APP / "scripts" / f"{task.name}.py")
    names = [f"input0__in{i}.txt" for i in range(task.num_inputs)]
    for name in names:
        (tmp_path / name).write_text(name)
    argument = names[0] if task.num_inputs == 1 else names
    monkeypatch.setenv(SPEED_ENV, "0.5")
    started = time.process_time()
    script.task(argument, str(tmp_path), str(tmp_path))
    assert time.process_time() - started >= 2 * task.cpu_seconds
    for bad in ("fast", "0", "-1", "inf"):
        monkeypatch.setenv(SPEED_ENV, bad)
        with pytest.raises(ValueError, match=SPEED_ENV):
            script.task(argument, str(tmp_path), str(tmp_path))


@pytest.mark.parametrize("task", ["task0", "task8"])
def test_main_runs_on_sample_data(
    task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    load_script(APP / "scripts" / f"{task}.py").main()
    printed = [Path(line) for line in capsys.readouterr().out.splitlines()]
    sizes = generate_dag(SPEC).task(task).output_sizes
    assert [path.stat().st_size for path in printed] == list(sizes)
    assert all(tmp_path in path.parents and path.name.startswith("input0__") for path in printed)
