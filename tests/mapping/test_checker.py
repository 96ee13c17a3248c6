"""The independent checker finds every kind of violation and names it."""

from __future__ import annotations

import math

import pytest

from jupiter.mapping import Edge, Placement, Problem, Schedule, ScheduleViolation, check, violations
from tests.mapping.helpers import full_links


@pytest.fixture
def problem() -> Problem:
    nodes = ["x", "y"]
    return Problem(
        ["a", "b", "c"],
        nodes,
        [[2.0, 4.0], [3.0, math.inf], [1.0, 1.0]],
        [Edge("a", "b", 5.0)],
        full_links(nodes, b=1.0, c=1.0),
    )


def sched(*rows: tuple[str, str, float, float]) -> Schedule:
    return Schedule.from_placements(Placement(*r) for r in rows)


def test_feasible_schedule_passes(problem: Problem) -> None:
    s = sched(("a", "y", 0, 4), ("b", "x", 10, 13), ("c", "x", 0, 1))
    assert violations(problem, s) == []
    check(problem, s)
    assert s.makespan == 13


def test_every_violation_is_listed(problem: Problem) -> None:
    s = sched(("a", "y", 0, 4), ("b", "x", 9, 12), ("c", "x", 8.5, 9.5))
    found = violations(problem, s)
    assert found == [
        "task 'b' starts at 9 before its input from 'a' arrives at 10 ('y' -> 'x', transfer 6s)",
        "tasks 'c' [8.5, 9.5] and 'b' [9, 12] overlap on node 'x'",
    ]
    with pytest.raises(ScheduleViolation) as info:
        check(problem, s)
    assert info.value.violations == found


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ((("a", "x", 0, 2), ("b", "x", 2, 5)), "task 'c' is not placed"),
        ((("a", "x", 0, 2), ("b", "y", 2, 5), ("c", "x", 5, 6)), "task 'b' cannot run on node 'y'"),
        ((("a", "q", 0, 2), ("b", "x", 2, 5), ("c", "x", 5, 6)), "unknown node 'q'"),
        (
            (("a", "x", 0, 3), ("b", "x", 3, 6), ("c", "x", 6, 7)),
            "task 'a' on 'x' runs 3s but its execution time is 2s",
        ),
        ((("a", "x", -1, 1), ("b", "x", 2, 5), ("c", "x", 5, 6)), "task 'a' starts at -1"),
    ],
)
def test_single_violations(problem: Problem, rows: tuple[tuple[str, str, float, float], ...], message: str) -> None:
    found = violations(problem, sched(*rows))
    assert any(message in v for v in found), found


def test_limits_problem_and_extra(problem: Problem) -> None:
    s = sched(("a", "x", 0, 2), ("b", "x", 2, 5), ("c", "x", 5, 6))
    assert violations(problem, s) == []
    assert violations(problem, s, max_tasks_per_node=2) == ["node 'x' holds 3 tasks but its limit is 2"]
    limited = problem.with_limits({"x": 1})
    assert violations(limited, s) == ["node 'x' holds 3 tasks but its limit is 1"]
