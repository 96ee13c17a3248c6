"""The network profiler over the real data plane and an emulated link: the fit predicts transfers."""

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
from jupiter.runtime.extensions.probing import Probing
from jupiter.runtime.protocol import check, read_message, refusal_reply

TOKEN = "t" * 32


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


# 100 Mbit/s without latency moves 10 KB in 0.82 ms: the emulation must be exact to a fraction of a millisecond.
@pytest.mark.parametrize(("mbit", "latency"), [(10, 0.010), (10, 0.0), (100, 0.050), (100, 0.0)])
def test_the_fit_predicts_measured_transfers_within_15_percent(mbit: int, latency: float) -> None:
    async def main() -> list[tuple[int, float, float]]:
        service, server = await _profiler(mbit, latency)
        # Three samples per size, as the profiler's default: the median ignores one disturbed sample.
        points = await service.measure("b", [1024, 10 * 1024, 100 * 1024, 1024 * 1024], 3)
        fit = fit_link("a", "b", points, time.time())
        # A transfer's measured time: the median of three, as single millisecond transfers are noisy.
        measured = await service.measure("b", [10_240, 500_000, 1024 * 1024], 3)
        checks = [
            (size, statistics.median(t for z, t in measured if z == size), fit.predict(size))
            for size in (10_240, 500_000, 1024 * 1024)
        ]
        server.close()
        await server.wait_closed()
        return checks

    for size, measured, predicted in asyncio.run(main()):
        assert predicted == pytest.approx(measured, rel=0.15), (
            f"{size} bytes: measured {measured}, predicted {predicted}"
        )


def test_the_profiler_measures_the_emulated_link_not_the_loopback_on_top() -> None:
    # The real send happens inside the emulated time: 100 Mbit/s costs s / 12.5e6 seconds, not that plus the send.
    async def main() -> list[tuple[int, float]]:
        service, server = await _profiler(100, 0.0)
        points = await service.measure("b", [10_240, 102_400, 1024 * 1024], 5)
        server.close()
        await server.wait_closed()
        return points

    points = asyncio.run(main())
    for size in (10_240, 102_400, 1024 * 1024):
        measured = statistics.median(t for z, t in points if z == size)
        assert measured == pytest.approx(size / 12.5e6, rel=0.05), f"{size} bytes: measured {measured}"
