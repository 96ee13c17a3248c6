"""`jupiter init DIR`: a working folder that validates at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from jupiter.model.bundled import example_apps
from tests.conftest import Result

Run = Callable[..., Result]


def test_init_creates_a_valid_folder(tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "work"
    result = run("init", str(target))
    assert result.code == 0, result.err
    apps = sorted(example_apps())
    assert result.out.splitlines() == [
        f"created {target}/jupiter_config.ini",
        f"created {target}/nodes.txt",
        f"created {target}/testbed.ini",
        *[f"created {target}/app_specific_files/{name}" for name in apps],
        f"next: cd {target} && jupiter validate",
    ]
    monkeypatch.chdir(target)
    checked = run("validate")
    assert checked.code == 0, checked.err
    assert checked.out.endswith("ok: network_monitoring_app is ready to run\n")
    for name in apps:
        assert run("--app", f"app_specific_files/{name}", "validate").code == 0


def test_init_refuses_to_overwrite(tmp_path: Path, run: Run) -> None:
    (tmp_path / "nodes.txt").write_text("mine\n")
    result = run("init", str(tmp_path))
    assert (result.code, result.err) == (
        2,
        f"error: {tmp_path}/jupiter_config.ini: already exists; pass --force to overwrite it\n"
        if (tmp_path / "jupiter_config.ini").exists()
        else f"error: {tmp_path}/nodes.txt: already exists; pass --force to overwrite it\n",
    )
    assert (tmp_path / "nodes.txt").read_text() == "mine\n"
    assert not (tmp_path / "jupiter_config.ini").exists()
    assert run("init", "--force", str(tmp_path)).code == 0
    assert (tmp_path / "nodes.txt").read_text().startswith("home ")


def test_init_one_app(tmp_path: Path, run: Run) -> None:
    assert run("init", "--app", "dummy_app", str(tmp_path)).code == 0
    assert [p.name for p in (tmp_path / "app_specific_files").iterdir()] == ["dummy_app"]
    result = run("init", "--app", "nope", str(tmp_path / "x"))
    assert result.code == 2
    assert result.err.startswith("error: no example app 'nope'; choose from: ")
