"""A working folder with a small fan-out/fan-in app whose outputs tell frames apart."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jupiter.model.workspace import Workspace, load_workspace

SPLIT = textwrap.dedent(
    '''
    """FLAG false: first output to `upper`, second to `lower`."""
    import os


    def task(filename, pathin, pathout):
        text = open(os.path.join(pathin, filename)).read()
        if "boom" in text:
            raise ValueError("boom in " + filename)
        if "slow" in text:
            import time
            time.sleep(0.05)
        first = os.path.join(pathout, "u_" + filename)
        second = os.path.join(pathout, "l_" + filename)
        open(first, "w").write("U:" + text)
        open(second, "w").write("L:" + text)
        return [first, second]
    '''
)

UPPER = textwrap.dedent(
    """
    import os


    def task(filename, pathin, pathout):
        text = open(os.path.join(pathin, filename)).read()
        out = os.path.join(pathout, "x_" + filename)
        open(out, "w").write(text.upper())
        return [out]
    """
)

LOWER = UPPER.replace("text.upper()", "text.lower()")

JOIN = textwrap.dedent(
    """
    import os


    def task(filenames, pathin, pathout):
        parts = sorted(open(os.path.join(pathin, name)).read() for name in filenames)
        out = os.path.join(pathout, "joined.txt")
        open(out, "w").write("|".join(parts))
        return [out]
    """
)

DAG = "4\nsplit 1 false upper lower\nupper 1 true join\nlower 1 true join\njoin 2 true home\n"
NODES = "home localhost\nnode1 localhost\nnode2 localhost\nnode3 localhost\n"
MAPPING = "split node1\nupper node2\nlower node3\njoin node1\n"


def expected_join(text: str) -> str:
    """What `join` writes for an input text."""
    return "|".join(sorted([("U:" + text).upper(), ("L:" + text).lower()]))


@pytest.fixture
def fan_workdir(tmp_path: Path) -> Path:
    """A working folder: config, nodes, the fan app, a static mapping."""
    app = tmp_path / "app_specific_files" / "fan"
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "configuration.txt").write_text(DAG)
    for name, source in (("split", SPLIT), ("upper", UPPER), ("lower", LOWER), ("join", JOIN)):
        (app / "scripts" / f"{name}.py").write_text(source)
    (app / "sample_input" / "a.txt").write_text("frame a\n")
    (tmp_path / "nodes.txt").write_text(NODES)
    (tmp_path / "mapping.txt").write_text(MAPPING)
    (tmp_path / "jupiter_config.ini").write_text(
        "[CONFIG]\nSTATIC_MAPPING = 1\n[DEPLOY]\nAPP = app_specific_files/fan\nMAPPING = mapping.txt\n"
    )
    return tmp_path


@pytest.fixture
def fan_workspace(fan_workdir: Path) -> Workspace:
    return load_workspace(fan_workdir / "jupiter_config.ini", fan_workdir / "nodes.txt", None)
