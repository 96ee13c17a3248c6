"""Helper declarations (issue 14, item 8) and sample inputs that point outside the app (issue 12, item 7)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jupiter.model.app import load_app
from jupiter.model.dag import parse_dag
from jupiter.model.errors import InputError, ValidationFailed

# The README form: helpers as lines that name only themselves; N counts them too.
DAG = "3\ndetect 1 true home\ndftslave00 1 False dftslave00\ndftslave01 1 False dftslave01\n"


def _app(tmp_path: Path, dag: str = DAG, config_json: str | None = None) -> Path:
    app = tmp_path / "anomaly"
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "sample_input" / "1botnet.ipsum").write_text("x\n")
    (app / "configuration.txt").write_text(dag)
    (app / "scripts" / "detect.py").write_text("def task(filename, pathin, pathout):\n    return []\n")
    for script in ("dftslave", "dftslave00", "dftslave01"):
        (app / "scripts" / f"{script}.py").write_text("import time\ntime.sleep(60)\n")
    if config_json is not None:
        (app / "scripts" / "config.json").write_text(config_json)
    return app


def test_self_loop_lines_are_helpers_not_tasks(tmp_path: Path) -> None:
    dag = parse_dag(_app(tmp_path) / "configuration.txt")
    assert tuple(dag.tasks) == ("detect",)
    assert dag.helpers == {"dftslave00": 3, "dftslave01": 4}


def test_both_forms_together_give_script_and_arguments(tmp_path: Path) -> None:
    config = (
        '{"taskname_map": {"detect": ["detect", true],\n'
        ' "dftslave00": ["dftslave", false, 0, 0, 3],\n'
        ' "dftslave01": ["dftslave", false, 0, 1, 3],\n'
        ' "dftslave02": ["dftslave", false, 0, 2, 3]}}'
    )
    app = load_app(_app(tmp_path, config_json=config))
    helpers = {name: (h.script.name, h.args) for name, h in app.helpers.items()}
    assert helpers == {
        "dftslave00": ("dftslave.py", ("0", "0", "3")),
        "dftslave01": ("dftslave.py", ("0", "1", "3")),
        # Declared in config.json only: a helper too.
        "dftslave02": ("dftslave.py", ("0", "2", "3")),
    }
    assert list(app.dag.tasks) == ["detect"]


def test_a_helper_without_a_script_is_named(tmp_path: Path) -> None:
    app = _app(tmp_path)
    (app / "scripts" / "dftslave00.py").unlink()
    (app / "scripts" / "dftslave01.py").unlink()
    with pytest.raises(ValidationFailed) as caught:
        load_app(app)
    assert [str(error) for error in caught.value.errors] == [
        f"{app}/configuration.txt:3: helper dftslave00 has no script; create scripts/dftslave00.py or "
        "scripts/dftslave00.sh (inside scripts/)",
        f"{app}/configuration.txt:4: helper dftslave01 has no script; create scripts/dftslave01.py or "
        "scripts/dftslave01.sh (inside scripts/)",
    ]


@pytest.mark.parametrize(
    ("config_json", "message"),
    [
        (
            '{"taskname_map": {\n"detect": ["detect", false]}}',
            "scripts/config.json:2: taskname_map marks 'detect' false (a helper), but configuration.txt:2 has a DAG "
            "line for it; set it to true, or make that line `detect 1 False detect`",
        ),
        (
            '{"taskname_map": {\n\n"dftslave00": ["dftslave", true]}}',
            "scripts/config.json:3: taskname_map marks 'dftslave00' true (a DAG task), but configuration.txt:3 "
            "declares it a helper; set it to false",
        ),
        (
            '{"taskname_map": {"dftslave00": ["../../outside", false]}}',
            "scripts/config.json:1: helper dftslave00 has no script; its script '../../outside' is outside "
            "scripts/; name a script inside the app's scripts/ folder",
        ),
    ],
)
def test_contradictions_are_named(tmp_path: Path, config_json: str, message: str) -> None:
    app = _app(tmp_path, config_json=config_json)
    (tmp_path / "outside.py").write_text("print('not the app')\n")
    with pytest.raises(ValidationFailed) as caught:
        load_app(app)
    assert [str(error) for error in caught.value.errors][:1] == [f"{app}/{message}"]


def test_a_helper_is_no_child(tmp_path: Path) -> None:
    app = _app(tmp_path, "2\ndetect 1 true dftslave00\ndftslave00 1 False dftslave00\n")
    with pytest.raises(InputError) as caught:
        parse_dag(app / "configuration.txt")
    assert str(caught.value) == (
        f"{app}/configuration.txt:2: child 'dftslave00' of detect is a helper (line 3), not a DAG task; "
        "helpers are reached over the network, not sent files"
    )


@pytest.mark.adversarial
def test_a_sample_input_linking_out_of_the_app_is_refused(tmp_path: Path) -> None:
    app = _app(tmp_path)
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY\n")
    (app / "sample_input" / "2botnet.ipsum").symlink_to(secret)
    with pytest.raises(ValidationFailed) as caught:
        load_app(app)
    assert [str(error) for error in caught.value.errors] == [
        f"{app}/sample_input/2botnet.ipsum: is a symbolic link to {secret}, outside the app folder; copy the "
        "file into sample_input/ (Jupiter sends sample inputs to the deployment's nodes)"
    ]


def test_a_sample_input_linking_inside_the_app_is_fine(tmp_path: Path) -> None:
    app = _app(tmp_path)
    (app / "data").mkdir()
    (app / "data" / "big.ipsum").write_text("y\n")
    os.symlink("../data/big.ipsum", app / "sample_input" / "2botnet.ipsum")
    assert [p.name for p in load_app(app).sample_inputs] == ["1botnet.ipsum", "2botnet.ipsum"]
