"""`jupiter validate` on how tasks run: helpers, module-level state, sample inputs that link out (issues 12 and 14)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Result, Workdir

Run = Callable[..., Result]
APP = "app_specific_files/demo"

STATEFUL = (
    "import os\n\ntotals = {}\n\n\ndef task(filename, pathin, pathout):\n"
    "    totals[filename] = totals.get(filename, 0) + 1\n"
    "    out = os.path.join(pathout, 'out_' + filename)\n    open(out, 'w').write('x')\n    return [out]\n"
)


def test_helpers_and_module_state_are_shown(workdir: Workdir, run: Run) -> None:
    dag = (workdir.app / "configuration.txt").read_text().replace("4\n", "5\n", 1) + "dftslave00 1 False dftslave00\n"
    workdir.write_app("configuration.txt", dag)
    workdir.write_app("scripts/dftslave.sh", "while true; do sleep 1; done\n")
    workdir.write_app("scripts/left.py", STATEFUL)
    workdir.write_app(
        "scripts/config.json",
        json.dumps({"taskname_map": {"dftslave00": ["dftslave", False, 0, 0, 3]}, "worker": {"left": "resident"}}),
    )
    result = run("validate")
    assert result.code == 0, result.err
    assert result.err == (
        f"warning: {APP}/scripts/left.py:7: module-level `totals` is changed in place in task() (line 3); it runs "
        'in a resident worker, so what one frame leaves there the next frame sees; set "worker": "fresh" in '
        "scripts/config.json to start every frame from the imported script, as the original did\n"
    )
    assert result.out.splitlines()[-2:] == [
        "helpers  1 long-lived on the home node: dftslave00 (dftslave.sh)",
        "ok: demo is ready to run",
    ]
    assert f"dag      {APP}/configuration.txt: 4 tasks, 4 edges" in result.out


@pytest.mark.adversarial
def test_a_sample_input_linking_out_is_refused_by_validate_and_run(workdir: Workdir, run: Run, tmp_path: Path) -> None:
    secret = tmp_path / "secret.key"
    secret.write_text("do not send\n")
    (workdir.app / "sample_input" / "2.txt").symlink_to(secret)
    message = (
        f"error: {APP}/sample_input/2.txt: is a symbolic link to {secret}, outside the app folder; copy the file "
        "into sample_input/ (Jupiter sends sample inputs to the deployment's nodes)\n"
    )
    checked = run("validate")
    assert (checked.code, checked.out, checked.err) == (2, "", message)
    ran = run("run")
    assert (ran.code, ran.out, ran.err) == (2, "", message)
    assert not (workdir.root / ".jupiter").exists(), "nothing was started"
