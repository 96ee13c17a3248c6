"""Pricing CIRCE on real agents: both schemes, both aggregates, two homes, dead and slow nodes."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from jupiter.model.bundled import data_dir
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.workspace import Workspace, load_workspace
from jupiter.report import write_report
from jupiter.service.deploy import deploy, teardown
from jupiter.service.deployments import choose
from jupiter.service.faults import kill_node, set_speed
from jupiter.service.record import Deployment, DeploymentError
from jupiter.service.run import flush_events, run, submit_data, wait_frames
from jupiter.service.status import status as deployment_status
from jupiter.tools.dummy import DummySpec, expected_outputs, generate_dag
from jupiter.tools.traffic import expected_report
from tests.runtime.conftest import expected_join

pytestmark = pytest.mark.processes

TWO_HOMES = "home localhost\nhome2 localhost\nnode1 localhost\nnode2 localhost\nnode3 localhost\n"


def _priced(workdir: Path, scheme: str, aggregate: str, nodes: str = TWO_HOMES, extra: str = "") -> Workspace:
    (workdir / "nodes.txt").write_text(nodes)
    config = workdir / "jupiter_config.ini"
    config.write_text(
        config.read_text().replace("[CONFIG]\n", f"[CONFIG]\nPRICING = {scheme}\nPRICE_OPTION = {aggregate}\n") + extra
    )
    return load_workspace(config, workdir / "nodes.txt", None)


def _events(deployment: Deployment, home: str) -> list[dict[str, Any]]:
    path = deployment.home_layout(home).dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("scheme", "aggregate"), [("event", "sum"), ("event", "max"), ("push", "sum"), ("push", "max")]
)
def test_each_home_gets_exactly_its_own_frames(fan_workdir: Path, scheme: str, aggregate: str) -> None:
    workspace = _priced(fan_workdir, scheme, aggregate)
    deployment = deploy(resolve_spec(workspace))
    try:
        assert deployment.homes == ["home", "home2"]
        files = {
            home: [(f"{home}-{i:02d}.txt", f"{home} frame {i}\n".encode()) for i in range(15)]
            for home in ("home", "home2")
        }
        frames = {home: submit_data(deployment, files[home], home) for home in files}
        for home in files:
            counts = wait_frames(deployment, 15, 60.0, home)
            assert (counts["done"], counts["failed"]) == (15, 0)
        flush_events(deployment)
        events = {home: _events(deployment, home) for home in files}
    finally:
        teardown(deployment)
    workers: Counter[str] = Counter()
    for home, sent in files.items():
        done = [event["frame"] for event in events[home] if event["type"] == "frame_done"]
        assert sorted(done) == sorted(frames[home])  # exactly its own, each once
        output = deployment.home_layout(home).dir / "output"
        assert sorted(path.name for path in output.iterdir()) == sorted(frames[home])
        for frame, (_, data) in zip(frames[home], sent, strict=True):
            assert (output / frame / "joined.txt").read_text() == expected_join(data.decode())
        tasks = [event for event in events[home] if event["type"] == "task"]
        assert len(tasks) == 4 * 15  # each home has the statistics of its own frames
        workers.update(event["node"] for event in tasks)
        lines = (deployment.home_layout(home).dir / "runtime_tasks.txt").read_text().splitlines()
        assert lines[0].split()[:2] == ["Worker_node", "Task_name"]
        assert {line.split()[0] for line in lines[1:]} <= {"node1", "node2", "node3"}
    assert set(workers) <= {"node1", "node2", "node3"}
    if scheme == "event":
        assert len(workers) >= 2, f"a burst of frames should spread over the nodes: {workers}"
    if (scheme, aggregate) == ("event", "sum"):
        page = write_report(deployment.root, deployment.root / "report").read_text()
        assert "Where each frame went (event pricing)" in page
        for home in files:
            for frame in frames[home]:
                assert f"<tr><td class=l>{frame}</td><td>node" in page  # the node that ran its first task


def _example(tmp_path: Path, app: str) -> Path:
    shutil.copytree(data_dir() / "app_specific_files" / app, tmp_path / "app_specific_files" / app)
    text = (data_dir() / "jupiter_config.ini").read_text()
    (tmp_path / "jupiter_config.ini").write_text(
        text.replace("APP = app_specific_files/network_monitoring_app", f"APP = app_specific_files/{app}")
        .replace("PRICING = nonpricing", "")
        .replace("PRICE_OPTION = sum", "")
    )
    return tmp_path


@pytest.mark.parametrize(
    ("app", "scheme", "aggregate"),
    [
        ("network_monitoring_app", "event", "sum"),
        ("network_monitoring_app", "push", "max"),
        ("dummy_app", "event", "max"),
        ("dummy_app", "push", "sum"),
    ],
)
def test_example_apps_run_priced_through_profile_map_dispatch(
    tmp_path: Path, app: str, scheme: str, aggregate: str
) -> None:
    workdir = _example(tmp_path, app)
    nodes = (data_dir() / "nodes.txt").read_text() + "home2 localhost\n"
    workspace = _priced(workdir, scheme, aggregate, nodes)
    assert not workspace.config.static_mapping  # the measured sequence: profile -> map -> dispatch
    summary = run(resolve_spec(workspace), frames=6, keep=True)
    deployment = choose(resolve_spec(workspace).state_dir).deployment
    teardown(deployment)
    assert (summary.frames, summary.done, summary.failed) == (6, 6, 0)
    assert summary.per_home == {"home": 3, "home2": 3}
    samples = {path.name: path for path in workspace.app.sample_inputs}
    dag = generate_dag(DummySpec(tasks=10, layers=4, fan_out=3, seed=4)) if app == "dummy_app" else None
    checked = 0
    for home in ("home", "home2"):
        root = deployment.home_layout(home).dir
        for line in (root / "events.jsonl").read_text().splitlines():
            event = json.loads(line)
            if event["type"] != "frame_submitted":
                continue
            sample = samples[event["input"]]
            produced = {
                path.name: path.read_bytes()
                for path in (root / "output" / event["frame"]).iterdir()
                if not path.name.startswith(".")
            }
            if dag is None:
                assert produced == {f"{sample.stem}_report.txt": expected_report(sample).encode()}
            else:
                expected = expected_outputs(dag, sample.read_bytes())
                exits = [task for task in dag.tasks if task.children == ("home",)]
                assert produced == {f"{sample.stem}__{task.name}_0.txt": expected[task.name][0] for task in exits}
            checked += 1
    assert checked == 6


@pytest.mark.parametrize("scheme", ["event", "push"])
@pytest.mark.parametrize("victim", ["node1", "node2"])  # node1 controls split and join; node2 controls upper
def test_dead_node_loses_no_frame_and_later_frames_avoid_it(fan_workdir: Path, scheme: str, victim: str) -> None:
    workspace = _priced(
        fan_workdir, scheme, "sum", "home localhost\nnode1 localhost\nnode2 localhost\nnode3 localhost\n"
    )
    deployment = deploy(resolve_spec(workspace))
    try:
        files = [(f"in{i:02d}.txt", f"frame {i} slow\n".encode()) for i in range(60)]  # split sleeps 50 ms
        frames: list[str] = []
        for start in range(0, 60, 4):
            frames += submit_data(deployment, files[start : start + 4])
            if start == 24:
                kill_node(deployment, victim)
            time.sleep(0.08)
        counts = wait_frames(deployment, 60, 90.0)
        assert (counts["done"], counts["failed"]) == (60, 0)
        assert flush_events(deployment) == [victim]
        events = _events(deployment, "home")
        status = deployment_status(deployment)
    finally:
        teardown(deployment)
    assert "error" in status["agents"][victim]
    dead = [event for event in events if event["type"] == "nodes_dead"]
    assert dead and dead[0]["dead"] == [victim]
    declared = dead[0]["time"]
    late = [
        event for event in events if event["type"] == "task" and event["node"] == victim and event["enter"] > declared
    ]
    assert late == []
    done = [event["frame"] for event in events if event["type"] == "frame_done"]
    assert sorted(done) == sorted(frames)  # none lost, none twice
    for frame, (_, data) in zip(frames, files, strict=True):
        assert (deployment.home_dir / "output" / frame / "joined.txt").read_text() == expected_join(data.decode())


BURN = """
import os
import time


def task(filename, pathin, pathout):
    end = time.process_time() + 0.02
    while time.process_time() < end:
        pass
    out = os.path.join(pathout, "burned_" + filename)
    with open(out, "w") as handle:
        handle.write(open(os.path.join(pathin, filename)).read())
    return [out]
"""


def test_speed_changed_at_run_time_slows_the_node_s_tasks(tmp_path: Path) -> None:
    app = tmp_path / "app_specific_files" / "burn"
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "configuration.txt").write_text("1\nburn 1 true home\n")
    (app / "scripts" / "burn.py").write_text(BURN)
    (app / "sample_input" / "a.txt").write_text("a\n")
    (tmp_path / "nodes.txt").write_text("home localhost\nnode1 localhost\n")
    (tmp_path / "mapping.txt").write_text("burn node1\n")
    (tmp_path / "testbed.ini").write_text("[nodes]\nnode1 = 1\n")
    (tmp_path / "jupiter_config.ini").write_text(
        "[CONFIG]\nSTATIC_MAPPING = 1\n[DEPLOY]\nAPP = app_specific_files/burn\nMAPPING = mapping.txt\n"
        "[PROFILING]\nTESTBED = testbed.ini\n"
    )
    workspace = load_workspace(tmp_path / "jupiter_config.ini", tmp_path / "nodes.txt", None)
    deployment = deploy(resolve_spec(workspace))
    try:

        def durations(first: int) -> list[float]:
            for i in range(4):
                submit_data(deployment, [(f"f{first + i}.txt", b"x\n")])
                wait_frames(deployment, first + i + 1, 30.0)
            flush_events(deployment)
            events = _events(deployment, "home")
            return [e["finish"] - e["execute"] for e in events if e["type"] == "task"][first:]

        before = durations(0)
        assert set_speed(deployment, "node1", 0.25) == 0.25
        after = durations(4)
        with pytest.raises(DeploymentError, match="refused the speed"):
            set_speed(deployment, "node1", 2.0)
    finally:
        teardown(deployment)
    # At speed 0.25 each run of 20 ms of CPU is padded to at least 80 ms of wall time, whatever the load
    # (a busy machine only makes runs longer); before, nothing pads it. A ratio of wall times would depend
    # on how busy the machine was in each half (bench/testbed measures the emulation's precision).
    assert all(duration >= 0.02 / 0.25 - 0.002 for duration in after), (before, after)
    assert sorted(after)[2] > sorted(before)[2], (before, after)
