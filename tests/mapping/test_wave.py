"""WAVE: controller selection, the per-controller decision, and the offline mappers."""

from __future__ import annotations

import random

import pytest

from jupiter.mapping import (
    Edge,
    GreedyPolicy,
    Problem,
    RandomPolicy,
    Resources,
    WaveGreedyMapper,
    WaveRandomMapper,
    appoint_children,
    check,
    select_controllers,
)
from tests.mapping.helpers import full_links


def diamond() -> Problem:
    nodes = ["n0", "n1", "n2", "n3"]
    tasks = ["A", "B", "C", "D", "E"]
    edges = [Edge("A", "C", 1.0), Edge("B", "C", 1.0), Edge("A", "D", 1.0), Edge("C", "E", 1.0), Edge("D", "E", 1.0)]
    return Problem(tasks, nodes, [[1.0] * 4] * 5, edges, full_links(nodes))


def test_controller_selection_follows_the_original_routine() -> None:
    # C: no parent is a controller yet -> smallest topological index (A).
    # D: exactly one parent (A) is a controller -> A.
    # E: parents C and D, neither a controller -> the one earlier in topological order (C).
    p = diamond()
    assert p.topological_order == ("A", "B", "C", "D", "E")
    assert select_controllers(p) == {"C": "A", "D": "A", "E": "C"}
    # Listed out of topological order, Kahn's order decides: D before C, so E -> D.
    q = Problem(["A", "B", "E", "C", "D"], p.nodes, [[1.0] * 4] * 5, p.edges, p.links)
    assert q.topological_order == ("A", "B", "D", "C", "E")
    assert select_controllers(q) == {"C": "A", "D": "A", "E": "D"}


def test_controller_selection_with_several_controllers() -> None:
    tasks = ["A", "B", "X", "Y", "Z"]
    edges = [Edge("A", "X"), Edge("B", "Y"), Edge("Y", "Z"), Edge("A", "Z"), Edge("B", "Z")]
    p = Problem(tasks, ["n"], [[1.0]] * 5, edges)
    # Z's parents A and B are both controllers already -> smallest topological index (A).
    assert select_controllers(p) == {"X": "A", "Y": "B", "Z": "A"}


def test_greedy_decision_on_a_hand_case() -> None:
    delays = {"n1": 1.0, "n2": 10.0, "n3": 20.0}  # n3 is beyond 15x the best delay
    res = {"n1": Resources(50.0, 50.0), "n2": Resources(10.0, 10.0), "n3": Resources(0.0, 0.0)}
    got = appoint_children("A", "n0", ["B", "C"], ["n1", "n2", "n3"], delays, res, GreedyPolicy())
    assert got == {"B": "n2", "C": "n2"}  # costs: n1 = 101, n2 = 30
    heavy_net = GreedyPolicy(w_net=10.0)  # n1 = 110, n2 = 120
    assert appoint_children("A", "n0", ["B"], ["n1", "n2", "n3"], delays, res, heavy_net) == {"B": "n1"}


def test_greedy_decision_without_delays_uses_resources_only() -> None:
    res = {"n1": Resources(5.0, 5.0), "n2": Resources(1.0, 1.0)}
    assert appoint_children("", None, ["R"], ["n1", "n2"], {}, res, GreedyPolicy()) == {"R": "n2"}


def test_greedy_decision_rejects_unreachable_candidates() -> None:
    with pytest.raises(ValueError, match="cannot reach any candidate node of 'B'"):
        appoint_children("A", "n0", ["B"], ["n1"], {"n1": float("inf")}, {}, GreedyPolicy())


def test_random_decision_is_seeded_and_per_child_candidates() -> None:
    cands = {"B": ["n1", "n2", "n3"], "C": ["n3"]}
    one = appoint_children("A", "n0", ["B", "C"], cands, {}, {}, RandomPolicy(random.Random(7)))
    two = appoint_children("A", "n0", ["B", "C"], cands, {}, {}, RandomPolicy(random.Random(7)))
    assert one == two
    assert one["C"] == "n3"


def test_wave_random_is_reproducible_and_feasible() -> None:
    p = diamond()
    a = WaveRandomMapper(seed=3).schedule(p)
    check(p, a)
    assert WaveRandomMapper(seed=3).schedule(p) == a
    seen = {tuple(WaveRandomMapper(seed=s).mapping(p).values()) for s in range(20)}
    assert len(seen) > 1


def test_wave_greedy_offline_picks_cheapest_neighbour() -> None:
    nodes = ["n0", "n1", "n2"]
    p = Problem(
        ["A", "B"],
        nodes,
        [[1.0] * 3] * 2,
        [Edge("A", "B", 10.0)],
        full_links(nodes),
        resources={"n0": Resources(0, 0), "n1": Resources(90, 90), "n2": Resources(20, 20)},
    )
    m = WaveGreedyMapper(initial={"A": "n0"})
    assert m.mapping(p) == {"A": "n0", "B": "n2"}  # n0 is the controller's own node, not a neighbour
    assert WaveGreedyMapper(initial={"A": "n0"}, include_own_node=True).mapping(p) == {"A": "n0", "B": "n0"}
    check(p, m.schedule(p))


def test_wave_initial_placement_must_name_a_node() -> None:
    with pytest.raises(ValueError, match="unknown node 'zz'"):
        WaveRandomMapper(initial={"A": "zz"}).schedule(diamond())
