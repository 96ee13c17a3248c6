"""The data plane refuses what it must and retries what it can (a real agent, in-process)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from jupiter.backends.local import free_ports
from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import NodeAddress, Plan, TaskSpec
from jupiter.runtime.agent import Agent
from jupiter.runtime.peers import Peer, TransferFailed
from jupiter.runtime.protocol import Outgoing, checksum, encode, safe_name

pytestmark = pytest.mark.processes

TOKEN = "s3cret-token"
SCRIPT = (
    "import os\n\ndef task(f, i, o):\n    p = os.path.join(o, 'r_' + f)\n    open(p, 'w').write('x')\n    return [p]\n"
)


def _plan(tmp_path: Path) -> Plan:
    script = tmp_path / "work.py"
    script.write_text(SCRIPT)
    ports = free_ports(4)
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
    )


def _with_agent(tmp_path: Path, body: Callable[[Agent, Peer], Coroutine[Any, Any, None]]) -> None:
    plan = _plan(tmp_path)

    async def main() -> None:
        agent = Agent(plan, "node1", TOKEN, DeploymentLayout(tmp_path / "dep"))
        await agent.start()
        # Keep the agent from running the task so the inbox can be inspected.
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


def _inbox(tmp_path: Path) -> Path:
    return tmp_path / "dep" / "nodes" / "node1" / "inbox" / "work" / "d1"


def test_file_is_stored_atomically_and_once(tmp_path: Path) -> None:
    async def body(agent: Agent, peer: Peer) -> None:
        assert await peer.send(_header(), b"hello") == 1
        assert await peer.send(_header(), b"hello") == 1  # a re-send of the same slot
        assert agent.inbox.queues["work"].qsize() == 1

    _with_agent(tmp_path, body)
    inbox = _inbox(tmp_path)
    assert sorted(p.name for p in inbox.iterdir()) == [".slot@f000001-abc@home@0@in.txt", "in.txt"]
    assert (inbox / "in.txt").read_bytes() == b"hello"


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ({"token": "wrong"}, "unauthenticated: missing or wrong deployment token"),
        ({"token": None}, "unauthenticated: missing or wrong deployment token"),
        (
            {"name": "../../etc/passwd"},
            "unsafe file name '../../etc/passwd': plain names only, no folders or '..'",
        ),
        ({"name": "a/b.txt"}, "unsafe file name 'a/b.txt': plain names only, no folders or '..'"),
        ({"name": ".hidden"}, "unsafe file name '.hidden': plain names only, no folders or '..'"),
        ({"task": "other"}, "task other is not on this node (node1)"),
    ],
)
def test_refused_for_good(tmp_path: Path, header: dict[str, Any], error: str) -> None:
    async def body(agent: Agent, peer: Peer) -> None:
        with pytest.raises(TransferFailed) as caught:
            await peer.send(_header(**header), b"evil")
        assert str(caught.value) == f"node1 refused the message: {error}"

    _with_agent(tmp_path, body)
    assert not (_inbox(tmp_path) / "in.txt").exists()


def test_corrupted_payload_is_refused_then_retried(tmp_path: Path) -> None:
    answers: list[dict[str, Any]] = []

    class FlakyPeer(Peer):
        """Flips one payload byte on the first attempt, as a bad link would."""

        async def _exchange(self, connection: Any, parts: list[Outgoing], head: bytes) -> dict[str, Any]:
            if not answers:
                data = parts[0].data or b""
                parts = [dataclasses.replace(parts[0], data=data[:-1] + bytes([data[-1] ^ 0xFF]))]
            answer = await super()._exchange(connection, parts, head)
            answers.append(answer)
            return answer

    async def body(agent: Agent, peer: Peer) -> None:
        flaky = FlakyPeer("node1", peer.host, peer.port, retries=3, first_backoff=0.01)
        assert await flaky.send(_header(), b"payload") == 2
        await flaky.close()

    _with_agent(tmp_path, body)
    assert answers == [
        {"ok": False, "error": "checksum mismatch: payload corrupted in transit", "refusal": "retry"},
        {"ok": True},
    ]
    assert (_inbox(tmp_path) / "in.txt").read_bytes() == b"payload"


def test_garbage_on_the_wire_is_refused(tmp_path: Path) -> None:
    async def body(agent: Agent, peer: Peer) -> None:
        reader, writer = await asyncio.open_connection(peer.host, peer.port)
        writer.write(b"\x00\x00\x00\x05notjs")
        await writer.drain()
        assert json.loads(await reader.readline()) == {
            "ok": False,
            "error": "protocol error: header is not JSON",
            "refusal": "refused",
        }
        writer.close()

    _with_agent(tmp_path, body)


def test_unreachable_peer_fails_after_retries() -> None:
    port = free_ports(1)[0]

    async def main() -> None:
        peer = Peer("ghost", "127.0.0.1", port, retries=2, first_backoff=0.01)
        with pytest.raises(TransferFailed) as caught:
            await peer.send(_header(), b"x")
        assert str(caught.value).startswith("ghost unreachable after 3 attempts: ConnectionRefusedError")

    asyncio.run(main())


def test_restart_recovers_inbox_and_outbox(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    root = tmp_path / "dep"
    node = root / "nodes" / "node1"
    inbox = node / "inbox" / "work" / "d7"
    inbox.mkdir(parents=True)
    (inbox / ".slot@f000002-xyz@home@0@in.txt").write_text("waiting")
    (inbox / "in.txt").hardlink_to(inbox / ".slot@f000002-xyz@home@0@in.txt")
    (inbox / ".slot@f000002-xyz@src@0@unfinished.txt").write_text("half")
    (inbox / ".tmp-half-written").write_text("partial")
    payload = tmp_path / "payload.txt"
    payload.write_text("unsent")
    sent = {"ident": "r0", "dest": "home", "header": _header(task="home"), "payload": str(payload), "release": None}
    unsent = dict(sent, ident="r1")
    (node / "outbox.log").write_text("+" + json.dumps(sent) + "\n+" + json.dumps(unsent) + "\n-r0\n+{broken\n")
    agent = Agent(plan, "node1", TOKEN, DeploymentLayout(root))

    async def main() -> None:
        agent.recover()
        assert agent.inbox.queues["work"].qsize() == 1
        assert agent.outbox.queues["home"].qsize() == 1
        assert agent.outbox.queues["home"].get_nowait().ident == "r1"
        assert not (inbox / ".tmp-half-written").exists()
        assert not (inbox / ".slot@f000002-xyz@src@0@unfinished.txt").exists()
        assert (node / "outbox.log").read_text() == "+" + json.dumps(unsent, separators=(",", ":")) + "\n"
        for task in agent.background:
            task.cancel()
        await asyncio.gather(*agent.background, return_exceptions=True)
        agent.inbox.close()
        agent.outbox.journal.close()

    asyncio.run(main())


def test_safe_names() -> None:
    assert safe_name("traffic_1.txt")
    assert safe_name("a-b+c=d.e")
    for bad in ("", "..", "../x", "a/b", ".x", "a..b", "x" * 201, "a b", "a\x00b"):
        assert not safe_name(bad), bad


def test_encode_fills_size_and_checksum() -> None:
    raw = encode({"kind": "ping"}, b"abc")
    length = int.from_bytes(raw[:4], "big")
    header = json.loads(raw[4 : 4 + length])
    assert header == {"kind": "ping", "size": 3, "sum": checksum(b"abc")}
    assert raw[4 + length :] == b"abc"
