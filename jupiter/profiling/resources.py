"""The resource profiler: CPU % and memory % of a node, smoothed.

Each agent samples psutil every `interval` seconds. As in the later version
of DRUPE's resource profiler, the figure served is an exponential moving
average seeded by the mean of the first `warmup` samples, so one busy
second neither dominates the start nor swings a mapping decision later.

Those are the machine's figures (on one machine every local agent sees the
same). `ProcessMonitor` measures the agent's own share instead: the CPU its
process and its task workers used between two samples, and their resident
memory, which the live dashboard shows per node.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import psutil

DEFAULT_ALPHA = 0.3
DEFAULT_WARMUP = 5


@dataclass
class Smoother:
    """Exponential moving average seeded by the mean of the first `warmup` samples."""

    alpha: float = DEFAULT_ALPHA
    warmup: int = DEFAULT_WARMUP
    value: float = 0.0
    count: int = 0

    def add(self, sample: float) -> float:
        """Take one sample; returns the smoothed value."""
        self.count += 1
        if self.count <= self.warmup:
            # Running mean of the first samples (the EMA's seed).
            self.value += (sample - self.value) / self.count
        else:
            self.value = self.alpha * sample + (1 - self.alpha) * self.value
        return self.value


@dataclass(frozen=True)
class ResourceSample:
    """What a node reports: smoothed CPU and memory use in percent."""

    cpu: float
    memory: float
    samples: int
    time: float

    def to_json(self) -> dict[str, float | int]:
        return {"cpu": self.cpu, "memory": self.memory, "samples": self.samples, "time": self.time}


class ResourceMonitor:
    """Samples this machine's CPU and memory use (call :meth:`sample` periodically)."""

    def __init__(self, alpha: float = DEFAULT_ALPHA, warmup: int = DEFAULT_WARMUP) -> None:
        self.cpu = Smoother(alpha, warmup)
        self.memory = Smoother(alpha, warmup)
        # The first cpu_percent() call only starts psutil's measurement window.
        psutil.cpu_percent(interval=None)

    def sample(self) -> ResourceSample:
        """Take one sample of each figure and return the smoothed values."""
        self.cpu.add(float(psutil.cpu_percent(interval=None)))
        self.memory.add(float(psutil.virtual_memory().percent))
        return self.current()

    def current(self) -> ResourceSample:
        """The smoothed figures so far (sampling once if none was taken yet)."""
        if self.cpu.count == 0:
            return self.sample()
        return ResourceSample(self.cpu.value, self.memory.value, self.cpu.count, time.time())


class ProcessMonitor:
    """CPU and memory of this process and its children (an agent and its task workers)."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.last_time = time.monotonic()
        self.last_cpu = self._usage()[0]

    def _usage(self) -> tuple[float, int]:
        """(CPU seconds, resident bytes) of the process tree now; children that exit meanwhile are skipped."""
        cpu, rss = 0.0, 0
        for member in [self.process, *self.process.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = member.cpu_times()
                rss += member.memory_info().rss
                cpu += times.user + times.system
        return cpu, rss

    def sample(self) -> tuple[float, int]:
        """(percent of one core used since the previous sample, resident bytes now)."""
        cpu, rss = self._usage()
        now = time.monotonic()
        elapsed = now - self.last_time
        # A worker that exited took its CPU time with it: the sum can go down, never the use.
        used = max(0.0, cpu - self.last_cpu)
        self.last_time, self.last_cpu = now, cpu
        return (100.0 * used / elapsed if elapsed > 0 else 0.0), rss
