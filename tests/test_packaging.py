"""A non-editable install works from any folder and carries its data files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.processes
def test_pip_install_then_init_and_validate(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    # Install from a copy of the sources so nothing in the work tree (an
    # editable install, build leftovers) can leak into the result.
    install = subprocess.run([*pip, str(REPO)], capture_output=True, text=True, cwd=tmp_path, timeout=600, check=False)
    assert install.returncode == 0, install.stderr
    # The build backend's deprecation notices (e.g. `project.license` as a table) reach the user's terminal.
    assert "BuildBackendWarning" not in install.stderr, install.stderr
    assert "deprecated" not in install.stderr.lower(), install.stderr
    jupiter = str(venv / "bin" / "jupiter")
    work = tmp_path / "x"
    init = subprocess.run([jupiter, "init", str(work)], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert init.returncode == 0, init.stderr
    validate = subprocess.run([jupiter, "validate"], capture_output=True, text=True, cwd=work, check=False)
    assert validate.returncode == 0, validate.stderr
    lines = validate.stdout.splitlines()
    assert lines[0] == "config   jupiter_config.ini: scheduler best, pricing nonpricing, backend local"
    assert lines[-1] == "ok: network_monitoring_app is ready to run"
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import jupiter; print(jupiter.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert str(venv) in where.stdout, "the installed copy, not the work tree, must be imported"
