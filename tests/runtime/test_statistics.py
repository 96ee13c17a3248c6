"""Home's statistics files: the original's `runtime_tasks.txt` names frames after the app's input."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.model.app import frame_name
from jupiter.model.events import FrameSubmitted, TaskRun
from jupiter.model.layout import HomeLayout
from jupiter.runtime import statistics
from jupiter.runtime.statistics import StatisticsWriter


def _rows(tmp_path: Path, io_names: tuple[str, str] | None) -> list[list[str]]:
    writer = StatisticsWriter(HomeLayout(tmp_path / "home"), None, False, True, "http", io_names)
    writer.open()
    writer.write(FrameSubmitted("f000001-aaaaaa", "1botnet.ipsum", 1.0))
    writer.write(TaskRun("local_pro", "f000001-aaaaaa", "node1", ("1botnet.ipsum",), 1, 1, 1.5, 2, True, None, "home"))
    writer.write(TaskRun("fusion", "f000001-aaaaaa", "node2", ("1a.log", "1b.log"), 2, 2, 2.5, 3, True, None, "home"))
    # A frame started again under pricing keeps its name.
    writer.write(TaskRun("fusion", "f000001-aaaaaa-r1", "node3", ("1a.log",), 3, 3, 3.5, 4, True, None, "home"))
    # A frame home never saw start (home restarted) falls back to the files.
    writer.write(TaskRun("fusion", "f000009-bbbbbb", "node2", ("9a.log",), 2, 2, 2.5, 3, True, None, "home"))
    writer.close()
    lines = (tmp_path / "home" / "runtime_tasks.txt").read_text().splitlines()
    assert lines[0].split() == statistics.TASKS_HEADER.split()
    return [line.split()[:2] for line in lines[1:]]


def test_with_an_input_row_every_row_names_the_app_input_of_its_frame(tmp_path: Path) -> None:
    assert _rows(tmp_path, ("global", "botnet")) == [
        ["local_pro", "1botnet"],
        ["fusion", "1botnet"],
        ["fusion", "1botnet"],
        ["fusion", "9a.log"],
    ]


def test_without_one_the_rows_list_the_task_files(tmp_path: Path) -> None:
    assert _rows(tmp_path, None) == [
        ["local_pro", "1botnet.ipsum"],
        ["fusion", "1a.log,1b.log"],
        ["fusion", "1a.log"],
        ["fusion", "9a.log"],
    ]


@pytest.mark.parametrize(
    ("input_file", "io_names", "name"),
    [
        ("1botnet.ipsum", ("botnet", "botnet"), "1botnet"),
        ("12botnet.ipsum", ("global", "botnet"), "12botnet"),
        ("test_left.jpeg", ("fusion", "camera"), "testcamera"),  # the prefix before `_`, as the original cut it
        ("camera.jpeg", ("fusion", "camera"), "camera"),
        ("a.b.c", ("out", "in"), "ain"),
    ],
)
def test_frame_names_as_the_original_made_them(input_file: str, io_names: tuple[str, str], name: str) -> None:
    assert frame_name(input_file, io_names) == name


def test_home_keeps_the_names_of_recent_frames_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statistics, "FRAME_NAMES", 3)
    writer = StatisticsWriter(HomeLayout(tmp_path / "home"), None, False, True, "http", ("o", "in"))
    writer.open()
    for index in range(5):
        writer.write(FrameSubmitted(f"f00000{index}-aaaaaa", f"{index}in.txt", 1.0))
    writer.close()
    assert list(writer.frame_names) == ["f000002-aaaaaa", "f000003-aaaaaa", "f000004-aaaaaa"]
