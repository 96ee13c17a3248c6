"""`jupiter report` from a deployment folder: charts and one self-contained page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from jupiter.model.errors import InputError
from jupiter.model.events import Event, FrameDone, FrameSubmitted, TaskRun, encode
from jupiter.model.plan import NodeAddress, Plan, TaskSpec
from jupiter.report import load_run, predicted_vs_measured, write_report


def _deployment(root: Path) -> Path:
    (root / "home").mkdir(parents=True)
    tasks = {
        "split": TaskSpec("split", 1, True, ("join",), (), "split.py"),
        "join": TaskSpec("join", 1, True, ("home",), ("split",), "join.py"),
    }
    nodes = {name: NodeAddress(name, "compute", "127.0.0.1", 1, 2) for name in ("home", "n1", "n2")}
    Plan("dep", "demo", "/demo", tasks, ("split", "join"), {}, nodes, ("split",), "home").save(root / "plan.json")
    events: list[Event] = []
    for i in range(3):
        t0 = 100.0 + i
        frame = f"f{i:06d}-abcdef"
        events += [
            FrameSubmitted(frame, "a.txt", t0),
            TaskRun("split", frame, "n1", ("a.txt",), t0, t0, t0 + 0.01, t0 + 0.21, True, None, "home"),
            TaskRun("join", frame, "n2", ("b.txt",), t0 + 0.3, t0 + 0.3, t0 + 0.3, t0 + 0.4, True, None, "home"),
            FrameDone(frame, "a.txt", t0 + 0.45, 0.45),
        ]
    (root / "home" / "events.jsonl").write_text("".join(encode(event) + "\n" for event in events))
    (root / "mapping.json").write_text(
        json.dumps(
            {
                "scheduler": "heft",
                "makespan": 0.5,
                "mapping": {"split": "n1", "join": "n2"},
                "tasks": {
                    "split": {"node": "n1", "start": 0, "finish": 0.25},
                    "join": {"node": "n2", "start": 0.3, "finish": 0.5},
                },
            }
        )
    )
    return root


def test_report_files_and_figures(tmp_path: Path) -> None:
    root = _deployment(tmp_path / "dep")
    record = load_run(root)
    assert record.mapping == {"split": "n1", "join": "n2"}
    rows = predicted_vs_measured(record)
    assert rows[0][0] == "split" and rows[0][2] == pytest.approx(0.25) and rows[0][3] == pytest.approx(0.2)
    page = write_report(root, tmp_path / "out")
    for name in ("gantt.png", "dag.png", "makespan.png", "predicted.png"):
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = page.read_text()
    # Self-contained: every image is embedded, nothing is fetched.
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 4
    assert not re.search(r'(src|href)="(http|/|\.)', text)
    assert "<th>measured / predicted</th><td>0.900</td>" in text


def test_a_folder_without_a_run_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"plan\.json: not found"):
        load_run(tmp_path)
