"""Shared fixtures: a small valid working folder built in a temporary directory."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

GOOD_SCRIPT = textwrap.dedent(
    '''
    """A test task: copies its input(s) to one output."""
    import os


    def task(filename, pathin, pathout):
        names = filename if isinstance(filename, list) else [filename]
        out = os.path.join(pathout, "out_" + names[0])
        with open(out, "w") as handle:
            for name in names:
                with open(os.path.join(pathin, name)) as src:
                    handle.write(src.read())
        return [out]


    def main():
        return None
    '''
)

DAG = textwrap.dedent(
    """\
    4
    split 1 false left right
    left 1 true join
    right 1 true join
    join 2 true home
    """
)

CONFIG = textwrap.dedent(
    """\
    [CONFIG]
    SCHEDULER = heft
    PRICING = 0

    [PORT]
    FLASK_SVC = 6100

    [DEPLOY]
    APP = app_specific_files/demo
    """
)

NODES = "home localhost\nnode1 localhost\nnode2 localhost\n"


@dataclass
class Workdir:
    """A valid working folder that tests break one file at a time."""

    root: Path

    @property
    def app(self) -> Path:
        return self.root / "app_specific_files" / "demo"

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def write_app(self, relative: str, text: str) -> Path:
        return self.write(f"app_specific_files/demo/{relative}", text)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workdir:
    """A valid working folder (config, nodes, a 4-task app); the cwd is set to it."""
    work = Workdir(tmp_path)
    work.write("jupiter_config.ini", CONFIG)
    work.write("nodes.txt", NODES)
    work.write_app("configuration.txt", DAG)
    for task in ("split", "left", "right", "join"):
        work.write_app(f"scripts/{task}.py", GOOD_SCRIPT)
    work.write_app("sample_input/1.txt", "hello\n")
    monkeypatch.chdir(tmp_path)
    return work


@dataclass
class Result:
    """Exit code and output of one in-process `jupiter` invocation."""

    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run the `jupiter` CLI in-process through its real entry point."""

    from jupiter.cli import main

    def invoke(*args: str) -> Result:
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke
