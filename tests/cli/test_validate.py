"""`jupiter validate`: every bad input gets one line naming where and how to fix, exit 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from jupiter.mapping import mapper_names
from tests.conftest import CONFIG, GOOD_SCRIPT, Result, Workdir

Run = Callable[..., Result]
APP = "app_specific_files/demo"
MISSING_CONFIG = (
    "config file not found; make a working folder with `jupiter init`, or point to the file with --config FILE"
)


def test_valid_workdir_prints_what_it_checked(workdir: Workdir, run: Run) -> None:
    result = run("validate")
    assert result.code == 0, result.err
    assert result.err == ""
    assert result.out.splitlines() == [
        "config   jupiter_config.ini: scheduler heft, pricing nonpricing, backend local",
        "nodes    nodes.txt: 1 home, 2 compute, 0 datasource",
        f"dag      {APP}/configuration.txt: 4 tasks, 4 edges, depth 3, entry split, exit join",
        f"scripts  {APP}/scripts: 4 scripts import and define task(filename, pathin, pathout)",
        f"inputs   {APP}/sample_input: 1 sample input files",
        "ok: demo is ready to run",
    ]


def _dag_error(workdir: Workdir, run: Run, dag: str) -> str:
    workdir.write_app("configuration.txt", dag)
    result = run("validate")
    assert result.code == 2
    assert result.out == ""
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, lines
    return lines[0].replace(f"{APP}/", "")


@pytest.mark.parametrize(
    ("dag", "message"),
    [
        (
            "four\nsplit 1 true home\n",
            "configuration.txt:1: first line must be the number of DAG lines, got 'four'",
        ),
        (
            "2\nsplit 1 true home\n",
            "configuration.txt:1: says 2 DAG lines but 1 follow; set the first line to 1",
        ),
        (
            "2\nsplit 1 true lfet\nleft 1 true home\n",
            "configuration.txt:2: child 'lfet' of split has no line of its own; "
            "add `lfet NUM_INPUTS FLAG children...` or fix the name",
        ),
        (
            "3\nsplit 1 true left\nleft 1 true right\nright 1 true left home\n",
            "configuration.txt:3: cycle left -> right -> left; a DAG cannot loop, remove one of these edges",
        ),
        (
            "2\nsplit 1 true home\nsplit 1 true home\n",
            "configuration.txt:3: task split is already defined on line 2; give each task one line",
        ),
        (
            "4\nsplit 1 false left right\nleft 1 true join\nright 1 true join\njoin 1 true home\n",
            "configuration.txt:5: join waits for 1 inputs but it has 2 parents (left, right): it would start "
            "before every parent delivered; set NUM_INPUTS to at least 2",
        ),
        (
            "2\nsplit one true left\nleft 1 true home\n",
            "configuration.txt:2: NUM_INPUTS of split must be a whole number, got 'one'",
        ),
        (
            "2\nsplit 1 yes left\nleft 1 true home\n",
            "configuration.txt:2: FLAG of split must be `true` or `false`, got 'yes'",
        ),
        (
            "2\nsplit 1 false left left\nleft 1 true home\n",
            "configuration.txt:2: split lists child 'left' twice; with FLAG false the i-th output "
            "goes to the i-th child, so list each child once",
        ),
        (
            "1\nsplit 1 false\n",
            "configuration.txt:2: split lists no children; list `home` to send its outputs home",
        ),
        (
            "1\nsplit 1\n",
            "configuration.txt:2: expected `task NUM_INPUTS FLAG child...`, got 'split 1'",
        ),
        (
            "2\nsplit 1 true left\nleft 1 true split\n",
            "configuration.txt:2: cycle split -> left -> split; a DAG cannot loop, remove one of these edges",
        ),
        (
            "1\nsplit 1 true split home\n",
            "configuration.txt:2: split lists itself among other children; a DAG cannot loop (a line "
            "`split 1 False split` with no other child declares a helper process)",
        ),
        (
            # A line naming only itself declares a helper (the original's READMEs): no DAG task is left.
            "1\nsplit 1 true split\n",
            "configuration.txt: no task sends its output home; list `home` as a child of the exit task(s)",
        ),
        ("", "configuration.txt: DAG file is empty; see the format in docs/formats.md"),
        ("\n  \n", "configuration.txt: DAG file is empty; see the format in docs/formats.md"),
    ],
)
def test_bad_dag(workdir: Workdir, run: Run, dag: str, message: str) -> None:
    assert _dag_error(workdir, run, dag) == f"error: {message}"


def test_missing_script(workdir: Workdir, run: Run) -> None:
    (workdir.app / "scripts" / "left.py").unlink()
    result = run("validate")
    assert result.code == 2
    assert result.err == (
        f"error: {APP}/configuration.txt:3: task left has no script; create scripts/left.py "
        "with `def task(filename, pathin, pathout)`\n"
    )


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            "def run(a, b, c):\n    return []\n",
            "defines no function `task`; add `def task(filename, pathin, pathout)` returning the list of output paths",
        ),
        (
            "\n\ndef task(filename, pathin):\n    return []\n",
            ":3: task(filename, pathin) has the wrong arguments; Jupiter calls task(filename, pathin, pathout)",
        ),
        (
            "import os\nimport no_such_module_xyz\n",
            ":2: fails to import (ModuleNotFoundError: No module named 'no_such_module_xyz'); fix the "
            "script or add what it needs to requirements.txt",
        ),
        (
            "def task(filename, pathin, pathout)\n    return []\n",
            ":1: fails to import (SyntaxError: expected ':' (left.py, line 1)); fix the script or add "
            "what it needs to requirements.txt",
        ),
        (
            "import sys\nsys.exit(3)\n",
            ":2: fails to import (SystemExit: 3); fix the script or add what it needs to requirements.txt",
        ),
        (
            "def task(filename, pathin, pathout):\n    return []\n\n\ndef main(sample):\n    pass\n",
            ":5: main(sample) must take no arguments; it runs the task on sample data",
        ),
    ],
)
def test_bad_script(workdir: Workdir, run: Run, script: str, message: str) -> None:
    workdir.write_app("scripts/left.py", script)
    result = run("validate")
    assert result.code == 2
    sep = "" if message.startswith(":") else ": "
    assert result.err == f"error: {APP}/scripts/left.py{sep}{message}\n"


def test_script_printing_at_import_is_fine(workdir: Workdir, run: Run) -> None:
    workdir.write_app("scripts/left.py", "print('noise')\n" + GOOD_SCRIPT)
    assert run("validate").code == 0


def test_hanging_script_times_out(workdir: Workdir, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupiter.service import scriptcheck

    workdir.write_app("scripts/left.py", "import time\ntime.sleep(30)\n")
    errors = scriptcheck.check_scripts(
        workdir.app / "scripts", {"left": workdir.app / "scripts" / "left.py"}, timeout=1.0
    )
    assert [str(e) for e in errors] == [
        f"{workdir.app}/scripts: importing the scripts took more than 1 s; move slow work from module level into task()"
    ]


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        (
            "node1 localhost\nnode2 localhost\n",
            "nodes.txt: no home node; add a line `home <hostname>` (the first line, by convention)",
        ),
        (
            "home localhost\nnode1 a\nnode1 b\n",
            "nodes.txt:3: node 'node1' is already listed on line 2; node names must be unique",
        ),
        ("home localhost\n", "nodes.txt: no compute node; add at least one line such as `node1 <hostname>`"),
        (
            "home localhost\nnode1\n",
            "nodes.txt:2: expected `<name> <hostname>`, got 1 fields: 'node1'",
        ),
        (
            "home localhost\nno.de localhost\n",
            "nodes.txt:2: node name 'no.de' may hold only letters, digits, '-' and '_' and must start "
            "with a letter or digit",
        ),
        ("", "nodes.txt: node list is empty; see the format in docs/formats.md"),
    ],
)
def test_bad_nodes(workdir: Workdir, run: Run, nodes: str, message: str) -> None:
    workdir.write("nodes.txt", nodes)
    result = run("validate")
    assert (result.code, result.err) == (2, f"error: {message}\n")


def test_two_homes_need_pricing(workdir: Workdir, run: Run) -> None:
    workdir.write("nodes.txt", "home a\nhome2 b\nnode1 c\n")
    result = run("validate")
    assert (result.code, result.err) == (
        2,
        "error: nodes.txt:2: 2 home nodes need a pricing scheme; set PRICING = 1 (push) or 2 (event) "
        "in [CONFIG], or keep one home node\n",
    )


SCHEDULER_NAMES = ", ".join(sorted(mapper_names()))
"""What an unknown SCHEDULER's message offers: every registered mapper, by name."""


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        (
            "SCHEDULER = heft",
            "SCHEDULER = fastest",
            f"jupiter_config.ini:2: SCHEDULER: unknown value 'fastest'; use one of: {SCHEDULER_NAMES}",
        ),
        (
            "SCHEDULER = heft",
            "SCHEDULER = 7",
            "jupiter_config.ini:2: SCHEDULER: 7 is not in [SCHEDULER_LIST] (HEFT = 0, WAVE_RANDOM = 1, "
            f"WAVE_GREEDY = 2, HEFT_MODIFIED = 3); use one of those numbers or a name: {SCHEDULER_NAMES}",
        ),
        (
            "PRICING = 0",
            "PRICING = cheapest",
            "jupiter_config.ini:3: PRICING: unknown value 'cheapest'; use one of: driven_multiplehome, "
            "event, nonpricing, push, push_multiplehome",
        ),
        (
            "PRICING = 0",
            "PRICING = 5",
            "jupiter_config.ini:3: PRICING: 5 is not in [PRICING_LIST] (NONPRICING = 0, "
            "PUSH_MULTIPLEHOME = 1, DRIVEN_MULTIPLEHOME = 2); use one of those numbers or a name: "
            "driven_multiplehome, event, nonpricing, push, push_multiplehome",
        ),
        (
            "FLASK_SVC = 6100",
            "FLASK_SVC = 61OO",
            "jupiter_config.ini:6: FLASK_SVC: expected a port number from 1 to 65535, got '61OO'",
        ),
        (
            "FLASK_SVC = 6100",
            "FLASK_SVC = 70000",
            "jupiter_config.ini:6: FLASK_SVC: expected a port number from 1 to 65535, got '70000'",
        ),
        (
            "[CONFIG]",
            "SCHEDULER = heft\n[CONFIG]",
            "jupiter_config.ini:1: a key comes before any section; start the file with `[CONFIG]`",
        ),
        (
            "PRICING = 0",
            "PRICING = 0\nPRICING = 1",
            "jupiter_config.ini:4: PRICING is set twice in [CONFIG]; keep one",
        ),
        (
            "[DEPLOY]",
            "[OTHER]\nTASK_QUEUE_SIZE = 0\n[DEPLOY]",
            "jupiter_config.ini:9: TASK_QUEUE_SIZE: expected -1 (unbounded) or a size of at least 1, got 0",
        ),
        (
            "[DEPLOY]",
            "[DEPLOY]\nBACKEND = mesos",
            "jupiter_config.ini:9: BACKEND: backend 'mesos' is not available; use one of: local, docker, kubernetes",
        ),
        (
            "[DEPLOY]",
            "[DEPLOY]\nSPOOL_DIR = nodes.txt/spool",
            "jupiter_config.ini:9: SPOOL_DIR: nodes.txt is not a folder; name a folder (made at deploy if missing), "
            "or leave SPOOL_DIR empty",
        ),
    ],
)
def test_bad_config(workdir: Workdir, run: Run, replace: str, by: str, message: str) -> None:
    config = workdir.root / "jupiter_config.ini"
    config.write_text(config.read_text().replace(replace, by, 1))
    result = run("validate")
    assert (result.code, result.err) == (2, f"error: {message}\n")


def test_empty_config(workdir: Workdir, run: Run) -> None:
    workdir.write("jupiter_config.ini", "")
    result = run("validate")
    assert (result.code, result.err) == (
        2,
        "error: jupiter_config.ini: config file is empty; run `jupiter init DIR` for a commented example\n",
    )


def test_missing_config(workdir: Workdir, run: Run) -> None:
    result = run("--config", "nope.ini", "validate")
    assert (result.code, result.err) == (
        2,
        "error: nope.ini: " + MISSING_CONFIG + "\n",
    )


def test_config_env_var(workdir: Workdir, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPITER_CONFIG", "other.ini")
    result = run("validate")
    assert result.err == "error: other.ini: " + MISSING_CONFIG + "\n"


def test_unreadable_files(workdir: Workdir, run: Run) -> None:
    (workdir.root / "nodes.txt").write_bytes(b"home \xff\xfe\n")
    (workdir.app / "configuration.txt").unlink()
    (workdir.app / "configuration.txt").mkdir()
    result = run("validate")
    assert result.code == 2
    assert result.err.splitlines() == [
        "error: nodes.txt: node list is not UTF-8 text (bad byte at offset 5)",
        f"error: {APP}/configuration.txt: DAG file is a folder, expected a file",
    ]


def test_all_problems_reported_together(workdir: Workdir, run: Run) -> None:
    workdir.write("nodes.txt", "node1 localhost\n")
    (workdir.app / "scripts" / "join.py").unlink()
    result = run("validate")
    assert result.code == 2
    assert len(result.err.splitlines()) == 2


def test_app_side_files(workdir: Workdir, run: Run) -> None:
    workdir.write_app("scripts/config.json", '{"taskname_map": {"split": "split"}}')
    workdir.write_app("app_config.ini", "[DOCKER_PORT]\nPYTHON-PORT = 57021\n[SVC_PORT]\n")
    workdir.write_app("input_node.txt", "task node\nsplit node9\n")
    workdir.write_app("name_convert.txt", "input output_app_name input_app_name\nnosuch a b\n")
    (workdir.app / "sample_input" / "1.txt").unlink()
    result = run("validate")
    assert result.code == 2
    assert result.err.splitlines() == [
        f"error: {APP}/scripts/config.json: taskname_map['split'] must be [\"script\", true|false], got 'split'",
        f"error: {APP}/app_config.ini: port(s) PYTHON-PORT must appear in both [DOCKER_PORT] and [SVC_PORT]",
        f"error: {APP}/name_convert.txt:2: unknown task 'nosuch'; it must be a task of configuration.txt",
        f"error: {APP}/sample_input: sample_input/ is empty; add at least one input file (one file = one frame)",
    ]


def test_input_node_must_be_compute_node(workdir: Workdir, run: Run) -> None:
    workdir.write_app("input_node.txt", "task node\nsplit home\n")
    result = run("validate")
    assert (result.code, result.err) == (
        2,
        f"error: {APP}/input_node.txt:2: split is placed on 'home', which is not a compute node of nodes.txt\n",
    )


def test_bad_json_and_port(workdir: Workdir, run: Run) -> None:
    workdir.write_app("scripts/config.json", '{"taskname_map": {\n}')
    workdir.write_app("app_config.ini", "[DOCKER_PORT]\nP = x\n[SVC_PORT]\nP = 1\n")
    result = run("validate")
    assert result.err.splitlines() == [
        f"error: {APP}/scripts/config.json:2: not valid JSON: Expecting ',' delimiter",
        f"error: {APP}/app_config.ini: [DOCKER_PORT] P: expected a port number from 1 to 65535, got 'x'",
    ]


def test_home_child_must_be_entry(workdir: Workdir, run: Run) -> None:
    config = workdir.root / "jupiter_config.ini"
    config.write_text(config.read_text() + "HOME_CHILD = left:nosuch\n")
    result = run("validate")
    assert result.err.splitlines() == [
        "error: jupiter_config.ini: HOME_CHILD names 'left', which has parents; home feeds only entry tasks (split)",
        "error: jupiter_config.ini: HOME_CHILD names 'nosuch', which is not a task of demo",
    ]


def test_no_app_configured(workdir: Workdir, run: Run) -> None:
    workdir.write("jupiter_config.ini", "[CONFIG]\nSCHEDULER = heft\n")
    result = run("validate")
    assert result.err == (
        "error: jupiter_config.ini: no app given; name one, e.g. `jupiter run APP` (apps here: demo), "
        "or set `APP = app_specific_files/<app>` in [DEPLOY]\n"
    )
    assert run("--app", str(workdir.app), "validate").code == 0


def test_unknown_option_is_usage_error(workdir: Workdir, run: Run) -> None:
    result = run("validate", "--frobnicate")
    assert result.code == 2
    assert result.err == (
        "Usage: jupiter validate [OPTIONS] [APP]\nTry 'jupiter validate --help' for help.\n\n"
        "Error: No such option '--frobnicate'.\n"
    )


def test_missing_app_folder(workdir: Workdir, run: Run, tmp_path: Path) -> None:
    result = run("--app", str(tmp_path / "nope"), "validate")
    assert (result.code, result.err) == (
        2,
        f"error: no app '{tmp_path}/nope'; apps in app_specific_files/: demo\n",
    )


def test_a_backend_that_is_not_registered_is_named_with_its_line(workdir: Workdir, run: Run) -> None:
    workdir.write("jupiter_config.ini", CONFIG + "BACKEND = nomad\n")
    result = run("validate")
    assert result.code == 2
    line = (CONFIG + "BACKEND = nomad\n").splitlines().index("BACKEND = nomad") + 1
    assert result.err == (
        f"error: jupiter_config.ini:{line}: BACKEND: backend 'nomad' is not available; "
        "use one of: local, docker, kubernetes\n"
    )


def test_an_entry_task_waiting_for_two_files_needs_samples_that_make_frames_of_two(workdir: Workdir, run: Run) -> None:
    workdir.write_app("configuration.txt", "2\nsplit 2 true left\nleft 1 true home\n")
    result = run("validate")
    assert result.code == 2
    assert result.err == (
        f"error: {APP}/sample_input: frame '1' has 1 files (1.txt) but every frame needs 2; name one frame's files "
        "<frame>_<part>.<ext>, or give them together with `jupiter submit --frame` (an entry task waits for 2)\n"
    )
    workdir.write_app("sample_input/1_left.txt", "left\n")
    workdir.write_app("sample_input/1_right.txt", "right\n")
    (workdir.app / "sample_input" / "1.txt").unlink()
    assert run("validate").code == 0


def test_the_input_row_of_name_convert_is_shown(workdir: Workdir, run: Run) -> None:
    workdir.write_app("name_convert.txt", "split split botnet\njoin join left,right\ninput global botnet\n")
    result = run("validate")
    assert result.code == 0, result.err
    assert result.out.splitlines()[-2] == (
        f"names    {APP}/name_convert.txt: runtime statistics name frames after the input 'botnet' "
        "(the app's output: 'global')"
    )


def test_a_script_that_reads_the_original_container_folder_is_warned_about(workdir: Workdir, run: Run) -> None:
    workdir.write_app(
        "scripts/left.py",
        GOOD_SCRIPT + "\n\ndef links():\n    return open('/centralized_scheduler/communication.txt').read()\n",
    )
    result = run("validate")
    assert result.code == 0
    assert result.err == (
        "warning: scripts/left.py reads /centralized_scheduler/..., which exists only in the container images "
        "(docker, kubernetes); to run on every backend, open the file relative to the script: "
        "os.path.join(os.path.dirname(os.path.abspath(__file__)), NAME)\n"
    )


def test_output_json_of_a_valid_workdir(workdir: Workdir, run: Run) -> None:
    result = run("validate", "--output", "json")
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert document == {
        "format": "jupiter-validate",
        "version": 1,
        "ok": True,
        "app": "demo",
        "config": {"path": "jupiter_config.ini", "scheduler": "heft", "pricing": "nonpricing", "backend": "local"},
        "nodes": {"path": "nodes.txt", "home": ["home"], "compute": ["node1", "node2"], "datasource": []},
        "dag": {
            "path": f"{APP}/configuration.txt",
            "tasks": ["split", "left", "right", "join"],
            "edges": [["split", "left"], ["split", "right"], ["left", "join"], ["right", "join"]],
            "depth": 3,
            "entry": ["split"],
            "exit": ["join"],
        },
        "scripts": f"{APP}/scripts",
        "inputs": [f"{APP}/sample_input/1.txt"],
        "warnings": [],
        "errors": [],
    }


def test_output_json_of_a_broken_workdir_lists_every_error_and_exits_2(workdir: Workdir, run: Run) -> None:
    workdir.write("nodes.txt", "home localhost\nnode1\n")
    workdir.write_app("configuration.txt", "four\n")
    result = run("validate", "-o", "json")
    assert result.code == 2
    document = json.loads(result.out)
    assert (document["format"], document["ok"], document["warnings"]) == ("jupiter-validate", False, [])
    assert [(error["file"], error["line"]) for error in document["errors"]] == [
        ("nodes.txt", 2),
        (f"{APP}/configuration.txt", 1),
    ]
    assert document["errors"][1]["message"] == "first line must be the number of DAG lines, got 'four'"
    assert document["errors"][1]["text"] == f"{APP}/configuration.txt:1: " + document["errors"][1]["message"]
