"""Testbed emulation inside the agents: slower nodes and shaped links on one machine.

The local backend runs every node on the same CPU and every link over the
loopback interface, where nothing would tell nodes apart. A testbed file
(`jupiter.model.testbed`) makes them differ, and this module applies it:

* **Task time dilation.** The worker measures the CPU time a task used and,
  when the node's speed factor is below 1, sleeps until the task has taken
  `cpu_time / speed` of wall time. CPU time rather than wall time is the
  base because a slower CPU stretches computation, not waiting, and because
  agents sharing two cores would otherwise also stretch each other's idle time.
  :meth:`Emulation.set_speed` changes the factor while the agent runs.
* **One task at a time.** An emulated node runs one task at a time, as the
  mapping model assumes (padding is sleep, which would otherwise be free
  parallelism).
* **Shaped transfers.** A transfer holds the link's capacity for
  `size / bandwidth`; transfers on the same link (or the same uplink) take
  it in turn, so they share bandwidth as on a real link. It is acknowledged
  the link's latency after that (latency counts once per round trip).
  Shaping is per message size, so a batch of several messages costs the sum
  of their sizes.

How a shaped transfer is timed. The emulated link replaces the loopback, it
does not come on top of it: the real send overlaps the emulated time on the
wire, so a message sent with :meth:`Emulation.transmit` takes
`max(real, size / bandwidth) + latency`, not their sum, and the network
profiler measures the link the testbed describes. The latency is never
overlapped: where the kernel shapes bandwidth (docker backend,
`jupiter.runtime.shaping`) the agents' links have unlimited bandwidth, the
real send *is* the time on the wire, and the latency adds to it.

`transmit` reserves the link's capacity, waits until the transfer's time on
the wire would end minus twice what really sending the message is expected
to take (learned from earlier sends to the same peer, see :class:`SendCost`;
never before the link is free), plus the latency; lets the caller send; then
waits for whatever is left until the wire time's end plus the latency. The
receiver therefore has the data at about the emulated time (typically one
real send early, as a real receiver has the last byte before the sender
hears back), and the sender's time is exactly the emulated one whenever the
real send fits in the margin. :meth:`Emulation.shape` is the wait alone, for
callers that send after it: it subtracts one expected send time, so that
the send completes the transfer about on time (with nothing learned yet it
subtracts nothing, and the send adds to the emulated time).

Waits hit their deadline to a few microseconds: asyncio's timers fire up
to about 2 ms late on Linux (epoll takes whole milliseconds, rounded up),
which would dominate a 1 ms transfer at 100 Mbit/s, so :func:`wait_until`
sleeps until shortly before the deadline and then yields to the event loop
(`asyncio.sleep(0)`) until the clock passes it. The loop keeps running other
tasks meanwhile; the price is up to `SPIN_SECONDS` of CPU per transfer.

Everything here is opt-in: without a testbed nothing is slowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence

from jupiter.model.testbed import LinkShape, Testbed

SPEED_ENV = "JUPITER_EMULATED_SPEED"
"""Speed factor the agent passes to its task workers (distinct from the dummy app's JUPITER_SPEED_FACTOR)."""

SPIN_SECONDS = 0.0025
"""How long before a deadline a wait stops sleeping and polls the clock (longer than asyncio's timer lateness)."""

COST_MARGIN = 2.0
"""`transmit` starts a send this many expected send times before its deadline (the final wait absorbs the rest)."""

COST_WINDOW = 32
"""Recent sends per peer that the expected send time is learned from."""


async def wait_until(deadline: float) -> None:
    """Return once `time.perf_counter()` has passed `deadline`, without blocking the event loop.

    Sleeps until `SPIN_SECONDS` before the deadline, then yields to the loop
    until the clock passes it: asyncio's own timers are too coarse for
    sub-millisecond transfers (module docstring).
    """
    remaining = deadline - time.perf_counter()
    if remaining > SPIN_SECONDS:
        await asyncio.sleep(remaining - SPIN_SECONDS)
    while time.perf_counter() < deadline:
        await asyncio.sleep(0)


class SendCost:
    """What really sending a message to one peer takes, `overhead + per_byte * size`, from recent sends.

    A line fitted to the medians of each size, weighted for relative error
    like the network profiler's fits (`jupiter.profiling.fit`), so that a few
    slow sends do not move it and small messages count as much as large ones.
    It is refitted when a send is recorded, never while a transfer is being
    timed, and in plain Python: this runs once per message.
    """

    def __init__(self, window: int = COST_WINDOW) -> None:
        self._seen: deque[tuple[int, float]] = deque(maxlen=window)
        self.overhead = 0.0
        """Seconds every send takes."""
        self.per_byte = 0.0
        """Seconds per byte sent."""

    def add(self, size: int, seconds: float) -> None:
        """Record one real send of `size` bytes, and refit."""
        self._seen.append((size, max(seconds, 0.0)))
        self.overhead, self.per_byte = _relative_line(self._seen)

    def estimate(self, size: int) -> float:
        """Seconds a send of `size` bytes is expected to take (0 before any send was recorded)."""
        return self.overhead + self.per_byte * size


def _relative_line(samples: Iterable[tuple[int, float]]) -> tuple[float, float]:
    """(c, k) of `t = c + k·s` through the median time of each size, minimising the relative error; no negative term."""
    by_size: dict[int, list[float]] = {}
    for sent, took in samples:
        by_size.setdefault(sent, []).append(took)
    points = [(float(sent), statistics.median(times)) for sent, times in by_size.items()]
    if len(points) == 1:
        size, seconds = points[0]
        return (0.0, seconds / size) if size > 0 else (seconds, 0.0)
    # Weighted least squares with weights 1/t²: the normal equations of a 2x2 system.
    sw = sws = swss = swt = swst = 0.0
    for size, seconds in points:
        weight = 1.0 / max(seconds, 1e-9) ** 2
        sw += weight
        sws += weight * size
        swss += weight * size * size
        swt += weight * seconds
        swst += weight * size * seconds
    determinant = sw * swss - sws * sws
    per_byte = (sw * swst - sws * swt) / determinant if determinant > 0 else -1.0
    overhead = (swt - per_byte * sws) / sw
    if per_byte < 0:  # sizes make no measurable difference
        return max(seconds for _, seconds in points), 0.0
    if overhead < 0:  # no measurable overhead: proportional to size
        return 0.0, swst / swss
    return overhead, per_byte


class Emulation:
    """One agent's view of the testbed: its speed and the shape of its outgoing links."""

    def __init__(self, node: str, testbed: Testbed | None) -> None:
        self.node = node
        self.testbed = testbed
        # When each shared capacity (a link or an uplink) is next free, on the perf_counter clock.
        self._free_at: dict[str, float] = {}
        self._costs: dict[str, SendCost] = {}
        self._speed: float | None = None
        self._processor: asyncio.Lock | None = None

    @contextlib.asynccontextmanager
    async def processor(self) -> AsyncIterator[None]:
        """Hold the node's one emulated processor while a task runs (a no-op on a node not emulated).

        Padding is sleeping, so without this a slow node would run all of
        its tasks side by side for free; the mapping model, like a
        one-processor node, runs one task at a time.
        """
        if self.testbed is None and self._speed is None:
            yield
            return
        if self._processor is None:
            self._processor = asyncio.Lock()
        async with self._processor:
            yield

    @property
    def speed(self) -> float:
        """The node's speed factor: the one :meth:`set_speed` gave, else the testbed's, else 1."""
        if self._speed is not None:
            return self._speed
        return self.testbed.speed(self.node) if self.testbed is not None else 1.0

    def set_speed(self, speed: float) -> None:
        """Run the node at `speed` from now on, whatever the testbed says (0 < speed <= 1).

        Tasks read the factor when they start (the agent sends it with each
        job), so a task already running keeps the one it started with.
        """
        if not 0 < speed <= 1:  # also refuses NaN
            raise ValueError(f"speed factor must be in (0, 1] (1 = this machine), not {speed!r}")
        self._speed = float(speed)

    def worker_env(self) -> dict[str, str]:
        """Environment entries for the task workers of this node."""
        return {SPEED_ENV: repr(self.speed)} if self.speed != 1.0 else {}

    def _link(self, dest: str) -> LinkShape | None:
        if self.testbed is None or dest == self.node:
            return None
        return self.testbed.shape(self.node, dest)

    def transfer_delay(self, dest: str, sizes: Sequence[int]) -> float:
        """Seconds an unloaded link would take for these messages (for tests and predictions)."""
        shape = self._link(dest)
        return 0.0 if shape is None else shape.latency + sum(sizes) / shape.bandwidth

    def send_cost(self, dest: str) -> SendCost:
        """What really sending to `dest` takes, as learned so far (a warm-up may add to it)."""
        return self._costs.setdefault(dest, SendCost())

    def _reserve(self, shape: LinkShape, size: int) -> tuple[float, float]:
        """Take the link's capacity for `size` bytes: when they go on the wire and when they are through."""
        now = time.perf_counter()
        start = max(now, self._free_at.get(shape.shared_by, now))
        done = start + size / shape.bandwidth
        self._free_at[shape.shared_by] = done
        return start, done

    @contextlib.asynccontextmanager
    async def transmit(self, dest: str, sizes: Sequence[int]) -> AsyncIterator[None]:
        """Send these messages to `dest` inside the block; the whole takes as long as on the emulated link.

        The block starts when the send should start to end on time, and the
        exit waits until the emulated transfer is acknowledged (module
        docstring). A block that raises is not waited for.
        """
        shape = self._link(dest)
        if shape is None:
            yield
            return
        size = sum(sizes)
        start, done = self._reserve(shape, size)
        cost = self.send_cost(dest)
        await wait_until(max(done - COST_MARGIN * cost.estimate(size), start) + shape.latency)
        began = time.perf_counter()
        yield
        cost.add(size, time.perf_counter() - began)
        await wait_until(done + shape.latency)

    async def shape(self, dest: str, sizes: Sequence[int]) -> None:
        """Wait until these messages should be sent to `dest` to arrive as on the emulated link.

        For a caller that sends after the wait rather than inside
        :meth:`transmit`: it ends the expected send time (learned by earlier
        `transmit` calls to `dest`; none yet: zero) early, overlapping the
        time on the wire but not the latency, so that the send itself then
        completes the transfer.
        """
        shape = self._link(dest)
        if shape is None:
            return
        size = sum(sizes)
        start, done = self._reserve(shape, size)
        await wait_until(max(done - self.send_cost(dest).estimate(size), start) + shape.latency)


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
