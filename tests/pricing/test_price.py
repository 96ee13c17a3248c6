"""The price function of pricing CIRCE (pure)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupiter.mapping import Edge, LinkCost, Problem
from jupiter.mapping.price_function import (
    UTILISATION_CAP,
    CostModel,
    NodeReport,
    PriceTerms,
    PriceWeights,
    choose,
    price_terms,
    waiting_time,
)

NOW = 1000.0


def _model() -> CostModel:
    problem = Problem(
        tasks=("a", "b"),
        nodes=("n1", "n2", "n3"),
        exec_times=((1.0, 2.0, 4.0), (0.5, 0.5, 0.5)),
        edges=(Edge("a", "b", 1000.0),),
        links={
            ("n1", "n2"): LinkCost(0.0, 0.001, 0.1),
            ("n2", "n1"): LinkCost(0.0, 0.001, 0.1),
            ("n1", "n3"): LinkCost(0.0, 0.0, 3.0),
        },
    )
    return CostModel.from_problem(problem)


def _report(
    node: str, time: float = NOW, slowdown: float = 1.0, backlog: float = 0.0, cpu: float = 0.0, memory: float = 0.0
) -> NodeReport:
    return NodeReport(node, time, slowdown, backlog, cpu, memory)


def test_terms_are_seconds_from_the_profile_the_report_and_the_link() -> None:
    report = _report("n2", slowdown=2.0, backlog=3.0, cpu=0.5, memory=0.2)
    terms = price_terms(_model(), "a", report, holder="n1", size=1000.0, extra_backlog=1.5)
    assert terms.network == pytest.approx(0.001 * 1000 + 0.1)
    assert terms.execution == pytest.approx(2.0 * 2.0)  # profiled 2 s on n2, twice as slow lately
    assert terms.queue == pytest.approx(4.5)
    assert terms.cpu == pytest.approx(4.0 * 0.5 / 0.5)  # M/M/1: x * u / (1 - u)
    assert terms.memory == pytest.approx(4.0 * 0.2 / 0.8)


def test_same_node_and_unprofiled_links_cost_no_network_time() -> None:
    model = _model()
    assert model.transfer("n1", "n1", 10**9) == 0.0
    assert model.transfer("n3", "n2", 10**9) == 0.0
    assert (
        CostModel.from_problem(
            Problem(("a",), ("n1", "n2"), ((1.0, 1.0),), links={("n1", "n2"): LinkCost(0, 0, 5.0)}), network=False
        ).transfer("n1", "n2", 1.0)
        == 0.0
    )


def test_sum_and_max_aggregate_weighted_terms() -> None:
    terms = PriceTerms(network=1.0, execution=2.0, queue=3.0, cpu=0.5, memory=0.25)
    weights = PriceWeights(network=2.0, execution=1.0, queue=0.5, cpu=0.0, memory=4.0)
    assert terms.total(weights, "sum") == pytest.approx(2.0 + 2.0 + 1.5 + 0.0 + 1.0)
    assert terms.total(weights, "max") == pytest.approx(2.0)
    with pytest.raises(ValueError, match="unknown price aggregate"):
        terms.total(weights, "mean")


def test_choose_takes_the_cheapest_fresh_node() -> None:
    model = _model()
    reports = {"n1": _report("n1", backlog=10.0), "n2": _report("n2"), "n3": _report("n3")}
    choice = choose(model, "a", reports, "n1", 1000.0, NOW, 1.0, PriceWeights(), "sum")
    assert choice is not None and choice.node == "n2"  # n1 is busy, n3 is slow and far
    assert choice.price == pytest.approx(1.1 + 2.0)


def test_stale_and_excluded_nodes_are_never_chosen() -> None:
    model = _model()
    reports = {"n1": _report("n1", time=NOW - 5), "n2": _report("n2"), "n3": _report("n3")}
    choice = choose(model, "a", reports, "n1", 0.0, NOW, 1.0, PriceWeights(), "sum", exclude={"n2"})
    assert choice is not None and choice.node == "n3"
    assert choose(model, "a", reports, "n1", 0.0, NOW, 1.0, PriceWeights(), "sum", exclude={"n2", "n3"}) is None


def test_ties_go_to_the_node_listed_first() -> None:
    model = _model()
    reports = {name: _report(name) for name in ("n3", "n2", "n1")}
    choice = choose(model, "b", reports, "x", 0.0, NOW, 1.0, PriceWeights(), "max")
    assert choice is not None and choice.node == "n3"


def test_what_a_controller_sent_since_the_last_report_counts_as_backlog() -> None:
    model = _model()
    reports = {"n1": _report("n1"), "n2": _report("n2")}
    first = choose(model, "b", reports, "x", 0.0, NOW, 1.0, PriceWeights(), "sum")
    assert first is not None and first.node == "n1"
    second = choose(model, "b", reports, "x", 0.0, NOW, 1.0, PriceWeights(), "sum", extra_backlog={"n1": 0.5})
    assert second is not None and second.node == "n2"


@given(st.floats(min_value=0, max_value=100), st.floats(min_value=-1, max_value=2))
def test_waiting_time_is_finite_and_grows_with_utilisation(service: float, utilisation: float) -> None:
    wait = waiting_time(service, utilisation)
    assert math.isfinite(wait) and wait >= 0
    assert wait <= service * UTILISATION_CAP / (1 - UTILISATION_CAP) + 1e-9
    assert waiting_time(service, min(1.0, max(0.0, utilisation) + 0.1)) >= wait


def test_reports_from_the_network_are_checked() -> None:
    report = NodeReport.from_json({"node": "n1", "time": 1.0, "slowdown": 1, "backlog": 0, "cpu": 0.5, "memory": 0.1})
    assert report == NodeReport("n1", 1.0, 1.0, 0.0, 0.5, 0.1)
    assert NodeReport.from_json(report.to_json()) == report
    with pytest.raises(ValueError, match="backlog must be a number"):
        NodeReport.from_json({"node": "n1", "time": 1.0, "slowdown": 1, "backlog": -1, "cpu": 0, "memory": 0})
    with pytest.raises(ValueError, match="node name"):
        NodeReport.from_json(["n1"])


def test_weights_must_be_finite_and_not_negative() -> None:
    with pytest.raises(ValueError, match="queue"):
        PriceWeights(queue=-1.0)
    with pytest.raises(ValueError, match="cpu"):
        PriceWeights(cpu=math.inf)
