"""Predicted against measured, compared on the same thing.

A mapper predicts the makespan of **one frame alone**: from its first task's
start to its last task's finish, with nothing else in the system. So that
prediction is compared with the **span** of the frames that ran alone
(`jupiter.report.timing`), never with frames that queued behind others.

Frames that overlapped get a **pipelined** prediction instead:
`jupiter.mapping.predict.predict_stream` simulates the same number of
frames through the same mapping and the profiled costs, arriving as they did
(a burst when every frame was submitted before the first finished, else at
the measured mean rate), and its latency (arrival to last task finished) is
compared with the measured one. Without a profile (a static mapping) there
is nothing to predict from, and the comparison says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from jupiter.mapping import ArrivalProcess, predict_stream
from jupiter.mapping.stats import percentile
from jupiter.model.errors import InputError
from jupiter.model.problem_files import problem_from_profile
from jupiter.report.run_record import RunRecord
from jupiter.report.timing import FrameTiming, submission

STREAM_FRAMES = 2000
"""Most frames the pipelined prediction simulates (a longer run is predicted on its first ones)."""


@dataclass(frozen=True)
class SingleFrame:
    """The mapper's one-frame prediction against the frames that ran alone."""

    scheduler: str
    predicted: float
    """Predicted makespan of one frame (first task start to last task finish), seconds."""
    frames: int
    """Frames that ran alone."""
    measured: float | None
    """Median span of those frames (None when no frame ran alone)."""

    @property
    def ratio(self) -> float | None:
        if self.measured is None or self.predicted <= 0:
            return None
        return self.measured / self.predicted

    def to_json(self) -> dict[str, object]:
        return {
            "scheduler": self.scheduler,
            "predicted_makespan": self.predicted,
            "alone_frames": self.frames,
            "measured_span_p50": self.measured,
            "ratio": self.ratio,
        }


@dataclass(frozen=True)
class Stream:
    """The pipelined prediction of the frames that overlapped, against what they measured."""

    arrivals: str
    """How the simulated frames arrive: `burst`, or `fixed` at `rate`."""
    rate: float | None
    frames: int
    predicted_p50: float
    predicted_p95: float
    predicted_throughput: float
    measured_p50: float
    measured_p95: float
    measured_throughput: float
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.measured_p50 / self.predicted_p50 if self.predicted_p50 > 0 else None

    def to_json(self) -> dict[str, object]:
        return {
            "arrivals": self.arrivals,
            "rate": self.rate,
            "frames": self.frames,
            "predicted_latency_p50": self.predicted_p50,
            "predicted_latency_p95": self.predicted_p95,
            "predicted_throughput": self.predicted_throughput,
            "measured_latency_p50": self.measured_p50,
            "measured_latency_p95": self.measured_p95,
            "measured_throughput": self.measured_throughput,
            "ratio": self.ratio,
            "note": self.note,
        }


@dataclass(frozen=True)
class Comparison:
    """Everything a summary or a report says about predictions; `notes` say what is not compared and why."""

    single: SingleFrame | None
    stream: Stream | None
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "single_frame": self.single.to_json() if self.single is not None else None,
            "stream": self.stream.to_json() if self.stream is not None else None,
            "notes": list(self.notes),
        }


def compare(record: RunRecord, timings: list[FrameTiming]) -> Comparison:
    """The comparisons the run allows (module docstring)."""
    notes: list[str] = []
    single: SingleFrame | None = None
    predicted = record.predicted.get("makespan")
    scheduler = str(record.predicted.get("scheduler", ""))
    if isinstance(predicted, int | float) and predicted > 0:
        alone = [timing.span for timing in timings if timing.alone]
        single = SingleFrame(scheduler, float(predicted), len(alone), percentile(alone, 0.5) if alone else None)
        if not alone:
            notes.append(
                "no frame ran alone (each overlapped another), so the single-frame prediction is not compared; "
                "`jupiter run --sequential` submits one frame at a time"
            )
    else:
        notes.append("no prediction: the mapping was static, nothing was profiled to predict from")
    overlapped = [timing for timing in timings if not timing.alone]
    stream: Stream | None = None
    if overlapped and record.profile is not None and record.mapping:
        stream = _stream(record, timings, notes)
    elif overlapped and single is not None:
        notes.append("no pipelined prediction: the deployment's profile.json is missing")
    return Comparison(single, stream, tuple(notes))


def _stream(record: RunRecord, timings: list[FrameTiming], notes: list[str]) -> Stream | None:
    assert record.profile is not None
    try:
        problem = problem_from_profile(record.profile, "profile.json")
    except InputError as exc:
        notes.append(f"no pipelined prediction: {exc}")
        return None
    mapping = {task: node for task, node in record.mapping.items() if task in problem.task_index}
    if set(mapping) != set(problem.tasks) or not set(mapping.values()) <= set(problem.nodes):
        notes.append("no pipelined prediction: the mapping does not map every profiled task to a profiled node")
        return None
    frames = min(len(timings), STREAM_FRAMES)
    how = submission(record)
    if how == "burst":
        arrival, rate = ArrivalProcess.burst(frames), None
    else:
        first, last = timings[0].submitted, timings[-1].submitted
        rate = (len(timings) - 1) / (last - first) if last > first else None
        if rate is None:
            return None
        arrival = ArrivalProcess.fixed(rate, frames)
    try:
        prediction = predict_stream(problem, mapping, arrival)
    except ValueError as exc:
        notes.append(f"no pipelined prediction: {exc}")
        return None
    measured = [timing.last_finish - timing.submitted for timing in timings[:frames]]
    ends = [timing.last_finish for timing in timings]
    span = max(ends) - timings[0].submitted
    return Stream(
        arrivals=arrival.kind,
        rate=rate,
        frames=frames,
        predicted_p50=prediction.latency.p50,
        predicted_p95=prediction.latency.p95,
        predicted_throughput=prediction.throughput,
        measured_p50=percentile(measured, 0.5),
        measured_p95=percentile(measured, 0.95),
        measured_throughput=len(timings) / span if span > 0 else 0.0,
        note=prediction.note,
    )
