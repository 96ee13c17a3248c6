"""Real agents under attack and under signals (processes tier): what a peer or an operator can do to them.

* Forged, unauthenticated messages neither forge log lines nor flood the log.
* Idle control-plane clients cost no thread, are closed after the idle
  timeout, and a real request still answers.
* An agent killed with -9 comes back with its task counters.
* SIGTERM and SIGHUP to `jupiter run`, and SIGTERM to a `deploy` still
  starting, leave nothing of the deployment: no process, no spool.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from jupiter.backends.local import alive, group_members
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.workspace import load_workspace
from jupiter.runtime.protocol import encode
from jupiter.service.deploy import deploy, teardown
from jupiter.service.deployments import entries
from jupiter.service.record import Deployment, State
from jupiter.service.run import home_frames, submit_data
from jupiter.service.status import status as deployment_status

pytestmark = [pytest.mark.processes, pytest.mark.adversarial]

DEADLINE = 60.0
"""Seconds any wait may take on a loaded machine before the test fails."""


def _wait(condition: Any, what: str, timeout: float = DEADLINE) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _agent_pid(deployment: Deployment, node: str) -> int:
    return int(json.loads(deployment.layout.pids.read_text())["agents"][node])


@pytest.fixture
def deployed(fan_workdir: Path) -> Iterator[Deployment]:
    """The fan app deployed, with a control-plane idle timeout short enough to be seen."""
    config = fan_workdir / "jupiter_config.ini"
    config.write_text(config.read_text() + "[LIMITS]\nCONTROL_IDLE_TIMEOUT = 2\n")
    workspace = load_workspace(config, fan_workdir / "nodes.txt", None)
    deployment = deploy(resolve_spec(workspace))
    try:
        yield deployment
    finally:
        teardown(deployment)


def test_forged_messages_neither_forge_log_lines_nor_flood_the_log(deployed: Deployment) -> None:
    log = deployed.layout.log("node1")
    before = log.stat().st_size
    address = deployed.nodes["node1"]
    forged = "x\n2026-01-01 00:00:00,000 node1 INFO FORGED"
    for index in range(500):
        # A peer that fails the token check gets one answer, then the agent closes the connection.
        with socket.create_connection((address.host, address.data_port), timeout=DEADLINE) as sock:
            reader = sock.makefile("rb")
            sock.sendall(encode({"kind": forged, "token": "wrong", "name": f"n{index}" * 50}, b""))
            answer = json.loads(reader.readline())
            assert answer == {
                "ok": False,
                "error": "unauthenticated: missing or wrong deployment token",
                "refusal": "refused",
            }
            assert reader.readline() == b""

    def summarised() -> list[str]:
        lines = log.read_text(errors="replace").splitlines()
        return [line for line in lines if "refused" in line] if any("more messages" in x for x in lines) else []

    lines = _wait(summarised, "the summary of the refused messages")
    assert not [line for line in log.read_text().splitlines() if "FORGED" in line.split(" ", 4)[-1][:6]]
    assert all(line.split(" ")[2] == "node1" for line in lines)
    first = next(line for line in lines if "refused '" in line)
    assert "refused 'x\\x0a2026-01-01 00:00:00,000 node1 INFO FORGED' from ('127.0.0.1'," in first
    counts = [int(m.group(1)) for line in lines if (m := re.search(r"refused (\d+) more messages", line))]
    full = [line for line in lines if "refused '" in line]
    assert sum(counts) + len(full) == 500
    # 500 refusals grew the log by a few lines, not by 500 (they were 30 MB before the limit).
    assert log.stat().st_size - before < 4096


def test_idle_control_clients_hold_no_thread_and_a_real_request_answers(deployed: Deployment) -> None:
    home = deployed.nodes["home"]
    agent = psutil.Process(_agent_pid(deployed, "home"))
    threads = agent.num_threads()
    idle = [socket.create_connection((home.host, home.control_port), timeout=DEADLINE) for _ in range(200)]
    try:
        # Twice the default connection bound: the rest wait until idle ones are closed (after 2 s here).
        assert deployed.control.get("home", "/status", DEADLINE)["node"] == "home"
        assert agent.num_threads() <= threads + 2  # (the agent may start a helper thread of its own meanwhile)
        idle[0].settimeout(DEADLINE)
        assert idle[0].recv(1) == b""  # closed by the agent after the idle timeout
    finally:
        for sock in idle:
            sock.close()


def test_counters_survive_a_kill_9(deployed: Deployment) -> None:
    files = [(f"in{i}.txt", f"frame {i}\n".encode()) for i in range(5)] + [("bad.txt", b"boom\n")]
    submit_data(deployed, files)
    _wait(lambda: home_frames(deployed)["done"] + home_frames(deployed)["failed"] >= 6, "every frame")
    before = deployment_status(deployed)["agents"]["node1"]
    assert (before["tasks"]["split"]["done"], before["tasks"]["split"]["failed"]) == (5, 1)
    victim = _agent_pid(deployed, "node1")
    peaks = {task: counters["peak"] for task, counters in before["tasks"].items()}
    saved = deployed.layout.node("node1").counters

    def peaks_saved() -> bool:
        # Saved once a second: wait until the file holds the peaks seen, so the kill cannot beat it.
        try:
            return bool(json.loads(saved.read_text())["peak"] == peaks)
        except (OSError, ValueError, KeyError):
            return False

    _wait(peaks_saved, "the saved counters")
    os.kill(victim, signal.SIGKILL)

    def restarted() -> dict[str, Any] | None:
        try:
            report = deployment_status(deployed)["agents"]["node1"]
        except Exception:  # noqa: BLE001 - the agent is coming back; ask again
            return None
        return report if report.get("pid") not in (None, victim) and "error" not in report else None

    after = _wait(restarted, "node1's agent to come back")
    for task in ("split", "join"):
        assert after["tasks"][task] == before["tasks"][task], task


def _jupiter(workdir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jupiter.cli", *args],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _deployment_root(workdir: Path) -> Path:
    roots: list[Path] = _wait(lambda: list((workdir / ".jupiter").glob("2*/pids.json")), "the agents to start")
    return roots[0].parent


def _nothing_left(workdir: Path, root: Path) -> None:
    record = json.loads((root / "deployment.json").read_text())
    assert group_members(int(record["info"]["pgid"])) == []
    pids = json.loads((root / "pids.json").read_text())
    assert not [pid for pid in [pids["supervisor"], *pids["agents"].values()] if alive(pid)]
    if record["info"].get("spool"):
        assert not Path(record["info"]["spool"]).exists()
    # Torn down (a signal during run) or failed (during deploy): none is left running.
    assert all(entry.state in (State.STOPPED, State.FAILED) for entry in entries(workdir / ".jupiter"))


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_to_run_tears_the_deployment_down(fan_workdir: Path, sig: signal.Signals, code: int) -> None:
    inputs = fan_workdir / "inputs"
    inputs.mkdir()
    for i in range(300):
        (inputs / f"s{i:03d}.txt").write_text(f"slow {i}\n")
    process = _jupiter(fan_workdir, "run", "--inputs", str(inputs))
    root = _deployment_root(fan_workdir)
    # Frames are flowing: some outputs are back at home.
    _wait(lambda: any((root / "home" / "output").glob("f*")), "the first frames to finish")
    process.send_signal(sig)
    _, err = process.communicate(timeout=DEADLINE)
    assert process.returncode == code
    assert err.endswith(f"stopped by {sig.name}; the deployment was torn down\n")
    _nothing_left(fan_workdir, root)


def test_sigterm_to_a_deploy_still_starting_leaves_nothing(fan_workdir: Path) -> None:
    # A measured deployment profiles before it is ready: plenty of time to be stopped while starting.
    config = fan_workdir / "jupiter_config.ini"
    config.write_text(
        config.read_text().replace("STATIC_MAPPING = 1", "STATIC_MAPPING = 0") + "[PROFILING]\nNETWORK_SAMPLES = 40\n"
    )
    process = _jupiter(fan_workdir, "deploy")
    root = _deployment_root(fan_workdir)
    assert process.poll() is None, "deploy finished before it could be stopped"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=DEADLINE)
    assert process.returncode == 143
    assert err.endswith("stopped by SIGTERM; the deployment was torn down\n")
    _nothing_left(fan_workdir, root)
