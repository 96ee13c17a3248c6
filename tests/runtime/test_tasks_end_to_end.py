"""How tasks run, end to end on the local backend, with small apps written in the original's style.

Issue 14 items 6 (outputs written, not returned), 7 (state between frames),
8 (helper processes), 10 (requirements); issue 12 items 7 (outputs only from
pathout, private files) and 8 (time and memory limits).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import textwrap
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jupiter.backends.local import alive, free_ports
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.workspace import load_workspace
from jupiter.service.deploy import deploy, teardown
from jupiter.service.record import Deployment
from jupiter.service.run import flush_events, home_frames, submit_data
from jupiter.service.status import status
from tests.conftest import Result

pytestmark = pytest.mark.processes

# `count`-like: the entry task writes its output and returns nothing (the generated templates'
# `return []`), a detector keeps a module-level tally, and `echo` asks a helper declared both
# ways the original's READMEs and config.json do.
DAG = textwrap.dedent(
    """\
    4
    ingest 1 true count echo
    count 1 true home
    echo 1 true home
    dftslave00 1 False dftslave00
    """
)
CONFIG_JSON = {
    "taskname_map": {
        "ingest": ["ingest", True],
        "count": ["count", True],
        "echo": ["echo", True],
        "dftslave00": ["dftslave", False, 7],
        "ticker": ["ticker", False, "a", 2],  # a shell helper, declared in config.json only
    },
    "exec_profiler": {"ingest": True, "count": True, "echo": True, "dftslave00": False},
}
INGEST = textwrap.dedent(
    """\
    import os


    def task(filename, pathin, pathout):
        text = open(os.path.join(pathin, filename)).read()
        with open(os.path.join(pathout, filename.split(".")[0] + "_ingested.txt"), "w") as out:
            out.write(text.strip() + "\\n")
        return []
    """
)
COUNT = textwrap.dedent(
    """\
    import os

    seen = []


    def task(filename, pathin, pathout):
        seen.append(filename)
        out = os.path.join(pathout, filename.split("_")[0] + "_count.txt")
        with open(out, "w") as handle:
            handle.write(str(len(seen)))
        return [out]
    """
)
PORT_OF = textwrap.dedent(
    """\
    import configparser
    import os


    def helper_port():
        parser = configparser.ConfigParser()
        parser.read(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "app_config.ini"))
        return int(parser["DOCKER_PORT"]["slave"])


    def node_dict():
        return dict(zip(os.environ["ALL_NODES"].split(":"), os.environ["ALL_NODES_IPS"].split(":")))
    """
)
ECHO = textwrap.dedent(
    """\
    import os
    import socket
    import time

    from ports import helper_port, node_dict


    def task(filename, pathin, pathout):
        data = open(os.path.join(pathin, filename), "rb").read()
        deadline = time.time() + 30
        while True:  # the helper may still be starting, as in the original
            try:
                with socket.create_connection((node_dict()["dftslave00"], helper_port()), timeout=5) as conn:
                    conn.sendall(data)
                    conn.shutdown(socket.SHUT_WR)
                    reply = conn.makefile("rb").read()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        out = os.path.join(pathout, filename.split("_")[0] + "_echo.txt")
        with open(out, "wb") as handle:
            handle.write(reply)
        return [out]
    """
)
SLAVE = textwrap.dedent(
    """\
    import os
    import socket
    import sys

    from ports import helper_port, node_dict

    server = socket.create_server((node_dict()[os.environ["TASK"]], helper_port()), reuse_port=True)
    print("dftslave", sys.argv[1], "listening; ALL_NODES", os.environ["ALL_NODES"], flush=True)
    while True:
        conn, _ = server.accept()
        with conn:
            data = conn.makefile("rb").read()
            conn.sendall(b"slave " + sys.argv[1].encode() + b": " + data.upper())
    """
)
NODES = "home localhost\nnode1 localhost\nnode2 localhost\n"
MAPPING = "ingest node1\ncount node2\necho node2\n"


def _workdir(root: Path, config_json: dict[str, Any] = CONFIG_JSON) -> Path:
    app = root / "app_specific_files" / "tinycount"
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "sample_input" / "1botnet.ipsum").write_text("alpha\n")
    (app / "configuration.txt").write_text(DAG)
    (app / "scripts" / "config.json").write_text(json.dumps(config_json, indent=2))
    port = free_ports(1)[0]
    (app / "app_config.ini").write_text(f"[DOCKER_PORT]\nslave = {port}\n[SVC_PORT]\nslave = {port}\n")
    for name, source in (("ingest", INGEST), ("count", COUNT), ("echo", ECHO), ("dftslave", SLAVE), ("ports", PORT_OF)):
        (app / "scripts" / f"{name}.py").write_text(source)
    (app / "scripts" / "ticker.sh").write_text('echo "ticker $TASK: $*"\nexec sleep 3600\n')
    (root / "nodes.txt").write_text(NODES)
    (root / "mapping.txt").write_text(MAPPING)
    (root / "jupiter_config.ini").write_text(
        "[CONFIG]\nSTATIC_MAPPING = 1\n[DEPLOY]\nAPP = app_specific_files/tinycount\nMAPPING = mapping.txt\n"
    )
    return root


def _deploy(root: Path) -> Deployment:
    return deploy(resolve_spec(load_workspace(root / "jupiter_config.ini", root / "nodes.txt", None)))


def _wait(what: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def _finished(deployment: Deployment, total: int) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        counts: dict[str, Any] = home_frames(deployment)
        return counts if counts["done"] + counts["failed"] >= total else None

    done: dict[str, Any] = _wait(finished)
    return done


def _events(deployment: Deployment) -> list[dict[str, Any]]:
    flush_events(deployment)
    return [json.loads(line) for line in (deployment.home_dir / "events.jsonl").read_text().splitlines()]


def _outputs(deployment: Deployment, frame: str) -> dict[str, str]:
    folder = deployment.home_dir / "output" / frame
    if not folder.exists():
        return {}  # a failed frame sent nothing home
    return {path.name: path.read_text() for path in sorted(folder.iterdir()) if not path.name.startswith(".")}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_original_style_app_with_a_helper_and_unreturned_outputs(tmp_path: Path) -> None:
    root = _workdir(tmp_path)
    deployment = _deploy(root)
    try:
        frames = submit_data(deployment, [(f"{i}botnet.ipsum", f"frame {i}\n".encode()) for i in range(3)])
        counts = _finished(deployment, 3)
        helper = status(deployment)["agents"]["home"]["helpers"]["dftslave00"]
        assert helper["running"] and helper["starts"] == 1
        # A helper that dies is started again, and the frames after it still reach it.
        os.kill(helper["pid"], signal.SIGKILL)
        _wait(lambda: status(deployment)["agents"]["home"]["helpers"]["dftslave00"]["starts"] == 2)
        frames += submit_data(deployment, [("9botnet.ipsum", b"after the restart\n")])
        counts = _finished(deployment, 4)
        restarted = status(deployment)["agents"]["home"]["helpers"]["dftslave00"]["pid"]
        outputs = {frame: _outputs(deployment, frame) for frame in frames}
        log = deployment.layout.helper_log("home", "dftslave00").read_text()
        ticker = status(deployment)["agents"]["home"]["helpers"]["ticker"]
        ticker_log = deployment.layout.helper_log("home", "ticker").read_text()
        private = {
            "deployment folder": _mode(deployment.root),
            "plan": _mode(deployment.layout.plan),
            "agent log": _mode(deployment.layout.log("home")),
            "helper log": _mode(deployment.layout.helper_log("home", "dftslave00")),
            "events": _mode(deployment.home_dir / "events.jsonl"),
            "output folder": _mode(deployment.home_dir / "output" / frames[0]),
            "output": _mode(deployment.home_dir / "output" / frames[0] / "0botnet_echo.txt"),
            "spool": _mode(Path(deployment.info["spool"])),
        }
    finally:
        teardown(deployment)
    assert (counts["done"], counts["failed"]) == (4, 0)
    for index, frame in enumerate(frames):
        name = f"{index if index < 3 else 9}botnet"
        text = f"frame {index}" if index < 3 else "after the restart"
        # ingest returned nothing: the file it wrote went to both children (FLAG true).
        # count changes module-level state, so by default (auto) every frame starts from the imported
        # script, as in the original: its tally is 1.
        assert outputs[frame] == {f"{name}_count.txt": "1", f"{name}_echo.txt": f"slave 7: {text.upper()}\n"}
    assert "starting helper dftslave00: " in log and "dftslave 7 listening" in log
    assert "helper dftslave00 exited with code -9" in log and log.count("dftslave 7 listening") == 2
    assert private == {
        "deployment folder": 0o700,
        "plan": 0o600,
        "agent log": 0o600,
        "helper log": 0o600,
        "events": 0o600,
        "output folder": 0o700,
        "output": 0o600,
        "spool": 0o700,
    }
    assert ticker["running"] and ticker["starts"] == 1
    assert "ticker ticker: a 2\n" in ticker_log
    assert not alive(restarted) and not alive(ticker["pid"]), "teardown stops the helpers"


def test_resident_workers_keep_module_state_between_frames(tmp_path: Path) -> None:
    root = _workdir(tmp_path, {**CONFIG_JSON, "worker": {"count": "resident"}})
    deployment = _deploy(root)
    try:
        frames = []
        for i in range(3):  # one after the other, so the tally's order is the frames'
            frames += submit_data(deployment, [(f"{i}botnet.ipsum", f"frame {i}\n".encode())])
            _finished(deployment, i + 1)
        tallies = [_outputs(deployment, frame)[f"{i}botnet_count.txt"] for i, frame in enumerate(frames)]
    finally:
        teardown(deployment)
    assert tallies == ["1", "2", "3"]


LIMITED = textwrap.dedent(
    """\
    import os
    import time


    def task(filename, pathin, pathout):
        text = open(os.path.join(pathin, filename)).read()
        if "hang" in text:
            time.sleep(3600)
        if "big" in text:
            blocks = [bytes(10 * 1024**3)]  # 10 GB
        if "passwd" in text:
            return ["/etc/passwd"]
        if "climb" in text:
            return [os.path.relpath("/etc/hostname", pathout)]
        if "link" in text:
            os.symlink("/etc/hostname", os.path.join(pathout, "hostname"))
            return []
        out = os.path.join(pathout, "ok_" + filename)
        open(out, "w").write(text)
        return [out]
    """
)


@pytest.mark.adversarial
@pytest.mark.parametrize("worker", ["fresh", "resident"])
def test_limits_and_refused_outputs_fail_their_frame_only(tmp_path: Path, worker: str) -> None:
    app = tmp_path / "app_specific_files" / "limited"
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "sample_input" / "a.txt").write_text("fine\n")
    (app / "configuration.txt").write_text("1\nwork 1 true home\n")
    (app / "scripts" / "work.py").write_text(LIMITED)
    (app / "scripts" / "config.json").write_text(json.dumps({"worker": worker, "task_timeout": {"work": 3}}))
    (tmp_path / "nodes.txt").write_text("home localhost\nnode1 localhost\n")
    (tmp_path / "jupiter_config.ini").write_text(
        "[DEPLOY]\nAPP = app_specific_files/limited\n[RUNTIME]\nTASK_MEMORY = 256M\nTASK_TIMEOUT = 600\n"
    )
    deployment = _deploy(tmp_path)
    try:
        names = ["first", "hang", "big", "passwd", "climb", "link", "last"]
        # One upload: the agent batches these frames into one request to the worker.
        frames = submit_data(deployment, [(f"{name}.txt", f"{name}\n".encode()) for name in names])
        counts = _finished(deployment, len(names))
        events = _events(deployment)
        outputs = {frame: _outputs(deployment, frame) for frame in frames}
    finally:
        teardown(deployment)
    assert (counts["done"], counts["failed"]) == (2, 5)
    prefix = "work on node1 failed:\n"
    failed = {
        event["input"]: event["error"].removeprefix(prefix) for event in events if event["type"] == "frame_failed"
    }
    assert all(event["error"].startswith(prefix) for event in events if event["type"] == "frame_failed")
    assert failed["hang.txt"].startswith(
        "work ran longer than its time limit of 3 s (TASK_TIMEOUT) and was stopped; the worker was restarted"
    )
    assert failed["big.txt"].startswith("task() ran out of memory of 256M (TASK_MEMORY) and was stopped")
    assert failed["passwd.txt"].startswith("work returned '/etc/passwd', which is outside its pathout")
    assert "which is outside its pathout" in failed["climb.txt"]
    assert failed["link.txt"].startswith("work wrote 'hostname', a symbolic link; only regular files")
    by_name = dict(zip(names, frames, strict=True))
    assert outputs[by_name["first"]] == {"ok_first.txt": "first\n"}
    assert outputs[by_name["last"]] == {"ok_last.txt": "last\n"}
    assert all(outputs[by_name[name]] == {} for name in ("hang", "big", "passwd", "climb", "link"))


def _wheel(folder: Path) -> Path:
    """A pure-Python wheel made by hand (no network, no build backend): `tinypkg` 1.0."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tinypkg-1.0-py3-none-any.whl"
    files = {
        "tinypkg/__init__.py": "GREETING = 'hello from tinypkg'\n",
        "tinypkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
        "tinypkg-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{name},,\n" for name in files) + "tinypkg-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
        wheel.writestr("tinypkg-1.0.dist-info/RECORD", record)
    return path


def test_requirements_are_installed_offline_and_reused(tmp_path: Path, run: Callable[..., Result]) -> None:
    app = tmp_path / "app_specific_files" / "needs"
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "sample_input" / "a.txt").write_text("a\n")
    (app / "configuration.txt").write_text("1\ngreet 1 true home\n")
    (app / "requirements.txt").write_text("# what the scripts import\ntinypkg==1.0\n")
    (app / "scripts" / "greet.py").write_text(
        "import os\nimport tinypkg\n\n\ndef task(filename, pathin, pathout):\n"
        "    out = os.path.join(pathout, 'greeting.txt')\n"
        "    open(out, 'w').write(tinypkg.GREETING)\n    return [out]\n"
    )
    _wheel(tmp_path / "wheels")
    (tmp_path / "nodes.txt").write_text("home localhost\nnode1 localhost\n")
    (tmp_path / "jupiter_config.ini").write_text(
        "[DEPLOY]\nAPP = app_specific_files/needs\nENV_DIR = envs\nWHEELS = wheels\n"
    )
    os.chdir(tmp_path)
    checked = run("validate")
    assert checked.code == 0, checked.err
    (environment,) = (tmp_path / "envs").glob("needs-*")
    assert f"packages {environment}: installed tinypkg 1.0" in checked.out
    first = run("run")
    assert first.code == 0, first.err
    assert f"app environment {environment}: reused tinypkg 1.0" in first.err
    (output,) = (tmp_path / ".jupiter").glob("*/home/output/*/greeting.txt")
    assert output.read_text() == "hello from tinypkg"
    # Another requirements text is another environment; without the wheel, pip says what is missing.
    (app / "requirements.txt").write_text("tinypkg==2.0\n")
    missing = run("validate")
    assert missing.code == 2
    assert missing.err == (
        "error: app_specific_files/needs/requirements.txt: cannot install the app's requirements (ERROR: Could not "
        "find a version that satisfies the requirement tinypkg==2.0 (from versions: 1.0)); fix requirements.txt, "
        "or set [DEPLOY] WHEELS to a folder holding every wheel it needs\n"
    )


def _processes_running(marker: str) -> list[int]:
    """Pids of live processes whose command line mentions `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


@pytest.mark.adversarial
def test_workers_and_their_frames_die_with_a_killed_agent(tmp_path: Path) -> None:
    app = tmp_path / "app_specific_files" / "stuck"
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "sample_input" / "a.txt").write_text("fine\n")
    (app / "configuration.txt").write_text("1\nwork 1 true home\n")
    (app / "scripts" / "work.py").write_text(LIMITED)
    (app / "scripts" / "config.json").write_text('{"worker": "fresh"}')
    (tmp_path / "nodes.txt").write_text("home localhost\nnode1 localhost\n")
    (tmp_path / "jupiter_config.ini").write_text("[DEPLOY]\nAPP = app_specific_files/stuck\n")
    script = str(app / "scripts" / "work.py")
    deployment = _deploy(tmp_path)
    try:
        submit_data(deployment, [("hang.txt", b"hang\n")])
        # The worker and the child it forked for the hanging frame.
        _wait(lambda: len(_processes_running(script)) == 2)
        deployment.handle.kill_node("node1")
        left = _wait(lambda: _processes_running(script) == [] or None, timeout=30)
    finally:
        teardown(deployment)
    assert left is True


def test_with_a_measured_mapping_helpers_serve_the_profiler_and_learn_the_tasks_at_dispatch(tmp_path: Path) -> None:
    root = _workdir(tmp_path)
    (root / "jupiter_config.ini").write_text(
        "[CONFIG]\nSCHEDULER = heft\n[DEPLOY]\nAPP = app_specific_files/tinycount\n"
        "[PROFILING]\nNETWORK_SIZES = 1K\nNETWORK_SAMPLES = 1\nEXEC_RUNS = 1\n"
    )
    deployment = _deploy(root)  # the execution profiler runs `echo`, which needs the helper, on every node
    try:
        frames = submit_data(deployment, [("5botnet.ipsum", b"measured\n")])
        counts = _finished(deployment, 1)
        outputs = _outputs(deployment, frames[0])
        helper = status(deployment)["agents"]["home"]["helpers"]["dftslave00"]
        log = deployment.layout.helper_log("home", "dftslave00").read_text()
    finally:
        teardown(deployment)
    assert (counts["done"], counts["failed"]) == (1, 0)
    assert outputs == {"5botnet_count.txt": "1", "5botnet_echo.txt": "slave 7: MEASURED\n"}
    assert "restarting helper dftslave00: the tasks were placed (ALL_NODES changed)" in log
    assert helper["starts"] == 2
    # Before dispatch it knew only the helpers; after it, every task's node too.
    assert log.count("dftslave 7 listening; ALL_NODES dftslave00:ticker\n") == 1
    assert log.rstrip().endswith("dftslave 7 listening; ALL_NODES ingest:count:echo:dftslave00:ticker")
