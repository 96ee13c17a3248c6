"""jupiter.tools.dummy and scripts/generate_dummy_app.py: valid apps of any size, reproducibly."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from jupiter.model.dag import parse_dag
from jupiter.tools.dummy import DummySpec, app_files, expected_outputs, generate_app, generate_dag
from tests.apps.executor import HOME, Executor, read_configuration, shuffled
from tests.apps.structure import structure_problems

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "generate_dummy_app.py"

SPECS = [
    DummySpec(tasks=1),
    DummySpec(tasks=2, seed=1),
    DummySpec(tasks=4, entries=3),
    *(DummySpec(tasks=10, layers=4, seed=seed) for seed in range(5)),
    DummySpec(tasks=12, entries=3, layers=3, fan_out=4, seed=2),
    DummySpec(tasks=40, fan_out=2, seed=3),
    DummySpec(tasks=50, max_width=9, fan_out=4, entries=2, false_ratio=1.0, seed=5),
    DummySpec(tasks=200, seed=7),
    DummySpec(tasks=200, layers=12, fan_out=5, entries=3, extra_edges=1.0, seed=8),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: f"{spec.tasks}t-s{spec.seed}-e{spec.entries}")
def test_generated_apps_are_valid(spec: DummySpec, tmp_path: Path) -> None:
    app = generate_app(tmp_path / "app", spec)
    lines = read_configuration(tmp_path / "app")
    assert structure_problems(lines) == []
    assert len(lines) == spec.tasks
    # The package's own parser agrees.
    assert len(parse_dag(tmp_path / "app" / "configuration.txt")) == spec.tasks
    entries = [line.task for line in lines if not any(line.task in other.children for other in lines)]
    assert len(entries) == spec.entries
    depth = 1 + max(task.layer for task in app.tasks)
    assert depth == spec.layer_count
    for task in app.tasks:
        assert len(task.children) <= spec.fan_out
        assert (task.children == (HOME,)) == (task.layer == depth - 1)
        assert len(task.output_sizes) == (1 if task.flag else len(task.children))
        if not task.flag:
            assert len(task.children) >= 2
        assert spec.cpu_seconds[0] <= task.cpu_seconds <= spec.cpu_seconds[1]
        assert all(spec.output_bytes[0] <= size <= spec.output_bytes[1] for size in task.output_sizes)
        assert (tmp_path / "app" / "scripts" / f"{task.name}.py").is_file()
    assert len(list((tmp_path / "app" / "sample_input").iterdir())) == spec.samples


def test_the_same_spec_gives_the_same_app() -> None:
    spec = DummySpec(tasks=30, seed=11)
    assert app_files(generate_dag(spec)) == app_files(generate_dag(spec))
    other = generate_dag(DummySpec(tasks=30, seed=12))
    assert generate_dag(spec).configuration() != other.configuration()


def test_flags_are_mixed_in_large_apps() -> None:
    app = generate_dag(DummySpec(tasks=200, seed=7))
    assert {task.flag for task in app.tasks if len(task.children) > 1} == {True, False}
    assert max(task.num_inputs for task in app.tasks) >= 3


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (DummySpec(tasks=20, layers=2, fan_out=2), "do not fit in 2 layers with fan-out 2"),
        (DummySpec(tasks=3, layers=5), "cannot fill 5 layers"),
        (DummySpec(tasks=3, entries=3), "one layer of 3 tasks is not a connected DAG"),
    ],
)
def test_impossible_shapes_are_explained(spec: DummySpec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_dag(spec)


def test_bad_specs_are_refused() -> None:
    with pytest.raises(ValueError, match=r"tasks must be at least 1.*fan_out must be at least 1"):
        DummySpec(tasks=0, fan_out=0)
    with pytest.raises(ValueError, match="cpu_seconds must be a range"):
        DummySpec(cpu_seconds=(0.2, 0.1))


def test_a_generated_app_runs_and_gives_the_expected_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = DummySpec(tasks=8, entries=2, layers=3, cpu_seconds=(0.0, 0.001), output_bytes=(1, 3000), seed=4)
    app = generate_app(tmp_path / "app", spec)
    frame = tmp_path / "app" / "sample_input" / "input1.txt"
    executor = Executor(tmp_path / "app")
    home = executor.run(frame, tmp_path / "run", order=shuffled(0))
    expected = expected_outputs(app, frame.read_bytes())
    exits = [task for task in app.tasks if task.children == (HOME,)]
    assert sorted(path.name for path in home) == sorted(f"input1__{task.name}_0.txt" for task in exits)
    for task in app.tasks:
        produced = sorted((tmp_path / "run" / task.name / "out").iterdir())
        assert [path.read_bytes() for path in produced] == expected[task.name]


def load_cli() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_generate_dummy_app", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_writes_an_app_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = load_cli()
    target = tmp_path / "gen"
    args = [str(target), "--tasks", "6", "--layers", "3", "--seed", "2", "--cpu-seconds", "0.001", "0.002"]
    assert cli.main(args) == 0
    assert capsys.readouterr().out.startswith("wrote 6 tasks in 3 layers (")
    assert structure_problems(read_configuration(target)) == []
    before = app_files(generate_dag(DummySpec(tasks=6, layers=3, seed=2, cpu_seconds=(0.001, 0.002))))
    assert {p: (target / p).read_bytes() for p in before} == before
    assert cli.main(args) == 2
    assert capsys.readouterr().err == (
        f"error: {target} is not empty; choose another folder or pass --force to replace the app in it\n"
    )
    assert cli.main([*args, "--force"]) == 0
    with pytest.raises(SystemExit) as exited:
        cli.main([str(tmp_path / "x"), "--tasks", "0"])
    assert exited.value.code == 2
    assert "tasks must be at least 1" in capsys.readouterr().err
