"""Both example apps, end to end on real agents, with the outputs they must produce."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jupiter.model.bundled import data_dir
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.workspace import load_workspace
from jupiter.service.run import run
from jupiter.service.summary import RunSummary
from jupiter.tools.dummy import DummySpec, expected_outputs, generate_dag
from jupiter.tools.traffic import expected_report

pytestmark = pytest.mark.processes


def _workdir(tmp_path: Path, app: str) -> Path:
    shutil.copytree(data_dir() / "app_specific_files" / app, tmp_path / "app_specific_files" / app)
    shutil.copy(data_dir() / "nodes.txt", tmp_path / "nodes.txt")
    text = (data_dir() / "jupiter_config.ini").read_text()
    (tmp_path / "jupiter_config.ini").write_text(
        text.replace("APP = app_specific_files/network_monitoring_app", f"APP = app_specific_files/{app}")
    )
    return tmp_path


def _outputs(summary: RunSummary) -> dict[str, dict[str, bytes]]:
    """Input name -> {output name: bytes}, from home's output folder and event log."""
    root = summary.output_dir.parent
    inputs = {}
    for line in (root / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "frame_submitted":
            inputs[event["frame"]] = event["input"]
    result: dict[str, dict[str, bytes]] = {}
    for frame, name in inputs.items():
        folder = summary.output_dir / frame
        result[name] = {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}
    return result


def test_network_monitoring_app(tmp_path: Path) -> None:
    work = _workdir(tmp_path, "network_monitoring_app")
    workspace = load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None)
    summary = run(resolve_spec(workspace))
    samples = workspace.app.sample_inputs
    assert (summary.frames, summary.done, summary.failed) == (len(samples), len(samples), 0)
    outputs = _outputs(summary)
    assert set(outputs) == {path.name for path in samples}
    for path in samples:
        report = f"{path.stem}_report.txt"
        assert set(outputs[path.name]) == {report}
        assert outputs[path.name][report].decode() == expected_report(path)


def test_dummy_app(tmp_path: Path) -> None:
    work = _workdir(tmp_path, "dummy_app")
    workspace = load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None)
    summary = run(resolve_spec(workspace), frames=6)
    assert (summary.frames, summary.done, summary.failed) == (6, 6, 0)
    app = generate_dag(DummySpec(tasks=10, layers=4, fan_out=3, seed=4))
    exits = [task for task in app.tasks if task.children == ("home",)]
    root = summary.output_dir.parent
    frames = {}
    for line in (root / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "frame_submitted":
            frames[event["frame"]] = event["input"]
    assert len(frames) == 6
    for frame, name in frames.items():
        sample = workspace.app.path / "sample_input" / name
        expected = expected_outputs(app, sample.read_bytes())
        produced = {
            p.name: p.read_bytes() for p in (summary.output_dir / frame).iterdir() if not p.name.startswith(".")
        }
        assert produced == {f"{sample.stem}__{task.name}_0.txt": expected[task.name][0] for task in exits}
