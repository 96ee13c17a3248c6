"""Emulation in the agents: shaped transfers share a link's bandwidth; slow nodes take longer.

How long a shaped transfer waits is worked out from the clock, so most tests
run on a virtual clock (`clock`): waits end exactly at their deadline and a
"real send" advances the clock by what it is said to take. They check the
schedule the emulation computes, exactly, and cannot be disturbed by a
loaded machine. A few tests use the real clock, and check only what holds
whatever else runs on the machine: a wait never ends before its deadline,
and ends within a generous bound after it (a loaded 2-core machine may keep
a process off the CPU for tens of milliseconds; 0.5 s is ten times that).
How close to the deadline real waits end, and how exact a fast link is in
real time, are measured by `bench/testbed/emulation_precision.py`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

import pytest

from jupiter.model.testbed import Testbed
from jupiter.runtime import emulation as emulation_module
from jupiter.runtime.emulation import Emulation, SendCost, dilate, wait_until
from tests.profiling.virtual_clock import VirtualClock, install

# 8 Mbit/s = 1e6 bytes/s, 50 ms latency from a to b; c has its own uplink.
TESTBED = Testbed(
    speeds={"slow": 0.5},
    links={("a", "b"): (1e6, 0.05)},
    uplinks={"c": (1e6, 0.0)},
)
SLACK = 0.5
"""Seconds a real wait may end after its deadline on a loaded machine (module docstring)."""


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    return install(monkeypatch)


def _timed(clock: VirtualClock, coroutine_factory: Callable[[], Awaitable[object]]) -> float:
    async def main() -> float:
        started = clock.now
        await coroutine_factory()
        return clock.now - started

    return asyncio.run(main())


def _real_time(coroutine_factory: Callable[[], Awaitable[object]]) -> float:
    async def main() -> float:
        started = time.perf_counter()
        await coroutine_factory()
        return time.perf_counter() - started

    return asyncio.run(main())


def test_one_transfer_waits_latency_plus_size_over_bandwidth(clock: VirtualClock) -> None:
    emulation = Emulation("a", TESTBED)
    assert _timed(clock, lambda: emulation.shape("b", [100_000])) == pytest.approx(0.15)
    assert emulation.transfer_delay("b", [100_000]) == pytest.approx(0.15)


def test_a_real_shaped_transfer_is_never_shorter_than_the_link_allows() -> None:
    # Real clock: waits never end early; how late they end depends on the machine's load.
    emulation = Emulation("a", TESTBED)
    elapsed = _real_time(lambda: emulation.shape("b", [100_000]))
    assert 0.15 <= elapsed < 0.15 + SLACK


def test_transfers_on_one_link_share_its_bandwidth_but_not_its_latency(clock: VirtualClock) -> None:
    emulation = Emulation("a", TESTBED)

    async def two() -> None:
        await asyncio.gather(emulation.shape("b", [100_000]), emulation.shape("b", [100_000]))

    # Both on the wire one after the other (0.2 s), the latency overlaps (+0.05 s).
    assert _timed(clock, two) == pytest.approx(0.25)
    assert sorted(clock.waits) == pytest.approx([1000.15, 1000.25])


def test_a_batch_costs_the_sum_of_its_message_sizes(clock: VirtualClock) -> None:
    emulation = Emulation("c", TESTBED)
    assert _timed(clock, lambda: emulation.shape("d", [50_000, 50_000, 100_000])) == pytest.approx(0.2)


def test_unshaped_links_and_the_node_itself_cost_nothing(clock: VirtualClock) -> None:
    assert _timed(clock, lambda: Emulation("b", TESTBED).shape("a", [10**9])) == 0.0
    assert _timed(clock, lambda: Emulation("a", None).shape("b", [10**9])) == 0.0
    assert clock.waits == []
    assert Emulation("a", TESTBED).worker_env() == {}
    assert Emulation("slow", TESTBED).worker_env() == {"JUPITER_EMULATED_SPEED": "0.5"}


def test_real_waits_never_end_before_their_deadline() -> None:
    # What a loaded machine cannot break: the clock has passed the deadline when
    # wait_until returns. (How soon after, unloaded: bench/testbed/emulation_precision.py.)
    async def lateness(seconds: float) -> float:
        deadline = time.perf_counter() + seconds
        await wait_until(deadline)
        return time.perf_counter() - deadline

    async def main() -> list[float]:
        return [await lateness(seconds) for seconds in (0.0, 0.0003, 0.0012, 0.0047, 0.0082) for _ in range(3)]

    late = asyncio.run(main())
    assert min(late) >= 0
    assert max(late) < SLACK, late


def test_a_fast_link_takes_exactly_its_emulated_time(clock: VirtualClock) -> None:
    # 100 Mbit/s without latency: 10 KB take 0.82 ms, one after the other.
    emulation = Emulation("a", Testbed(links={("a", "b"): (12.5e6, 0.0)}))

    async def main() -> list[float]:
        times = []
        for _ in range(3):
            started = clock.now
            await emulation.shape("b", [10_240])
            times.append(clock.now - started)
        return times

    assert asyncio.run(main()) == pytest.approx([10_240 / 12.5e6] * 3)


def _transmit_times(
    clock: VirtualClock, emulation: Emulation, size: int, send_seconds: float, count: int
) -> list[tuple[float, float]]:
    """(total, sent) of `count` transfers whose real send takes `send_seconds`: total time, and when the send ended."""

    async def main() -> list[tuple[float, float]]:
        out = []
        for _ in range(count):
            started = clock.now
            async with emulation.transmit("b", [size]):
                clock.advance(send_seconds)  # the real send, as the CPU would do it
                sent = clock.now - started
            out.append((clock.now - started, sent))
        return out

    return asyncio.run(main())


def test_the_real_send_happens_inside_the_emulated_time_not_on_top_of_it(clock: VirtualClock) -> None:
    emulation = Emulation("a", TESTBED)  # 1e6 bytes/s, 50 ms
    first, *later = _transmit_times(clock, emulation, 50_000, 0.02, 4)
    # Nothing learned yet: the send starts at the deadline and adds to it.
    assert first[0] == pytest.approx(0.1 + 0.02)
    for total, sent in later:
        # max(real, emulated): the transfer takes the link's 0.1 s, and the data
        # left no later than the link would have delivered it: the send starts
        # twice its expected time before the 0.1 s deadline.
        assert total == pytest.approx(0.1)
        assert sent == pytest.approx(0.1 - 2 * 0.02 + 0.02)


def test_a_send_slower_than_the_link_takes_its_own_time(clock: VirtualClock) -> None:
    emulation = Emulation("c", TESTBED)  # c's uplink: 1e6 bytes/s, no latency
    _transmit_times(clock, emulation, 10_000, 0.03, 2)  # learns what sending takes
    for total, _ in _transmit_times(clock, emulation, 10_000, 0.03, 3):
        assert total == pytest.approx(0.03)  # not 10 ms + 30 ms


def test_the_real_send_never_overlaps_the_latency(clock: VirtualClock) -> None:
    # Where the kernel shapes bandwidth (docker), the agents' links have unlimited bandwidth
    # and the real send is the time on the wire: the latency comes on top of it.
    emulation = Emulation("a", Testbed(links={("a", "b"): (math.inf, 0.05)}))
    for total, sent in _transmit_times(clock, emulation, 100_000, 0.03, 3):
        assert total == pytest.approx(0.05 + 0.03)
        assert sent == pytest.approx(0.05 + 0.03)
    assert _timed(clock, lambda: emulation.shape("b", [100_000])) == pytest.approx(0.05)


def test_shape_ends_when_a_send_should_start_once_the_cost_is_known(clock: VirtualClock) -> None:
    emulation = Emulation("a", TESTBED)
    emulation.send_cost("b").add(100_000, 0.03)
    assert _timed(clock, lambda: emulation.shape("b", [100_000])) == pytest.approx(0.15 - 0.03)


def test_a_failed_send_is_not_waited_for(clock: VirtualClock) -> None:
    emulation = Emulation("a", TESTBED)
    emulation.send_cost("b").add(100_000, 0.05)  # the send starts 2 x 50 ms before the 0.15 s deadline

    async def main() -> None:
        async with emulation.transmit("b", [100_000]):
            raise ConnectionResetError

    started = clock.now
    with pytest.raises(ConnectionResetError):
        asyncio.run(main())
    # The wait before the send happened, the one after it did not.
    assert clock.now - started == pytest.approx(0.05)
    assert len(clock.waits) == 1


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
    timeline: list[str] = []

    async def task(name: str) -> None:
        async with emulation.processor():
            timeline.append(f"{name} starts")
            await asyncio.sleep(0.01)
            timeline.append(f"{name} ends")

    async def two() -> None:
        await asyncio.gather(task("first"), task("second"))

    asyncio.run(two())
    assert timeline == ["first starts", "first ends", "second starts", "second ends"]


def test_a_node_at_full_speed_runs_tasks_side_by_side() -> None:
    emulation = Emulation("a", None)
    timeline: list[str] = []

    async def task(name: str) -> None:
        async with emulation.processor():
            timeline.append(f"{name} starts")
            await asyncio.sleep(0.01)
            timeline.append(f"{name} ends")

    async def two() -> None:
        await asyncio.gather(task("first"), task("second"))

    asyncio.run(two())
    assert timeline[:2] == ["first starts", "second starts"]


class _FakeClocks:
    """`time` of the emulation module for `dilate`: a CPU clock and a wall clock the test sets; sleeps recorded."""

    def __init__(self, cpu: float, wall: float) -> None:
        self.cpu, self.wall = cpu, wall
        self.slept: list[float] = []

    def process_time(self) -> float:
        return self.cpu

    def perf_counter(self) -> float:
        return self.wall

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.wall += seconds


def test_dilation_pads_a_task_to_its_cpu_time_over_the_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    clocks = _FakeClocks(cpu=10.0, wall=100.0)
    monkeypatch.setattr(emulation_module, "time", clocks)
    clocks.cpu += 0.05  # the task computed for 50 ms of CPU ...
    clocks.wall += 0.06  # ... in 60 ms of wall time
    dilate(100.0, 10.0, speed=0.25)
    assert clocks.slept == [pytest.approx(0.05 / 0.25 - 0.06)]
    assert clocks.wall - 100.0 == pytest.approx(0.2)


def test_waiting_is_not_dilated(monkeypatch: pytest.MonkeyPatch) -> None:
    clocks = _FakeClocks(cpu=10.0, wall=100.0)
    monkeypatch.setattr(emulation_module, "time", clocks)
    clocks.cpu += 0.001  # a task that waited 50 ms and computed for 1 ms
    clocks.wall += 0.05
    dilate(100.0, 10.0, speed=0.25)
    assert clocks.slept == []


def test_dilation_really_pads_a_busy_task() -> None:
    # Real clocks: the padding makes the wall time at least cpu / speed, whatever the load.
    wall, cpu = time.perf_counter(), time.process_time()
    deadline = cpu + 0.02
    while time.process_time() < deadline:
        pass
    dilate(wall, cpu, speed=0.25)
    burnt = time.process_time() - cpu
    assert time.perf_counter() - wall >= 0.02 / 0.25
    assert time.perf_counter() - wall < burnt / 0.25 + SLACK
