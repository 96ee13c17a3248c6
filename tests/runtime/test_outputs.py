"""A task's outputs are only regular files inside its pathout (issue 12 item 7; issue 14 item 6)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jupiter.runtime.outputs import task_outputs

pytestmark = pytest.mark.adversarial

FIX = "write outputs into pathout and return their paths"


@pytest.fixture
def pathout(tmp_path: Path) -> Path:
    out = tmp_path / "work" / "d1"
    out.mkdir(parents=True)
    return out


def test_returned_paths_relative_or_absolute(pathout: Path) -> None:
    (pathout / "a.txt").write_text("a")
    (pathout / "sub").mkdir()
    (pathout / "sub" / "b.txt").write_text("b")
    found = task_outputs("t", str(pathout), ["a.txt", str(pathout / "sub" / "b.txt")])
    assert found == ([str(pathout / "a.txt"), str(pathout / "sub" / "b.txt")], False)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("/etc/passwd", "t returned '/etc/passwd', which is outside its pathout; only files inside pathout are sent"),
        (
            "../../etc/hostname",
            "t returned '../../etc/hostname', which does not exist",
        ),
        ("../outside.txt", "t returned '../outside.txt', which is outside its pathout; only files inside pathout"),
        ("shadow", "t returned 'shadow', a symbolic link; only regular files inside pathout are sent"),
        ("etc/passwd", "t returned 'etc/passwd', which is outside its pathout"),
        ("missing.txt", "t returned 'missing.txt', which does not exist"),
        ("folder", "t returned 'folder', which is not a regular file"),
    ],
)
def test_what_is_not_an_output_fails_the_frame(pathout: Path, returned: str, message: str) -> None:
    (pathout.parent / "outside.txt").write_text("x")
    (pathout / "shadow").symlink_to("/etc/shadow")
    (pathout / "etc").symlink_to("/etc")  # a folder link: its files are outside
    (pathout / "folder").mkdir()
    problem = task_outputs("t", str(pathout), [returned])
    assert isinstance(problem, str)
    assert problem.startswith(message)
    assert problem.endswith(f"{FIX})") or problem.endswith(FIX)


def test_nothing_returned_means_the_files_written_in_name_order(pathout: Path) -> None:
    for name in ("1_right.txt", "0_left.txt", ".partial", "z.log"):
        (pathout / name).write_text(name)
    (pathout / "scratch").mkdir()
    (pathout / "scratch" / "tmp").write_text("not an output")
    nothing: tuple[list[str], None] = ([], None)
    for returned in nothing:
        found = task_outputs("t", str(pathout), returned)
        assert found == ([str(pathout / name) for name in ("0_left.txt", "1_right.txt", "z.log")], True)


def test_a_link_written_in_pathout_fails_the_frame(pathout: Path) -> None:
    (pathout / "out.txt").write_text("fine")
    (pathout / "passwd").symlink_to("/etc/passwd")
    assert task_outputs("t", str(pathout), []) == (
        f"t wrote 'passwd', a symbolic link; only regular files inside pathout are sent ({FIX})"
    )


def test_nothing_written_and_nothing_returned(pathout: Path) -> None:
    assert task_outputs("t", str(pathout), []) == ([], True)


def test_pathout_through_a_link_still_counts_as_inside(tmp_path: Path, pathout: Path) -> None:
    alias = tmp_path / "alias"
    os.symlink(pathout, alias)
    (pathout / "a.txt").write_text("a")
    assert task_outputs("t", str(alias), ["a.txt"]) == ([str(pathout / "a.txt")], False)


def test_dot_dot_up_to_a_real_file_is_outside(pathout: Path) -> None:
    climb = os.path.relpath("/etc/hostname", pathout)  # ../../../../etc/hostname
    assert climb.startswith("../")
    assert task_outputs("t", str(pathout), [climb]) == (
        f"t returned {climb!r}, which is outside its pathout; only files inside pathout are sent ({FIX})"
    )
