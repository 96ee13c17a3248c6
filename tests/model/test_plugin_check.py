"""Plug-ins named by TRANSFER/PROFILER are imported by the service layer, and failures name file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.model.config import parse_config
from jupiter.service.plugin_check import check_plugins


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "jupiter_config.ini"
    path.write_text(body)
    return path


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Module names unique to this file: an imported module stays in sys.modules for the session.
    (tmp_path / "h4_copy_plugin.py").write_text("class Copy:\n    def __init__(self, settings):\n        pass\n")
    (tmp_path / "h4_store_plugin.py").write_text("NOT_CALLABLE = 1\n")
    (tmp_path / "h4_broken_plugin.py").write_text("raise RuntimeError('no network here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtins_and_a_loadable_plugin_pass(tmp_path: Path, plugin_dir: Path) -> None:
    assert check_plugins(parse_config(_config(tmp_path, "[CONFIG]\nTRANSFER = scp\n"))) == []
    assert check_plugins(parse_config(_config(tmp_path, "[CONFIG]\nTRANSFER = h4_copy_plugin:Copy\n"))) == []


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "TRANSFER",
            "h4_nosuchmodule:Copy",
            "cannot import h4_nosuchmodule (ModuleNotFoundError: No module named 'h4_nosuchmodule'); install it, "
            "or add its folder to PYTHONPATH, where `jupiter` and the agents run",
        ),
        (
            "TRANSFER",
            "h4_broken_plugin:Copy",
            "cannot import h4_broken_plugin (RuntimeError: no network here); install it, "
            "or add its folder to PYTHONPATH, where `jupiter` and the agents run",
        ),
        ("TRANSFER", "h4_copy_plugin:Nope", "h4_copy_plugin has no class or function Nope (taking TransferSettings)"),
        (
            "PROFILER",
            "h4_store_plugin:NOT_CALLABLE",
            "h4_store_plugin has no class or function NOT_CALLABLE (taking the profile store)",
        ),
    ],
)
def test_plugin_that_cannot_be_loaded(tmp_path: Path, plugin_dir: Path, key: str, value: str, message: str) -> None:
    path = _config(tmp_path, f"[CONFIG]\nSCHEDULER = heft\n{key} = {value}\n")
    errors = check_plugins(parse_config(path))
    assert [str(error) for error in errors] == [f"{path}:3: {key}: {message}"]


def test_both_plugins_are_reported(tmp_path: Path, plugin_dir: Path) -> None:
    path = _config(tmp_path, "[CONFIG]\nTRANSFER = h4_copy_plugin:Nope\nPROFILER = h4_nosuch2:Store\n")
    assert [(error.line, error.message.split(":")[0]) for error in check_plugins(parse_config(path))] == [
        (2, "TRANSFER"),
        (3, "PROFILER"),
    ]
