"""Files written for the original Jupiter load unchanged, with warnings where something is ignored (issue 14)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jupiter.mapping.registry import mapper_names
from jupiter.model.app import load_app
from jupiter.model.config import parse_config
from jupiter.model.errors import InputError, ValidationFailed
from jupiter.model.nodes import parse_nodes

ORIGINAL_CONFIGS = Path(__file__).parent / "original_configs"

# The one algorithm the original's newest list names that the registry may not have yet:
# its HEFT_BALANCE is HEFT capped at MAX_TASK_ALLOWED tasks per node, as heft_modified is.
HEFT_BALANCE = "heft_balance" if "heft_balance" in mapper_names() else "heft_modified"

PASSWORD_WARNING = (
    "[AUTH] PASSWORD is ignored: Jupiter never uses passwords (transfers use a per-deployment token, "
    "SCP uses keys); delete the line"
)


def _unused(key: str, section: str) -> str:
    return f"{key} in [{section}] is a setting of the original Jupiter that nothing here uses; it is ignored"


@pytest.mark.parametrize(
    ("name", "choices", "warnings"),
    [
        (
            "v2_wave.ini",
            ("wave_greedy", "nonpricing", "http", "sum"),
            [(16, _unused("NUM_NODES", "OTHER")), (13, PASSWORD_WARNING)],
        ),
        ("v4_pricing.ini", ("wave_random", "push", "scp", "sum"), [(18, PASSWORD_WARNING)]),
        (
            "v4_newest.ini",
            ("heft", "nonpricing", "scp", "sum"),
            [
                (8, _unused("DCOMP", "CONFIG")),
                (16, _unused("FLASK_CIRCE", "PORT")),
                (17, _unused("FLASK_DEPLOY", "PORT")),
                (25, _unused("NUM_STRESS", "OTHER")),
                (20, PASSWORD_WARNING),
            ],
        ),
    ],
)
def test_original_configs_load_with_warnings_only(
    name: str, choices: tuple[str, str, str, str], warnings: list[tuple[int, str]]
) -> None:
    path = ORIGINAL_CONFIGS / name
    config = parse_config(path)
    assert (config.scheduler, config.pricing, config.transfer, config.price_function) == choices
    assert config.username == "root"
    assert config.warnings == tuple(f"{path}:{line}: {message}" for line, message in warnings)


def _newest_with(tmp_path: Path, line: str, by: str) -> Path:
    text = (ORIGINAL_CONFIGS / "v4_newest.ini").read_text()
    assert line in text
    path = tmp_path / "jupiter_config.ini"
    path.write_text(text.replace(line, by, 1))
    return path


@pytest.mark.parametrize(("value", "expected"), [("1", "push"), ("2", "event"), ("PUSH_PRICING", "push")])
def test_newest_pricing_list_names(tmp_path: Path, value: str, expected: str) -> None:
    config = parse_config(_newest_with(tmp_path, "PRICING = 0", f"PRICING = {value}"))
    assert config.pricing == expected


def test_newest_heft_balance(tmp_path: Path) -> None:
    config = parse_config(_newest_with(tmp_path, "SCHEDULER = 0", "SCHEDULER = 3"))
    assert config.scheduler == HEFT_BALANCE
    assert parse_config(_newest_with(tmp_path, "SCHEDULER = 0", "SCHEDULER = heft_balance")).scheduler == HEFT_BALANCE


def test_list_name_without_a_counterpart_is_named(tmp_path: Path) -> None:
    path = _newest_with(tmp_path, "PRICING = 0", "PRICING = 3")
    with pytest.raises(InputError) as caught:
        parse_config(path)
    assert str(caught.value) == (
        f"{path}:7: PRICING: 3 means INTERGRATED_PRICING in [PRICING_LIST], which Jupiter does not have; "
        "use one of: driven_multiplehome, event, nonpricing, push, push_multiplehome"
    )


def test_four_column_nodes_warn_without_the_password(tmp_path: Path) -> None:
    path = tmp_path / "nodes.txt"
    path.write_text(
        "home ubuntu-s-1vcpu-3gb-fra1-09 root S3cretPass\n"
        "node2 ubuntu-s-1vcpu-3gb-fra1-10 root S3cretPass\n"
        "node3 ubuntu-s-1vcpu-3gb-fra1-11\n"
    )
    nodes = parse_nodes(path)
    assert [(node.name, node.hostname) for node in nodes] == [
        ("home", "ubuntu-s-1vcpu-3gb-fra1-09"),
        ("node2", "ubuntu-s-1vcpu-3gb-fra1-10"),
        ("node3", "ubuntu-s-1vcpu-3gb-fra1-11"),
    ]
    message = (
        "2 column(s) after the hostname (the original's user and password) are ignored: Jupiter logs in with "
        "keys and a per-deployment token, never a password; delete them"
    )
    assert nodes.warnings == (f"{path}:1: {message}", f"{path}:2: {message}")
    assert not any("S3cretPass" in warning or "root" in warning.split(": ", 1)[1] for warning in nodes.warnings)


def test_two_column_nodes_have_no_warnings(tmp_path: Path) -> None:
    path = tmp_path / "nodes.txt"
    path.write_text("home k8s-master\nnode1 worker-1\n")
    assert parse_nodes(path).warnings == ()


# A small app in the original's style: `count`-like, with a generated name_convert.txt
# (the `input` row last), and a config.json naming a task the DAG does not have and a helper.
DAG = textwrap.dedent(
    """\
    3
    task1 1 true task2 task3
    task2 1 true home
    task3 1 true home
    """
)
SCRIPT = "def task(filename, pathin, pathout):\n    return []\n"


def _app(tmp_path: Path, name_convert: str | None = None, config_json: str | None = None) -> Path:
    app = tmp_path / "count"
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "sample_input" / "1botnet.ipsum").write_text("x\n")
    (app / "configuration.txt").write_text(DAG)
    for task in ("task1", "task2", "task3"):
        (app / "scripts" / f"{task}.py").write_text(SCRIPT)
    if name_convert is not None:
        (app / "name_convert.txt").write_text(name_convert)
    if config_json is not None:
        (app / "scripts" / "config.json").write_text(config_json)
    return app


@pytest.mark.parametrize(
    ("text", "io_names"),
    [
        ("task1 botnet botnet\ntask2 botnet botnet\ntask3 botnet botnet\ninput botnet botnet\n", ("botnet", "botnet")),
        ("input global botnet\ntask1 local botnet\ntask2 a local\ntask3 b local\n", ("global", "botnet")),
        ("task1 a b\ninput fusion camera\ntask3 c d\n", ("fusion", "camera")),
    ],
)
def test_name_convert_input_row_anywhere(tmp_path: Path, text: str, io_names: tuple[str, str]) -> None:
    app = load_app(_app(tmp_path, name_convert=text))
    assert app.io_names == io_names
    assert "input" not in app.name_convert
    assert app.name_convert["task1"][0] in ("botnet", "local", "a")


def test_name_convert_template_header_is_not_the_apps_names(tmp_path: Path) -> None:
    app = load_app(_app(tmp_path, name_convert="input output_app_name input_app_name\ntask1 out in\n"))
    assert app.io_names is None
    assert app.name_convert == {"task1": ("out", "in")}


def test_name_convert_still_refuses_unknown_tasks_and_two_input_rows(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load_app(_app(tmp_path, name_convert="input a b\ntask1 x y\ninput c d\nnosuch e f\n"))
    path = tmp_path / "count" / "name_convert.txt"
    assert [str(error) for error in caught.value.errors] == [
        f"{path}:3: a second `input` row (the first is on line 1); keep one",
    ]
    (tmp_path / "count" / "name_convert.txt").write_text("input a b\nnosuch e f\n")
    with pytest.raises(ValidationFailed) as caught:
        load_app(tmp_path / "count")
    assert [str(error) for error in caught.value.errors] == [
        f"{path}:2: unknown task 'nosuch'; it must be a task of configuration.txt",
    ]


def test_extra_taskname_map_entries_warn_and_helpers_keep_their_arguments(tmp_path: Path) -> None:
    config = textwrap.dedent(
        """\
        {"taskname_map": {
            "task1": ["task1", true],
            "task2": ["task2", true],
            "task3": ["task3", true],
            "task4": ["task4", true],
            "dftslave00": ["dftslave", false, 0, 0, 3],
            "teraworker01": ["terasort/worker/rate-limit-then-standby", false, 0, 1, 3],
            "helper": ["helper.sh", false]},
         "exec_profiler": {"task1": true, "task2": true, "task3": true, "dftslave00": false}}
        """
    )
    root = _app(tmp_path, config_json=config)
    # The helpers' programs: a Python script, a shell script in a subfolder, a named `.sh`.
    (root / "scripts" / "dftslave.py").write_text("import sys\nprint(sys.argv)\n")
    (root / "scripts" / "terasort" / "worker").mkdir(parents=True)
    (root / "scripts" / "terasort" / "worker" / "rate-limit-then-standby.sh").write_text("echo $@\n")
    (root / "scripts" / "helper.sh").write_text("sleep 1\n")
    app = load_app(root)
    path = tmp_path / "count" / "scripts" / "config.json"
    assert app.warnings == (
        f"{path}:5: taskname_map names 'task4' as a DAG task but configuration.txt has no such task; "
        "the entry is ignored (fix the name, set its flag to false, or delete it)",
    )
    assert "task4" not in app.scripts.taskname_map
    dft = app.scripts.taskname_map["dftslave00"]
    assert (dft.script, dft.in_dag, dft.args) == ("dftslave", False, ("0", "0", "3"))
    assert app.scripts.taskname_map["teraworker01"].args == ("0", "1", "3")
    assert app.scripts.taskname_map["helper"].args == ()
    assert app.scripts.taskname_map["task1"].args == ()
    assert app.scripts.profiled("dftslave00") is False
    assert {
        name: (helper.script.relative_to(root).as_posix(), helper.args) for name, helper in app.helpers.items()
    } == {
        "dftslave00": ("scripts/dftslave.py", ("0", "0", "3")),
        "teraworker01": ("scripts/terasort/worker/rate-limit-then-standby.sh", ("0", "1", "3")),
        "helper": ("scripts/helper.sh", ()),
    }
    assert [helper.python for helper in app.helpers.values()] == [True, False, False]


def test_helper_arguments_must_be_plain_values(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as caught:
        text = '{"exec_profiler": {},\n "taskname_map": {\n  "dft": ["dft", false, [1, 2]]}}'
        load_app(_app(tmp_path, config_json=text))
    path = tmp_path / "count" / "scripts" / "config.json"
    assert [str(error) for error in caught.value.errors] == [
        f"{path}:3: taskname_map['dft']: a helper's arguments after [script, true|false] must be strings "
        "or numbers, got [[1, 2]]"
    ]
