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
from typing import Any

MAX_HEADER = 64 * 1024
MAX_PAYLOAD = 2 * 1024**3
_LENGTH = struct.Struct(">I")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,199}$")

KINDS = ("file", "event", "submit", "ping", "batch", "price", "route", "choice", "dead")
"""`price`, `route`, `choice` and `dead` are pricing CIRCE's messages (`jupiter.runtime.pricing`)."""
BUSY = "busy:"
"""Prefix of a refusal that means "full now, offer it again later" (backpressure)."""
RESTAGE = "restage:"
"""Prefix of a refusal of a staged copy (missing or corrupt): copy the file again, then re-send (`staging`)."""
MAX_BATCH = 64


class ProtocolError(Exception):
    """A peer sent something that is not a valid message; the message is refused."""


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


def check(message: Message, token: str) -> str | None:
    """Why a message must be refused, or None when it is acceptable."""
    header = message.header
    if not token_ok(token, header.get("token")):
        return "unauthenticated: missing or wrong deployment token"
    if message.kind not in KINDS:
        return f"unknown message kind {message.kind!r}"
    if message.kind == "batch":
        return None
    if header.get("sum") != checksum(message.payload):
        return "checksum mismatch: payload corrupted in transit"
    name = header.get("name")
    if message.kind in ("file", "submit") and (not isinstance(name, str) or not safe_name(name)):
        return f"unsafe file name {name!r}: plain names only, no folders or '..'"
    return None


def reply(ok: bool, error: str = "", **data: Any) -> bytes:
    """One answer line (with `data` for requests that return something, e.g. `route`)."""
    body: dict[str, Any] = {"ok": ok, **data}
    if error:
        body["error"] = error
    return json.dumps(body).encode() + b"\n"
