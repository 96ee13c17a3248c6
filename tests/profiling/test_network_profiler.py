"""The network profiler over the real data plane and an emulated link: the fit predicts transfers.

The probes really travel over the data plane, but how long each one took is
read from a virtual clock (`tests.profiling.virtual_clock`) on which a real
send costs a fixed, known time: what the tests check — that the profiler
measures the emulated link rather than the loopback on top of it, and that
the fit predicts the measured transfers — then does not depend on how busy
the machine is. One test uses the real clock and checks only what load
cannot break (a probe never takes less than the link allows, and ends
within a generous bound). The accuracy of real profiles (within 15% on
emulated links of 1-100 Mbit/s) is measured by `bench/testbed/testbed_bench.py accuracy`.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest

from jupiter.model.plan import NodeAddress, PlanProfiling
from jupiter.model.testbed import Testbed
from jupiter.profiling.fit import fit_link
from jupiter.runtime.emulation import Emulation
from jupiter.runtime.extensions import probing as probing_module
from jupiter.runtime.extensions.probing import Probing
from jupiter.runtime.peers import Peer
from jupiter.runtime.protocol import check, read_message, refusal_reply
from tests.profiling.virtual_clock import VirtualClock, install

TOKEN = "t" * 32
SEND_OVERHEAD = 1e-4
SEND_PER_BYTE = 1e-9
"""What one real send costs on the virtual clock: 0.1 ms plus 1 ms per MB (about the loopback's)."""
SLACK = 0.5
"""Seconds a real probe may take beyond the link's time on a loaded 2-core machine (tens of ms of
scheduling delay per probe, ten times over)."""


async def _receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """What an agent does with a probe: read it, check token and checksum, answer."""
    while (message := await read_message(reader)) is not None:
        problem = check(message, TOKEN)
        writer.write(refusal_reply(problem))
        await writer.drain()
    writer.close()


async def _profiler(mbit: float, latency: float) -> tuple[Probing, asyncio.Server]:
    """A profiler on node a whose link to a receiver b has this shape."""
    server = await asyncio.start_server(_receiver, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    testbed = Testbed(links={("a", "b"): (mbit * 1e6 / 8, latency)})
    agent = SimpleNamespace(
        node="a",
        token=TOKEN,
        plan=SimpleNamespace(profiling=PlanProfiling(), nodes={"b": NodeAddress("b", "compute", "127.0.0.1", port, 0)}),
        emulation=Emulation("a", testbed),
    )
    return Probing(cast(Any, agent)), server


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """The profiler and the emulation on a virtual clock; each real send advances it by its simulated cost."""
    virtual = install(monkeypatch, probing_module)

    class TimedPeer(Peer):
        async def send(self, header: dict[str, Any], payload: bytes) -> int:
            attempts = await super().send(header, payload)
            virtual.advance(SEND_OVERHEAD + SEND_PER_BYTE * len(payload))
            return attempts

    monkeypatch.setattr(probing_module, "Peer", TimedPeer)
    return virtual


def _measure(mbit: float, latency: float, sizes: list[int], samples: int) -> list[tuple[int, float]]:
    async def main() -> list[tuple[int, float]]:
        service, server = await _profiler(mbit, latency)
        try:
            return await service.measure("b", sizes, samples)
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(main())


# 100 Mbit/s without latency moves 10 KB in 0.82 ms: the emulation must be exact to a fraction of a millisecond.
@pytest.mark.parametrize(("mbit", "latency"), [(10, 0.010), (10, 0.0), (100, 0.050), (100, 0.0)])
def test_the_fit_predicts_measured_transfers(clock: VirtualClock, mbit: int, latency: float) -> None:
    points = _measure(mbit, latency, [1024, 10 * 1024, 100 * 1024, 1024 * 1024], 3)
    fit = fit_link("a", "b", points, time.time())
    measured = _measure(mbit, latency, [10_240, 500_000, 1024 * 1024], 3)
    for size in (10_240, 500_000, 1024 * 1024):
        seconds = statistics.median(t for z, t in measured if z == size)
        # The measurements are exact here; what is left is the fit's own error: at 100 Mbit/s a
        # 1 KB probe is bound by the send (0.1 ms), not the link, and bends the curve by about 1%.
        assert fit.predict(size) == pytest.approx(seconds, rel=0.03), f"{size} bytes"


def test_the_profiler_measures_the_emulated_link_not_the_loopback_on_top(clock: VirtualClock) -> None:
    # The real send happens inside the emulated time: 100 Mbit/s costs s / 12.5e6 seconds, not that plus the send.
    for size, seconds in _measure(100, 0.0, [10_240, 102_400, 1024 * 1024], 5):
        assert seconds == pytest.approx(size / 12.5e6, rel=1e-6), f"{size} bytes"


def test_a_send_slower_than_the_link_is_measured_as_it_is(clock: VirtualClock) -> None:
    # 10 Gbit/s: sending 1 MB (1.1 ms here) takes longer than the link (0.84 ms); the slower one counts.
    for size, seconds in _measure(10_000, 0.0, [1024 * 1024], 3):
        assert seconds == pytest.approx(SEND_OVERHEAD + SEND_PER_BYTE * size, rel=1e-6)


def test_real_probes_never_beat_the_link() -> None:
    points = _measure(10, 0.010, [10_240, 102_400], 3)
    for size in (10_240, 102_400):
        emulated = 0.010 + size / 1.25e6
        times = [t for z, t in points if z == size]
        assert min(times) >= emulated, f"{size} bytes: {times}"
        assert statistics.median(times) < emulated + SLACK, f"{size} bytes: {times}"
