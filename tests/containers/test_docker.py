"""The container path for real: build the app image offline, run the app on the docker backend, tear down.

Needs a Docker engine and the offline base image; `scripts/setup-docker`
(called by `scripts/test`) provides both. Without them these tests FAIL:
a missing engine in CI must not pass as a skip. Link shaping needs `tc` in
the base image and a kernel with HTB (no netem); the pure parts of shaping
are tested in test_shaping.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupiter.backends.docker import LABEL_DEPLOYMENT, LABEL_NODE, DockerError
from jupiter.backends.docker_client import DockerEngine, EngineError
from jupiter.backends.image_build import BuildResult, build_image
from jupiter.cli import main
from jupiter.model.bundled import data_dir
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.workspace import Workspace, load_workspace
from jupiter.service.deploy import deploy, teardown
from jupiter.service.deployments import choose
from jupiter.service.run import run, wait_frames
from jupiter.tools.traffic import expected_report

pytestmark = pytest.mark.docker

BASE_IMAGE = os.environ.get("JUPITER_BASE_IMAGE", "jupiter-base:bookworm")
IMAGE_TAG = os.environ.get("JUPITER_TEST_IMAGE_TAG", "test")
"""Tag of the image these tests build (another tag keeps runs of several work trees on one engine apart)."""
APP = "network_monitoring_app"


@pytest.fixture(scope="module")
def engine() -> DockerEngine:
    try:
        engine = DockerEngine()
    except EngineError as exc:
        pytest.fail(f"the docker tier needs a Docker engine: {exc}")
    if not engine.has_image(BASE_IMAGE):
        pytest.fail(f"base image {BASE_IMAGE} is missing; build it with scripts/setup-docker")
    return engine


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("docker-work")
    shutil.copytree(data_dir() / "app_specific_files" / APP, root / "app_specific_files" / APP)
    shutil.copy(data_dir() / "nodes.txt", root / "nodes.txt")
    text = (data_dir() / "jupiter_config.ini").read_text()
    text = text.replace("BACKEND = local", f"BACKEND = docker\nBASE_IMAGE = {BASE_IMAGE}\nIMAGE_TAG = {IMAGE_TAG}")
    (root / "jupiter_config.ini").write_text(text)
    return root


@pytest.fixture(scope="module")
def workspace(work: Path) -> Workspace:
    return load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None)


@pytest.fixture(scope="module")
def image(engine: DockerEngine, workspace: Workspace) -> BuildResult:
    lines: list[str] = []
    result = build_image(resolve_spec(workspace), progress=lines.append, engine=engine)
    assert any(line.startswith("Step 1/") for line in lines), "the build's progress was not streamed"
    return result


@pytest.fixture
def in_work(work: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(work)
    yield work
    main(["teardown"])


def _leftovers(engine: DockerEngine, deployment: str) -> list[str]:
    label = f"{LABEL_DEPLOYMENT}={deployment}"
    networks = engine.client.networks.list(filters={"label": label})
    return [c.name for c in engine.containers(label)] + [str(n.name) for n in networks]


def _containers(engine: DockerEngine, deployment: str) -> dict[str, Any]:
    """node -> docker SDK container of a deployment."""
    return {
        state.labels[LABEL_NODE]: engine.client.containers.get(state.name)
        for state in engine.containers(f"{LABEL_DEPLOYMENT}={deployment}")
    }


def _exec(container: Any, *command: str) -> str:
    code, output = container.exec_run(list(command))
    assert code == 0, f"{command} in {container.name} exited {code}: {output.decode(errors='replace')}"
    return str(output.decode())


# A byte sink and a timed sender, run inside the containers with the image's python.
SINK = """
import socket
server = socket.create_server(("0.0.0.0", 9999))
while True:
    conn, _ = server.accept()
    received = 0
    while chunk := conn.recv(1 << 16):
        received += len(chunk)
    conn.sendall(str(received).encode())
    conn.close()
"""
SEND = """
import os, socket, sys, time
host, size = sys.argv[1], int(sys.argv[2])
payload = os.urandom(size)
for _ in range(100):
    try:
        conn = socket.create_connection((host, 9999))
        break
    except OSError:
        time.sleep(0.05)
started = time.perf_counter()
conn.sendall(payload)
conn.shutdown(socket.SHUT_WR)
assert conn.recv(64) == str(size).encode()
print(time.perf_counter() - started)
"""


def _transfer_seconds(sender: Any, receiver: Any, address: str, size: int) -> float:
    """Seconds to send `size` bytes from one container to another's `address` (until the receiver has them all)."""
    receiver.exec_run(["python3", "-c", SINK], detach=True)
    return float(_exec(sender, "python3", "-c", SEND, address, str(size)))


def _qdiscs(container: Any) -> str:
    return _exec(container, "tc", "-s", "qdisc", "show", "dev", "eth0")


def test_image_is_tagged_and_runs_as_a_non_root_user(engine: DockerEngine, image: BuildResult) -> None:
    assert image.image == f"jupiter-network-monitoring-app:{IMAGE_TAG}"
    config = engine.client.images.get(image.image).attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["python3", "-m", "jupiter.runtime.node"]


def test_the_app_scripts_are_also_where_the_original_images_had_them(engine: DockerEngine, image: BuildResult) -> None:
    # The original's generated apps read /centralized_scheduler/communication.txt: the scripts' folder.
    check = (
        "import os; print(os.path.realpath('/centralized_scheduler'), "
        "sorted(os.listdir('/centralized_scheduler')) == sorted(os.listdir('/app/scripts')), "
        "open('/centralized_scheduler/local_pro.py').read() == open('/app/scripts/local_pro.py').read())"
    )
    output = engine.client.containers.run(image.image, ["-c", check], entrypoint=["python3"], remove=True)
    assert output.decode().split() == ["/app/scripts", "True", "True"]


def test_run_on_docker_gives_the_reference_outputs_and_leaves_nothing(
    engine: DockerEngine, image: BuildResult, workspace: Workspace
) -> None:
    summary = run(resolve_spec(workspace))
    samples = workspace.app.sample_inputs
    assert (summary.frames, summary.done, summary.failed) == (len(samples), len(samples), 0)
    inputs = {}
    for line in (summary.output_dir.parent / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "frame_submitted":
            inputs[event["frame"]] = event["input"]
    assert sorted(inputs.values()) == sorted(path.name for path in samples)
    for frame, name in inputs.items():
        sample = workspace.app.path / "sample_input" / name
        report = summary.output_dir / frame / f"{sample.stem}_report.txt"
        assert report.read_text() == expected_report(sample)
    assert _leftovers(engine, summary.deployment) == []


def test_deploy_status_submit_teardown_through_the_cli(
    engine: DockerEngine, image: BuildResult, in_work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", "--timeout", "120"]) == 0
    deployment = choose(in_work / ".jupiter").deployment
    assert deployment.record.backend == "docker"
    assert len(engine.containers(f"{LABEL_DEPLOYMENT}={deployment.id}")) == 5
    # Without a testbed nothing is shaped: no capability granted, the interfaces keep docker's default qdisc.
    for node, container in _containers(engine, deployment.id).items():
        assert not container.attrs["HostConfig"]["CapAdd"], node
        assert "htb" not in _qdiscs(container), node
    sample = in_work / "app_specific_files" / APP / "sample_input" / "scan.ipsum"
    assert main(["submit", str(sample)]) == 0
    assert wait_frames(deployment, 1, 60.0)["done"] == 1
    # Files in transit live in each container's memory file system, not in the bind-mounted folder.
    for node, container in _containers(engine, deployment.id).items():
        assert container.attrs["HostConfig"]["Tmpfs"] == {"/jupiter-spool": "mode=1777"}, node
        assert container.attrs["Args"][-2:] == ["--spool", "/jupiter-spool"], node
    node = deployment.mapping[workspace_first_task(in_work)]
    inboxes = _exec(_containers(engine, deployment.id)[node], "ls", f"/jupiter-spool/nodes/{node}/inbox")
    assert workspace_first_task(in_work) in inboxes.split()
    assert not list((deployment.root / "nodes").glob("*/inbox"))
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"deployment {deployment.id}" in out
    assert "node1" in out
    assert main(["status", "--output", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["format"], status["backend"], status["frames"]["done"]) == ("jupiter-status", "docker", 1)
    assert all(node["reachable"] for node in status["nodes"].values())
    # The engine's logs, with the engine's timestamps, each line under its node.
    assert main(["logs", "node1", "home"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(re.fullmatch(r"node1 \| \S+ \S+ node1 INFO agent node1 ready: .*", line) for line in lines)
    assert {line.split(" | ")[0].strip() for line in lines} == {"node1", "home"}
    # The dashboard is at home's container address, which this machine reaches on the bridge network.
    assert main(["dashboard"]) == 0
    link = capsys.readouterr().out.splitlines()[0]
    home = deployment.info["public_hosts"]["home"]
    assert re.fullmatch(rf"dashboard: http://{re.escape(home)}:\d+/dashboard/login\?code=\S+", link)
    base = link.removeprefix("dashboard: ").split("/dashboard/")[0]
    request = urllib.request.Request(f"{base}/dashboard/snapshot", headers={"X-Jupiter-Token": deployment.token})
    with urllib.request.urlopen(request, timeout=10) as answer:
        snapshot = json.loads(answer.read())
    assert snapshot["deployment"] == deployment.id and snapshot["counts"]["done"] == 1
    assert main(["teardown"]) == 0
    assert _leftovers(engine, deployment.id) == []
    assert main(["teardown"]) == 0
    assert "nothing to tear down" in capsys.readouterr().out
    # Agents' output is kept where the local backend keeps its logs, and `jupiter logs` reads it there.
    assert (deployment.root / "logs" / "home.log").read_text()
    assert main(["logs", "home"]) == 0
    kept = capsys.readouterr()
    assert kept.err.endswith("is not running; its saved logs:\n") and "agent home ready" in kept.out


def workspace_first_task(work: Path) -> str:
    return load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None).app.dag.order[0]


def test_testbed_speeds_become_cpu_limits(engine: DockerEngine, image: BuildResult, work: Path, tmp_path: Path) -> None:
    shutil.copytree(work / "app_specific_files", tmp_path / "app_specific_files")
    shutil.copy(work / "nodes.txt", tmp_path / "nodes.txt")
    shutil.copy(data_dir() / "testbed.ini", tmp_path / "testbed.ini")
    config = (work / "jupiter_config.ini").read_text().replace("TESTBED =", "TESTBED = testbed.ini")
    (tmp_path / "jupiter_config.ini").write_text(config.replace("STATIC_MAPPING = 0", "STATIC_MAPPING = 1"))
    (tmp_path / "mapping.txt").write_text(
        "".join(
            f"{task} node1\n"
            for task in load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None).app.dag.order
        )
    )
    workspace = load_workspace(tmp_path / "jupiter_config.ini", tmp_path / "nodes.txt", None)
    deployment = deploy(resolve_spec(workspace, tmp_path / "mapping.txt"), timeout=120)
    try:
        limits = {
            state.labels[LABEL_NODE]: engine.client.containers.get(state.name).attrs["HostConfig"]["NanoCpus"]
            for state in engine.containers(f"{LABEL_DEPLOYMENT}={deployment.id}")
        }
        plan = json.loads((deployment.root / "plans" / "plan-node2.json").read_text())
    finally:
        teardown(deployment)
    # testbed.ini: node1 full speed (no limit), node2-4 at 0.25 -> a quarter of a core each.
    assert limits["node1"] == 0 and limits["home"] == 0
    assert limits["node2"] == limits["node3"] == limits["node4"] == 250_000_000
    # Inside the containers neither speeds nor bandwidths are applied a second time; latencies still are.
    testbed = plan["testbed"]
    assert testbed["speeds"] == {}
    assert testbed["kernel_bandwidth"] is True
    assert testbed["uplinks"] == {"default": [float("inf"), 0.01], "node1": [float("inf"), 0.005]}
    assert _leftovers(engine, deployment.id) == []


def two_nodes(work: Path, root: Path, testbed: str) -> Workspace:
    """home and node1 (every task on node1, no profiling) with this testbed file."""
    shutil.copytree(work / "app_specific_files", root / "app_specific_files")
    (root / "nodes.txt").write_text("home localhost\nnode1 localhost\n")
    (root / "testbed.ini").write_text(testbed)
    config = (work / "jupiter_config.ini").read_text().replace("TESTBED =", "TESTBED = testbed.ini")
    (root / "jupiter_config.ini").write_text(config.replace("STATIC_MAPPING = 0", "STATIC_MAPPING = 1"))
    workspace = load_workspace(root / "jupiter_config.ini", root / "nodes.txt", None)
    (root / "mapping.txt").write_text("".join(f"{task} node1\n" for task in workspace.app.dag.order))
    return workspace


UPLINK_10MBIT = "[uplinks]\nnode1 = 10mbit 1ms\n"
SIZE = 2_000_000
WIRE_SECONDS = SIZE * 8 / 10e6  # 1.6 s at 10 Mbit/s
# The kernel paces a shaped transfer: it cannot end much before its time on the wire (a TBF burst
# lets the first few KB through at once), while a loaded 2-core machine may add tens of ms of
# scheduling delay to either end. The bounds below hold whatever else runs here.
SHAPED_BOUNDS = (0.9 * WIRE_SECONDS, WIRE_SECONDS + 1.0)


def test_tc_shapes_a_node_uplink_and_the_agents_keep_only_latency(
    engine: DockerEngine, image: BuildResult, work: Path, tmp_path: Path
) -> None:
    workspace = two_nodes(work, tmp_path, UPLINK_10MBIT)
    deployment = deploy(resolve_spec(workspace, tmp_path / "mapping.txt"), timeout=120)
    try:
        containers = _containers(engine, deployment.id)
        home, node1 = containers["home"], containers["node1"]
        # Only the node with something to shape gets NET_ADMIN, and its agent runs without it.
        assert node1.attrs["HostConfig"]["CapAdd"] == ["NET_ADMIN"]
        assert not home.attrs["HostConfig"]["CapAdd"]
        status = dict(line.split(":\t", 1) for line in _exec(node1, "cat", "/proc/1/status").splitlines())
        assert "jupiter.runtime.node" in _exec(node1, "cat", "/proc/1/cmdline").replace("\0", " ")
        assert status["Uid"].split()[0] == "10001"
        assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0
        assert status["NoNewPrivs"] == "1"
        qdiscs = _qdiscs(node1)
        assert "qdisc htb 1: root" in qdiscs
        assert "htb" not in _qdiscs(home)
        # The kernel shapes node1 -> home to 10 Mbit/s, and only that direction.
        shaped = _transfer_seconds(node1, home, deployment.info["public_hosts"]["home"], SIZE)
        unshaped = _transfer_seconds(home, node1, deployment.info["public_hosts"]["node1"], SIZE)
        assert SHAPED_BOUNDS[0] <= shaped < SHAPED_BOUNDS[1]
        assert unshaped < WIRE_SECONDS / 4
        sent = int(_qdiscs(node1).split("Sent ", 1)[1].split()[0])
        assert sent >= SIZE
        assert deployment.handle.describe()[-1] == "links' bandwidth shaped with tc on: node1"
        # The agents' network profiler measures the same link through the data plane.
        body = {"peers": ["home"], "sizes": [SIZE], "samples": 2}
        answer = deployment.control.post("node1", "/profile/network", body, 120.0)
        profiled = [seconds for _src, _dst, _size, seconds in answer["samples"]]
        assert len(profiled) == 2
        assert all(SHAPED_BOUNDS[0] <= seconds < SHAPED_BOUNDS[1] for seconds in profiled), profiled
        # ... while the agents' own emulation keeps the latency only (bandwidth is not shaped twice).
        plan = json.loads((deployment.root / "plans" / "plan-node1.json").read_text())
        assert plan["testbed"]["uplinks"] == {"node1": [float("inf"), 0.001]}
    finally:
        teardown(deployment)
    assert _leftovers(engine, deployment.id) == []


def test_tc_refused_stops_the_deploy_with_its_answer(
    engine: DockerEngine, image: BuildResult, work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = two_nodes(work, tmp_path, UPLINK_10MBIT)
    run = DockerEngine.run

    def without_capabilities(self: DockerEngine, *args: Any, **kwargs: Any) -> None:
        run(self, *args, **{**kwargs, "cap_add": None})  # an engine that will not grant NET_ADMIN

    monkeypatch.setattr(DockerEngine, "run", without_capabilities)
    started = time.monotonic()
    with pytest.raises(DockerError) as caught:
        deploy(resolve_spec(workspace, tmp_path / "mapping.txt"), timeout=120)
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert message.startswith("node1: tc refused to shape its links: `tc qdisc add dev eth0 root handle 1: htb")
    assert "Operation not permitted" in message and "lacks the NET_ADMIN capability" in message
    deployment = next((tmp_path / ".jupiter").iterdir()).name
    assert _leftovers(engine, deployment) == []


def test_pricing_with_two_homes_runs_in_containers(
    engine: DockerEngine, image: BuildResult, work: Path, tmp_path: Path
) -> None:
    shutil.copytree(work / "app_specific_files", tmp_path / "app_specific_files")
    (tmp_path / "nodes.txt").write_text((work / "nodes.txt").read_text() + "home2 localhost\n")
    config = (work / "jupiter_config.ini").read_text()
    (tmp_path / "jupiter_config.ini").write_text(
        config.replace("PRICING = nonpricing", "PRICING = event").replace("PRICE_OPTION = sum", "PRICE_OPTION = max")
    )
    workspace = load_workspace(tmp_path / "jupiter_config.ini", tmp_path / "nodes.txt", None)
    assert workspace.config.pricing == "event"
    summary = run(resolve_spec(workspace), frames=4)
    assert (summary.frames, summary.done, summary.failed) == (4, 4, 0)
    assert summary.per_home == {"home": 2, "home2": 2}
    root = summary.output_dir.parent.parent
    for home in ("home", "home2"):
        for line in (root / home / "events.jsonl").read_text().splitlines():
            event = json.loads(line)
            if event["type"] != "frame_submitted":
                continue
            sample = workspace.app.path / "sample_input" / event["input"]
            report = root / home / "output" / event["frame"] / f"{sample.stem}_report.txt"
            assert report.read_text() == expected_report(sample)
        header = (root / home / "runtime_tasks.txt").read_text().splitlines()[0]
        assert header.startswith("Worker_node Task_name")
    assert _leftovers(engine, summary.deployment) == []
