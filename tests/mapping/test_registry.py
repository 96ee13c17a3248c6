"""Every registered mapper, walked by name: feasible schedules on random problems; best <= all."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings

from jupiter.mapping import (
    BestMapper,
    Mapper,
    Problem,
    Schedule,
    StaticMapper,
    check,
    evaluate_mapping,
    get_mapper,
    mapper_names,
)
from jupiter.mapping.generate import random_instance
from tests.mapping.helpers import problems, topcuoglu

# `best` is never worse than the single-frame mappers of its portfolio. `stream` is not one of
# them: it minimises the latency of a stream of frames, and its one-frame makespan is a by-product.
MAKESPAN_MAPPERS = tuple(n for n in mapper_names() if n != "stream")


def build(name: str, problem: Problem) -> Mapper:
    if name == "static":
        return get_mapper(name, mapping=get_mapper("heft").schedule(problem).mapping())
    return get_mapper(name)


def test_registry_names() -> None:
    assert mapper_names() == (
        "heft",
        "heft_modified",
        "wave_random",
        "wave_greedy",
        "static",
        "cpop",
        "peft",
        "minmin",
        "fastest_node",
        "best",
        "stream",
    )
    with pytest.raises(ValueError, match="unknown scheduler 'nope'; choose one of: heft, "):
        get_mapper("nope")
    with pytest.raises(ValueError, match="scheduler 'heft' does not take these parameters"):
        get_mapper("heft", bogus=1)


@pytest.mark.parametrize("name", mapper_names())
def test_every_mapper_on_topcuoglu(name: str) -> None:
    p = topcuoglu()
    s = build(name, p).schedule(p)
    check(p, s)
    assert s.mapper == name
    assert build(name, p).schedule(p) == s  # deterministic


@pytest.mark.parametrize("name", mapper_names())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_every_mapper_is_feasible_on_random_problems(name: str, problem: Problem) -> None:
    s = build(name, problem).schedule(problem)
    check(problem, s)
    assert math.isfinite(s.makespan)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_best_is_never_worse_than_any_other_mapper(problem: Problem) -> None:
    best = BestMapper().schedule(problem).makespan
    for name in MAKESPAN_MAPPERS:
        if name != "best":
            other = build(name, problem).schedule(problem).makespan
            assert best <= other * (1 + 1e-9), name


def test_best_improves_on_a_mid_size_instance() -> None:
    p = random_instance(60, 4, ccr=1.0, seed=11).problem()
    others = [build(n, p).schedule(p).makespan for n in MAKESPAN_MAPPERS if n != "best"]
    s = BestMapper().schedule(p)
    check(p, s)
    assert s.makespan < min(others)


def test_static_and_evaluator() -> None:
    p = topcuoglu()
    heft = get_mapper("heft").schedule(p)
    # Timing HEFT's own mapping in HEFT's order reproduces the HEFT schedule.
    again = evaluate_mapping(p, heft.mapping())
    assert again.makespan == heft.makespan
    all_p1 = StaticMapper(dict.fromkeys(p.tasks, "P1")).schedule(p)
    check(p, all_p1)
    assert all_p1.makespan == sum(row[0] for row in p.exec_times)
    with pytest.raises(ValueError, match="does not place task"):
        StaticMapper({"n1": "P1"}).schedule(p)
    with pytest.raises(ValueError, match="unknown node 'P9'"):
        StaticMapper(dict.fromkeys(p.tasks, "P9")).schedule(p)


def test_schedule_helpers() -> None:
    s = get_mapper("heft").schedule(topcuoglu())
    assert isinstance(s, Schedule)
    per_node = s.by_node()
    assert sum(len(v) for v in per_node.values()) == 10
    assert all(a.finish <= b.start + 1e-9 for v in per_node.values() for a, b in pairwise(v))
