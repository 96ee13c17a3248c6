"""The data plane's wire format, and reading it from an untrusted peer within limits.

A message is a 4-byte big-endian header length, a JSON header, then
`header["size"]` payload bytes. Every header carries the per-deployment
token, and a CRC-32 of the payload (`sum`, 8 hex digits: integrity against
accidental corruption; authenticity is the token's job). The receiver
answers each message with one JSON line (`{"ok": true}`, or `{"ok": false,
"error": ..., "refusal": ...}`) once the payload is safely on disk, so a
sender that saw `ok` never needs to send it again. Names are plain file
names, never paths; the other header fields follow strict ASCII grammars
(`check_file_header`). With another transfer method (`[CONFIG] TRANSFER`),
a `file` message has no payload and names a copy already staged on the
receiver instead (`jupiter.runtime.staging`).

Several messages for the same peer travel as one `batch` message (the
parts' headers in the batch header, their payloads one after the other)
answered by one line with a result per part, which saves most system calls
and context switches when frames stream. Batches are bounded by count and
by bytes, so big frames do not wait for each other.

Nothing is read from a peer before its token is checked: the receiver reads
the header (at most `Limits.max_header` bytes, within the idle timeout),
checks token, kind and sizes, and only then reads the payload — in chunks,
within the read timeout, straight into the file it becomes
(`stream_payload`), so a payload is never held whole in memory and a
stalled peer never holds a connection forever.

A refusal is typed (:class:`Refusal`): its `kind` tells the sender what to
do — offer it again later (`busy`, backpressure), copy a staged file again
(`restage`), send it again now (`retry`, e.g. a corrupted payload) or give
up (`refused`: retrying cannot help). Answers carry the kind on the wire
(`"refusal": "busy"`), so no sender parses error texts.

Raw asyncio streams were chosen over HTTP for the data plane because a hop
costs one round trip and no request parsing (see `bench/runtime/`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jupiter.model.events import is_frame_id, is_name
from jupiter.model.plan import Limits

_LENGTH = struct.Struct(">I")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,199}$")
_SUM = re.compile(r"^[0-9a-f]{8}$")

KINDS = ("file", "event", "submit", "ping", "batch", "price", "route", "choice", "dead")
"""`price`, `route`, `choice` and `dead` are pricing CIRCE's messages (`jupiter.runtime.extensions.pricing`)."""
MAX_BATCH = 64
"""Most parts of one batch message."""
MAX_INDEX = 1_000_000
"""Largest output index (`idx`) of a file message."""
CHUNK = 1024 * 1024
"""Bytes read from (or written to) a socket at a time when streaming a payload."""


class ProtocolError(Exception):
    """A peer sent something that is not a valid message; the connection is closed after one answer."""


class RefusalKind(StrEnum):
    """What a sender does with a refused message."""

    BUSY = "busy"
    """Full now (backpressure): keep it and offer it again later."""
    RESTAGE = "restage"
    """A staged copy is missing or corrupt: copy the file again, then send the message again (`staging`)."""
    RETRY = "retry"
    """Something a new attempt may fix (a corrupted payload, a receiver that cannot store it now)."""
    REFUSED = "refused"
    """Retrying cannot help (wrong token, unsafe name, a task that is not on that node)."""
    UNREACHABLE = "unreachable"
    """The sender gave up after its retries (never sent on the wire)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message was not taken, and what the sender should do about it."""

    kind: RefusalKind
    reason: str

    def __str__(self) -> str:
        return self.reason

    @property
    def busy(self) -> bool:
        return self.kind is RefusalKind.BUSY

    @classmethod
    def refused(cls, reason: str) -> Refusal:
        return cls(RefusalKind.REFUSED, reason)

    @classmethod
    def retry(cls, reason: str) -> Refusal:
        return cls(RefusalKind.RETRY, reason)

    @classmethod
    def full(cls, reason: str) -> Refusal:
        """Backpressure."""
        return cls(RefusalKind.BUSY, reason)

    @classmethod
    def restage(cls, reason: str) -> Refusal:
        return cls(RefusalKind.RESTAGE, reason)

    @classmethod
    def from_answer(cls, answer: dict[str, Any]) -> Refusal:
        """The refusal an answer line carries (an answer without a known kind is worth a retry)."""
        reason = str(answer.get("error") or "refused")
        try:
            kind = RefusalKind(answer.get("refusal", RefusalKind.RETRY))
        except ValueError:
            kind = RefusalKind.RETRY
        return cls(kind, reason)


# ------------------------------------------------------------------ checksums


def checksum(data: bytes, running: int = 0) -> str:
    """The checksum carried with a payload (CRC-32, 8 hex digits); `running` continues an earlier one."""
    return f"{zlib.crc32(data, running):08x}"


def file_checksum(path: str) -> tuple[int, str]:
    """Size and checksum of a file, read in chunks."""
    running = 0
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            running = zlib.crc32(chunk, running)
            size += len(chunk)
    return size, f"{running:08x}"


def safe_name(name: str) -> bool:
    """Whether a file name may be written as is: ASCII, no folders, no `..`, no hidden files."""
    return name.isascii() and bool(_SAFE_NAME.fullmatch(name)) and ".." not in name


def token_ok(expected: str, given: object) -> bool:
    """Constant-time token comparison."""
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())


# ------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Message:
    """One decoded message whose payload is in memory (events, pricing messages, small files)."""

    header: dict[str, Any]
    payload: bytes

    @property
    def kind(self) -> str:
        return str(self.header.get("kind", ""))


@dataclass(frozen=True)
class Outgoing:
    """One message to send: its header and its payload, in memory or in a file (streamed, never read whole)."""

    header: dict[str, Any]
    data: bytes | None = None
    path: str | None = None
    size: int = 0
    sum: str = ""
    """The payload's checksum when known already (the worker computes it for task outputs)."""

    @classmethod
    def of(cls, header: dict[str, Any], data: bytes) -> Outgoing:
        return cls(header, data=data, size=len(data), sum=checksum(data))

    def wire_header(self) -> dict[str, Any]:
        return dict(self.header, size=self.size, sum=self.sum)


def frame_bytes(header: dict[str, Any]) -> bytes:
    """A header as it goes on the wire: length prefix and JSON."""
    raw = json.dumps(header, separators=(",", ":")).encode()
    return _LENGTH.pack(len(raw)) + raw


def encode(header: dict[str, Any], payload: bytes) -> bytes:
    """Serialise a message with its payload in memory; fills in size and checksum."""
    return frame_bytes(dict(header, size=len(payload), sum=checksum(payload))) + payload


# -------------------------------------------------------------------- reading


async def read_header(reader: asyncio.StreamReader, limits: Limits) -> dict[str, Any] | None:
    """The next message's header; None at a clean end of stream or after the idle timeout.

    Raises ProtocolError for anything that is not a header within the limits:
    nothing of the payload has been read then.
    """
    try:
        prefix = await asyncio.wait_for(reader.readexactly(_LENGTH.size), limits.idle_timeout)
    except TimeoutError:
        return None
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("connection closed inside a message") from None
        return None
    (length,) = _LENGTH.unpack(prefix)
    if length == 0 or length > limits.max_header:
        raise ProtocolError(f"header length {length} out of range (at most {limits.max_header})")
    try:
        raw = await asyncio.wait_for(reader.readexactly(length), limits.read_timeout)
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ProtocolError("header is not JSON") from None
    except TimeoutError:
        raise ProtocolError(f"no complete header within {limits.read_timeout:g} s") from None
    except asyncio.IncompleteReadError:
        raise ProtocolError("connection closed inside a header") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not an object")
    return header


def payload_size(header: dict[str, Any], limit: int) -> int:
    """The payload size a header announces; ProtocolError when it is missing or over `limit`."""
    size = header.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ProtocolError("payload size missing or out of range")
    if size > limit:
        raise ProtocolError(f"payload of {size} bytes is over the limit of {limit}")
    return size


async def read_payload(reader: asyncio.StreamReader, size: int, limits: Limits) -> bytes:
    """A payload read into memory (`size` was checked against the limits)."""
    try:
        return await asyncio.wait_for(reader.readexactly(size), limits.read_timeout + size / 1e6)
    except TimeoutError:
        raise ProtocolError(f"payload not received within {limits.read_timeout:g} s") from None
    except asyncio.IncompleteReadError:
        raise ProtocolError("connection closed inside a payload") from None


async def stream_payload(
    reader: asyncio.StreamReader, size: int, limits: Limits, write: Callable[[bytes], object] | None
) -> str:
    """Read a payload in chunks into `write` (None: discard it); returns its checksum.

    Each chunk must arrive within the read timeout: a peer that stops
    sending mid-payload loses the connection, not the receiver's memory.
    """
    running = 0
    left = size
    while left > 0:
        try:
            chunk = await asyncio.wait_for(reader.read(min(CHUNK, left)), limits.read_timeout)
        except TimeoutError:
            raise ProtocolError(f"payload stalled for {limits.read_timeout:g} s") from None
        if not chunk:
            raise ProtocolError("connection closed inside a payload")
        running = zlib.crc32(chunk, running)
        if write is not None:
            write(chunk)
        left -= len(chunk)
    return f"{running:08x}"


async def read_message(reader: asyncio.StreamReader, limits: Limits | None = None) -> Message | None:
    """One whole message read into memory (a header, then its payload); None at a clean end of stream.

    For peers of small messages (profiling probes' receivers in tests and
    benchmarks); an agent streams files instead (`stream_payload`).
    """
    limits = limits or Limits()
    header = await read_header(reader, limits)
    if header is None:
        return None
    return Message(header, await read_payload(reader, payload_size(header, limits.max_payload), limits))


# ------------------------------------------------------------------- checking


def check_auth(header: dict[str, Any], token: str) -> Refusal | None:
    """Token and kind: checked before anything else of a message is read."""
    if not token_ok(token, header.get("token")):
        return Refusal.refused("unauthenticated: missing or wrong deployment token")
    kind = header.get("kind")
    if kind not in KINDS:
        shown = kind if isinstance(kind, str) and is_name(kind) else "?"
        return Refusal.refused(f"unknown message kind {shown!r}")
    return None


def check_file_header(header: dict[str, Any]) -> Refusal | None:
    """The fields of a `file` (or `submit`) header that reach file names and slots: strict ASCII grammars."""
    name = header.get("name")
    if not isinstance(name, str) or not safe_name(name):
        return Refusal.refused(f"unsafe file name {repr(name)[:80]}: plain names only, no folders or '..'")
    if header.get("kind") == "submit":
        return None
    if not is_frame_id(header.get("frame")):
        return Refusal.refused(f"bad frame id {str(header.get('frame'))[:80]!r}")
    for field in ("task", "src"):
        if not is_name(header.get(field)):
            return Refusal.refused(f"bad {field} {str(header.get(field))[:80]!r}: a task name")
    index = header.get("idx")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_INDEX:
        return Refusal.refused(f"bad output index {str(index)[:20]!r}")
    home = header.get("home")
    if home is not None and not is_name(home):
        return Refusal.refused(f"bad home {str(home)[:80]!r}")
    staged = header.get("staged")
    if staged is not None and (not isinstance(staged, str) or not safe_name(staged)):
        return Refusal.refused(
            f"unsafe file name {repr(staged)[:80]} for a staged copy: plain names only, no folders or '..'"
        )
    return None


def check_sum(header: dict[str, Any]) -> Refusal | None:
    """A checksum field that is one (8 lower-case hex digits)."""
    if not isinstance(header.get("sum"), str) or not _SUM.fullmatch(header["sum"]):
        return Refusal.refused("checksum missing or not 8 hex digits")
    return None


def check(message: Message, token: str) -> Refusal | None:
    """Why an in-memory message must be refused, or None when it is acceptable."""
    problem = check_auth(message.header, token)
    if problem is not None or message.kind == "batch":
        return problem
    if message.header.get("sum") != checksum(message.payload):
        return Refusal.retry("checksum mismatch: payload corrupted in transit")
    if message.kind in ("file", "submit"):
        return check_file_header(message.header)
    return None


# ------------------------------------------------------------------- answering


def reply(ok: bool, error: str = "", **data: Any) -> bytes:
    """One answer line (with `data` for requests that return something, e.g. `route`)."""
    body: dict[str, Any] = {"ok": ok, **data}
    if error:
        body["error"] = error
    return json.dumps(body).encode() + b"\n"


def refusal_reply(refusal: Refusal | None, **data: Any) -> bytes:
    """The answer line to a message that was taken (None) or refused."""
    if refusal is None:
        return reply(True, **data) if data else b'{"ok": true}\n'
    return reply(False, refusal.reason, refusal=refusal.kind.value)


def refusal_result(refusal: Refusal | None) -> dict[str, str] | None:
    """One part's result in the answer to a batch."""
    if refusal is None:
        return None
    return {"error": refusal.reason, "refusal": refusal.kind.value}


def batch_parts(header: dict[str, Any], limits: Limits) -> list[dict[str, Any]]:
    """The part headers of a batch header; ProtocolError when they are not a bounded list of objects."""
    parts = header.get("parts")
    if not isinstance(parts, list) or not 0 < len(parts) <= MAX_BATCH:
        raise ProtocolError(f"a batch has 1 to {MAX_BATCH} parts")
    if not all(isinstance(part, dict) and part.get("kind") == "file" for part in parts):
        raise ProtocolError("batch parts are file headers")
    for part in parts:
        payload_size(part, limits.max_payload)
    return parts
