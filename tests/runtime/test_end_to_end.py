"""The runtime with real agent processes on the local backend (no mocks of our own runtime)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from jupiter.backends import local
from jupiter.backends.local import alive, group_members
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.events import TaskRun
from jupiter.model.layout import STORE_FILE
from jupiter.model.workspace import Workspace, load_workspace
from jupiter.service.deploy import deploy, teardown
from jupiter.service.deployments import entries
from jupiter.service.record import Deployment, DeploymentError, DeploymentRecord, State
from jupiter.service.run import flush_events, home_frames, run, submit_data
from jupiter.service.status import status as deployment_status
from jupiter.store import SqliteStore
from tests.runtime.conftest import expected_join

pytestmark = pytest.mark.processes


def _events(deployment: Deployment) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (deployment.home_dir / "events.jsonl").read_text().splitlines()]


def _wait_frames(deployment: Deployment, total: int, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        counts: dict[str, Any] = home_frames(deployment)
        if counts["done"] + counts["failed"] >= total:
            return counts
        time.sleep(0.05)
    raise AssertionError(f"frames not finished: {home_frames(deployment)}")


def test_fifty_overlapping_frames_each_arrive_once_unmixed(fan_workspace: Workspace) -> None:
    deployment = deploy(resolve_spec(fan_workspace))
    try:
        files = [(f"in{i:02d}.txt", f"frame-{i:02d} payload\n".encode()) for i in range(50)]
        frames = submit_data(deployment, files)
        counts = _wait_frames(deployment, 50)
        assert (counts["done"], counts["failed"]) == (50, 0)
        flush_events(deployment)
        events = _events(deployment)
    finally:
        stopped = teardown(deployment)
    assert len(stopped) == 9  # supervisor, 4 agents, 4 task workers
    assert not any(alive(int(what.split()[-1])) for what in stopped)
    submitted = {e["frame"]: e["input"] for e in events if e["type"] == "frame_submitted"}
    done = [e["frame"] for e in events if e["type"] == "frame_done"]
    assert sorted(done) == sorted(frames) == sorted(submitted)
    assert Counter(done).most_common(1)[0][1] == 1
    for frame, name in submitted.items():
        outputs = list((deployment.home_dir / "output" / frame).iterdir())
        assert [p.name for p in outputs if not p.name.startswith(".")] == ["joined.txt"]
        text = dict(files)[name].decode()
        assert (deployment.home_dir / "output" / frame / "joined.txt").read_text() == expected_join(text)
    runs = Counter(e["task"] for e in events if e["type"] == "task")
    assert runs == {"split": 50, "upper": 50, "lower": 50, "join": 50}
    nodes = {e["task"]: e["node"] for e in events if e["type"] == "task"}
    assert nodes == {"split": "node1", "upper": "node2", "lower": "node3", "join": "node1"}
    table = (deployment.home_dir / "runtime_tasks.txt").read_text().splitlines()
    assert table[0].split() == [
        "Task_name",
        "local_input_file",
        "Enter_time",
        "Execute_time",
        "Finish_time",
        "Elapse_time",
        "Duration_time",
        "Waiting_time",
    ]
    assert len(table) == 201
    for row in table[1:]:
        fields = row.split()
        assert len(fields) == 8
        enter, execute, finish, elapse, duration, waiting = map(float, fields[2:])
        assert enter <= execute <= finish
        assert elapse == pytest.approx(finish - enter, abs=2e-6)
        assert duration == pytest.approx(finish - execute, abs=2e-6)
        assert waiting == pytest.approx(execute - enter, abs=2e-6)
    sender = (deployment.home_dir / "runtime_transfer_sender.txt").read_text().splitlines()
    assert sender[0] == "Node_name Transfer_Type File_Path Time_stamp"
    assert len(sender) - 1 == 50 * 6  # home->split, split->2, upper->join, lower->join, join->home
    assert len((deployment.home_dir / "runtime_transfer_receiver.txt").read_text().splitlines()) - 1 == 300


def test_failing_task_is_reported_and_later_frames_go_on(fan_workspace: Workspace) -> None:
    deployment = deploy(resolve_spec(fan_workspace))
    try:
        submit_data(deployment, [("a.txt", b"fine 1"), ("b.txt", b"boom"), ("c.txt", b"fine 2")])
        counts = _wait_frames(deployment, 3)
        flush_events(deployment)
        events = _events(deployment)
        status = deployment_status(deployment)
    finally:
        teardown(deployment)
    assert (counts["done"], counts["failed"]) == (2, 1)
    failed = [e for e in events if e["type"] == "frame_failed"]
    assert len(failed) == 1 and failed[0]["input"] == "b.txt"
    assert "Traceback (most recent call last)" in failed[0]["error"]
    assert "ValueError: boom in b.txt" in failed[0]["error"]
    assert status["agents"]["node1"]["tasks"]["split"]["failed"] == 1
    assert status["agents"]["node1"]["tasks"]["split"]["done"] == 2


def test_kill_9_agent_mid_stream_loses_and_duplicates_nothing(fan_workspace: Workspace) -> None:
    deployment = deploy(resolve_spec(fan_workspace))
    try:
        files = [(f"s{i:02d}.txt", f"slow {i:02d}\n".encode()) for i in range(40)]
        submit_data(deployment, files)
        time.sleep(0.4)
        pids = json.loads((deployment.root / "pids.json").read_text())["agents"]
        victim = pids["node1"]
        os.kill(victim, signal.SIGKILL)
        counts = _wait_frames(deployment, 40, timeout=120)
        new_pid = json.loads((deployment.root / "pids.json").read_text())["agents"]["node1"]
        flush_events(deployment)
        events = _events(deployment)
    finally:
        teardown(deployment)
    assert new_pid != victim, "the supervisor restarts the killed agent"
    assert (counts["done"], counts["failed"]) == (40, 0)
    done = Counter(e["frame"] for e in events if e["type"] == "frame_done")
    assert len(done) == 40 and max(done.values()) == 1
    submitted = {e["frame"]: e["input"] for e in events if e["type"] == "frame_submitted"}
    for frame, name in submitted.items():
        folder = deployment.home_dir / "output" / frame
        assert [p.name for p in folder.iterdir() if not p.name.startswith(".")] == ["joined.txt"]
        assert (folder / "joined.txt").read_text() == expected_join(dict(files)[name].decode())


def test_teardown_leaves_no_process(fan_workspace: Workspace) -> None:
    deployment = deploy(resolve_spec(fan_workspace))
    pids = json.loads((deployment.root / "pids.json").read_text())
    everything = [pids["supervisor"], *pids["agents"].values()]
    assert all(alive(pid) for pid in everything)
    assert sorted(group_members(deployment.info["pgid"])) != []
    teardown(deployment)
    assert not [pid for pid in everything if alive(pid)]
    assert group_members(deployment.info["pgid"]) == []
    assert [entry.state for entry in entries(deployment.root.parent)] == [State.STOPPED]


def _inboxes(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.glob("nodes/*/inbox/*"))


def test_files_in_transit_live_in_memory_and_teardown_removes_them(fan_workspace: Workspace) -> None:
    deployment = deploy(resolve_spec(fan_workspace))
    try:
        spool = Path(deployment.info["spool"])
        assert spool.parent == Path("/dev/shm") and spool.name.startswith(f"jupiter-spool-{deployment.id}-")
        submit_data(deployment, [("a.txt", b"one frame\n")])
        assert _wait_frames(deployment, 1)["done"] == 1
        assert _inboxes(spool) == [
            "nodes/node1/inbox/join",
            "nodes/node1/inbox/split",
            "nodes/node2/inbox/upper",
            "nodes/node3/inbox/lower",
        ]
        assert _inboxes(deployment.root) == []  # the journal and logs stay in the deployment folder
        assert (deployment.root / "nodes" / "node1" / "outbox.log").exists()
    finally:
        teardown(deployment)
    assert not spool.exists()


def test_spool_dir_setting_and_no_memory_file_system(
    fan_workdir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = fan_workdir / "jupiter_config.ini"
    base = config.read_text()
    config.write_text(base.replace("[DEPLOY]\n", "[DEPLOY]\nSPOOL_DIR = transit\n"))
    deployment = deploy(resolve_spec(load_workspace(config, fan_workdir / "nodes.txt", None)))
    try:
        spool = Path(deployment.info["spool"])
        assert spool.parent == fan_workdir / "transit"  # relative to the config file's folder
        submit_data(deployment, [("a.txt", b"one frame\n")])
        assert _wait_frames(deployment, 1)["done"] == 1
        assert len(_inboxes(spool)) == 4
    finally:
        teardown(deployment)
    assert not spool.exists() and (fan_workdir / "transit").is_dir()
    # Without a tmpfs and without SPOOL_DIR, the files stay in the deployment folder.
    monkeypatch.setattr(local, "MEMORY_FOLDER", tmp_path / "disk")
    config.write_text(base)
    deployment = deploy(resolve_spec(load_workspace(config, fan_workdir / "nodes.txt", None)))
    try:
        assert "spool" not in deployment.info
        submit_data(deployment, [("a.txt", b"one frame\n")])
        assert _wait_frames(deployment, 1)["done"] == 1
        assert len(_inboxes(deployment.root)) == 4
    finally:
        teardown(deployment)


def test_run_summarises_and_tears_down(fan_workspace: Workspace, fan_workdir: Path) -> None:
    summary = run(resolve_spec(fan_workspace), frames=5)
    assert (summary.frames, summary.done, summary.failed) == (5, 5, 0)
    assert set(summary.task_means) == {"split", "upper", "lower", "join"}
    assert summary.makespan_p50 <= summary.makespan_p95
    deployment = Deployment(DeploymentRecord.load(next((fan_workdir / ".jupiter").glob("2*"))))
    assert group_members(deployment.info["pgid"]) == []
    # Runtime statistics live in home's store too, next to the profiles.
    store = SqliteStore(deployment.home_dir / STORE_FILE)
    try:
        assert len(store.events("frame_done")) == 5
        assert sorted({event.task for event in store.events("task") if isinstance(event, TaskRun)}) == [
            "join",
            "lower",
            "split",
            "upper",
        ]
        assert len(store.events("task")) == 20
    finally:
        store.close()


def test_agent_that_never_comes_up_is_named(
    fan_workspace: Workspace, fan_workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = local.agent_argv

    def argv(root: Path, node: str, spool: Path | None = None) -> list[str]:
        if node == "node2":
            return [sys.executable, "-c", "import sys; print('cannot start: port busy'); sys.exit(3)"]
        return list(original(root, node, spool))

    monkeypatch.setattr(local, "agent_argv", argv)
    # The healthy agents must be up before the timeout: on a loaded 2-core machine they take
    # up to about 5 s (3 s was not always enough); node2 never comes up, however long it is given.
    with pytest.raises(DeploymentError) as caught:
        deploy(resolve_spec(fan_workspace), timeout=15)
    root = next((fan_workdir / ".jupiter").glob("2*"))
    assert str(caught.value) == (
        f"node node2 did not come up within 15 s; see {root}/logs/node2.log (last line: cannot start: port busy)"
    )
    assert group_members(DeploymentRecord.load(root).info["pgid"]) == []
    assert [entry.state for entry in entries(root.parent)] == [State.FAILED]


@pytest.mark.parametrize("size", [2, -1])
def test_bounded_queue_holds_senders_back(fan_workdir: Path, size: int) -> None:
    config = fan_workdir / "jupiter_config.ini"
    config.write_text(config.read_text() + f"[OTHER]\nTASK_QUEUE_SIZE = {size}\n")
    workspace = load_workspace(config, fan_workdir / "nodes.txt", None)
    deployment = deploy(resolve_spec(workspace))
    try:
        submit_data(deployment, [(f"q{i:02d}.txt", f"drag {i}\n".encode()) for i in range(30)])
        counts = _wait_frames(deployment, 30)
        upper = deployment.control.get("node2", "/status")["tasks"]["upper"]
    finally:
        teardown(deployment)
    assert (counts["done"], counts["failed"]) == (30, 0)
    if size == 2:
        # The queue filled up and senders were held back: nothing dropped, never more than 2 held.
        assert upper["peak"] == 2
    else:
        assert upper["peak"] > 2, "without a bound the slow task piles frames up"


def test_runtime_0_logs_senders_only(fan_workdir: Path) -> None:
    config = fan_workdir / "jupiter_config.ini"
    config.write_text(config.read_text().replace("[CONFIG]\n", "[CONFIG]\nRUNTIME = 0\n"))
    workspace = load_workspace(config, fan_workdir / "nodes.txt", None)
    summary = run(resolve_spec(workspace), frames=2)
    home = summary.output_dir.parent
    assert summary.done == 2
    assert not (home / "runtime_transfer_receiver.txt").exists()
    assert len((home / "runtime_transfer_sender.txt").read_text().splitlines()) == 1 + 2 * 6


def test_children_on_the_same_node_get_their_inputs_without_the_network(fan_workdir: Path) -> None:
    (fan_workdir / "mapping.txt").write_text("split node1\nupper node1\nlower node1\njoin node1\n")
    workspace = load_workspace(fan_workdir / "jupiter_config.ini", fan_workdir / "nodes.txt", None)
    deployment = deploy(resolve_spec(workspace))
    try:
        files = [(f"in{i:02d}.txt", f"local frame {i}\n".encode()) for i in range(20)]
        frames = submit_data(deployment, files)
        counts = _wait_frames(deployment, 20)
        assert (counts["done"], counts["failed"]) == (20, 0)
        flush_events(deployment)
        events = _events(deployment)
    finally:
        teardown(deployment)
    for frame, (_, data) in zip(frames, files, strict=True):
        assert (deployment.home_dir / "output" / frame / "joined.txt").read_text() == expected_join(data.decode())
    # Only outputs for home went through node1's outbox; the hand-overs are still logged as transfers.
    queued = [
        json.loads(line[1:])
        for line in (deployment.root / "nodes" / "node1" / "outbox.log").read_text().splitlines()
        if line.startswith("+")
    ]
    assert {record["dest"] for record in queued} == {"home"}
    senders = [e for e in events if e["type"] == "transfer" and e["side"] == "sender" and e["node"] == "node1"]
    assert len(senders) == 20 * 5  # split -> upper, lower; upper, lower -> join; join -> home


def test_home_names_each_frame_after_the_app_input_as_the_original(fan_workdir: Path) -> None:
    app = fan_workdir / "app_specific_files" / "fan"
    # The generated apps' style: a row per task, then the app's own `input` row last.
    (app / "name_convert.txt").write_text(
        "split split botnet\nupper upper split\nlower lower split\njoin join upper,lower\ninput botnet botnet\n"
    )
    inputs = fan_workdir / "inputs"
    inputs.mkdir()
    for index in (1, 2):
        (inputs / f"{index}botnet.ipsum").write_text(f"frame {index}\n")
    workspace = load_workspace(fan_workdir / "jupiter_config.ini", fan_workdir / "nodes.txt", None)
    summary = run(resolve_spec(workspace), inputs=inputs)
    assert summary.done == 2
    rows = [line.split()[:2] for line in (summary.output_dir.parent / "runtime_tasks.txt").read_text().splitlines()]
    assert rows[0] == ["Task_name", "local_input_file"]
    assert sorted(tuple(row) for row in rows[1:]) == sorted(
        (task, f"{index}botnet") for task in ("split", "upper", "lower", "join") for index in (1, 2)
    )
