"""The data plane against untrusted peers and big files: limits, timeouts, grammars, streaming (a real agent).

Each test talks to one agent's data port the way a peer (or an attacker)
would, with raw sockets where a well-behaved `Peer` would never go. The
agent's limits are set small in the plan so that every limit is reached
in milliseconds; nothing here measures time, every wait is for an event
(an answer, the end of the stream) with a generous deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import struct
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from jupiter.backends.local import free_ports
from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import Limits, NodeAddress, Plan, TaskSpec
from jupiter.runtime.agent import Agent
from jupiter.runtime.peers import Peer, TransferFailed
from jupiter.runtime.protocol import Outgoing, RefusalKind, checksum, file_checksum, frame_bytes
from jupiter.runtime.spool import SpaceWatch

pytestmark = [pytest.mark.processes, pytest.mark.adversarial]

TOKEN = "s3cret-token"
LIMITS = Limits(
    max_header=4096,
    max_payload=16 * 1024**2,
    max_message=64 * 1024,
    idle_timeout=0.5,
    read_timeout=0.5,
    max_connections=4,
)
SCRIPT = "def task(f, i, o):\n    return []\n"
DEADLINE = 20.0
"""Seconds any single wait of these tests may take on a very busy machine (they take milliseconds)."""


def _plan(tmp_path: Path, limits: Limits = LIMITS) -> Plan:
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
        retries=2,
        limits=limits,
    )


def _with_agent(
    tmp_path: Path, body: Callable[[Agent, int], Coroutine[Any, Any, None]], limits: Limits = LIMITS
) -> None:
    plan = _plan(tmp_path, limits)

    async def main() -> None:
        agent = Agent(plan, "node1", TOKEN, DeploymentLayout(tmp_path / "dep"))
        await agent.start()
        # Keep the agent from running its task so that the inbox can be inspected.
        for task in agent.background:
            task.cancel()
        agent.background.clear()
        try:
            await body(agent, plan.nodes["node1"].data_port)
        finally:
            await agent.stop()

    asyncio.run(main())


def _header(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "file",
        "token": TOKEN,
        "frame": "f000001-abcdef",
        "task": "work",
        "src": "home",
        "idx": 0,
        "name": "in.bin",
        **extra,
    }


async def _answer(reader: asyncio.StreamReader) -> dict[str, Any]:
    line = await asyncio.wait_for(reader.readline(), DEADLINE)
    answer: dict[str, Any] = json.loads(line)
    return answer


async def _closed(reader: asyncio.StreamReader) -> bool:
    """Whether the agent closed the connection (the end of the stream comes, with nothing more)."""
    return await asyncio.wait_for(reader.read(1), DEADLINE) == b""


def _inbox_files(tmp_path: Path) -> list[str]:
    inbox = tmp_path / "dep" / "nodes" / "node1" / "inbox" / "work"
    return sorted(path.name for path in inbox.rglob("*") if path.is_file()) if inbox.exists() else []


def test_an_unauthenticated_peer_is_answered_and_cut_off_before_its_payload(tmp_path: Path) -> None:
    async def body(agent: Agent, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # 200 MB announced, none of it sent: the agent must not wait for (or read) any of it.
        writer.write(frame_bytes(_header(token="guess", size=200 * 1024**2, sum="00000000")))
        await writer.drain()
        answer = await _answer(reader)
        assert answer == {
            "ok": False,
            "error": "unauthenticated: missing or wrong deployment token",
            "refusal": "refused",
        }
        assert await _closed(reader)
        writer.close()

    _with_agent(tmp_path, body)
    assert _inbox_files(tmp_path) == []


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (struct.pack(">I", 5000) + b"{", "protocol error: header length 5000 out of range (at most 4096)"),
        (struct.pack(">I", 0), "protocol error: header length 0 out of range (at most 4096)"),
        (struct.pack(">I", 5) + b"notjs", "protocol error: header is not JSON"),
        (struct.pack(">I", 2) + b"[]", "protocol error: header is not an object"),
    ],
)
def test_a_header_that_is_not_one_within_the_limits_is_refused_and_the_connection_closed(
    tmp_path: Path, raw: bytes, error: str
) -> None:
    async def body(agent: Agent, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        await writer.drain()
        assert await _answer(reader) == {"ok": False, "error": error, "refusal": "refused"}
        assert await _closed(reader)
        writer.close()

    _with_agent(tmp_path, body)


def test_a_payload_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    async def body(agent: Agent, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame_bytes(_header(size=LIMITS.max_payload + 1, sum="00000000")))
        await writer.drain()
        answer = await _answer(reader)
        assert (
            answer["error"]
            == f"protocol error: payload of {LIMITS.max_payload + 1} bytes is over the limit of {LIMITS.max_payload}"
        )
        assert await _closed(reader)
        writer.close()

    _with_agent(tmp_path, body)
    assert _inbox_files(tmp_path) == []


def test_an_idle_connection_is_closed(tmp_path: Path) -> None:
    async def body(agent: Agent, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await _closed(reader)  # nothing sent: closed after IDLE_TIMEOUT (0.5 s here)
        writer.close()
        assert agent.connections == 0

    _with_agent(tmp_path, body)


def test_connections_past_the_limit_are_closed_at_once_and_the_others_still_served(tmp_path: Path) -> None:
    limits = dataclasses.replace(LIMITS, idle_timeout=60.0)

    async def body(agent: Agent, port: int) -> None:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(limits.max_connections)]
        for _ in range(100):  # until the agent has taken all four
            if agent.connections == limits.max_connections:
                break
            await asyncio.sleep(0.01)
        assert agent.connections == limits.max_connections
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await _closed(reader)
        writer.close()
        # A connection the agent holds still works.
        first_reader, first_writer = held[0]
        first_writer.write(frame_bytes(_header(kind="ping", size=0, sum=checksum(b""))))
        await first_writer.drain()
        assert await _answer(first_reader) == {"ok": True}
        for _, held_writer in held:
            held_writer.close()

    _with_agent(tmp_path, body, limits)


def test_a_stalled_payload_loses_the_connection_leaves_no_half_file_and_a_retry_succeeds(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024**2)  # big enough to be streamed in chunks

    async def body(agent: Agent, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame_bytes(_header(size=len(data), sum=checksum(data))) + data[: len(data) // 2])
        await writer.drain()
        answer = await _answer(reader)  # the other half never comes: READ_TIMEOUT
        assert answer["error"] == "protocol error: payload stalled for 0.5 s"
        assert await _closed(reader)
        writer.close()
        assert _inbox_files(tmp_path) == []
        peer = Peer("node1", "127.0.0.1", port, retries=1)
        assert await peer.send(_header(), data) == 1
        await peer.close()
        assert agent.inbox.queues["work"].qsize() == 1

    _with_agent(tmp_path, body)
    inbox = tmp_path / "dep" / "nodes" / "node1" / "inbox" / "work"
    (stored,) = [path for path in inbox.rglob("in.bin")]
    assert stored.read_bytes() == data


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"src": "../up"}, "bad src '../up': a task name"),
        ({"src": "a@b"}, "bad src 'a@b': a task name"),
        ({"task": "w/x"}, "bad task 'w/x': a task name"),
        ({"idx": "0"}, "bad output index '0'"),
        ({"idx": -1}, "bad output index '-1'"),
        ({"idx": True}, "bad output index 'True'"),
        ({"frame": "f\u0661\u0662\u0663-abcdef"}, "bad frame id 'f\u0661\u0662\u0663-abcdef'"),
        ({"frame": "zzz/.."}, "bad frame id 'zzz/..'"),
        ({"home": "home\n"}, "bad home 'home\\n'"),
        ({"name": "a\u00e9.txt"}, "unsafe file name 'a\u00e9.txt': plain names only, no folders or '..'"),
        ({"name": "a.txt\n"}, "unsafe file name 'a.txt\\n': plain names only, no folders or '..'"),
    ],
)
def test_header_fields_that_reach_file_names_follow_strict_grammars(
    tmp_path: Path, fields: dict[str, Any], error: str
) -> None:
    async def body(agent: Agent, port: int) -> None:
        peer = Peer("node1", "127.0.0.1", port, retries=1)
        with pytest.raises(TransferFailed) as caught:
            await peer.send(_header(**fields), b"x")
        assert str(caught.value) == f"node1 refused the message: {error}"
        await peer.close()

    _with_agent(tmp_path, body)
    assert _inbox_files(tmp_path) == []


def test_a_big_file_is_streamed_from_its_file_and_verified(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(9 * 1024**2 + 17))
    size, digest = file_checksum(str(source))

    async def body(agent: Agent, port: int) -> None:
        peer = Peer("node1", "127.0.0.1", port, retries=1)
        part = Outgoing(_header(name="big.bin"), path=str(source), size=size, sum=digest)
        corrupt = Outgoing(_header(name="big.bin", frame="f000002-abcdef"), path=str(source), size=size, sum="deadbeef")
        outcome, attempts = await peer.send_batch([part, corrupt], TOKEN)
        await peer.close()
        assert outcome[0] is None
        assert outcome[1] is not None and outcome[1].kind is RefusalKind.UNREACHABLE
        assert "checksum mismatch" in outcome[1].reason
        assert attempts == 2  # the corrupt one was tried again, then given up

    _with_agent(tmp_path, body)
    inbox = tmp_path / "dep" / "nodes" / "node1" / "inbox" / "work"
    (stored,) = [path for path in inbox.rglob("big.bin")]
    assert file_checksum(str(stored)) == (size, digest)


def test_what_an_agent_remembers_of_finished_frames_is_forgotten_once_home_has_them(tmp_path: Path) -> None:
    async def body(agent: Agent, port: int) -> None:
        inbox = agent.inbox
        for number in range(1, 201):
            frame = f"f{number:06d}-abcdef"
            assert inbox.accept(_header(frame=frame), b"x") is None
            inbox.counters["work"].queued -= 1
            inbox.finish("work", frame)
        assert inbox.remembered() == 200
        # Home's oldest frame in flight is number 150: every earlier one is over.
        inbox.forget_before("home", 150)
        assert inbox.remembered() == 51
        # A late re-send of an input of an old frame is acknowledged and dropped.
        assert inbox.accept(_header(frame="f000003-abcdef"), b"x") is None
        assert ("work", "f000003-abcdef") not in inbox.frames
        # One of a frame still remembered is recognised as done.
        assert inbox.accept(_header(frame="f000170-abcdef"), b"x") is None
        assert ("work", "f000170-abcdef") not in inbox.frames

    _with_agent(tmp_path, body)
    # The log is compacted on the next start: only what is still remembered.
    assert len((tmp_path / "dep" / "nodes" / "node1" / "done.log").read_text().splitlines()) == 200
    plan = _plan(tmp_path)
    agent = Agent(plan, "node1", TOKEN, DeploymentLayout(tmp_path / "dep"))
    agent.inbox.recover()
    assert agent.inbox.remembered() == 200  # home's watermark arrives again with the next events
    agent.inbox.close()


def test_a_full_spool_holds_new_frames_back_and_takes_the_rest_of_a_frame_it_holds(tmp_path: Path) -> None:
    async def body(agent: Agent, port: int) -> None:
        inbox = agent.inbox
        full = {"now": False}
        inbox.space_low = lambda new_frame, size: "spool full: 1 MiB free" if full["now"] else None
        two = dataclasses.replace(agent.plan.tasks["work"], num_inputs=2)
        agent._plan = dataclasses.replace(agent.plan, tasks={"work": two})
        assert inbox.accept(_header(frame="f000001-abcdef", idx=0), b"a") is None
        full["now"] = True
        refused = inbox.accept(_header(frame="f000002-abcdef", idx=0), b"b")
        assert refused is not None and refused.busy and refused.reason.startswith("spool full")
        # The frame it already holds still gets its second input, and is ready.
        assert inbox.accept(_header(frame="f000001-abcdef", idx=1), b"c") is None
        assert inbox.queues["work"].qsize() == 1

    _with_agent(tmp_path, body)


def test_the_spool_watch_keeps_new_frames_out_first_and_counts_a_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below SPOOL_FREE no new frame enters; frames in the pipeline move on until a quarter of it is left."""
    free = {"bytes": 100 * 1024**2}
    stats = type("Stats", (), {"f_frsize": 1, "f_bavail": property(lambda self: free["bytes"])})
    monkeypatch.setattr("jupiter.runtime.spool.os.statvfs", lambda folder: stats())
    now = {"t": 0.0}
    watch = SpaceWatch("/spool", 64 * 1024**2, clock=lambda: now["t"])
    assert watch.low(True, 30 * 1024**2) is None
    # Within one look (0.2 s) the 30 MiB just taken count: another 10 MiB of a new frame would cross the mark.
    reason = watch.low(True, 10 * 1024**2)
    assert reason is not None and "below SPOOL_FREE (64 MiB)" in reason
    # A frame already in the pipeline still moves.
    assert watch.low(False, 10 * 1024**2) is None
    now["t"] += 1
    free["bytes"] = 20 * 1024**2
    assert watch.low(False, 1024**2) is None
    free["bytes"] = 15 * 1024**2
    now["t"] += 1
    reason = watch.low(False, 1024**2)
    assert reason is not None and "quarter of SPOOL_FREE" in reason
    # No watermark: never full.
    assert SpaceWatch("/spool", 0).low(True, 10**12) is None
