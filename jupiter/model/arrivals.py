"""Arrival patterns: when the frames of a run (or of one `jupiter submit`) reach home.

The original's evaluation fed its apps in several ways, and a stream's
latency depends on it as much as on the mapping:

* `burst` — every frame at once (the default: the deployment's capacity);
* `sequential` — each frame once the previous one has finished, so every
  frame runs alone (what a single-frame prediction speaks of);
* `poisson` — a Poisson process at `rate` frames a second: independent,
  exponentially distributed gaps with mean 1/rate, drawn from a generator
  seeded with `seed`, so a run can be repeated exactly;
* `fixed` — one frame every 1/rate seconds (`--interval S` is rate 1/S).

`offsets` gives each frame's planned time after the start; the pacing
itself (`jupiter.service.pacing`) submits a frame at its time, never
before, and frames whose time has passed while an upload was going on in
one upload.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Literal

Pattern = Literal["burst", "sequential", "poisson", "fixed"]
PATTERNS: tuple[Pattern, ...] = ("burst", "sequential", "poisson", "fixed")


@dataclass(frozen=True)
class Arrivals:
    """How frames arrive (module docstring)."""

    pattern: Pattern = "burst"
    rate: float | None = None
    """Frames per second (`poisson`, `fixed`); None for the others."""
    seed: int = 0
    """Seed of the Poisson gaps."""

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"unknown arrival pattern {self.pattern!r}; use one of {', '.join(PATTERNS)}")
        timed = self.pattern in ("poisson", "fixed")
        if timed and (self.rate is None or not math.isfinite(self.rate) or self.rate <= 0):
            raise ValueError(f"a {self.pattern} arrival pattern needs a rate above 0 frames/s, not {self.rate}")
        if not timed and self.rate is not None:
            raise ValueError(f"a {self.pattern} arrival pattern takes no rate")

    @classmethod
    def poisson(cls, rate: float, seed: int = 0) -> Arrivals:
        return cls("poisson", rate, seed)

    @classmethod
    def fixed(cls, rate: float) -> Arrivals:
        return cls("fixed", rate)

    @classmethod
    def every(cls, interval: float) -> Arrivals:
        """One frame every `interval` seconds."""
        if not math.isfinite(interval) or interval <= 0:
            raise ValueError(f"an interval must be above 0 seconds, not {interval}")
        return cls("fixed", 1.0 / interval)

    @property
    def paced(self) -> bool:
        """Whether frames arrive at planned times (poisson, fixed)."""
        return self.pattern in ("poisson", "fixed")

    def offsets(self, frames: int) -> list[float]:
        """Each frame's planned arrival, in seconds after the first one's (which arrives at 0).

        `sequential` frames have no planned times (each waits for the one
        before): all zero here, like `burst`.
        """
        if frames <= 0:
            return []
        if self.pattern == "fixed":
            assert self.rate is not None
            return [index / self.rate for index in range(frames)]
        if self.pattern == "poisson":
            assert self.rate is not None
            draw = random.Random(self.seed)
            times = [0.0]
            for _ in range(frames - 1):
                times.append(times[-1] + draw.expovariate(self.rate))
            return times
        return [0.0] * frames

    def describe(self) -> str:
        """One line for the CLI, e.g. `poisson, 2 frames/s (seed 0)`."""
        if self.pattern == "poisson":
            return f"poisson, {self.rate:g} frames/s (seed {self.seed})"
        if self.pattern == "fixed":
            assert self.rate is not None
            return f"fixed, a frame every {1.0 / self.rate:g} s ({self.rate:g} frames/s)"
        return "burst: every frame at once" if self.pattern == "burst" else "sequential: each frame alone"

    def to_json(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "rate": self.rate,
            "interval": 1.0 / self.rate if self.rate else None,
            "seed": self.seed if self.pattern == "poisson" else None,
        }
