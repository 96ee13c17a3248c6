"""Emulation in the agents: shaped transfers share a link's bandwidth; slow nodes take longer."""

from __future__ import annotations

import asyncio
import time

import pytest

from jupiter.runtime.emulation import Emulation, dilate
from jupiter.testbed import Testbed

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
