"""Testbed emulation inside the agents: slower nodes and shaped links on one machine.

The local backend runs every node on the same CPU and every link over the
loopback interface, where nothing would tell nodes apart. A testbed file
(`jupiter.testbed`) makes them differ, and this module applies it:

* **Task time dilation.** The worker measures the CPU time a task used and,
  when the node's speed factor is below 1, sleeps until the task has taken
  `cpu_time / speed` of wall time. CPU time rather than wall time is the
  base because a slower CPU stretches computation, not waiting, and because
  agents sharing two cores would otherwise also stretch each other's idle time.
* **One task at a time.** An emulated node runs one task at a time, as the
  mapping model assumes (padding is sleep, which would otherwise be free
  parallelism).
* **Shaped transfers.** Before a sender puts messages on the wire it waits
  `size / bandwidth` for the link's capacity, which transfers on the same
  link (or the same uplink) take in turn, so they share bandwidth as on a
  real link; then it waits the link's latency once for the round trip.
  Shaping is per message size, so a batch of several messages costs the sum
  of their sizes.

Everything here is opt-in: without a testbed nothing is slowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from jupiter.testbed import Testbed

SPEED_ENV = "JUPITER_EMULATED_SPEED"
"""Speed factor the agent passes to its task workers (distinct from the dummy app's JUPITER_SPEED_FACTOR)."""


class Emulation:
    """One agent's view of the testbed: its speed and the shape of its outgoing links."""

    def __init__(self, node: str, testbed: Testbed | None) -> None:
        self.node = node
        self.testbed = testbed
        # When each shared capacity (a link or an uplink) is next free, on the loop's clock.
        self._free_at: dict[str, float] = {}
        self._processor: asyncio.Lock | None = None

    @contextlib.asynccontextmanager
    async def processor(self) -> AsyncIterator[None]:
        """Hold the node's one emulated processor while a task runs (a no-op without a testbed).

        Padding is sleeping, so without this a slow node would run all of
        its tasks side by side for free; the mapping model, like a
        one-processor node, runs one task at a time.
        """
        if self.testbed is None:
            yield
            return
        if self._processor is None:
            self._processor = asyncio.Lock()
        async with self._processor:
            yield

    @classmethod
    def from_plan(cls, extra: Mapping[str, Any], node: str) -> Emulation:
        """The emulation a plan asks for (`plan.extra["testbed"]`), or a pass-through one."""
        raw = extra.get("testbed")
        return cls(node, Testbed.from_json(raw) if raw else None)

    @property
    def speed(self) -> float:
        return self.testbed.speed(self.node) if self.testbed is not None else 1.0

    def worker_env(self) -> dict[str, str]:
        """Environment entries for the task workers of this node."""
        return {SPEED_ENV: repr(self.speed)} if self.speed != 1.0 else {}

    def transfer_delay(self, dest: str, sizes: Sequence[int]) -> float:
        """Seconds an unloaded link would add for these messages (for tests and predictions)."""
        shape = self.testbed.shape(self.node, dest) if self.testbed is not None else None
        if shape is None or dest == self.node:
            return 0.0
        return shape.latency + sum(sizes) / shape.bandwidth

    async def shape(self, dest: str, sizes: Sequence[int]) -> None:
        """Wait as long as sending these messages to `dest` would take on the emulated link."""
        shape = self.testbed.shape(self.node, dest) if self.testbed is not None else None
        if shape is None or dest == self.node:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self._free_at.get(shape.shared_by, now))
        done = start + sum(sizes) / shape.bandwidth
        self._free_at[shape.shared_by] = done
        await asyncio.sleep(done + shape.latency - now)


def dilate(wall_start: float, cpu_start: float, speed: float | None = None) -> None:
    """Called by the worker after a task: pad its run to `cpu_time / speed` of wall time."""
    if speed is None:
        speed = worker_speed()
    if speed >= 1.0:
        return
    target = (time.process_time() - cpu_start) / speed
    pad = target - (time.perf_counter() - wall_start)
    if pad > 0:
        time.sleep(pad)


def worker_speed() -> float:
    """Speed factor of this worker process (1 when the agent set none)."""
    raw = os.environ.get(SPEED_ENV, "")
    try:
        speed = float(raw) if raw else 1.0
    except ValueError:
        return 1.0
    return speed if 0 < speed < 1 else 1.0
