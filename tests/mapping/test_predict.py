"""The stream predictor on hand-computed pipelines, queueing theory and its own invariants."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from jupiter.mapping import (
    ArrivalProcess,
    Edge,
    LinkCost,
    Problem,
    get_mapper,
    pipeline_periods,
    predict_stream,
)
from jupiter.mapping.generate import random_instance
from tests.mapping.helpers import full_links


def one_node_chain(times: list[float]) -> Problem:
    tasks = [f"t{i}" for i in range(len(times))]
    edges = [Edge(a, b, 1.0) for a, b in pairwise(tasks)]
    return Problem(tasks, ["n0"], [[x] for x in times], edges)


def diamond(*, same_node: bool = False) -> tuple[Problem, dict[str, str]]:
    """a -> {b, c} -> d on two nodes, every transfer 0.5 s (constant link cost)."""
    nodes = ["n0", "n1"]
    p = Problem(
        ["a", "b", "c", "d"],
        nodes,
        [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [1.0, 1.0]],
        [Edge("a", "b", 10.0), Edge("a", "c", 10.0), Edge("b", "d", 10.0), Edge("c", "d", 10.0)],
        full_links(nodes, b=0.0, c=0.5),
    )
    mapping = {"a": "n0", "b": "n0", "c": "n0" if same_node else "n1", "d": "n0"}
    return p, mapping


def test_chain_on_one_node_below_capacity_never_waits() -> None:
    p = one_node_chain([1.0, 2.0, 3.0])
    mapping = dict.fromkeys(p.tasks, "n0")
    pred = predict_stream(p, mapping, ArrivalProcess.fixed(rate=0.1, frames=50))
    assert pred.stable and pred.note == ""
    assert pred.work == 6.0
    assert pred.latencies == (6.0,) * 50
    assert pred.waiting_times == (0.0,) * 50
    assert (pred.latency.p50, pred.latency.p95, pred.latency.p99, pred.latency.mean) == (6.0, 6.0, 6.0, 6.0)
    assert pred.waiting.p99 == 0.0
    assert pred.utilisation == {"n0": pytest.approx(0.6)}
    assert pred.periods.period == 6.0
    assert pred.sustainable_rate == pytest.approx(1 / 6)
    # 50 frames from t = 0 to the last one done at 49 x 10 + 6.
    assert pred.throughput == pytest.approx(50 / 496)


def test_chain_on_one_node_above_capacity_is_flagged_unstable() -> None:
    p = one_node_chain([1.0, 2.0, 3.0])
    mapping = dict.fromkeys(p.tasks, "n0")
    pred = predict_stream(p, mapping, ArrivalProcess.fixed(rate=0.2, frames=100))
    assert not pred.stable
    assert pred.utilisation["n0"] == pytest.approx(1.2)
    assert pred.note.startswith("unstable: at 0.2 frames/s the node n0 would be busy 1.2x the time")
    assert "grow without bound" in pred.note
    assert pred.latencies[-1] > pred.latencies[0] + 50
    # The node never idles once overloaded, so frames leave at its rate.
    assert pred.throughput == pytest.approx(1 / 6, rel=0.05)
    assert pred.notes()["stable"] == "no" and "warning" in pred.notes()


def test_overloaded_single_task_latency_grows_by_the_excess_per_frame() -> None:
    # Service 6 s, a frame every 5 s: frame k is done at 6(k + 1), so it waits k seconds.
    p = one_node_chain([6.0])
    pred = predict_stream(p, {"t0": "n0"}, ArrivalProcess.fixed(rate=0.2, frames=20))
    assert pred.latencies == pytest.approx([6.0 + k for k in range(20)])
    assert pred.waiting_times == pytest.approx([float(k) for k in range(20)])


def test_fan_out_fan_in_on_two_nodes_by_hand() -> None:
    p, mapping = diamond()
    # One frame: a 0-1 (n0); b 1-3 (n0); c needs 0.5 s of transfer: 1.5-4.5 (n1);
    # d waits for c's data at 5: 5-6. Critical path a, c, d = 1 + 0.5 + 3 + 0.5 + 1.
    alone = predict_stream(p, mapping, ArrivalProcess.sequential(3))
    assert alone.work == 6.0
    assert alone.latencies == (6.0, 6.0, 6.0)
    assert alone.waiting_times == (0.0, 0.0, 0.0)
    assert alone.throughput == pytest.approx(1 / 6)
    # Two frames at once, FIFO by readiness: a0 0-1, a1 1-2, b0 2-4, b1 4-6 on n0;
    # c0 1.5-4.5, c1 4.5-7.5 on n1; d0 ready at 5 runs 6-7, d1 ready at 8 runs 8-9.
    burst = predict_stream(p, mapping, ArrivalProcess.burst(2))
    assert burst.latencies == (7.0, 9.0)
    assert burst.waiting_times == (1.0, 3.0)
    assert burst.throughput == pytest.approx(2 / 9)
    assert burst.latency.p50 == 8.0


def test_siblings_on_one_node_queue_behind_each_other() -> None:
    # b and c share n0 with a and d: one frame takes 1 + 2 + 3 + 1 = 7 s, but its
    # critical path of exec + transfer is a, c, d = 5 s; the 2 s is b in front of c.
    p, mapping = diamond(same_node=True)
    pred = predict_stream(p, mapping, ArrivalProcess.sequential(1))
    assert pred.work == 5.0
    assert pred.latencies == (7.0,)
    assert pred.waiting_times == (2.0,)


def test_several_entry_and_exit_tasks() -> None:
    nodes = ["n0", "n1"]
    # Two independent two-task chains: x0 -> x1 and y0 -> y1, both entries at arrival.
    p = Problem(
        ["x0", "y0", "x1", "y1"],
        nodes,
        [[1.0, 1.0], [2.0, 2.0], [4.0, 4.0], [1.0, 1.0]],
        [Edge("x0", "x1", 1.0), Edge("y0", "y1", 1.0)],
        full_links(nodes, b=0.0, c=0.25),
    )
    mapping = {"x0": "n0", "x1": "n1", "y0": "n1", "y1": "n0"}
    pred = predict_stream(p, mapping, ArrivalProcess.sequential(2))
    # y0 runs 0-2 on n1, so x1, whose data is there at 1.25, waits: 2-6. y1 runs 2.25-3.25
    # on n0. The longest exec + transfer path is x0, x1 = 1 + 0.25 + 4; the rest is queueing.
    assert pred.latencies == (6.0, 6.0)
    assert pred.work == 5.25
    assert pred.waiting_times == (0.75, 0.75)
    assert pipeline_periods(p, mapping).node == {"n0": 2.0, "n1": 6.0}


def test_sustainable_rate_is_one_over_the_largest_node_period() -> None:
    p, mapping = diamond()
    periods = pipeline_periods(p, mapping)
    assert periods.node == {"n0": 4.0, "n1": 3.0}
    assert periods.uplink == {}
    assert (periods.period, periods.bottleneck) == (4.0, "node n0")
    assert periods.sustainable_rate == 0.25
    # The simulation agrees: just below that rate frames leave as fast as they come
    # and latency stays bounded; just above, the node is flagged.
    below = predict_stream(p, mapping, ArrivalProcess.fixed(rate=0.24, frames=2000))
    assert below.stable
    assert below.throughput == pytest.approx(0.24, rel=0.01)
    assert max(below.latencies[-200:]) <= max(below.latencies[:200]) + 1e-9
    above = predict_stream(p, mapping, ArrivalProcess.fixed(rate=0.26, frames=200))
    assert not above.stable
    assert above.utilisation["n0"] == pytest.approx(1.04)


def test_uplink_model_serialises_a_senders_transfers() -> None:
    nodes = ["n0", "n1", "n2"]
    p = Problem(
        ["a", "b", "c"],
        nodes,
        [[1.0] * 3, [1.0] * 3, [1.0] * 3],
        [Edge("a", "b", 1.0), Edge("a", "c", 1.0)],
        full_links(nodes, b=1.0),
    )
    mapping = {"a": "n0", "b": "n1", "c": "n2"}
    # Independent links: both transfers 1-2, b and c run 2-3. Uplink: b's transfer 1-2, c's 2-3.
    independent = predict_stream(p, mapping, ArrivalProcess.sequential(1))
    uplink = predict_stream(p, mapping, ArrivalProcess.sequential(1), links="uplink")
    assert independent.latencies == (3.0,)
    assert uplink.latencies == (4.0,)
    assert uplink.work == 3.0 and uplink.waiting_times == (1.0,)
    periods = pipeline_periods(p, mapping, links="uplink")
    assert periods.uplink == {"n0": 2.0, "n1": 0.0, "n2": 0.0}
    assert (periods.period, periods.bottleneck) == (2.0, "uplink of n0")
    at_rate = predict_stream(p, mapping, ArrivalProcess.fixed(rate=0.4, frames=10), links="uplink")
    assert at_rate.uplink_utilisation["n0"] == pytest.approx(0.8)
    assert at_rate.max_utilisation == pytest.approx(0.8)


def test_an_uplink_is_held_for_the_bytes_and_the_latency_overlaps() -> None:
    nodes = ["n0", "n1", "n2"]
    p = Problem(
        ["a", "b", "c"],
        nodes,
        [[1.0] * 3, [1.0] * 3, [1.0] * 3],
        [Edge("a", "b", 1.0), Edge("a", "c", 1.0)],
        full_links(nodes, b=1.0, c=0.5),
    )
    mapping = {"a": "n0", "b": "n1", "c": "n2"}
    # a 0-1; its uplink holds b's byte 1-2 (there at 2.5) and c's 2-3 (there at 3.5, the latency
    # of b's transfer overlapping c's bytes); b 2.5-3.5, c 3.5-4.5. Independent links: both at 2.5.
    uplink = predict_stream(p, mapping, ArrivalProcess.sequential(1), links="uplink")
    assert uplink.latencies == (4.5,)
    assert uplink.work == 3.5 and uplink.waiting_times == (1.0,)
    assert predict_stream(p, mapping, ArrivalProcess.sequential(1)).latencies == (3.5,)
    # The uplink is busy 2 s per frame (the bytes), not 3 s (bytes and latencies).
    periods = pipeline_periods(p, mapping, links="uplink")
    assert periods.uplink == {"n0": 2.0, "n1": 0.0, "n2": 0.0}
    assert (periods.period, periods.bottleneck) == (2.0, "uplink of n0")
    for queues in ("task", "node"):
        pred = predict_stream(p, mapping, ArrivalProcess.sequential(1), links="uplink", queues=queues)
        assert pred.latencies == (4.5,)


def test_task_queues_let_the_tasks_of_a_node_take_turns() -> None:
    p = one_node_chain([1.0, 1.0])
    mapping = {"t0": "n0", "t1": "n0"}
    # Three frames at once. One FIFO queue per node, in ready order: t0 of every frame is
    # ready at 0, before any t1, so t0 runs for frames 0, 1, 2 (0-3), then t1 (3-6).
    node = predict_stream(p, mapping, ArrivalProcess.burst(3), queues="node")
    assert node.latencies == (4.0, 5.0, 6.0)
    # A queue per task, as the runtime has: when t0 of frame 0 ends, t1's runner has its frame
    # and asks for the node before t0's runner asks again, so the tasks take turns.
    task = predict_stream(p, mapping, ArrivalProcess.burst(3), queues="task")
    assert task.latencies == (2.0, 4.0, 6.0)
    assert task.waiting_times == (0.0, 2.0, 4.0)
    assert predict_stream(p, mapping, ArrivalProcess.burst(3)).latencies == task.latencies  # the default
    assert task.throughput == node.throughput == 0.5
    assert task.notes()["queues"] == "task" and node.notes()["queues"] == "node"


def test_task_queues_serve_the_waiting_runners_in_the_order_they_asked() -> None:
    nodes = ["n0", "n1"]
    # x (n1, 3 s) feeds y (n0, 1 s); z (n0, 2 s) is a second entry task. Frames at 0 and 1.
    p = Problem(
        ["x", "z", "y"],
        nodes,
        [[3.0, 3.0], [2.0, 2.0], [1.0, 1.0]],
        [Edge("x", "y", 1.0)],
        full_links(nodes, b=0.0, c=0.0),
    )
    mapping = {"x": "n1", "z": "n0", "y": "n0"}
    # n0: z0 0-2; z1 is ready at 1 and its runner waits from 2 (after z0), so it runs 2-4;
    # y0's input comes at 3 and waits behind z1: 4-5. Frame 1: x1 3-6 on n1, y1 6-7.
    pred = predict_stream(p, mapping, ArrivalProcess.fixed(rate=1.0, frames=2))
    assert pred.latencies == (5.0, 6.0)
    assert pred.work == 4.0
    # One FIFO queue per node gives the same here: z1 (ready at 1) is before y0 (ready at 3).
    assert predict_stream(p, mapping, ArrivalProcess.fixed(rate=1.0, frames=2), queues="node").latencies == (5.0, 6.0)


def test_ingress_and_egress_add_to_work_and_use_the_uplink() -> None:
    p = one_node_chain([1.0, 2.0])
    mapping = {"t0": "n0", "t1": "n0"}
    pred = predict_stream(p, mapping, ArrivalProcess.sequential(1), ingress={"n0": 0.5}, egress={"n0": 0.25})
    assert pred.work == 3.75
    assert pred.latencies == (3.75,)
    up = pipeline_periods(p, mapping, links="uplink", egress={"n0": 0.25})
    assert up.uplink == {"n0": 0.25}
    with pytest.raises(ValueError, match="ingress names unknown node 'n9'"):
        predict_stream(p, mapping, ArrivalProcess.sequential(1), ingress={"n9": 1.0})
    with pytest.raises(ValueError, match="egress of node 'n0' is -1"):
        predict_stream(p, mapping, ArrivalProcess.sequential(1), egress={"n0": -1.0})


def test_poisson_arrivals_are_reproducible_from_the_seed() -> None:
    p = random_instance(14, 3, seed=2).problem()
    mapping = get_mapper("heft").schedule(p).mapping()
    rate = 0.5 * pipeline_periods(p, mapping).sustainable_rate
    first = predict_stream(p, mapping, ArrivalProcess.poisson(rate, frames=300, seed=7))
    again = predict_stream(p, mapping, ArrivalProcess.poisson(rate, frames=300, seed=7))
    other = predict_stream(p, mapping, ArrivalProcess.poisson(rate, frames=300, seed=8))
    assert first == again
    assert first.latencies == again.latencies
    assert first.latencies != other.latencies
    assert ArrivalProcess.poisson(rate, 5, seed=7).times() == ArrivalProcess.poisson(rate, 5, seed=7).times()


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_one_task_under_poisson_matches_pollaczek_khinchine(rho: float) -> None:
    # M/D/1: service S = 1 s at rate rho frames/s; mean wait rho * S / (2 (1 - rho)):
    # 0.5 s at rho = 0.5, 2 s at rho = 0.8. With 100 000 frames the sample mean is within
    # about 3 % over seeds 0-7 at both loads; 6 % leaves room, and the fixed seed makes
    # the run reproducible anyway.
    p = one_node_chain([1.0])
    pred = predict_stream(p, {"t0": "n0"}, ArrivalProcess.poisson(rho, frames=100_000, seed=1), warmup=1000)
    expected_wait = rho / (2 * (1 - rho))
    assert pred.utilisation["n0"] == rho
    assert pred.waiting.mean == pytest.approx(expected_wait, rel=0.06)
    assert pred.latency.mean == pytest.approx(1 + expected_wait, rel=0.06)
    assert pred.throughput == pytest.approx(rho, rel=0.02)


def test_latency_is_work_plus_waiting_for_every_frame() -> None:
    p = random_instance(30, 4, seed=5).problem()
    mapping = get_mapper("heft").schedule(p).mapping()
    rate = 0.7 * pipeline_periods(p, mapping).sustainable_rate
    for links in ("independent", "uplink"):
        pred = predict_stream(p, mapping, ArrivalProcess.poisson(rate, frames=500, seed=3), links=links, warmup=100)
        assert len(pred.latencies) == len(pred.waiting_times) == 400
        assert all(w >= 0 for w in pred.waiting_times)
        for lat, wait in zip(pred.latencies, pred.waiting_times, strict=True):
            assert lat == pytest.approx(pred.work + wait, rel=1e-12, abs=1e-9)
        assert pred.latency.p50 <= pred.latency.p95 <= pred.latency.p99
        assert min(pred.latencies) >= pred.work - 1e-9


def test_burst_of_frames_on_one_node_leaves_one_by_one() -> None:
    p = one_node_chain([2.0])
    pred = predict_stream(p, {"t0": "n0"}, ArrivalProcess.burst(4))
    assert pred.latencies == (2.0, 4.0, 6.0, 8.0)
    assert pred.throughput == 0.5
    assert pred.stable  # a finite burst always drains
    assert pred.utilisation["n0"] == 1.0  # measured throughput x period


def test_a_problem_without_tasks() -> None:
    p = Problem([], ["n0"], [])
    pred = predict_stream(p, {}, ArrivalProcess.fixed(rate=1.0, frames=3))
    assert pred.latencies == (0.0, 0.0, 0.0)
    assert pred.work == 0.0
    assert math.isinf(pred.sustainable_rate)


def test_notes_are_strings_for_a_schedule() -> None:
    p, mapping = diamond()
    notes = predict_stream(p, mapping, ArrivalProcess.poisson(0.1, frames=50, seed=0)).notes()
    assert notes["rate"] == "0.1"
    assert notes["bottleneck"] == "node n0"
    assert notes["utilisation"] == "n0=0.4 n1=0.3"
    assert notes["sustainable_rate"] == "0.25"
    assert all(isinstance(v, str) for v in notes.values())


def test_bad_inputs_are_refused_with_a_reason() -> None:
    p, mapping = diamond()
    with pytest.raises(ValueError, match="poisson arrivals need a finite rate > 0"):
        ArrivalProcess("poisson", 10)
    with pytest.raises(ValueError, match="frames >= 1"):
        ArrivalProcess.burst(0)
    with pytest.raises(ValueError, match="burst arrivals take no rate"):
        ArrivalProcess("burst", 3, rate=1.0)
    with pytest.raises(ValueError, match="unknown arrival kind"):
        ArrivalProcess("steady", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="warmup must be an integer in"):
        predict_stream(p, mapping, ArrivalProcess.burst(2), warmup=2)
    with pytest.raises(ValueError, match="unknown link model 'shared'"):
        predict_stream(p, mapping, ArrivalProcess.burst(2), links="shared")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown queue model 'lifo'; use 'task' or 'node'"):
        predict_stream(p, mapping, ArrivalProcess.burst(2), queues="lifo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown node 'n7'"):
        predict_stream(p, {**mapping, "a": "n7"}, ArrivalProcess.burst(2))
    missing = Problem(["a", "b"], ["n0", "n1"], [[1.0, 1.0], [1.0, 1.0]], [Edge("a", "b", 1.0)])
    with pytest.raises(ValueError, match="which has no link"):
        predict_stream(missing, {"a": "n0", "b": "n1"}, ArrivalProcess.burst(1))
    assert predict_stream(missing, {"a": "n1", "b": "n1"}, ArrivalProcess.burst(1)).latencies == (2.0,)
    assert LinkCost(0.0, 1.0, 0.0).time(2.0) == 2.0
