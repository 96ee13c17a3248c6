"""Naming the app as a newcomer would: `jupiter validate APP`, `--app` after the command, and clear errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from jupiter.model.problem_files import problem_to_json
from tests.conftest import CONFIG, Result, Workdir
from tests.mapping.helpers import topcuoglu

Run = Callable[..., Result]
OK = "ok: demo is ready to run\n"


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "demo"),
        ("validate", "--app", "demo"),
        ("validate", "app_specific_files/demo"),
        ("--app", "demo", "validate"),
        ("validate", "demo", "--app", "demo"),
    ],
)
def test_the_app_by_name_or_folder_before_or_after_the_command(workdir: Workdir, run: Run, args: tuple[str]) -> None:
    # The config names no app: only the command line does.
    workdir.write("jupiter_config.ini", CONFIG.replace("APP = app_specific_files/demo\n", ""))
    result = run(*args)
    assert (result.code, result.err) == (0, "")
    assert result.out.endswith(OK)


def test_the_command_line_app_wins_over_the_config(workdir: Workdir, run: Run) -> None:
    other = workdir.root / "app_specific_files" / "other"
    other.parent.mkdir(exist_ok=True)
    (workdir.root / "app_specific_files" / "demo").rename(other)
    workdir.write("jupiter_config.ini", CONFIG.replace("app_specific_files/demo", "app_specific_files/gone"))
    assert run("validate", "other").out.endswith("ok: other is ready to run\n")


def test_two_different_apps_are_a_usage_error(workdir: Workdir, run: Run) -> None:
    result = run("validate", "demo", "--app", "other")
    assert result.code == 2
    assert result.err.endswith("Error: two apps given: 'demo' and --app 'other'; name one\n")


def test_an_unknown_app_lists_the_apps_and_the_closest_name(workdir: Workdir, run: Run) -> None:
    (workdir.root / "app_specific_files" / "imgp").mkdir()
    (workdir.root / "app_specific_files" / "imgp" / "configuration.txt").write_text("1\nx 1 true home\n")
    (workdir.root / "app_specific_files" / "notes").mkdir()  # a folder without configuration.txt is no app
    result = run("validate", "dmeo")
    assert (result.code, result.out) == (2, "")
    assert result.err == "error: no app 'dmeo'; apps in app_specific_files/: demo, imgp; did you mean 'demo'?\n"
    far = run("run", "--app", "anomaly")
    assert (far.code, far.err) == (2, "error: no app 'anomaly'; apps in app_specific_files/: demo, imgp\n")


def test_an_unknown_app_of_the_config_names_its_line(workdir: Workdir, run: Run) -> None:
    text = CONFIG.replace("app_specific_files/demo", "app_specific_files/dem")
    workdir.write("jupiter_config.ini", text)
    line = text.splitlines().index("APP = app_specific_files/dem") + 1
    result = run("validate")
    assert (result.code, result.err) == (
        2,
        f"error: jupiter_config.ini:{line}: no app 'app_specific_files/dem'; apps in app_specific_files/: demo; "
        "did you mean 'demo'?; fix APP in [DEPLOY] or name an app\n",
    )


def test_a_folder_without_config_says_jupiter_init(tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("run", "dummy_app")
    assert result.code == 2
    assert result.err.splitlines() == [
        "error: jupiter_config.ini: config file not found; make a working folder with `jupiter init`, "
        "or point to the file with --config FILE",
        "error: nodes.txt: node list not found; make a working folder with `jupiter init`, "
        "or point to the file with --nodes FILE",
        "error: no app 'dummy_app'; there are no apps in app_specific_files/ (an app is a folder with a "
        "configuration.txt)",
    ]


@pytest.mark.parametrize("command", ["validate", "deploy", "run", "profile", "map", "render", "build"])
def test_every_app_command_takes_the_app_as_its_argument(run: Run, command: str) -> None:
    result = run(command, "--help")
    assert result.code == 0
    assert result.out.startswith(f"Usage: jupiter {command} [OPTIONS] [APP]\n")
    assert "--app APP" in result.out


def _profile_of(workdir: Workdir, tasks: list[str]) -> Path:
    path = workdir.root / "profile.json"
    path.write_text(
        json.dumps(
            {
                "format": "jupiter-profile",
                "version": 1,
                "nodes": ["node1", "node2"],
                "links": [],
                "resources": {},
                "execution": {task: {"node1": {"seconds": 1.0}, "node2": {"seconds": 2.0}} for task in tasks},
                "edges": [["split", "left"], ["split", "right"], ["left", tasks[-1]], ["right", tasks[-1]]],
            }
        )
    )
    return path


def test_map_with_an_app_checks_it_as_validate_does(workdir: Workdir, run: Run) -> None:
    profile = _profile_of(workdir, ["split", "left", "right", "join"])
    good = run("map", "demo", "--profile", str(profile), "--scheduler", "heft")
    assert good.code == 0, good.err
    assert "scheduler heft: predicted makespan" in good.out
    # A script that does not import stops `map APP` as it stops `validate`.
    workdir.write_app("scripts/left.py", "def task(:\n")
    broken = run("map", "demo", "--profile", str(profile))
    assert broken.code == 2
    assert broken.err == run("validate", "demo").err
    # Without an app, map reads the file alone (the Kubernetes mapper Job has no working folder).
    assert run("map", "--profile", str(profile)).code == 0


def test_map_refuses_a_profile_of_another_app(workdir: Workdir, run: Run) -> None:
    profile = _profile_of(workdir, ["split", "left", "right", "merge"])
    result = run("map", "demo", "--profile", str(profile))
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        f"error: {profile}: is not a profile of demo (no figures for join; tasks merge are not in it); "
        "profile it again with `jupiter profile demo`, or name the app it is of\n"
    )


def test_map_with_an_app_refuses_a_problem_of_another_dag(workdir: Workdir, run: Run) -> None:
    problem = workdir.root / "problem.json"
    problem.write_text(json.dumps(problem_to_json(topcuoglu())))
    result = run("map", "demo", "--problem", str(problem))
    assert result.code == 2
    assert result.err.startswith(f"error: {problem}: is not a profile of demo (no figures for ")
