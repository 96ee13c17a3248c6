"""The runtime commands through the real `jupiter` executable (processes tier)."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupiter.backends.local import alive, group_members

pytestmark = pytest.mark.processes


def jupiter(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupiter.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _pids(cwd: Path, deployment: str | None = None) -> list[int]:
    root = cwd / ".jupiter" / deployment if deployment else next((cwd / ".jupiter").glob("2*"))
    pids = json.loads((root / "pids.json").read_text())
    return [pids["supervisor"], *pids["agents"].values()]


DEPLOYED = re.compile(r"deployment (\d{8}-\d{6}-[0-9a-f]{6}) is running \(4 agents\)")


def test_deploy_submit_status_teardown(fan_workdir: Path) -> None:
    deployed = jupiter(fan_workdir, "deploy")
    assert deployed.returncode == 0, deployed.stderr
    lines = deployed.stdout.splitlines()
    first = DEPLOYED.fullmatch(lines[0])
    assert first is not None
    assert lines[1].startswith("submit files with `jupiter submit FILE...` or drop them into ")
    assert "mapped 4 tasks with a static mapping in" in deployed.stderr
    older = first.group(1)
    pids = _pids(fan_workdir, older)
    assert all(alive(pid) for pid in pids)

    # A second deployment from the same folder runs beside the first, with its own id and agents.
    again = jupiter(fan_workdir, "deploy")
    assert again.returncode == 0, again.stderr
    second = DEPLOYED.fullmatch(again.stdout.splitlines()[0])
    assert second is not None and second.group(1) != older
    newer = second.group(1)
    listed = jupiter(fan_workdir, "list")
    assert [line.split()[:4] for line in listed.stdout.splitlines()] == [
        ["id", "state", "backend", "app"],
        [older, "running", "local", "fan"],
        [newer, "running", "local", "fan"],
    ]

    inputs = []
    for i in range(3):
        path = fan_workdir / f"in{i}.txt"
        path.write_text(f"cli {i}\n")
        inputs.append(path.name)
    submitted = jupiter(fan_workdir, "submit", "--deployment", older[-6:], *inputs)
    assert (submitted.returncode, submitted.stderr) == (0, "")
    frames = [line.split() for line in submitted.stdout.splitlines()]
    assert [name for _, name in frames] == inputs
    assert all(re.fullmatch(r"f\d{6}-[0-9a-f]{6}", frame) for frame, _ in frames)

    root = fan_workdir / ".jupiter" / older
    (root / "home" / "input" / "dropped.txt").write_text("dropped\n")
    deadline = time.time() + 30
    while time.time() < deadline:
        status = jupiter(fan_workdir, "status", "--deployment", older)
        if "4 done" in status.stdout:
            break
        time.sleep(0.2)
    assert (status.returncode, status.stderr) == (0, "")
    out = status.stdout.splitlines()
    assert out[0] == f"deployment {older}  app fan"
    assert out[1].split() == ["node", "role", "pid", "task", "waiting", "queued", "running", "done", "failed"]
    rows = {tuple(line.split()[:4]): line.split()[4:] for line in out[2:-1]}
    assert rows[("node1", "compute", str(_pids(fan_workdir, older)[2]), "split")] == ["0", "0", "0", "4", "0"]
    assert out[-1].startswith("frames: 4 submitted, 4 done, 0 failed, 0 in flight; throughput ")
    # The frames went to the deployment named, and only there.
    assert len(list((root / "home" / "output").iterdir())) == 4
    assert not (fan_workdir / ".jupiter" / newer / "home" / "output").exists()

    # Without --deployment a command takes the latest running one, and says so when there are several.
    latest = jupiter(fan_workdir, "status")
    assert latest.returncode == 0
    assert latest.stdout.splitlines()[0] == f"deployment {newer}  app fan"
    assert latest.stderr == (
        f"note: 2 deployments are running here; acting on the latest, {newer} (fan); "
        "choose another with --deployment ID (`jupiter list` shows them)\n"
    )

    down = jupiter(fan_workdir, "teardown", "--deployment", newer)
    assert down.returncode == 0, down.stderr
    assert (
        down.stdout
        == f"deployment {newer} stopped (9 processes); its files stay in {fan_workdir / '.jupiter' / newer}\n"
    )
    assert all(alive(pid) for pid in pids)  # the other one runs on
    only = jupiter(fan_workdir, "teardown")
    assert (only.returncode, only.stderr) == (0, "")
    assert re.fullmatch(rf"deployment {older} stopped \(9 processes\); its files stay in \S+\n", only.stdout)
    assert not [pid for pid in pids if alive(pid)]
    assert jupiter(fan_workdir, "teardown").stdout == "nothing to tear down\n"
    gone = jupiter(fan_workdir, "status")
    assert gone.returncode == 1
    assert gone.stderr == (
        f"error: no deployment is running here ({fan_workdir / '.jupiter'}); start one with `jupiter deploy`\n"
    )
    assert [line.split()[1] for line in jupiter(fan_workdir, "list").stdout.splitlines()[1:]] == ["stopped"] * 2
    pruned = jupiter(fan_workdir, "prune")
    assert pruned.returncode == 0
    assert pruned.stdout.splitlines()[-1].startswith("removed 2 deployments, freed ")
    assert not list((fan_workdir / ".jupiter").glob("2*"))


def test_run_prints_summary(fan_workdir: Path) -> None:
    result = jupiter(fan_workdir, "run", "--frames", "6")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"6 of 6 frames done, 0 failed in [\d.]+ s \([\d.]+ frames/s\)", lines[0])
    assert re.fullmatch(r"arrivals: burst: every frame at once; sustained [\d.]+ frames/s", lines[1])
    assert lines[2].split() == ["latency", "per", "frame", "p50", "p95", "p99"]
    assert re.fullmatch(r"  total( +[\d.]+s){3}", lines[3])
    assert re.fullmatch(r"  work( +[\d.]+s){3}  \(execution and transfers\)", lines[4])
    assert re.fullmatch(r"  waiting( +[\d.]+s){3}  \(queues\)", lines[5])
    lines = lines[:1] + lines[5:]
    assert lines[1].split()[0] == "waiting"
    assert lines[2].split() == ["task", "node", "runs", "mean", "s"]
    assert [line.split()[:3] for line in lines[3:7]] == [
        ["split", "node1", "6"],
        ["upper", "node2", "6"],
        ["lower", "node3", "6"],
        ["join", "node1", "6"],
    ]
    assert re.fullmatch(r"outputs in (\S+)/home/output; summary in \1/home/summary\.json", lines[7])
    # The dashboard's one-time link comes with the progress, on stderr.
    assert re.search(r"^dashboard: http://127\.0\.0\.1:\d+/dashboard/login\?code=\S+$", result.stderr, re.M)
    root = next((fan_workdir / ".jupiter").glob("2*"))
    assert group_members(json.loads((root / "pids.json").read_text())["supervisor"]) == []
    # Not on a terminal: the deploy's progress, then one line when the frames are in; no bar, no lone label.
    progress = result.stderr.splitlines()
    assert "frames" not in progress
    assert progress[-1] == f"submitted 6 frames to deployment {root.name}; waiting for them"
    assert any(line.startswith("deployed 4 agents in ") for line in progress)
    # Output folders hold the outputs only (the slot markers are home's bookkeeping while a frame is in flight).
    assert sorted({path.name for path in (root / "home" / "output").glob("*/*")}) == ["joined.txt"]


def test_run_draws_its_progress_bar_on_a_terminal_once_the_deploy_is_done(fan_workdir: Path) -> None:
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupiter.cli", "run", "--frames", "3"],
            cwd=fan_workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=follower,
        )
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal is gone: the command has ended
                break
            if not chunk:
                break
            seen += chunk
        assert process.wait(timeout=120) == 0
    finally:
        os.close(leader)
    text = seen.decode()
    lines = text.split("\r\n")
    deployed = next(i for i, line in enumerate(lines) if line.startswith("deployed 4 agents in "))
    # Each progress line is whole (nothing glued to a bar drawn too early), and the bar comes after them.
    assert "frames  [" not in "".join(lines[: deployed + 1])
    assert "frames  [" in "".join(lines[deployed + 1 :])
    assert "100%" in text


def test_run_with_a_failing_frame_exits_1(fan_workdir: Path) -> None:
    inputs = fan_workdir / "inputs"
    inputs.mkdir()
    (inputs / "good.txt").write_text("good\n")
    (inputs / "bad.txt").write_text("boom\n")
    result = jupiter(fan_workdir, "run", "--inputs", str(inputs))
    assert result.returncode == 1
    assert result.stdout.startswith("1 of 2 frames done, 1 failed in ")
    assert "failed: frame f" in result.stderr
    assert "(bad.txt): ValueError: boom in bad.txt" in result.stderr


def test_ctrl_c_tears_down(fan_workdir: Path) -> None:
    inputs = fan_workdir / "inputs"
    inputs.mkdir()
    for i in range(200):
        (inputs / f"s{i:03d}.txt").write_text(f"slow {i}\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupiter.cli", "run", "--inputs", str(inputs)],
        cwd=fan_workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not list((fan_workdir / ".jupiter").glob("2*/pids.json")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    pids = _pids(fan_workdir)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.endswith("interrupted; the deployment was torn down\n")
    assert not [pid for pid in pids if alive(pid)]


def test_teardown_after_cli_crash(fan_workdir: Path) -> None:
    """The CLI that deployed is gone (kill -9); a new CLI still finds and stops everything."""
    process = subprocess.Popen([sys.executable, "-m", "jupiter.cli", "deploy"], cwd=fan_workdir)
    assert process.wait(timeout=60) == 0
    pids = _pids(fan_workdir)
    root = next((fan_workdir / ".jupiter").glob("2*"))
    spool = Path(json.loads((root / "deployment.json").read_text())["info"]["spool"])
    assert spool.is_dir()
    result = jupiter(fan_workdir, "teardown")
    assert result.returncode == 0
    assert not [pid for pid in pids if alive(pid)]
    assert not spool.exists()  # the files in transit go with the deployment


def test_a_spool_dir_that_cannot_be_made_stops_the_deploy_before_any_agent(fan_workdir: Path) -> None:
    config = fan_workdir / "jupiter_config.ini"
    config.write_text(config.read_text().replace("[DEPLOY]\n", "[DEPLOY]\nSPOOL_DIR = /proc/jupiter-spool\n"))
    result = jupiter(fan_workdir, "deploy")
    assert (result.returncode, result.stderr.splitlines()[-1]) == (
        2,
        "error: jupiter_config.ini: [DEPLOY] SPOOL_DIR: cannot make a folder in /proc/jupiter-spool "
        "(No such file or directory); name a folder you can write in, or leave SPOOL_DIR empty",
    )
    status = jupiter(fan_workdir, "status")
    assert status.returncode != 0 and "no deployment is running here" in status.stderr


def test_run_with_pricing_uses_the_original_numbers(fan_workdir: Path) -> None:
    config = fan_workdir / "jupiter_config.ini"
    config.write_text(config.read_text().replace("[CONFIG]\n", "[CONFIG]\nPRICING = 2\nPRICE_OPTION = 2\n"))
    result = jupiter(fan_workdir, "run", "--frames", "4")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("4 of 4 frames done, 0 failed")
    root = next((fan_workdir / ".jupiter").glob("2*"))
    plan = json.loads((root / "plan.json").read_text())
    assert (plan["pricing"]["scheme"], plan["pricing"]["aggregate"]) == ("event", "max")


def test_pricing_commands(fan_workdir: Path) -> None:
    config = fan_workdir / "jupiter_config.ini"
    config.write_text(config.read_text().replace("[CONFIG]\n", "[CONFIG]\nPRICING = event\n"))
    (fan_workdir / "nodes.txt").write_text(
        "home localhost\nhome2 localhost\nnode1 localhost\nnode2 localhost\nnode3 localhost\n"
    )
    (fan_workdir / "x.txt").write_text("frame x\n")
    deployed = jupiter(fan_workdir, "deploy")
    assert deployed.returncode == 0, deployed.stderr
    try:
        submitted = jupiter(fan_workdir, "submit", "--home", "home2", "x.txt")
        assert submitted.returncode == 0, submitted.stderr
        wrong_home = jupiter(fan_workdir, "submit", "--home", "home9", "x.txt")
        assert (wrong_home.returncode, wrong_home.stderr) == (
            2,
            "error: home9 is not a home node of this deployment; use one of: home, home2\n",
        )
        assert jupiter(fan_workdir, "speed", "node1", "1.5").returncode == 2
        unknown = jupiter(fan_workdir, "speed", "node9", "0.5")
        assert unknown.returncode == 2 and "node node9 is not in this deployment" in unknown.stderr
        slowed = jupiter(fan_workdir, "speed", "node1", "0.5")
        assert (slowed.returncode, slowed.stdout) == (0, "node1 now runs at speed 0.5\n")
        killed = jupiter(fan_workdir, "kill", "node3")
        assert killed.returncode == 0 and "it will not be restarted" in killed.stdout
        time.sleep(2.0)  # STALE = 1 s: home declares node3 dead
        status = jupiter(fan_workdir, "status")
        assert status.returncode == 0, status.stderr
        assert "pricing: event (sum); dead: node3" in status.stdout
        assert re.search(r"node3\s+unreachable", status.stdout)
    finally:
        assert jupiter(fan_workdir, "teardown").returncode == 0
    outputs = list((next((fan_workdir / ".jupiter").glob("2*")) / "home2" / "output").iterdir())
    assert len(outputs) == 1 and (outputs[0] / "joined.txt").exists()


def test_run_app_from_a_fresh_init_folder(tmp_path: Path) -> None:
    init = jupiter(tmp_path, "init", "work")
    assert init.returncode == 0, init.stderr
    work = tmp_path / "work"
    result = jupiter(work, "run", "dummy_app", "--frames", "2", timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("2 of 2 frames done, 0 failed in ")
    (root,) = (work / ".jupiter").glob("2*")
    assert json.loads((root / "deployment.json").read_text())["app"] == "dummy_app"
    assert (root / "state").read_text() == "stopped\n"


def test_run_at_a_fixed_interval_submits_each_frame_at_its_time(fan_workdir: Path) -> None:
    result = jupiter(fan_workdir, "run", "--frames", "5", "--interval", "0.5", "--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["arrivals"]["pattern"] == "fixed"
    assert (document["arrivals"]["rate"], document["arrivals"]["interval"]) == (2.0, 0.5)
    assert "submitting 5 frames: fixed, a frame every 0.5 s (2 frames/s)" in result.stderr
    root = next((fan_workdir / ".jupiter").glob("2*"))
    submitted = [
        json.loads(line)["time"]
        for line in (root / "home" / "events.jsonl").read_text().splitlines()
        if json.loads(line)["type"] == "frame_submitted"
    ]
    # Never early: the client sends frame i at 0.5 i s after frame 0 (home stamps it on arrival, a
    # little later, so the first upload's own delay is the only slack). A loaded machine may be late.
    span = max(submitted) - min(submitted)
    assert 4 * 0.5 - 0.25 <= span <= 4 * 0.5 + 10
    assert document["arrivals"]["offered"] == pytest.approx(4 / span)


def test_run_refuses_two_arrival_patterns_at_once(fan_workdir: Path) -> None:
    result = jupiter(fan_workdir, "run", "--rate", "2", "--sequential")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == (
        "Error: --sequential and --rate are different arrival patterns; give one of them"
    )


def test_run_output_json_is_summary_json_and_the_trace_of_the_run(fan_workdir: Path) -> None:
    from tests.report.test_trace import check_trace

    result = jupiter(fan_workdir, "run", "--frames", "3", "--sequential", "--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    root = next((fan_workdir / ".jupiter").glob("2*"))
    assert json.loads((root / "home" / "summary.json").read_text()) == document
    assert (document["format"], document["backend"], document["submission"]) == (
        "jupiter-summary",
        "local",
        "sequential",
    )
    assert document["frames"] == {"submitted": 3, "done": 3, "failed": 0, "restarted": 0, "alone": 3}
    frame = document["per_frame"][0]
    assert frame["path"] == ["split", "upper", "join"] or frame["path"] == ["split", "lower", "join"]
    assert frame["latency"] == pytest.approx(frame["execution"] + frame["transfer"] + frame["waiting"])
    assert document["prediction"]["notes"] == [
        "no prediction: the mapping was static, nothing was profiled to predict from"
    ]
    assert "outputs in " in result.stderr
    traced = jupiter(fan_workdir, "report", "--trace", "trace.json")
    assert (traced.returncode, traced.stdout) == (0, "trace written to trace.json\n")
    trace = json.loads((fan_workdir / "trace.json").read_text())
    check_trace(trace)
    assert len([e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "task"]) == 12


def _until(process: subprocess.Popen[str], text: str, timeout: float = 30.0) -> list[str]:
    """Lines of a process's stdout up to the first that holds `text` (a failure after `timeout` seconds)."""
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line.rstrip("\n"))
        if text in line:
            return seen
    raise AssertionError(f"{text!r} not in {seen}")


def _stopped_by_ctrl_c(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


def test_status_json_watch_and_logs_of_a_running_deployment(fan_workdir: Path) -> None:
    deployed = jupiter(fan_workdir, "deploy")
    assert deployed.returncode == 0, deployed.stderr
    try:
        assert jupiter(fan_workdir, "submit", "app_specific_files/fan/sample_input/a.txt").returncode == 0
        status = json.loads(jupiter(fan_workdir, "status", "--output", "json").stdout)
        assert (status["format"], status["version"], status["backend"]) == ("jupiter-status", 1, "local")
        assert set(status["nodes"]) == {"home", "node1", "node2", "node3"}
        assert status["nodes"]["node1"]["reachable"] and "split" in status["nodes"]["node1"]["tasks"]
        assert set(status["frames"]) >= {"submitted", "done", "in_flight", "throughput", "throughput_window"}
        # Not a terminal: each refresh printed after the other, until Ctrl-C (exit 0, the deployment runs on).
        watch = subprocess.Popen(
            [sys.executable, "-m", "jupiter.cli", "status", "--watch", "--interval", "0.2"],
            cwd=fan_workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = _until(watch, "Ctrl-C stops")
        second = _until(watch, "Ctrl-C stops")
        assert first[0].startswith("deployment ") and second[1].startswith("deployment ")  # after a blank line
        assert re.fullmatch(r"-- \d\d:\d\d:\d\d, every 0\.2 s; Ctrl-C stops", first[-1])
        assert _stopped_by_ctrl_c(watch) == (0, "")
        logs = jupiter(fan_workdir, "logs")
        assert logs.returncode == 0, logs.stderr
        lines = logs.stdout.splitlines()
        assert {line.split(" | ")[0].strip() for line in lines} == {"home", "node1", "node2", "node3"}
        assert any(re.fullmatch(r"node1 \| \S+ \S+ node1 INFO agent node1 ready: .*", line) for line in lines)
        node1 = jupiter(fan_workdir, "logs", "node1", "--since", "1h").stdout.splitlines()
        assert node1 and all(line.startswith("node1 | ") for line in node1)
        assert jupiter(fan_workdir, "logs", "node1", "--since", "0s").stdout == ""
        unknown = jupiter(fan_workdir, "logs", "node9")
        assert (unknown.returncode, unknown.stderr) == (
            2,
            f"error: no node 'node9' in deployment {status['deployment']}; its nodes: home, node1, node2, node3\n",
        )
        follow = subprocess.Popen(
            [sys.executable, "-m", "jupiter.cli", "logs", "-f", "home"],
            cwd=fan_workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _until(follow, "agent home ready")
        assert _stopped_by_ctrl_c(follow) == (0, "")
        link = jupiter(fan_workdir, "dashboard")
        assert re.fullmatch(
            r"dashboard: http://127\.0\.0\.1:\d+/dashboard/login\?code=\S+\n"
            r" {11}\(a one-time link, valid 10 min; `jupiter dashboard` prints a new one\)\n",
            link.stdout,
        )
    finally:
        assert jupiter(fan_workdir, "teardown").returncode == 0
    # After teardown the saved logs are still there.
    after = jupiter(fan_workdir, "logs", "node1")
    assert after.returncode == 0 and after.stderr.endswith("is not running; its saved logs:\n")
    assert "agent node1 ready" in after.stdout
