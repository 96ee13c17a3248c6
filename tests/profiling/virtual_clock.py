"""A virtual clock for the emulation's timing: waits end exactly at their deadline, at once.

Tests of how long shaped transfers take run on it, so that what they check
(the schedule the emulation computes) cannot be disturbed by a loaded
machine; real-time precision is measured in `bench/testbed/`.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from types import ModuleType, SimpleNamespace

import pytest

from jupiter.runtime import emulation as emulation_module


class VirtualClock:
    """`time.perf_counter` of the emulation module, advanced only by waits and simulated sends.

    A wait parks its task; once every task that can run has run, the clock
    jumps to the earliest deadline waited for and wakes that task, as real
    time would, only at once.
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []
        self._pending: list[tuple[float, int, asyncio.Future[None]]] = []
        self._advancing = False

    def perf_counter(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def wait_until(self, deadline: float) -> None:
        self.waits.append(deadline)
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._pending, (deadline, len(self.waits), woken))
        if not self._advancing:
            self._advancing = True
            loop.call_soon(self._wake_earliest)
        await woken

    def _wake_earliest(self) -> None:
        # Runs after the tasks that were ready when the wait began (call_soon is FIFO).
        deadline, _, woken = heapq.heappop(self._pending)
        self.now = max(self.now, deadline)
        woken.set_result(None)
        if self._pending:
            asyncio.get_running_loop().call_soon(self._wake_earliest)
        else:
            self._advancing = False


def install(monkeypatch: pytest.MonkeyPatch, *others: ModuleType) -> VirtualClock:
    """Run the emulation (and the `time.perf_counter` of `others`) on a new virtual clock."""
    virtual = VirtualClock()
    fake_time = SimpleNamespace(
        perf_counter=virtual.perf_counter, process_time=time.process_time, sleep=time.sleep, time=time.time
    )
    for module in (emulation_module, *others):
        monkeypatch.setattr(module, "time", fake_time)
    monkeypatch.setattr(emulation_module, "wait_until", virtual.wait_until)
    return virtual
