"""Emulation in the agents: shaped transfers share a link's bandwidth; slow nodes take longer."""

from __future__ import annotations

import asyncio
import math
import statistics
import time

import pytest

from jupiter.model.testbed import Testbed
from jupiter.runtime.emulation import Emulation, SendCost, dilate, wait_until

# 8 Mbit/s = 1e6 bytes/s, 50 ms latency from a to b; c has its own uplink.
TESTBED = Testbed(
    speeds={"slow": 0.5},
    links={("a", "b"): (1e6, 0.05)},
    uplinks={"c": (1e6, 0.0)},
)


def _timed(coroutine_factory: object) -> float:
    async def main() -> float:
        started = time.perf_counter()
        await coroutine_factory()  # type: ignore[operator]
        return time.perf_counter() - started

    return asyncio.run(main())


def test_one_transfer_waits_latency_plus_size_over_bandwidth() -> None:
    emulation = Emulation("a", TESTBED)
    elapsed = _timed(lambda: emulation.shape("b", [100_000]))
    assert elapsed == pytest.approx(0.15, abs=0.03)
    assert emulation.transfer_delay("b", [100_000]) == pytest.approx(0.15)


def test_transfers_on_one_link_share_its_bandwidth_but_not_its_latency() -> None:
    emulation = Emulation("a", TESTBED)

    async def two() -> None:
        await asyncio.gather(emulation.shape("b", [100_000]), emulation.shape("b", [100_000]))

    # Both on the wire one after the other (0.2 s), the latency overlaps (+0.05 s).
    assert _timed(two) == pytest.approx(0.25, abs=0.04)


def test_a_batch_costs_the_sum_of_its_message_sizes() -> None:
    emulation = Emulation("c", TESTBED)
    assert _timed(lambda: emulation.shape("d", [50_000, 50_000, 100_000])) == pytest.approx(0.2, abs=0.03)


def test_unshaped_links_and_the_node_itself_cost_nothing() -> None:
    assert _timed(lambda: Emulation("b", TESTBED).shape("a", [10**9])) < 0.02
    assert _timed(lambda: Emulation("a", None).shape("b", [10**9])) < 0.02
    assert Emulation("a", TESTBED).worker_env() == {}
    assert Emulation("slow", TESTBED).worker_env() == {"JUPITER_EMULATED_SPEED": "0.5"}


def test_waits_end_within_a_fraction_of_a_millisecond() -> None:
    # asyncio's timers alone fire up to ~2 ms late (whole milliseconds, rounded up):
    # a 1.2 ms wait would typically take 2 ms and more.
    async def lateness(seconds: float) -> float:
        deadline = time.perf_counter() + seconds
        await wait_until(deadline)
        return time.perf_counter() - deadline

    async def main() -> list[float]:
        return [await lateness(seconds) for seconds in (0.0003, 0.0012, 0.0047, 0.0082) for _ in range(5)]

    late = asyncio.run(main())
    assert min(late) >= 0
    assert statistics.median(late) < 0.0002, late


def test_a_fast_link_takes_its_emulated_time_to_a_fraction_of_a_millisecond() -> None:
    # 100 Mbit/s without latency: 10 KB take 0.82 ms.
    emulation = Emulation("a", Testbed(links={("a", "b"): (12.5e6, 0.0)}))

    async def main() -> list[float]:
        times = []
        for _ in range(9):
            started = time.perf_counter()
            await emulation.shape("b", [10_240])
            times.append(time.perf_counter() - started)
        return times

    assert statistics.median(asyncio.run(main())) == pytest.approx(10_240 / 12.5e6, abs=0.0002)


def _transmit_times(emulation: Emulation, size: int, send_seconds: float, count: int) -> list[tuple[float, float]]:
    """(total, sent) of `count` transfers whose real send takes `send_seconds`: total time, and when the send ended."""

    async def main() -> list[tuple[float, float]]:
        out = []
        for _ in range(count):
            started = time.perf_counter()
            async with emulation.transmit("b", [size]):
                time.sleep(send_seconds)  # the real send, as the CPU would do it
                sent = time.perf_counter() - started
            out.append((time.perf_counter() - started, sent))
        return out

    return asyncio.run(main())


def test_the_real_send_happens_inside_the_emulated_time_not_on_top_of_it() -> None:
    emulation = Emulation("a", TESTBED)  # 1e6 bytes/s, 50 ms
    first, *later = _transmit_times(emulation, 50_000, 0.02, 4)
    # Nothing learned yet: the send starts at the deadline and adds to it.
    assert first[0] == pytest.approx(0.1 + 0.02, abs=0.01)
    for total, sent in later:
        # max(real, emulated): the transfer takes the link's 0.1 s, and the data
        # left no later than the link would have delivered it.
        assert total == pytest.approx(0.1, abs=0.005)
        assert 0.06 <= sent <= 0.1 + 0.005


def test_a_send_slower_than_the_link_takes_its_own_time() -> None:
    emulation = Emulation("c", TESTBED)  # c's uplink: 1e6 bytes/s, no latency
    _transmit_times(emulation, 10_000, 0.03, 2)  # learns what sending takes
    for total, _ in _transmit_times(emulation, 10_000, 0.03, 3):
        assert total == pytest.approx(0.03, abs=0.005)  # not 10 ms + 30 ms


def test_the_real_send_never_overlaps_the_latency() -> None:
    # Where the kernel shapes bandwidth (docker), the agents' links have unlimited bandwidth
    # and the real send is the time on the wire: the latency comes on top of it.
    emulation = Emulation("a", Testbed(links={("a", "b"): (math.inf, 0.05)}))
    for total, sent in _transmit_times(emulation, 100_000, 0.03, 3):
        assert total == pytest.approx(0.05 + 0.03, abs=0.005)
        assert sent == pytest.approx(0.05 + 0.03, abs=0.005)
    assert _timed(lambda: emulation.shape("b", [100_000])) == pytest.approx(0.05, abs=0.01)


def test_shape_ends_when_a_send_should_start_once_the_cost_is_known() -> None:
    emulation = Emulation("a", TESTBED)
    emulation.send_cost("b").add(100_000, 0.03)
    elapsed = _timed(lambda: emulation.shape("b", [100_000]))
    assert elapsed == pytest.approx(0.15 - 0.03, abs=0.01)


def test_a_failed_send_is_not_waited_for() -> None:
    emulation = Emulation("a", TESTBED)
    emulation.send_cost("b").add(100_000, 0.05)  # the send starts 2 x 50 ms before the 0.15 s deadline

    async def main() -> None:
        async with emulation.transmit("b", [100_000]):
            raise ConnectionResetError

    started = time.perf_counter()
    with pytest.raises(ConnectionResetError):
        asyncio.run(main())
    # The wait before the send happened, the one after it did not.
    assert time.perf_counter() - started == pytest.approx(0.05, abs=0.03)


def test_send_cost_fits_overhead_and_bytes_and_ignores_a_slow_outlier() -> None:
    cost = SendCost()
    assert cost.estimate(1_000_000) == 0.0
    for size in (1_000, 10_000, 100_000, 1_000_000):
        for _ in range(3):
            cost.add(size, 0.0001 + size * 3e-9)
    cost.add(10_000, 0.5)  # a send stalled by the scheduler
    assert cost.overhead == pytest.approx(0.0001, rel=0.01)
    assert cost.per_byte == pytest.approx(3e-9, rel=0.01)
    assert cost.estimate(10_000_000) == pytest.approx(0.0301, rel=0.01)


def test_send_cost_of_one_size_is_proportional_and_never_negative() -> None:
    cost = SendCost()
    cost.add(1_000, 0.002)
    assert cost.estimate(2_000) == pytest.approx(0.004)
    falling = SendCost()  # more bytes never cost less
    falling.add(1_000, 0.003)
    falling.add(100_000, 0.001)
    assert falling.per_byte == 0.0
    assert falling.overhead == pytest.approx(0.003)


def test_set_speed_overrides_the_testbed() -> None:
    emulation = Emulation("slow", TESTBED)
    emulation.set_speed(0.25)
    assert emulation.speed == 0.25
    assert emulation.worker_env() == {"JUPITER_EMULATED_SPEED": "0.25"}
    emulation.set_speed(1)
    assert emulation.speed == 1.0
    assert emulation.worker_env() == {}
    plain = Emulation("a", None)
    plain.set_speed(0.5)
    assert plain.speed == 0.5
    assert plain.worker_env() == {"JUPITER_EMULATED_SPEED": "0.5"}


@pytest.mark.parametrize("speed", [0.0, -0.5, 1.5, math.nan, math.inf])
def test_set_speed_refuses_factors_outside_0_to_1(speed: float) -> None:
    emulation = Emulation("slow", TESTBED)
    with pytest.raises(ValueError, match=r"speed factor must be in \(0, 1\]"):
        emulation.set_speed(speed)
    assert emulation.speed == 0.5


def test_a_node_slowed_at_run_time_runs_one_task_at_a_time() -> None:
    emulation = Emulation("a", None)
    emulation.set_speed(0.5)

    async def task() -> None:
        async with emulation.processor():
            await asyncio.sleep(0.05)

    async def two() -> None:
        await asyncio.gather(task(), task())

    assert _timed(two) == pytest.approx(0.1, abs=0.03)


def test_dilation_pads_a_task_to_its_cpu_time_over_the_speed() -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    deadline = cpu + 0.05
    while time.process_time() < deadline:
        pass
    burnt = time.process_time() - cpu
    dilate(wall, cpu, speed=0.25)
    assert time.perf_counter() - wall == pytest.approx(burnt / 0.25, rel=0.1)


def test_waiting_is_not_dilated() -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    time.sleep(0.05)
    dilate(wall, cpu, speed=0.25)
    assert time.perf_counter() - wall < 0.08
