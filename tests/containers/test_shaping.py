"""Link shaping for the docker backend, without an engine: the tc rules, the agents' testbed, tc's refusals.

The rules are applied for real (in containers) by tests/containers/test_docker.py;
nothing here runs `tc` on this machine.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Sequence

import pytest

from jupiter.backends.docker import agents_plan, shaping_rules, tc_shaped_nodes
from jupiter.model.plan import NodeAddress, Plan
from jupiter.model.testbed import Testbed, parse_bandwidth, parse_latency
from jupiter.runtime.emulation import Emulation
from jupiter.runtime.shaping import (
    Rules,
    ShapingError,
    apply,
    egress_commands,
    kernel_bandwidth_testbed,
    shaped_nodes,
)

ADDRESSES = {"home": "172.20.0.2", "node1": "172.20.0.3", "node2": "172.20.0.4", "node3": "172.20.0.5"}


def shape(text: str) -> tuple[float, float]:
    bandwidth, latency = text.split()
    return parse_bandwidth(bandwidth), parse_latency(latency)


TESTBED = Testbed(
    speeds={"node2": 0.5},
    uplinks={"default": shape("20mbit 10ms"), "node1": shape("40mbit 5ms")},
    links={("node1", "node3"): shape("1gbit 0ms"), ("*", "home"): shape("100mbit 1ms")},
)


def tc(words: str) -> list[str]:
    return ["tc", *words.split()]


def test_each_capacity_is_one_htb_class_and_each_peer_one_filter() -> None:
    # node1: its own link to node3, a shared `* -> home` link (own capacity per sender), its uplink for node2.
    assert egress_commands(TESTBED, "node1", ADDRESSES) == [
        tc("qdisc add dev eth0 root handle 1: htb default 0"),
        tc("class add dev eth0 parent 1: classid 1:1 htb rate 100000000bit ceil 100000000bit quantum 200000"),
        tc("qdisc add dev eth0 parent 1:1 handle 101: tbf rate 100000000bit burst 12500 latency 1s"),
        tc("class add dev eth0 parent 1: classid 1:2 htb rate 1000000000bit ceil 1000000000bit quantum 200000"),
        tc("qdisc add dev eth0 parent 1:2 handle 102: tbf rate 1000000000bit burst 125000 latency 1s"),
        tc("class add dev eth0 parent 1: classid 1:3 htb rate 40000000bit ceil 40000000bit quantum 200000"),
        tc("qdisc add dev eth0 parent 1:3 handle 103: tbf rate 40000000bit burst 5000 latency 1s"),
        tc("filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 172.20.0.2/32 flowid 1:1"),
        tc("filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 172.20.0.5/32 flowid 1:2"),
        tc("filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 172.20.0.4/32 flowid 1:3"),
    ]


def test_peers_on_the_uplink_share_one_class() -> None:
    # node2 sends to node1 and node3 over the default uplink (20 Mbit/s, shared), to home over its link.
    commands = egress_commands(TESTBED, "node2", ADDRESSES)
    classes = [command for command in commands if command[1] == "class"]
    assert [command[command.index("rate") + 1] for command in classes] == ["100000000bit", "20000000bit"]
    uplink = [command[-1] for command in commands if command[1] == "filter" and command[-3] != "172.20.0.2/32"]
    assert uplink == ["1:2", "1:2"]


def test_slow_links_get_a_quantum_the_kernel_accepts() -> None:
    testbed = Testbed(uplinks={"node1": shape("56kbit 50ms")})
    (_, klass, tbf, _) = egress_commands(testbed, "node1", {"home": "10.0.0.2"})
    assert klass[klass.index("rate") + 1] == "56000bit" and klass[-1] == "1600"
    # Its TBF queue still takes two full frames at once, so TCP's segments are split, not dropped.
    assert tbf[tbf.index("burst") + 1] == "3100"


def test_nothing_to_shape_gives_no_commands() -> None:
    assert egress_commands(Testbed(), "node1", ADDRESSES) == []
    assert egress_commands(Testbed(speeds={"node1": 0.5}), "node1", ADDRESSES) == []
    only_node1 = Testbed(uplinks={"node1": shape("10mbit 1ms")})
    assert egress_commands(only_node1, "home", ADDRESSES) == []
    assert shaped_nodes(only_node1, ["home", "node1"]) == ["node1"]
    assert shaped_nodes(TESTBED, ["home"]) == []  # no peer, nothing to shape


def test_the_agents_keep_latency_and_leave_bandwidth_to_the_kernel() -> None:
    testbed = Testbed.from_json(kernel_bandwidth_testbed(TESTBED).to_json())
    assert testbed.kernel_bandwidth is True
    assert testbed.speeds == {"node2": 0.5}
    for src, dst in (("node1", "node3"), ("node1", "home"), ("node2", "node1")):
        before, after = TESTBED.shape(src, dst), testbed.shape(src, dst)
        assert before is not None and after is not None
        assert (after.bandwidth, after.latency, after.shared_by) == (math.inf, before.latency, before.shared_by)
    emulation = Emulation("node2", testbed)
    assert emulation.transfer_delay("node1", [2_000_000]) == pytest.approx(0.010)
    # The kernel-shaped testbed gives no tc commands of its own: nothing would be shaped twice.
    assert egress_commands(testbed, "node1", ADDRESSES) == []


def plan_with(testbed: Testbed | None) -> Plan:
    nodes = {name: NodeAddress(name, "compute", name, 1, 2) for name in ("home", "node1", "node2")}
    return Plan("d", "a", "/a", {}, (), {}, nodes, (), "home", testbed=testbed)


def test_the_containers_plan_survives_json_with_unlimited_bandwidths() -> None:
    plan = plan_with(TESTBED)
    assert tc_shaped_nodes(plan, ["home", "node1", "node2"]) == ["home", "node1", "node2"]
    agents = Plan.from_json(agents_plan(plan, kernel_bandwidth=True).to_json())
    assert agents.testbed is not None
    assert agents.testbed.speeds == {}  # CPU limits instead
    assert agents.testbed.uplinks["node1"] == (math.inf, 0.005)
    assert agents.testbed.kernel_bandwidth
    unshaped = agents_plan(plan, kernel_bandwidth=False).testbed
    assert unshaped is not None and unshaped.uplinks["node1"][0] == 5e6
    bare = plan_with(None)
    assert tc_shaped_nodes(bare, ["home", "node1"]) == [] and agents_plan(bare, kernel_bandwidth=True) == bare


def test_rules_name_the_peers_by_their_container_address() -> None:
    rules = shaping_rules(plan_with(TESTBED), "node1", {"home": "10.1.0.2", "node1": "10.1.0.3", "node2": "10.1.0.4"})
    assert Rules.from_json(rules.to_json()) == rules
    assert [command[-3] for command in rules.commands if command[1] == "filter"] == ["10.1.0.2/32", "10.1.0.4/32"]


class FakeTc:
    """Answers tc commands as a refusing kernel would."""

    def __init__(self, refuse: str = "", answer: str = "", missing: bool = False) -> None:
        self.refuse, self.answer, self.missing = refuse, answer, missing
        self.ran: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> subprocess.CompletedProcess[str]:
        if self.missing:
            raise FileNotFoundError(2, "No such file or directory", "tc")
        self.ran.append(list(command))
        refused = bool(self.refuse) and self.refuse in command
        return subprocess.CompletedProcess(list(command), 2 if refused else 0, "", self.answer if refused else "")


RULES = Rules("node1", tuple(tuple(c) for c in egress_commands(TESTBED, "node1", ADDRESSES)))


def test_apply_resets_the_interface_then_runs_every_command_in_order() -> None:
    fake = FakeTc()
    apply(RULES, run=fake)
    assert fake.ran == [tc("qdisc del dev eth0 root"), *[list(c) for c in RULES.commands]]


def test_a_refusal_names_the_command_tc_s_answer_and_the_missing_capability() -> None:
    fake = FakeTc(refuse="qdisc", answer="RTNETLINK answers: Operation not permitted\n")
    with pytest.raises(ShapingError) as caught:
        # The reset's refusal is ignored (nothing may be there to delete); the qdisc's is not.
        apply(RULES, run=fake)
    assert str(caught.value) == (
        "node1: tc refused to shape its links: `tc qdisc add dev eth0 root handle 1: htb default 0` answered "
        "'RTNETLINK answers: Operation not permitted': the container lacks the NET_ADMIN capability (the docker "
        "backend grants it to shaped nodes; a rootless or restricted engine may refuse it); remove the bandwidths "
        "from the testbed to run without tc"
    )


def test_a_kernel_without_htb_is_named() -> None:
    fake = FakeTc(refuse="htb", answer="Error: Specified qdisc kind is unknown.")
    with pytest.raises(ShapingError, match=r"lacks the HTB qdisc or the u32 classifier \(modules sch_htb, cls_u32\)"):
        apply(RULES, run=fake)


def test_an_image_without_tc_says_how_to_get_it() -> None:
    with pytest.raises(ShapingError, match=r"node1: this image has no `tc` \(package iproute2\).*scripts/setup-docker"):
        apply(RULES, run=FakeTc(missing=True))
