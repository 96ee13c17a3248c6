"""How exactly the emulation keeps time on this machine (what the tests only bound loosely).

    .venv/bin/python bench/testbed/emulation_precision.py
    .venv/bin/python bench/testbed/emulation_precision.py --repeat 50

Three figures, each with the load average beside it (the machine is
shared; a busy core makes every one of them worse):

* `wait_until` lateness: how long after its deadline a wait returns, for
  waits of 0.3-8.2 ms (target: median under 0.2 ms; asyncio's own timers
  are typically 1-2 ms late).
* a fast link: 10 KB over an emulated 100 Mbit/s link without latency,
  shaped one after the other (target: median within 0.2 ms of 0.82 ms).
* shaped transfers: 100 KB over 8 Mbit/s with 50 ms latency, alone and two
  sharing the link (targets: 0.15 s and 0.25 s within 30 ms).

The network profiler's accuracy over the real data plane is measured by
`bench/testbed/testbed_bench.py accuracy`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from jupiter.model.testbed import Testbed
from jupiter.runtime.emulation import Emulation, wait_until


def _load() -> str:
    return f"(load average {os.getloadavg()[0]:.2f})"


async def lateness(repeat: int) -> list[float]:
    late = []
    for seconds in (0.0003, 0.0012, 0.0047, 0.0082):
        for _ in range(repeat):
            deadline = time.perf_counter() + seconds
            await wait_until(deadline)
            late.append(time.perf_counter() - deadline)
    return late


async def fast_link(repeat: int) -> list[float]:
    emulation = Emulation("a", Testbed(links={("a", "b"): (12.5e6, 0.0)}))
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await emulation.shape("b", [10_240])
        times.append(time.perf_counter() - started)
    return times


async def shaped(repeat: int) -> tuple[list[float], list[float]]:
    testbed = Testbed(links={("a", "b"): (1e6, 0.05)})
    alone, shared = [], []
    for _ in range(repeat):
        emulation = Emulation("a", testbed)
        started = time.perf_counter()
        await emulation.shape("b", [100_000])
        alone.append(time.perf_counter() - started)
        emulation = Emulation("a", testbed)
        started = time.perf_counter()
        await asyncio.gather(emulation.shape("b", [100_000]), emulation.shape("b", [100_000]))
        shared.append(time.perf_counter() - started)
    return alone, shared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    late = asyncio.run(lateness(args.repeat))
    print(
        f"wait_until lateness: median {statistics.median(late) * 1e3:.3f} ms, "
        f"max {max(late) * 1e3:.3f} ms, min {min(late) * 1e3:.3f} ms (target: median < 0.2 ms) {_load()}"
    )
    fast = asyncio.run(fast_link(args.repeat))
    print(
        f"10 KB at 100 Mbit/s: median {statistics.median(fast) * 1e3:.3f} ms "
        f"(emulated {10_240 / 12.5e6 * 1e3:.3f} ms, target within 0.2 ms) {_load()}"
    )
    alone, shared = asyncio.run(shaped(max(3, args.repeat // 4)))
    print(
        f"100 KB at 8 Mbit/s + 50 ms: alone median {statistics.median(alone):.4f} s (0.15), "
        f"two sharing the link {statistics.median(shared):.4f} s (0.25) {_load()}"
    )


if __name__ == "__main__":
    main()
