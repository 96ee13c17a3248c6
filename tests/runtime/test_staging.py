"""Another transfer method (`[CONFIG] TRANSFER`): files are staged by it, messages only name them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from jupiter.backends.local import free_ports
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import NodeAddress, Plan, PlanTransfer, TaskSpec
from jupiter.model.workspace import load_workspace
from jupiter.profiling.interface import TransferSettings
from jupiter.runtime.agent import Agent
from jupiter.runtime.peers import Peer, TransferFailed
from jupiter.runtime.protocol import Outgoing, Refusal, checksum
from jupiter.runtime.spool import OutboxRecord
from jupiter.runtime.staging import Staging
from jupiter.service.deploy import deploy, teardown
from jupiter.service.record import Deployment
from jupiter.service.run import flush_events, home_frames, submit_data
from tests.runtime.conftest import expected_join
from tests.sshd import USER, ssh_server

pytestmark = pytest.mark.processes

TOKEN = "s3cret-token"
SCRIPT = "def task(f, i, o):\n    return []\n"
PLUGIN = "tests.runtime.test_staging:LocalCopy"


class LocalCopy:
    """A user's transfer method: a plain copy (every node's folder is on this machine)."""

    def __init__(self, settings: TransferSettings) -> None:
        self.settings = settings
        self.copies: list[str] = []

    def data_transfer(self, host: str, user: str, source: Path, destination: str) -> None:
        shutil.copyfile(source, destination)
        self.copies.append(destination)


class CorruptsFirstCopy(LocalCopy):
    """Flips a byte of its first copy, as a bad disk or link would."""

    def data_transfer(self, host: str, user: str, source: Path, destination: str) -> None:
        super().data_transfer(host, user, source, destination)
        if len(self.copies) == 1:
            data = bytearray(Path(destination).read_bytes())
            data[0] ^= 0xFF
            Path(destination).write_bytes(bytes(data))


def _plan(tmp_path: Path, transfer: str = PLUGIN) -> Plan:
    script = tmp_path / "work.py"
    script.write_text(SCRIPT)
    ports = free_ports(4)
    staging = {"home": "nodes/home/staging", "node1": "nodes/node1/staging"}
    return Plan(
        deployment="test",
        app_name="t",
        app_path=str(tmp_path),
        tasks={"work": TaskSpec("work", 1, True, ("home",), (), str(script))},
        order=("work",),
        mapping={"work": "node1"},
        nodes={
            "home": NodeAddress("home", "home", "127.0.0.1", ports[0], ports[1]),
            "node1": NodeAddress("node1", "compute", "127.0.0.1", ports[2], ports[3]),
        },
        ingress=("work",),
        home="home",
        retries=3,
        transfer=transfer,
        transfer_settings=None
        if transfer == "http"
        else PlanTransfer(user="u", port=22, key_file=None, known_hosts=None, staging=staging),
    )


def _with_agent(
    tmp_path: Path,
    body: Callable[[Agent, Peer], Coroutine[Any, Any, None]],
    transfer: str = PLUGIN,
    queue_size: int = -1,
) -> None:
    """Run `body` against node1's agent (tasks not running, so its inbox can be inspected)."""
    plan = dataclasses.replace(_plan(tmp_path, transfer), queue_size=queue_size)

    async def main() -> None:
        agent = Agent(plan, "node1", TOKEN, DeploymentLayout(tmp_path / "dep"))
        await agent.start()
        for task in agent.background:
            task.cancel()
        agent.background.clear()
        peer = Peer("node1", "127.0.0.1", plan.nodes["node1"].data_port, retries=3, first_backoff=0.01)
        try:
            await body(agent, peer)
        finally:
            await peer.close()
            await agent.stop()

    asyncio.run(main())


def _header(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "file",
        "token": TOKEN,
        "frame": "f000001-abc",
        "task": "work",
        "src": "home",
        "idx": 0,
        "name": "in.txt",
        **extra,
    }


def _staged(name: str, data: bytes) -> dict[str, Any]:
    return _header(staged=name, staged_size=len(data), staged_sum=checksum(data))


def _node1(tmp_path: Path) -> Path:
    return tmp_path / "dep" / "nodes" / "node1"


def _stored(tmp_path: Path) -> Path:
    return _node1(tmp_path) / "inbox" / "work" / "d1" / "in.txt"


def test_a_corrupt_copy_is_refused_then_copied_again(tmp_path: Path) -> None:
    answers: list[dict[str, Any]] = []
    sizes: list[int] = []

    class WatchedPeer(Peer):
        async def _exchange(self, connection: Any, parts: list[Outgoing], head: bytes) -> dict[str, Any]:
            sizes.append(json.loads(head[4 : 4 + int.from_bytes(head[:4], "big")])["size"])
            answer = await super()._exchange(connection, parts, head)
            answers.append(answer)
            return answer

    source = tmp_path / "in.txt"
    source.write_bytes(b"frame payload")
    method = CorruptsFirstCopy(TransferSettings())

    async def body(agent: Agent, peer: Peer) -> None:
        assert agent.staging is not None
        sender = Staging(PLUGIN, method, "u", {"node1": "127.0.0.1"}, agent.staging.folders, "home")
        watched = WatchedPeer("node1", peer.host, peer.port, retries=3, first_backoff=0.01)
        record = OutboxRecord("home-1-7", "node1", _header(), str(source))
        assert await sender.send_batch(watched, [record], [Outgoing.of(_header(), source.read_bytes())], TOKEN) == [
            None
        ]
        await watched.close()

    _with_agent(tmp_path, body)
    assert answers == [
        {
            "ok": False,
            "error": "checksum mismatch: staged copy home-1-7 is corrupt or incomplete",
            "refusal": "restage",
        },
        {"ok": True},
    ]
    assert sizes == [0, 0]  # the messages carry no payload: the bytes went by the method
    assert method.copies == [str(_node1(tmp_path) / "staging" / "home-1-7")] * 2
    assert _stored(tmp_path).read_bytes() == b"frame payload"
    assert list((_node1(tmp_path) / "staging").iterdir()) == []  # read, then deleted


def test_a_busy_receiver_keeps_the_copy_for_the_next_offer(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(b"frame payload")
    method = LocalCopy(TransferSettings())

    async def body(agent: Agent, peer: Peer) -> None:
        assert agent.staging is not None
        sender = Staging(PLUGIN, method, "u", {"node1": "127.0.0.1"}, agent.staging.folders, "home")
        first = OutboxRecord("home-1-1", "node1", _header(), str(source))
        second = OutboxRecord("home-1-2", "node1", _header(frame="f000002-abc"), str(source))
        assert await sender.send_batch(peer, [first], [Outgoing.of(first.header, b"frame payload")], TOKEN) == [None]
        for _ in range(2):  # the task holds its one frame (TASK_QUEUE_SIZE = 1): the second must wait
            [answer] = await sender.send_batch(peer, [second], [Outgoing.of(second.header, b"frame payload")], TOKEN)
            assert answer == Refusal.full("work holds 1 frames (TASK_QUEUE_SIZE)")
        assert sender.in_place == {"home-1-2"}

    _with_agent(tmp_path, body, queue_size=1)
    assert method.copies == [str(_node1(tmp_path) / "staging" / name) for name in ("home-1-1", "home-1-2")]
    assert [path.name for path in (_node1(tmp_path) / "staging").iterdir()] == ["home-1-2"]


@pytest.mark.parametrize("name", ["../x", "staging/../../x", "/etc/passwd", "sub/x", ".hidden", 7])
def test_a_name_that_is_not_a_plain_file_name_is_refused(tmp_path: Path, name: object) -> None:
    outside = _node1(tmp_path) / "x"

    async def body(agent: Agent, peer: Peer) -> None:
        outside.write_bytes(b"not yours")
        with pytest.raises(TransferFailed) as caught:
            await peer.send(dict(_staged("x", b"not yours"), staged=name), b"")
        assert str(caught.value) == (
            f"node1 refused the message: unsafe file name {name!r} for a staged copy: "
            "plain names only, no folders or '..'"
        )

    _with_agent(tmp_path, body)
    assert not _stored(tmp_path).exists()
    assert outside.read_bytes() == b"not yours"  # neither taken nor deleted


def test_a_link_in_the_staging_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.write_bytes(b"secret")

    async def body(agent: Agent, peer: Peer) -> None:
        (_node1(tmp_path) / "staging" / "link").symlink_to(outside)
        with pytest.raises(TransferFailed, match="unsafe file name 'link' for a staged copy: not a plain file"):
            await peer.send(_staged("link", b"secret"), b"")

    _with_agent(tmp_path, body)
    assert not _stored(tmp_path).exists()
    assert outside.read_bytes() == b"secret"


def test_a_missing_copy_goes_back_to_the_sender_at_once(tmp_path: Path) -> None:
    async def body(agent: Agent, peer: Peer) -> None:
        outcome, attempts = await peer.send_batch([Outgoing.of(_staged("ghost", b"x"), b"")], TOKEN)
        folder = _node1(tmp_path) / "staging"
        assert (outcome, attempts) == ([Refusal.restage(f"no staged copy ghost in {folder}")], 1)

    _with_agent(tmp_path, body)


def test_an_http_deployment_takes_no_staged_copies(tmp_path: Path) -> None:
    async def body(agent: Agent, peer: Peer) -> None:
        with pytest.raises(TransferFailed) as caught:
            await peer.send(_staged("x", b"x"), b"")
        assert str(caught.value) == (
            "node1 refused the message: node1 stages no files: this deployment's TRANSFER is http"
        )

    _with_agent(tmp_path, body, transfer="http")


COPY_PLUGIN = textwrap.dedent(
    '''
    """A user's transfer method: a local copy, logged so the test sees every call."""
    import shutil
    from pathlib import Path


    class LocalCopy:
        def __init__(self, settings):
            self.log = Path(__file__).with_name("copies.log")

        def data_transfer(self, host, user, source, destination):
            shutil.copyfile(source, destination)
            with open(self.log, "a") as log:
                log.write(f"{host} {user} {destination}\\n")
    '''
)
NODES = ("home", "node1", "node2", "node3")
TRANSFERS = 6
"""Per frame of the fan app: home->split, split->upper, split->lower, upper->join, lower->join, join->home."""


def _run_fan(workdir: Path, config: str) -> Deployment:
    """Deploy the fan app with extra config lines, run five frames, check outputs and statistics."""
    path = workdir / "jupiter_config.ini"
    path.write_text(path.read_text().replace("[CONFIG]\n", "[CONFIG]\n" + config, 1))
    deployment = deploy(resolve_spec(load_workspace(path, workdir / "nodes.txt", None)))
    try:
        files = [(f"in{i}.txt", f"frame {i}\n".encode()) for i in range(5)]
        submit_data(deployment, files)
        deadline = time.time() + 60
        while (counts := home_frames(deployment))["done"] + counts["failed"] < 5 and time.time() < deadline:
            time.sleep(0.05)
        flush_events(deployment)
    finally:
        teardown(deployment)
    assert (counts["done"], counts["failed"]) == (5, 0)
    events = [json.loads(line) for line in (deployment.home_dir / "events.jsonl").read_text().splitlines()]
    inputs = {e["frame"]: e["input"] for e in events if e["type"] == "frame_submitted"}
    for frame, name in inputs.items():
        text = dict(files)[name].decode()
        assert (deployment.home_dir / "output" / frame / "joined.txt").read_text() == expected_join(text)
    method = json.loads((deployment.root / "plan.json").read_text())["transfer"]
    for side in ("sender", "receiver"):
        rows = (deployment.home_dir / f"runtime_transfer_{side}.txt").read_text().splitlines()[1:]
        assert len(rows) == 5 * TRANSFERS
        assert {row.split()[1] for row in rows} == {method}
        assert all(row.split()[3] != "-1" for row in rows)
    for node in NODES:  # every copy was taken (and deleted) by its receiver; the deploy's probes stay
        staged = sorted(path.name for path in (deployment.root / "nodes" / node / "staging").iterdir())
        assert staged == sorted(f".probe-from-{other}" for other in NODES if other != node)
    return deployment


def test_the_fan_app_runs_with_a_plugged_in_transfer_method(fan_workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plugins = fan_workdir / "plugins"
    plugins.mkdir()
    (plugins / "localcopy.py").write_text(COPY_PLUGIN)
    monkeypatch.syspath_prepend(str(plugins))  # for the check when the config is read, and for the agents:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")])))
    (fan_workdir / "jupiter_config.ini").write_text(
        (fan_workdir / "jupiter_config.ini").read_text() + "[AUTH]\nUSERNAME = alice\n"
    )
    deployment = _run_fan(fan_workdir, "TRANSFER = localcopy:LocalCopy\n")
    copies = [line.split() for line in (plugins / "copies.log").read_text().splitlines()]
    probes = [copy for copy in copies if "/.probe-from-" in copy[2]]
    assert len(probes) == len(NODES) * (len(NODES) - 1)  # deploy checked every pair of nodes first
    copies = [copy for copy in copies if copy not in probes]
    assert len(copies) == 5 * TRANSFERS
    assert {(host, user) for host, user, _ in copies} == {("127.0.0.1", "alice")}
    folders = {Path(destination).parent for _, _, destination in copies}
    assert folders == {deployment.root / "nodes" / node / "staging" for node in NODES}


def test_the_fan_app_runs_over_scp(fan_workdir: Path) -> None:
    with ssh_server(fan_workdir) as (server, keys):
        (fan_workdir / "jupiter_config.ini").write_text(
            (fan_workdir / "jupiter_config.ini").read_text()
            + f"[PORT]\nSSH_SVC = {server.port}\n[AUTH]\nUSERNAME = {USER}\n"
            + f"KEY_FILE = {keys.key_file.name}\nKNOWN_HOSTS = {keys.known_hosts.name}\n"
        )
        _run_fan(fan_workdir, "TRANSFER = 0\n")
        assert len(server.connections) == len(NODES)  # one kept connection per sending agent


def test_scp_without_a_reachable_ssh_server_fails_the_deploy_in_seconds(fan_workdir: Path) -> None:
    closed = free_ports(1)[0]  # nothing listens there
    config = fan_workdir / "jupiter_config.ini"
    config.write_text(
        config.read_text().replace("[CONFIG]\n", "[CONFIG]\nTRANSFER = scp\n", 1) + f"[PORT]\nSSH_SVC = {closed}\n"
    )
    process = subprocess.run(
        [sys.executable, "-m", "jupiter.cli", "deploy"],
        cwd=fan_workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 1
    last = process.stderr.splitlines()[-1]
    assert re.fullmatch(
        rf"error: TRANSFER = scp: (home|node\d) cannot copy files to (home|node\d): cannot reach \S+@127\.0\.0\.1:"
        rf"{closed} over SSH: .*\(and 11 more pairs of nodes\); start an SSH server on every node that accepts "
        r"\[AUTH\] KEY_FILE for \[AUTH\] USERNAME on \[PORT\] SSH_SVC \(docs/profiling.md\), or set TRANSFER = http",
        last,
    ), last
    # Nothing is left running, and the deployment says it failed.
    listed = subprocess.run(
        [sys.executable, "-m", "jupiter.cli", "list"], cwd=fan_workdir, capture_output=True, text=True, check=True
    )
    assert listed.stdout.splitlines()[1].split()[1] == "failed"
