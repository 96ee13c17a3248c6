"""Pricing CIRCE's controller and router logic in one agent (no processes)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from jupiter.mapping import Problem
from jupiter.mapping.price_function import NodeReport
from jupiter.model.config import PricingSettings
from jupiter.model.plan import NodeAddress, Plan, PlanPricing, TaskSpec
from jupiter.runtime.counters import TaskCounters
from jupiter.runtime.extensions.pricing import Pricing
from jupiter.runtime.protocol import Refusal, RefusalKind
from jupiter.runtime.spool import OutboxRecord

NODES = ("n1", "n2", "n3")


def _plan(scheme: str) -> Plan:
    tasks = {
        "a": TaskSpec("a", 1, True, ("b", "c"), (), "a.py"),
        "b": TaskSpec("b", 1, True, ("j",), ("a",), "b.py"),
        "c": TaskSpec("c", 1, True, ("j",), ("a",), "c.py"),
        "j": TaskSpec("j", 2, True, ("home",), ("b", "c"), "j.py"),
    }
    nodes = {"home": NodeAddress("home", "home", "127.0.0.1", 1, 2)}
    nodes.update({name: NodeAddress(name, "compute", "127.0.0.1", 3 + i, 10 + i) for i, name in enumerate(NODES)})
    problem = Problem(("a", "b", "c", "j"), NODES, [[0.1, 0.1, 0.1]] * 4)
    return Plan(
        deployment="d",
        app_name="x",
        app_path="/x",
        tasks=tasks,
        order=("a", "b", "c", "j"),
        mapping={"a": "n1", "b": "n2", "c": "n3", "j": "n1"},
        nodes=nodes,
        ingress=("a",),
        home="home",
        pricing=PlanPricing(scheme=scheme, aggregate="sum", settings=PricingSettings(), problem=problem),
        homes=("home",),
    )


def _service(scheme: str = "event", node: str = "n1") -> Pricing:
    plan = _plan(scheme)
    counters = {task: TaskCounters() for task in plan.order}
    services: Any = SimpleNamespace(plan=plan, node=node, token="t", counters=lambda: counters)
    service = Pricing(services)
    for name in NODES:
        service.on_report(NodeReport(name, time.time()))
    return service


def test_decisions_are_cached_per_frame_and_a_burst_spreads() -> None:
    service = _service()
    chosen = [service.decide("b", f"f{i}", "n1", 0.0) for i in range(9)]
    assert Counter(chosen) == Counter({"n1": 3, "n2": 3, "n3": 3})  # the virtual queue fills up evenly
    assert [service.decide("b", f"f{i}", "n1", 0.0) for i in range(9)] == chosen  # retries: same node


def test_the_mapped_node_keeps_its_task_within_the_margin() -> None:
    service = _service()
    service.on_report(NodeReport("n2", time.time(), backlog=0.02))  # a little busier: 20% dearer
    assert service.decide("b", "f1", "n1", 0.0) == "n2"
    service.on_report(NodeReport("n2", time.time(), backlog=0.05))  # 50% dearer: moved
    assert service.decide("b", "f2", "n1", 0.0) == "n1"


def test_excluded_and_dead_nodes_are_avoided_even_for_a_cached_frame() -> None:
    service = _service()
    first = service.decide("a", "f1", "home", 0.0)
    assert first == "n1"
    assert service.decide("a", "f1", "home", 0.0, exclude={"n1"}) != "n1"
    service.dead = {"n1", "n2"}
    assert service.decide("a", "f2", "home", 0.0) == "n3"
    service.dead = set(NODES)
    assert service.decide("a", "f3", "home", 0.0) is None


def test_siblings_placed_by_one_holder_spread() -> None:
    service = _service()
    assert service.decide("b", "f1", "n1", 0.0, pending={"n2": 0.2}) != "n2"


def test_stale_reports_are_not_used() -> None:
    service = _service()
    service.reports["n1"] = NodeReport("n1", time.time() - 5)
    assert service.decide("a", "f1", "home", 0.0) != "n1"


def test_push_choices_agree_between_the_parents_of_a_fan_in_task() -> None:
    left, right = _service("push", "n2"), _service("push", "n3")
    shares = [("n1", 0.5), ("n2", 0.3), ("n3", 0.2)]
    now = time.time()
    for holder in (left, right):
        holder.on_choice(now + 1, {"j": [("n1", 1.0)]})
        holder.on_choice(now + 2, {"j": shares, "b": shares})
    frames = [f"f{i:04d}" for i in range(300)]
    picked = [left.pushed_choice("j", frame, now + 2.5) for frame in frames]
    assert picked == [right.pushed_choice("j", frame, now + 2.5) for frame in frames]
    counts = Counter(picked)
    assert 120 < counts["n1"] < 180 and 60 < counts["n2"] < 120 and 30 < counts["n3"] < 90
    assert {left.pushed_choice("j", frame, now + 1.5) for frame in frames} == {"n1"}  # born before the new choice
    assert all(left.pushed_choice("b", frame, now + 2.5, avoid={"n1", "n2"}) == "n3" for frame in frames[:20])
    left.dead = {"n1"}
    assert "n1" not in {left.pushed_choice("j", frame, now + 2.5) for frame in frames}


def test_a_frame_keeps_its_push_choice_however_many_choices_follow() -> None:
    """Regression: a fan-in frame waiting while dozens of pushes arrive must still be routed as its first parent was."""
    holder = _service("push", "n2")
    now = time.time()
    holder.on_choice(now + 0.4, {"j": [("n1", 1.0)]})
    first = holder.pushed_choice("j", "f1", now + 0.5)
    for push in range(1, 200):
        holder.on_choice(now + 0.4 + push * 0.2, {"j": [("n3", 1.0)]})
    assert first == holder.pushed_choice("j", "f1", now + 0.5) == "n1"


class _Relay:
    """A peer that hands requests straight to another agent's pricing service (our `Peer.ask` contract)."""

    def __init__(self, service: Pricing) -> None:
        self.service = service
        self.asked: list[dict[str, Any]] = []

    async def ask(self, header: dict[str, Any], payload: bytes, timeout: float, attempts: int = 2) -> dict[str, Any]:
        self.asked.append(header)
        answer: dict[str, Any] = json.loads(self.service.handle(str(header["kind"]), header, payload))
        return answer


def test_fan_in_parents_agree_when_a_push_never_reached_one_of_them() -> None:
    """Regression: a lost push made the two parents of `j` send one frame's inputs to different nodes."""
    controller, left, right = _service("push", "n1"), _service("push", "n2"), _service("push", "n3")
    now = time.time()
    controller.on_choice(now - 1, {"j": [("n1", 1.0)], "b": [("n1", 1.0)]})
    controller.on_choice(now - 0.5, {"j": [("n2", 0.5), ("n3", 0.5)], "b": [("n3", 1.0)]})
    left.on_choice(now - 1, {"j": [("n1", 1.0)], "b": [("n1", 1.0)]})  # the second push was lost on its way here
    right.on_choice(now - 1, {"j": [("n1", 1.0)]})
    right.on_choice(now - 0.5, {"j": [("n3", 1.0)]})  # and this holder's copy is not the controller's either
    relay = _Relay(controller)
    for holder in (left, right):
        holder.peers["n1"] = relay  # type: ignore[assignment]

    async def route(holder: Pricing, task: str, frame: str) -> str:
        return await holder.destination(task, frame, now, 100.0)

    frames = [f"f{i:03d}" for i in range(40)]
    from_left = [asyncio.run(route(left, "j", frame)) for frame in frames]
    from_right = [asyncio.run(route(right, "j", frame)) for frame in frames]
    assert from_left == from_right == [controller.pushed_choice("j", frame, now) for frame in frames]
    assert set(from_left) == {"n2", "n3"}
    assert all(header["born"] == now for header in relay.asked)
    # A task with one input is routed by its only holder from its own copy, with no request.
    asked = len(relay.asked)
    assert asyncio.run(route(left, "b", "f000")) == "n1"
    assert len(relay.asked) == asked


def test_push_shares_favour_cheaper_nodes_and_keep_the_mapped_one_when_close() -> None:
    service = _service("push", "n2")
    assert service.push_shares("b") == [("n2", 1.0)]
    service.on_report(NodeReport("n2", time.time(), backlog=1.0))
    # The choice applies two intervals (0.4 s) on: n3's 0.43 s of backlog will be 0.03 s by then.
    service.on_report(NodeReport("n3", time.time(), backlog=0.43))
    shares = dict(service.push_shares("b"))
    assert set(shares) == {"n1", "n3"} and shares["n1"] > shares["n3"]
    assert sum(shares.values()) == pytest.approx(1.0)
    # A backlog worked off before the choice applies does not count; n2's 1 s still does.
    service.on_report(NodeReport("n3", time.time(), backlog=0.3))
    assert service.push_shares("b") == [("n1", 0.5), ("n3", 0.5)]


@pytest.mark.parametrize(
    ("kind", "header", "body", "error"),
    [
        ("price", {}, {"node": "n1", "time": "now"}, "time must be a number"),
        ("choice", {}, {"from": 1.0, "choices": {"a": [["nowhere", 1.0]]}}, "unknown task or node"),
        ("choice", {}, {"from": 1.0, "choices": {"zz": [["n1", 1.0]]}}, "unknown task or node"),
        ("route", {"task": "zz", "frame": "f1", "holder": "n1"}, {}, "unknown task"),
        ("dead", {}, {"dead": "n1"}, "dead list expected"),
    ],
)
def test_malformed_pricing_messages_are_refused(
    kind: str, header: dict[str, Any], body: dict[str, Any], error: str
) -> None:
    answer = json.loads(_service().handle(kind, header, json.dumps(body).encode()))
    assert answer["ok"] is False and error in answer["error"]


def test_route_answers_with_a_node() -> None:
    service = _service()
    answer = json.loads(service.handle("route", {"task": "b", "frame": "f1", "holder": "n1", "size": 10}, b""))
    assert answer == {"ok": True, "node": "n2"}


def _record(frame: str, task: str, dest: str, payload: str) -> OutboxRecord:
    header = {"kind": "file", "frame": frame, "task": task, "src": "a", "idx": 0, "name": "x", "born": 1.0}
    return OutboxRecord(f"r-{frame}-{task}", dest, header, payload, "/work/d1")


def test_a_node_that_refused_a_file_is_avoided_and_the_file_sent_elsewhere(tmp_path: Any) -> None:
    """The reroute path: a refusal that is not backpressure sends the file to another node, once."""
    service = _service(node="n2")  # b's controller: it decides without asking anyone
    delivered: list[OutboxRecord] = []
    service.services.new_id = lambda: "again"  # type: ignore[method-assign]
    service.services.deliver = delivered.extend  # type: ignore[method-assign,assignment]
    payload = tmp_path / "x"
    payload.write_bytes(b"x" * 10)
    refused = _record("f1", "b", "n2", str(payload))
    busy = _record("f2", "b", "n2", str(payload))
    home = _record("f3", "home", "n2", str(payload))
    fine = _record("f4", "b", "n2", str(payload))
    errors = {
        refused.ident: Refusal(RefusalKind.UNREACHABLE, "n2 unreachable after 21 attempts"),
        busy.ident: Refusal.full("b holds 4 frames"),
        home.ident: Refusal.refused("home went away"),
    }
    kept = asyncio.run(service.reroute("n2", [refused, busy, home, fine], errors))
    # Backpressure waits for the same node; a final output keeps its home; a delivered file stays settled.
    assert kept == [busy, home, fine]
    assert [(record.ident, record.dest, record.release) for record in delivered] == [("again", "n1", "/work/d1")]
    assert delivered[0].header == refused.header
    assert service.decisions[("b", "f1")] == "n1"


def test_push_spreads_single_input_frames_over_the_shares(tmp_path: Any) -> None:
    """Push mode: frames of a one-input task follow the pushed shares, with no request per frame."""
    service = _service("push", "n1")
    now = time.time()
    service.on_choice(now - 1, {"b": [("n1", 0.5), ("n2", 0.3), ("n3", 0.2)]})
    payload = tmp_path / "x"
    payload.write_bytes(b"x")
    records = [_record(f"f{i:04d}", "b", "n2", str(payload)) for i in range(400)]
    for record in records:
        record.header["born"] = now
    placed = asyncio.run(service.place(records))
    counts = Counter(record.dest for record in placed)
    # A hash of the frame id picks the share: 400 frames land about 200/120/80 (binomial, far inside these bounds).
    assert 160 < counts["n1"] < 240 and 85 < counts["n2"] < 155 and 50 < counts["n3"] < 110
    assert service.asked == 0
    # The same frame always goes to the same node.
    assert [record.dest for record in asyncio.run(service.place(records))] == [record.dest for record in placed]
