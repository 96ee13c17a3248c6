"""Pacing frames by their planned times, on a virtual clock: never early, late ones together, sequential in turn."""

from __future__ import annotations

from jupiter.service.pacing import one_by_one, pace


class Clock:
    """A virtual clock: sleeping moves it; an upload may take time too."""

    def __init__(self) -> None:
        self.now = 100.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def test_each_frame_is_sent_at_its_time_and_never_before() -> None:
    clock = Clock()
    sent: list[tuple[float, list[int]]] = []
    offsets = [0.0, 0.5, 0.5, 2.0, 3.25]
    times = pace(
        offsets, lambda indices: sent.append((clock.now - 100.0, indices)), clock=clock.time, sleep=clock.sleep
    )
    assert sent == [(0.0, [0]), (0.5, [1, 2]), (2.0, [3]), (3.25, [4])]
    assert times == [0.0, 0.5, 0.5, 2.0, 3.25]


def test_frames_whose_time_passed_during_a_slow_upload_go_together_in_the_next() -> None:
    clock = Clock()
    sent: list[tuple[float, list[int]]] = []

    def send(indices: list[int]) -> None:
        sent.append((round(clock.now - 100.0, 6), indices))
        clock.now += 1.0  # each upload takes a second

    times = pace([0.0, 0.25, 0.5, 0.75, 3.0], send, clock=clock.time, sleep=clock.sleep)
    assert sent == [(0.0, [0]), (1.0, [1, 2, 3]), (3.0, [4])]
    assert all(time >= offset for time, offset in zip(times, [0.0, 0.25, 0.5, 0.75, 3.0], strict=True))


def test_waiting_ticks_at_least_every_quarter_second() -> None:
    clock = Clock()
    ticks: list[float] = []
    pace(
        [0.0, 1.0],
        lambda indices: None,
        tick=lambda: ticks.append(clock.now - 100.0),
        clock=clock.time,
        sleep=clock.sleep,
    )
    assert ticks == [0.0, 0.25, 0.5, 0.75]


def test_sequential_frames_each_wait_for_the_one_before() -> None:
    events: list[str] = []
    finished = 0
    looks = 0

    def send(index: int) -> None:
        events.append(f"send {index}")

    def done(wait: float) -> int:
        nonlocal finished, looks
        looks += 1
        if looks % 2 == 0:  # every second look, the frame in flight has finished
            finished += 1
            events.append(f"done {finished - 1}")
        return finished

    one_by_one(3, send, done)
    assert events == ["send 0", "done 0", "send 1", "done 1", "send 2", "done 2"]
