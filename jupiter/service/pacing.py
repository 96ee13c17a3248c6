"""Submitting frames by an arrival pattern (`jupiter.model.arrivals`): at their times, or one after another.

`pace` calls `send` with the frames whose planned time has come: a frame is
never sent before its time, and frames whose time passed while an upload
was on its way go together in the next one (an upload takes milliseconds,
a Poisson stream sometimes plans several frames closer than that). Between
sends it sleeps in short steps and calls `tick`, which moves the progress
bar and gives up at the run's deadline. `one_by_one` sends each frame once
the previous one has finished (`sequential`).

The clock and the sleep are parameters, so the schedule is tested exactly
with a virtual clock (tests/service/test_pacing.py); what actually reached
home when is in its event log (`FrameSubmitted`), which the summary reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

TICK_SECONDS = 0.25
"""Longest sleep between two looks at the schedule (and two ticks)."""


def pace(
    offsets: Sequence[float],
    send: Callable[[list[int]], None],
    tick: Callable[[], None] = lambda: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[float]:
    """Send frame `i` (by index) once `offsets[i]` seconds have passed since the start; returns when each was sent.

    `offsets` must not decrease. Returns each frame's send time relative to
    the start, for the caller's record (never below its offset).
    """
    start = clock()
    sent: list[float] = []
    index = 0
    while index < len(offsets):
        now = clock() - start
        if offsets[index] > now:
            tick()
            sleep(min(offsets[index] - now, TICK_SECONDS))
            continue
        due = index
        while due < len(offsets) and offsets[due] <= now:
            due += 1
        send(list(range(index, due)))
        sent += [now] * (due - index)
        index = due
    return sent


def one_by_one(
    frames: int,
    send: Callable[[int], None],
    finished: Callable[[float], int],
    tick: Callable[[int], None] = lambda done: None,
    wait: float = 5.0,
) -> None:
    """Send frame `i` once the `i` frames before it have finished (`finished(timeout)`: how many have, waiting up to
    `timeout` seconds for the next); `tick(done)` after each look."""
    for index in range(frames):
        send(index)
        while (done := finished(wait)) < index + 1:
            tick(done)
        tick(done)
