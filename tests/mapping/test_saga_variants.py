"""SAGA variants of the list schedulers, and `best` against its whole portfolio.

The golden makespans were produced by anrg-saga 2.1.0 (``bench/mapping/saga_worker.py``
under PYTHONHASHSEED=0) on the seeded instances rebuilt here; the benchmark checks
the same equality on 243 larger instances.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from jupiter.mapping import (
    BestMapper,
    CpopMapper,
    Edge,
    FastestNodeMapper,
    HeftMapper,
    LinkCost,
    Mapper,
    MinMinMapper,
    PeftMapper,
    Problem,
    check,
    related_machines,
)
from jupiter.mapping.best import portfolio
from jupiter.mapping.cpop import saga_critical_set
from jupiter.mapping.generate import random_instance
from jupiter.mapping.peft import optimistic_cost_table
from tests.mapping.helpers import problems

SAGA_TWINS: dict[str, Mapper] = {
    "heft": HeftMapper(comm_average="saga"),
    "cpop": CpopMapper(variant="saga"),
    "peft": PeftMapper(variant="saga"),
    "minmin": MinMinMapper(),
    "fastest_node": FastestNodeMapper(),
}

# (n_tasks, n_nodes, ccr, seed) of random_instance -> SAGA's makespans.
GOLDEN = {
    (12, 3, 1.0, 1): {
        "heft": 87.75230503120368,
        "cpop": 93.35711555529745,
        "peft": 99.47894829400205,
        "minmin": 118.55635929063116,
        "fastest_node": 151.69180926983412,
    },
    (20, 4, 5.0, 2): {
        "heft": 452.810580149825,
        "cpop": 475.5580963257948,
        "peft": 370.81842277597497,
        "minmin": 422.8206558960672,
        "fastest_node": 399.4455427369162,
    },
}


@pytest.mark.parametrize("spec", list(GOLDEN))
@pytest.mark.parametrize("algo", list(SAGA_TWINS))
def test_saga_variants_reproduce_saga_makespans(spec: tuple[int, int, float, int], algo: str) -> None:
    n, nodes, ccr, seed = spec
    p = random_instance(n, nodes, ccr=ccr, seed=seed).problem()
    s = SAGA_TWINS[algo].schedule(p)
    check(p, s)
    assert s.makespan == pytest.approx(GOLDEN[spec][algo], rel=1e-9)


def test_saga_cpop_priorities_by_hand() -> None:
    # Two entries a, b -> c; speeds 1 and 3 (mean 2); links 1 byte/s; a->c carries 3 bytes.
    p = related_machines(
        {"a": 2.0, "b": 4.0, "c": 6.0}, {"n0": 1.0, "n1": 3.0}, [("a", "c", 3.0), ("b", "c", 0.0)], {("n0", "n1"): 1.0}
    )
    pinned, prio = saga_critical_set(p)
    # SAGA's mean link: 2 directed pairs / n(n+1) = 1/3 s per byte, so a->c costs 1.
    # Upward: c 4, a 4/3 + 4 + 1 = 19/3, b 8/3 + 4 = 20/3. Downward (own cost at the
    # mean speed 2; the super source makes the entries count theirs): a 1, b 2, c 3 + 2 = 5.
    assert prio == pytest.approx([22 / 3, 26 / 3, 9.0])
    # The critical length is the super source's priority, max upward rank 20/3: nobody matches.
    assert pinned == []
    # With a single entry the entry itself defines the length and is pinned.
    single = related_machines({"a": 2.0, "c": 6.0}, {"n0": 1.0, "n1": 3.0}, [("a", "c", 3.0)], {("n0", "n1"): 1.0})
    assert saga_critical_set(single)[0] == [0]


def test_saga_peft_uses_the_actual_link() -> None:
    # t0 -> t1 with 10 bytes; n0 -> n1 takes 1 s, n1 -> n0 takes 10 s.
    links = {("n0", "n1"): LinkCost(b=0.1), ("n1", "n0"): LinkCost(b=1.0)}
    p = Problem(["t0", "t1"], ["n0", "n1"], [[1.0, 1.0], [5.0, 1.0]], [Edge("t0", "t1", 10.0)], links)
    saga = optimistic_cost_table(p.indexed, "saga")
    paper = optimistic_cost_table(p.indexed, "paper")
    assert saga[0].tolist() == pytest.approx([2.0, 1.0])  # min(5, 1 + 1), min(10 + 5, 1)
    assert paper[0].tolist() == pytest.approx([5.0, 1.0])  # mean link 5.5 s: min(5, 1 + 5.5)
    assert saga[1].tolist() == [0.0, 0.0]


def test_minmin_tie_order() -> None:
    p = related_machines({"a": 1.0, "b": 1.0}, {"fast": 1.0, "slow": 1 / 1.5}, [], {("fast", "slow"): 1.0})
    assert MinMinMapper().schedule(p).mapping() == {"a": "fast", "b": "slow"}
    assert MinMinMapper(tie_order=["b", "a"]).schedule(p).mapping() == {"a": "slow", "b": "fast"}
    with pytest.raises(ValueError, match="tie_order must list every task"):
        MinMinMapper(tie_order=["a"]).schedule(p)


def test_unknown_variants_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown CPoP variant 'x'"):
        CpopMapper(variant="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown PEFT variant 'x'"):
        PeftMapper(variant="x")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_best_is_never_worse_than_any_portfolio_member(problem: Problem) -> None:
    extra = MinMinMapper(tie_order=list(reversed(problem.tasks)))
    best = BestMapper(extra=[extra]).schedule(problem)
    check(problem, best)
    for member in [*portfolio(), extra]:
        try:
            s = member.schedule(problem)
        except ValueError:
            continue  # e.g. a WAVE appointment over a missing link: not a candidate
        check(problem, s)
        assert best.makespan <= s.makespan, repr(member)
