"""Problem construction: normalisation, validation messages and the related-machines helper."""

from __future__ import annotations

import math

import pytest

from jupiter.mapping import Edge, LinkCost, Problem, Resources, related_machines
from tests.mapping.helpers import full_links


def make(**overrides: object) -> Problem:
    base: dict[str, object] = {
        "tasks": ["a", "b"],
        "nodes": ["x", "y"],
        "exec_times": [[1.0, 2.0], [3.0, 4.0]],
        "edges": [Edge("a", "b", 10.0)],
        "links": full_links(["x", "y"]),
    }
    base.update(overrides)
    return Problem(**base)  # type: ignore[arg-type]


def test_inputs_are_frozen_and_indexed() -> None:
    p = make()
    assert p.tasks == ("a", "b")
    assert p.exec_times == ((1.0, 2.0), (3.0, 4.0))
    assert p.exec_time("b", "y") == 4.0
    assert p.transfer_time(10.0, "x", "y") == 10.0
    assert p.transfer_time(10.0, "y", "y") == 0.0
    assert p.parents("b") == ("a",)
    assert p.children("a") == ("b",)
    assert p.edge_size("a", "b") == 10.0
    with pytest.raises(TypeError):
        p.links[("x", "x")] = LinkCost()  # type: ignore[index]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tasks": ["a", "a"]}, "task 'a' is listed twice"),
        ({"nodes": []}, "no nodes"),
        ({"exec_times": [[1.0, 2.0]]}, "exec_times has 1 rows but there are 2 tasks"),
        ({"exec_times": [[1.0], [3.0]]}, "row of task 'a' has 1 values but there are 2 nodes"),
        ({"exec_times": [[-1.0, 2.0], [3.0, 4.0]]}, "execution time of task 'a' on node 'x' is -1.0"),
        ({"exec_times": [[math.nan, 2.0], [3.0, 4.0]]}, "execution time of task 'a' on node 'x' is nan"),
        ({"exec_times": [[math.inf, math.inf], [3.0, 4.0]]}, "task 'a' cannot run on any node"),
        ({"edges": [Edge("a", "zz")]}, "edge 'a' -> 'zz' names unknown task 'zz'"),
        ({"edges": [Edge("a", "a")]}, "self-loop"),
        ({"edges": [Edge("a", "b"), Edge("a", "b")]}, "given twice"),
        ({"edges": [Edge("a", "b", -1.0)]}, "data size -1.0"),
        ({"edges": [Edge("a", "b"), Edge("b", "a")]}, "cycle through 'a', 'b'"),
        ({"links": {("x", "q"): LinkCost()}}, "link 'x' -> 'q' names unknown node 'q'"),
        ({"links": {("x", "x"): LinkCost()}}, "self-link"),
        ({"links": {("x", "y"): LinkCost(b=-1.0)}}, "has b = -1.0"),
        ({"max_tasks_per_node": {"x": -1}}, "max_tasks_per_node of 'x' is -1"),
        ({"max_tasks_per_node": {"q": 1}}, "unknown node 'q'"),
        ({"resources": {"x": Resources(cpu=-5.0)}}, "cpu is -5.0"),
    ],
)
def test_validation_messages(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        make(**overrides)
    assert message in str(info.value)


def test_missing_link_is_infinite_and_inf_exec_is_not_allowed_node() -> None:
    p = make(links={("x", "y"): LinkCost(b=1.0)}, exec_times=[[1.0, math.inf], [3.0, 4.0]])
    assert p.transfer_time(1.0, "y", "x") == math.inf
    assert p.allowed_nodes("a") == ("x",)


def test_topological_order_is_stable() -> None:
    p = Problem(["c", "a", "b"], ["x"], [[1], [1], [1]], [Edge("a", "b"), Edge("c", "b")])
    assert p.topological_order == ("c", "a", "b")


def test_related_machines_model() -> None:
    p = related_machines(
        {"a": 10.0, "b": 20.0},
        {"x": 2.0, "y": 4.0},
        [("a", "b", 8.0)],
        {("x", "y"): 2.0},
    )
    assert p.exec_times == ((5.0, 2.5), (10.0, 5.0))
    assert p.transfer_time(8.0, "x", "y") == 4.0
    assert p.transfer_time(8.0, "y", "x") == 4.0  # one direction given = symmetric
    assert p.transfer_time(8.0, "x", "x") == 0.0


def test_related_machines_zero_speed_means_cannot() -> None:
    p = related_machines({"a": 1.0}, {"x": 0.0, "y": 1.0}, [], {})
    assert p.allowed_nodes("a") == ("y",)
    assert p.transfer_time(1.0, "x", "y") == math.inf
