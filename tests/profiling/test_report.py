"""`jupiter report` from a deployment folder: charts and one self-contained page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.report import load_run, predicted_vs_measured, write_report


def _deployment(root: Path) -> Path:
    (root / "home").mkdir(parents=True)
    tasks = {
        "split": {"children": ["join"]},
        "join": {"children": ["home"]},
    }
    (root / "plan.json").write_text(json.dumps({"order": ["split", "join"], "tasks": tasks, "mapping": {}}))
    events = []
    for i in range(3):
        t0 = 100.0 + i
        events += [
            {"type": "frame_submitted", "frame": f"f{i}", "time": t0},
            {
                "type": "task",
                "task": "split",
                "node": "n1",
                "frame": f"f{i}",
                "enter": t0,
                "execute": t0 + 0.01,
                "finish": t0 + 0.21,
                "ok": True,
            },
            {
                "type": "task",
                "task": "join",
                "node": "n2",
                "frame": f"f{i}",
                "enter": t0 + 0.3,
                "execute": t0 + 0.3,
                "finish": t0 + 0.4,
                "ok": True,
            },
            {"type": "frame_done", "frame": f"f{i}", "time": t0 + 0.45, "makespan": 0.45},
        ]
    (root / "home" / "events.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
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
