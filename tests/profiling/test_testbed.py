"""Testbed files: parsing, errors naming file:line, and which rule shapes a link."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.model import testbed as tb
from jupiter.model.bundled import data_dir
from jupiter.model.errors import InputError
from jupiter.model.testbed import parse_bandwidth, parse_latency, parse_testbed

NODES = ("home", "node1", "node2", "node3", "node4")


def test_the_shipped_example_parses_against_the_default_nodes() -> None:
    testbed = parse_testbed(data_dir() / "testbed.ini", NODES)
    assert testbed.speed("node1") == 1.0
    assert testbed.speed("node2") == 0.25
    shape = testbed.shape("node2", "node3")
    assert shape is not None
    assert (shape.bandwidth, shape.latency, shape.shared_by) == (2.5e6, 0.01, "uplink:node2")
    to_home = testbed.shape("node3", "home")
    assert to_home is not None and to_home.bandwidth == 1.25e8


@pytest.mark.parametrize(
    ("text", "value"),
    [("10mbit", 1.25e6), ("1gbit", 1.25e8), ("800kbit", 1e5), ("2mbps", 2e6), ("64bit", 8.0)],
)
def test_bandwidths(text: str, value: float) -> None:
    assert parse_bandwidth(text) == pytest.approx(value)


def test_latencies() -> None:
    assert parse_latency("10ms") == pytest.approx(0.01)
    assert parse_latency("200us") == pytest.approx(2e-4)
    assert parse_latency("0.5s") == 0.5


def test_rule_precedence() -> None:
    testbed = tb.Testbed(
        uplinks={"default": (1.0, 0.1), "a": (2.0, 0.2)},
        links={("a", "b"): (3.0, 0.3), ("*", "c"): (4.0, 0.4), ("a", "*"): (5.0, 0.5)},
    )
    assert testbed.shape("a", "b").bandwidth == 3.0  # type: ignore[union-attr]
    assert testbed.shape("a", "c").bandwidth == 5.0  # type: ignore[union-attr]
    assert testbed.shape("b", "c").bandwidth == 4.0  # type: ignore[union-attr]
    assert testbed.shape("b", "a").bandwidth == 1.0  # type: ignore[union-attr]
    assert tb.Testbed().shape("a", "b") is None


def test_json_round_trip() -> None:
    testbed = parse_testbed(data_dir() / "testbed.ini", NODES)
    again = tb.Testbed.from_json(testbed.to_json())
    assert again == testbed


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("[nodes]\nnode1 = 2\n", 2, "speed of node1 is 2.0; use a factor in (0, 1]"),
        ("[nodes]\nnode9 = 0.5\n", 2, "node 'node9' is not in nodes.txt"),
        ("[uplinks]\nnode1 = 10 mbit\n", 2, "bandwidth '10' must look like 10mbit"),
        ("[uplinks]\nnode1 = fast 1ms\n", 2, "bandwidth 'fast' must look like 10mbit"),
        ("[links]\n\nnode1 node2 = 1mbit 1ms\n", 3, "a link is written `src -> dst = bandwidth latency`"),
        ("[links]\nnode1 -> node2 = 1mbit\n", 2, "expected `bandwidth latency`"),
        ("[speeds]\n", 1, "unknown section [speeds]"),
    ],
)
def test_errors_name_the_line_and_the_fix(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = tmp_path / "testbed.ini"
    path.write_text(body)
    with pytest.raises(InputError) as caught:
        parse_testbed(path, NODES)
    assert caught.value.line == line
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")
