"""How each task runs: worker mode, time and memory limits from jupiter_config.ini and scripts/config.json."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from jupiter.model.app import load_app
from jupiter.model.config import parse_config
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.errors import InputError, ValidationFailed
from jupiter.model.task_settings import parse_size, show_size
from jupiter.model.workspace import load_workspace
from jupiter.service.plans import build_plan

DAG = "3\nsplit 1 true left right\nleft 1 true home\nright 1 true home\n"
SCRIPT = "def task(filename, pathin, pathout):\n    return []\n"


def _workdir(tmp_path: Path, config_json: object | None = None, ini: str = "") -> Path:
    app = tmp_path / "app_specific_files" / "demo"
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "sample_input" / "a.txt").write_text("a\n")
    (app / "configuration.txt").write_text(DAG)
    for task in ("split", "left", "right"):
        (app / "scripts" / f"{task}.py").write_text(SCRIPT)
    if config_json is not None:
        text = config_json if isinstance(config_json, str) else json.dumps(config_json, indent=1)
        (app / "scripts" / "config.json").write_text(text)
    (tmp_path / "nodes.txt").write_text("home localhost\nnode1 localhost\n")
    (tmp_path / "jupiter_config.ini").write_text("[DEPLOY]\nAPP = app_specific_files/demo\n" + ini)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1024", 1024),
        ("512K", 512 * 1024),
        ("256M", 256 * 1024**2),
        ("2G", 2 * 1024**3),
        ("2GiB", 2 * 1024**3),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_sizes_are_shown_exactly() -> None:
    assert [show_size(n) for n in (0, 1000, 1024, 3 * 1024**2, 2 * 1024**3)] == ["0", "1000", "1K", "3M", "2G"]
    with pytest.raises(ValueError, match="'lots' is not a size; write bytes like 536870912, 512M or 2G"):
        parse_size("lots")


def test_defaults_are_auto_workers_without_limits(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    # `left` keeps a tally at module level: `auto` runs it fresh, as the original did; the others resident.
    (work / "app_specific_files" / "demo" / "scripts" / "left.py").write_text(
        "seen = []\n\n\ndef task(filename, pathin, pathout):\n    seen.append(filename)\n    return []\n"
    )
    spec = resolve_spec(load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None))
    assert spec.app.scripts.settings.worker_of("left") == "auto"
    plan = build_plan(spec, "d", {}, {})
    assert {(t.name, t.worker, t.timeout, t.memory) for t in plan.tasks.values()} == {
        ("split", "resident", 0.0, 0),
        ("left", "fresh", 0.0, 0),
        ("right", "resident", 0.0, 0),
    }
    assert plan.umask == 0o077


def test_config_json_overrides_the_ini_per_app_and_per_task(tmp_path: Path) -> None:
    work = _workdir(
        tmp_path,
        {
            "worker": {"*": "resident", "left": "fresh"},
            "task_timeout": {"right": 2.5},
            "task_memory": "512M",
        },
        ini="[RUNTIME]\nTASK_TIMEOUT = 30\nTASK_MEMORY = 1G\n",
    )
    spec = resolve_spec(load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None))
    assert (spec.runtime.task_timeout, spec.runtime.task_memory) == (30.0, 1024**3)
    plan = build_plan(spec, "d", {}, {})
    assert {name: (t.worker, t.timeout, t.memory) for name, t in plan.tasks.items()} == {
        "split": ("resident", 30.0, 512 * 1024**2),
        "left": ("fresh", 30.0, 512 * 1024**2),
        "right": ("resident", 2.5, 512 * 1024**2),
    }
    # The plan carries them to every agent.
    assert type(plan).from_json(plan.to_json()).tasks == plan.tasks


@pytest.mark.parametrize(
    ("config_json", "message"),
    [
        (
            '{"worker": "forked"}',
            "config.json:1: `worker`: expected 'auto', 'fresh', 'resident', got 'forked'",
        ),
        (
            '{\n "task_timeout": {"left": -1}}',
            "config.json:2: `task_timeout` of 'left': expected seconds (a number ≥ 0, 0 = no limit), got -1",
        ),
        (
            '{\n\n "task_memory": {"nosuch": "1G"}}',
            "config.json:3: `task_memory` names 'nosuch', which is not a task of configuration.txt "
            '(tasks: left, right, split; "*" stands for every other task)',
        ),
        (
            '{"task_memory": true}',
            "config.json:1: `task_memory`: expected a size (bytes, or text like 512M or 2G; 0 = no limit), got True",
        ),
    ],
)
def test_bad_task_settings_name_the_line(tmp_path: Path, config_json: str, message: str) -> None:
    work = _workdir(tmp_path, config_json)
    with pytest.raises(ValidationFailed) as caught:
        load_app(work / "app_specific_files" / "demo")
    (error,) = caught.value.errors
    assert str(error) == f"{work / 'app_specific_files' / 'demo' / 'scripts'}/{message}"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("TASK_TIMEOUT = soon", "TASK_TIMEOUT: expected a number, got 'soon'"),
        ("TASK_MEMORY = a lot", "TASK_MEMORY: 'a lot' is not a size; write bytes like 65536, 64K, 16M, 1G"),
    ],
)
def test_bad_runtime_limits_in_the_ini(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "jupiter_config.ini"
    path.write_text(f"[RUNTIME]\n{line}\n")
    with pytest.raises(InputError) as caught:
        parse_config(path)
    assert str(caught.value) == f"{path}:2: {message}"


@pytest.mark.parametrize(("text", "umask"), [("077", 0o077), ("0022", 0o022), ("0o027", 0o027)])
def test_umask(tmp_path: Path, text: str, umask: int) -> None:
    path = tmp_path / "jupiter_config.ini"
    path.write_text(f"[DEPLOY]\nUMASK = {text}\n")
    assert parse_config(path).deploy.umask == umask


def test_bad_umask(tmp_path: Path) -> None:
    path = tmp_path / "jupiter_config.ini"
    path.write_text(textwrap.dedent("[DEPLOY]\nUMASK = 0888\n"))
    with pytest.raises(InputError) as caught:
        parse_config(path)
    assert str(caught.value) == (
        f"{path}:2: UMASK: expected an octal umask like 077 (private) or 022 (readable by all), got '0888'"
    )
