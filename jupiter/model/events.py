"""Typed events: what agents report to home, one JSON object per line of `events.jsonl`.

Every event of a run is one of the frozen records below. They are written
by :func:`encode` and read by :func:`decode`, and by nothing else: agents
encode what they emit, home decodes and validates every line it receives
before it records it (a line that does not decode is refused, never
written), recovery after a restart of home and run summaries, reports and
the statistics store read the log back with :func:`read_events`.

A line is a JSON object whose `type` names the record (`task`,
`transfer`, ...) and whose other keys are the record's fields; docs/events.md
describes each field. Decoding is strict about types (a frame id is an
ASCII name, a time a finite number) because events arrive from the network:
a malformed event is an :class:`EventError` with a one-line reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
"""Frame ids, task and node names in events: ASCII letters, digits, `_`, `.` and `-`."""
FRAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
"""A frame id (home makes `f<sequence>-<random>`, `-r<n>` for a restarted attempt)."""
_SEQUENCE = re.compile(r"^f([0-9]{1,12})-")
MAX_TEXT = 64 * 1024
"""Longest error text kept in an event (a traceback is cut at the end, where the cause is)."""


class EventError(ValueError):
    """A line that is not a valid event; the message says which field is wrong."""


def is_name(value: object) -> bool:
    """Whether a value is a plain ASCII name (task, node)."""
    return isinstance(value, str) and value.isascii() and bool(NAME.fullmatch(value))


def is_frame_id(value: object) -> bool:
    """Whether a value is a frame id (strict ASCII grammar: no Unicode digits, no `@`, no `/`)."""
    return isinstance(value, str) and value.isascii() and bool(FRAME.fullmatch(value))


def frame_sequence(frame: str) -> int | None:
    """The sequence number in a frame id home made (`f000042-ab12cd` -> 42), None for any other id."""
    match = _SEQUENCE.match(frame)
    return int(match.group(1)) if match else None


def clip(text: str) -> str:
    """Untrusted text kept in an event: at most MAX_TEXT characters, the end kept."""
    return text if len(text) <= MAX_TEXT else "..." + text[-MAX_TEXT:]


# ---------------------------------------------------------------------- fields


class _Fields:
    """Typed access to a decoded line's fields, raising EventError naming the field."""

    def __init__(self, kind: str, data: Mapping[str, Any]) -> None:
        self.kind = kind
        self.data = data

    def _bad(self, key: str, what: str) -> EventError:
        return EventError(f"{self.kind} event: {key} must be {what}")

    def name(self, key: str) -> str:
        value = self.data.get(key)
        if not is_name(value):
            raise self._bad(key, "a plain ASCII name")
        return str(value)

    def frame(self, key: str = "frame") -> str:
        value = self.data.get(key)
        if not is_frame_id(value):
            raise self._bad(key, "a frame id (ASCII letters, digits, '-' and '_')")
        return str(value)

    def number(self, key: str, default: float | None = None, minimum: float | None = None) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self._bad(key, "a finite number")
        if minimum is not None and value < minimum:
            raise self._bad(key, f"at least {minimum:g}")
        return float(value)

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._bad(key, "a whole number >= 0")
        return value

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return clip(value)

    def optional_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        return self.text(key)

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._bad(key, "a list of strings")
        return tuple(value)

    def names(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(is_name(item) for item in value):
            raise self._bad(key, "a list of names")
        return tuple(value)

    def raw_list(self, key: str) -> tuple[Any, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self._bad(key, "a list")
        return tuple(value)


# --------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class TaskRun:
    """A task ran (or failed) on one frame."""

    type: ClassVar[str] = "task"
    task: str
    frame: str
    node: str
    files: tuple[str, ...]
    """Input file names the task was called with."""
    arrive: float
    """When the frame's first input for this task arrived at the node."""
    enter: float
    """When the task's runner took the frame (it may wait for the worker after this)."""
    execute: float
    """When `task()` started."""
    finish: float
    """When `task()` returned (or failed)."""
    ok: bool
    error: str | None
    home: str
    """The home node the frame belongs to."""

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "task": self.task,
            "frame": self.frame,
            "node": self.node,
            "files": list(self.files),
            "arrive": self.arrive,
            "enter": self.enter,
            "execute": self.execute,
            "finish": self.finish,
            "ok": self.ok,
            "error": self.error,
            "home": self.home,
        }

    @classmethod
    def from_fields(cls, f: _Fields) -> TaskRun:
        return cls(
            task=f.name("task"),
            frame=f.frame(),
            node=f.name("node"),
            files=f.strings("files"),
            arrive=f.number("arrive"),
            enter=f.number("enter"),
            execute=f.number("execute"),
            finish=f.number("finish"),
            ok=f.flag("ok"),
            error=f.optional_text("error"),
            home=f.name("home"),
        )

    @property
    def seconds(self) -> float:
        """How long `task()` ran."""
        return self.finish - self.execute


@dataclass(frozen=True, slots=True)
class Transfer:
    """A file left a node (`side` sender) or arrived at one (`side` receiver)."""

    type: ClassVar[str] = "transfer"
    side: str
    """`sender` or `receiver`."""
    node: str
    path: str
    time: float
    """When it was sent or stored; -1 = the transfer failed (the original's convention)."""
    frame: str
    home: str
    peer: str = ""
    """The other end: the destination node of a sender, the source node of a receiver ('' = unknown)."""
    bytes: int = 0
    seconds: float = 0.0
    """How long the transfer took on the sender's side (0 for a hand-over on the same node)."""
    task: str = ""
    """The task the file is for."""

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "side": self.side,
            "node": self.node,
            "path": self.path,
            "time": self.time,
            "frame": self.frame,
            "home": self.home,
            "peer": self.peer,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "task": self.task,
        }

    @classmethod
    def from_fields(cls, f: _Fields) -> Transfer:
        side = f.text("side")
        if side not in ("sender", "receiver"):
            raise EventError("transfer event: side must be sender or receiver")
        time = f.number("time")
        if time < 0 and time != -1:
            raise EventError("transfer event: time must be a time or -1 (failed)")
        peer = f.data.get("peer", "")
        task = f.data.get("task", "")
        return cls(
            side=side,
            node=f.name("node"),
            path=f.text("path"),
            time=time,
            frame=f.frame(),
            home=f.name("home"),
            peer=f.name("peer") if peer else "",
            bytes=f.integer("bytes", 0),
            seconds=f.number("seconds", 0.0, minimum=0.0),
            task=f.name("task") if task else "",
        )

    @property
    def failed(self) -> bool:
        return self.time == -1


@dataclass(frozen=True, slots=True)
class TransferFailed:
    """A file could not be delivered after every retry."""

    type: ClassVar[str] = "transfer_failed"
    node: str
    dest: str
    frame: str
    task: str
    error: str
    home: str

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "node": self.node,
            "dest": self.dest,
            "frame": self.frame,
            "task": self.task,
            "error": self.error,
            "home": self.home,
        }

    @classmethod
    def from_fields(cls, f: _Fields) -> TransferFailed:
        return cls(
            node=f.name("node"),
            dest=f.name("dest"),
            frame=f.frame(),
            task=f.name("task"),
            error=f.text("error"),
            home=f.name("home"),
        )


@dataclass(frozen=True, slots=True)
class FrameSubmitted:
    """Home started a frame from an input file."""

    type: ClassVar[str] = "frame_submitted"
    frame: str
    input: str
    """The frame's input file, or its files' names joined by `,`."""
    time: float
    files: tuple[str, ...] = ()
    """The frame's input files (several when an entry task waits for more than one)."""
    client: str = ""
    """The id the submitting client gave the frame ('' = none): a retry with it starts nothing new."""

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "frame": self.frame,
            "input": self.input,
            "time": self.time,
            "files": list(self.files),
            "client": self.client,
        }

    @classmethod
    def from_fields(cls, f: _Fields) -> FrameSubmitted:
        client = f.data.get("client", "")
        return cls(
            frame=f.frame(),
            input=f.text("input"),
            time=f.number("time"),
            files=f.strings("files"),
            client=f.frame("client") if client else "",
        )


@dataclass(frozen=True, slots=True)
class FrameDone:
    """Every final output of a frame came back home."""

    type: ClassVar[str] = "frame_done"
    frame: str
    input: str
    time: float
    makespan: float
    """Seconds from submission to the last final output."""
    outputs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "frame": self.frame,
            "input": self.input,
            "time": self.time,
            "makespan": self.makespan,
            "outputs": list(self.outputs),
        }

    @classmethod
    def from_fields(cls, f: _Fields) -> FrameDone:
        return cls(
            frame=f.frame(),
            input=f.text("input"),
            time=f.number("time"),
            makespan=f.number("makespan", minimum=0.0),
            outputs=f.strings("outputs"),
        )


@dataclass(frozen=True, slots=True)
class FrameFailed:
    """A frame failed (a task raised, a transfer gave up)."""

    type: ClassVar[str] = "frame_failed"
    frame: str
    input: str
    time: float
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "frame": self.frame, "input": self.input, "time": self.time, "error": self.error}

    @classmethod
    def from_fields(cls, f: _Fields) -> FrameFailed:
        return cls(frame=f.frame(), input=f.text("input"), time=f.number("time"), error=f.text("error"))

    @property
    def reason(self) -> str:
        """The error's last line (a traceback's cause)."""
        lines = self.error.strip().splitlines()
        return lines[-1] if lines else "failed"


@dataclass(frozen=True, slots=True)
class FrameRestarted:
    """Pricing: a frame in flight was started again (a node it was on died)."""

    type: ClassVar[str] = "frame_restarted"
    frame: str
    attempt: str
    time: float
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "frame": self.frame, "attempt": self.attempt, "time": self.time, "why": self.why}

    @classmethod
    def from_fields(cls, f: _Fields) -> FrameRestarted:
        return cls(frame=f.frame(), attempt=f.frame("attempt"), time=f.number("time"), why=f.text("why"))


@dataclass(frozen=True, slots=True)
class NodesDead:
    """Pricing: home declared these compute nodes dead (their price reports stopped)."""

    type: ClassVar[str] = "nodes_dead"
    dead: tuple[str, ...]
    time: float

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "dead": list(self.dead), "time": self.time}

    @classmethod
    def from_fields(cls, f: _Fields) -> NodesDead:
        return cls(dead=f.names("dead"), time=f.number("time"))


@dataclass(frozen=True, slots=True)
class NetworkProfile:
    """A periodic re-profile of one node's outgoing links (fits and raw samples)."""

    type: ClassVar[str] = "network_profile"
    node: str
    time: float
    links: tuple[Mapping[str, Any], ...]
    """Link fits as `jupiter.profiling.fit.LinkFit.to_json` writes them."""
    samples: tuple[tuple[str, str, int, float], ...]
    """(src, dst, bytes, seconds) of every probe."""

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "node": self.node,
            "time": self.time,
            "links": [dict(link) for link in self.links],
            "samples": [list(sample) for sample in self.samples],
        }

    @classmethod
    def from_fields(cls, f: _Fields) -> NetworkProfile:
        links = f.raw_list("links")
        if not all(isinstance(link, dict) for link in links):
            raise EventError("network_profile event: links must be objects")
        samples: list[tuple[str, str, int, float]] = []
        for sample in f.raw_list("samples"):
            if not (
                isinstance(sample, list)
                and len(sample) == 4
                and is_name(sample[0])
                and is_name(sample[1])
                and isinstance(sample[2], int)
                and isinstance(sample[3], int | float)
            ):
                raise EventError("network_profile event: samples must be [src, dst, bytes, seconds]")
            samples.append((sample[0], sample[1], int(sample[2]), float(sample[3])))
        return cls(node=f.name("node"), time=f.number("time"), links=tuple(links), samples=tuple(samples))


@dataclass(frozen=True, slots=True)
class ResourceProfile:
    """A periodic sample of one node's CPU and memory use: the machine's (percent) and its agent's own."""

    type: ClassVar[str] = "resource_profile"
    node: str
    time: float
    cpu: float
    """The machine's CPU use, percent of all its cores (smoothed), as the resource profiler measures it."""
    memory: float
    """The machine's memory use, percent."""
    samples: int = 0
    process_cpu: float = 0.0
    """CPU the node's agent and its task workers used since the previous report, percent of one core."""
    process_memory: int = 0
    """Resident memory of the node's agent and its task workers, bytes."""

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "node": self.node,
            "time": self.time,
            "cpu": self.cpu,
            "memory": self.memory,
            "samples": self.samples,
            "process_cpu": self.process_cpu,
            "process_memory": self.process_memory,
        }

    @classmethod
    def from_fields(cls, f: _Fields) -> ResourceProfile:
        return cls(
            node=f.name("node"),
            time=f.number("time"),
            cpu=f.number("cpu", minimum=0.0),
            memory=f.number("memory", minimum=0.0),
            samples=f.integer("samples", 0),
            process_cpu=f.number("process_cpu", 0.0, minimum=0.0),
            process_memory=f.integer("process_memory", 0),
        )


Event = (
    TaskRun
    | Transfer
    | TransferFailed
    | FrameSubmitted
    | FrameDone
    | FrameFailed
    | FrameRestarted
    | NodesDead
    | NetworkProfile
    | ResourceProfile
)
"""Any event of a run."""

_RECORDS: Mapping[str, Callable[[_Fields], Event]] = {
    record.type: record.from_fields
    for record in (
        TaskRun,
        Transfer,
        TransferFailed,
        FrameSubmitted,
        FrameDone,
        FrameFailed,
        FrameRestarted,
        NodesDead,
        NetworkProfile,
        ResourceProfile,
    )
}
TYPES: tuple[str, ...] = tuple(_RECORDS)
"""Every event type, as `type` spells it."""


def home_of(event: Event) -> str:
    """The home node an event belongs to ('' for events of no frame, which go to the first home)."""
    if isinstance(event, TaskRun | Transfer | TransferFailed):
        return event.home
    return ""


# ------------------------------------------------------------- writer, reader


def encode(event: Event) -> str:
    """One event as its JSON line (without the newline)."""
    return json.dumps(event.to_json(), separators=(",", ":"))


def from_json(data: object) -> Event:
    """The event a decoded JSON value holds; EventError with the reason when it holds none."""
    if not isinstance(data, dict):
        raise EventError("an event is a JSON object")
    kind = data.get("type")
    parse = _RECORDS.get(kind) if isinstance(kind, str) else None
    if parse is None:
        shown = kind if isinstance(kind, str) and is_name(kind) else "?"
        raise EventError(f"unknown event type {shown!r}; known: {', '.join(TYPES)}")
    return parse(_Fields(str(kind), data))


def decode(line: str) -> Event:
    """The event on one line; EventError with a one-line reason when it is not one."""
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        raise EventError("not a JSON line") from None
    return from_json(data)


def read_events(
    path: Path, on_bad: Callable[[int, str], None] | None = None, types: Sequence[str] | None = None
) -> Iterator[Event]:
    """The events of an `events.jsonl` (none when it does not exist).

    A line that is not an event is skipped and reported to `on_bad(line number,
    reason)`; without `on_bad` it raises EventError naming the file and line.
    `types` keeps only those event types (the others are not even decoded).
    """
    if not path.exists():
        return
    wanted = set(types) if types is not None else None
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            # A cheap filter first: a line of type `kind` holds `"kind"` (as its `type`'s value).
            if wanted is not None and not any(f'"{kind}"' in text for kind in wanted):
                continue
            try:
                event = decode(text)
            except EventError as exc:
                if on_bad is None:
                    raise EventError(f"{path}:{number}: {exc}") from None
                on_bad(number, str(exc))
                continue
            if wanted is None or event.type in wanted:
                yield event


@dataclass
class BadLines:
    """Collects the lines `read_events` skipped, for one summary line instead of one per line."""

    path: Path
    lines: list[tuple[int, str]] = field(default_factory=list)

    def __call__(self, number: int, reason: str) -> None:
        self.lines.append((number, reason))

    def message(self) -> str:
        """'' when nothing was skipped, else `file:line: reason (and N more)`."""
        if not self.lines:
            return ""
        number, reason = self.lines[0]
        more = f" (and {len(self.lines) - 1} more bad lines)" if len(self.lines) > 1 else ""
        return f"{self.path}:{number}: skipped a line that is not an event: {reason}{more}"
