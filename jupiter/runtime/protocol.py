"""The data plane's wire format.

A message is a 4-byte big-endian header length, a JSON header, then
`header["size"]` payload bytes. The receiver answers each message with one
JSON line (`{"ok": true}` or `{"ok": false, "error": ...}`) once the payload
is safely on disk, so a sender that saw `ok` never needs to send it again.
Every header carries the per-deployment token and a BLAKE2b checksum of the
payload; names are plain file names, never paths. With another transfer
method (`[CONFIG] TRANSFER`), a `file` message has no payload and names a
copy already staged on the receiver instead (`jupiter.runtime.staging`).

Several messages for the same peer travel as one `batch` message (the
parts' headers in the batch header, their payloads concatenated) answered by
one line with a result per part, which saves most system calls and context
switches when frames stream.

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
import hashlib
import hmac
import json
import re
import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MAX_HEADER = 64 * 1024
MAX_PAYLOAD = 2 * 1024**3
_LENGTH = struct.Struct(">I")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,199}$")

KINDS = ("file", "event", "submit", "ping", "batch", "price", "route", "choice", "dead")
"""`price`, `route`, `choice` and `dead` are pricing CIRCE's messages (`jupiter.runtime.extensions.pricing`)."""
MAX_BATCH = 64


class ProtocolError(Exception):
    """A peer sent something that is not a valid message; the message is refused."""


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


def checksum(data: bytes) -> str:
    """Checksum carried with every payload."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def safe_name(name: str) -> bool:
    """Whether a file name may be written as is: no folders, no `..`, no hidden files."""
    return bool(_SAFE_NAME.match(name)) and ".." not in name


def token_ok(expected: str, given: object) -> bool:
    """Constant-time token comparison."""
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())


@dataclass(frozen=True)
class Message:
    """One decoded message."""

    header: dict[str, Any]
    payload: bytes

    @property
    def kind(self) -> str:
        return str(self.header.get("kind", ""))


def encode(header: dict[str, Any], payload: bytes) -> bytes:
    """Serialise a message; fills in size and checksum."""
    full = dict(header, size=len(payload), sum=checksum(payload))
    raw = json.dumps(full, separators=(",", ":")).encode()
    return _LENGTH.pack(len(raw)) + raw + payload


async def read_message(reader: asyncio.StreamReader) -> Message | None:
    """Read one message; None at a clean end of stream. Raises ProtocolError on garbage."""
    try:
        prefix = await reader.readexactly(_LENGTH.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("connection closed inside a message") from None
        return None
    (length,) = _LENGTH.unpack(prefix)
    if length == 0 or length > MAX_HEADER:
        raise ProtocolError(f"header length {length} out of range")
    try:
        header = json.loads(await reader.readexactly(length))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ProtocolError("header is not JSON") from None
    except asyncio.IncompleteReadError:
        raise ProtocolError("connection closed inside a header") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not an object")
    size = header.get("size")
    if not isinstance(size, int) or not 0 <= size <= MAX_PAYLOAD:
        raise ProtocolError("payload size missing or out of range")
    try:
        payload = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise ProtocolError("connection closed inside a payload") from None
    return Message(header, payload)


def encode_batch(parts: list[tuple[dict[str, Any], bytes]], token: str) -> bytes:
    """Serialise several messages as one `batch` message."""
    headers = [dict(header, size=len(payload), sum=checksum(payload)) for header, payload in parts]
    return encode({"kind": "batch", "token": token, "parts": headers}, b"".join(payload for _, payload in parts))


def split_batch(message: Message) -> list[Message]:
    """The parts of a `batch` message; raises ProtocolError when they do not add up."""
    headers = message.header.get("parts")
    if not isinstance(headers, list) or not 0 < len(headers) <= MAX_BATCH:
        raise ProtocolError("batch without parts")
    parts = []
    offset = 0
    for header in headers:
        size = header.get("size") if isinstance(header, dict) else None
        if not isinstance(size, int) or size < 0:
            raise ProtocolError("batch part without a size")
        parts.append(Message(header, message.payload[offset : offset + size]))
        offset += size
    if offset != len(message.payload):
        raise ProtocolError("batch parts do not add up to the payload")
    return parts


def check(message: Message, token: str) -> Refusal | None:
    """Why a message must be refused, or None when it is acceptable."""
    header = message.header
    if not token_ok(token, header.get("token")):
        return Refusal.refused("unauthenticated: missing or wrong deployment token")
    if message.kind not in KINDS:
        return Refusal.refused(f"unknown message kind {message.kind!r}")
    if message.kind == "batch":
        return None
    if header.get("sum") != checksum(message.payload):
        return Refusal.retry("checksum mismatch: payload corrupted in transit")
    name = header.get("name")
    if message.kind in ("file", "submit") and (not isinstance(name, str) or not safe_name(name)):
        return Refusal.refused(f"unsafe file name {name!r}: plain names only, no folders or '..'")
    return None


def reply(ok: bool, error: str = "", **data: Any) -> bytes:
    """One answer line (with `data` for requests that return something, e.g. `route`)."""
    body: dict[str, Any] = {"ok": ok, **data}
    if error:
        body["error"] = error
    return json.dumps(body).encode() + b"\n"


def refusal_reply(refusal: Refusal | None) -> bytes:
    """The answer line to a message that was taken (None) or refused."""
    if refusal is None:
        return b'{"ok": true}\n'
    return reply(False, refusal.reason, refusal=refusal.kind.value)


def refusal_result(refusal: Refusal | None) -> dict[str, str] | None:
    """One part's result in the answer to a batch."""
    if refusal is None:
        return None
    return {"error": refusal.reason, "refusal": refusal.kind.value}
