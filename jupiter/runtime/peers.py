"""Sending messages to a peer's data plane, with retries and backoff.

Each peer gets a small pool of persistent connections; a message is sent on
one of them and counts as delivered only when the receiver answers `ok`.
Payloads in files are streamed from the file to the socket (`sendfile`
where the loop can, else in chunks), never read whole into memory.
Connection failures, timeouts and refusals of kind `retry` (a checksum
mismatch) are retried with exponential backoff, `retries` times and for at
least `patience` seconds (a restarting receiver comes back within that
window, even on a busy machine); refusals that retrying cannot fix (`refused`:
wrong token, unsafe name) are not, and `busy`/`restage` go back to the
caller, which knows what to do about them. A pooled connection idle for
longer than half the receiver's idle timeout is closed rather than reused:
the receiver would have closed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from jupiter.runtime.protocol import (
    Outgoing,
    ProtocolError,
    Refusal,
    RefusalKind,
    encode,
    frame_bytes,
)

SMALL_FILE = 256 * 1024
"""Payloads up to this size are read and written in one go; bigger ones are streamed."""


class TransferFailed(Exception):
    """A message could not be delivered after every retry, or was refused for good."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used: float = field(default_factory=time.monotonic)


@dataclass
class Peer:
    """The data-plane address of one node, with its connection pool."""

    name: str
    host: str
    port: int
    retries: int = 20
    pool_size: int = 4
    timeout: float = 30.0
    first_backoff: float = 0.05
    max_backoff: float = 2.0
    idle_timeout: float = 120.0
    """The receiver's idle timeout (`Limits.idle_timeout`): pooled connections older than half of it are dropped."""
    patience: float = 0.0
    """Seconds a peer may stay unreachable before a message to it fails, however many attempts that takes (at least
    `retries` + 1 attempts either way): an agent killed and restarted on a busy machine can take longer than the
    retries' backoff to come back."""
    _idle: list[_Connection] = field(default_factory=list)
    _slots: asyncio.Semaphore | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.pool_size)
        return self._slots

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), timeout=self.timeout)
        return _Connection(reader, writer)

    def _pooled(self) -> _Connection | None:
        """A pooled connection the receiver will not have closed for idleness."""
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.used < self.idle_timeout / 2 and not connection.reader.at_eof():
                return connection
            connection.writer.close()
        return None

    async def _write(self, connection: _Connection, parts: list[Outgoing], head: bytes) -> None:
        """Write a message: its header, then each part's payload (files streamed)."""
        writer = connection.writer
        writer.write(head)
        loop = asyncio.get_running_loop()
        for part in parts:
            if part.data is not None:
                writer.write(part.data)
                continue
            assert part.path is not None
            with open(part.path, "rb") as handle:
                if part.size <= SMALL_FILE:
                    writer.write(handle.read(part.size))
                    continue
                await writer.drain()
                # Zero-copy from the page cache to the socket where the transport allows it (else
                # the loop reads and writes it in chunks itself).
                sent = await loop.sendfile(writer.transport, handle, 0, part.size)
                if sent != part.size:
                    raise ProtocolError(f"{part.path} is shorter than announced ({sent} of {part.size} bytes)")
        await writer.drain()

    async def _exchange(self, connection: _Connection, parts: list[Outgoing], head: bytes) -> dict[str, Any]:
        await self._write(connection, parts, head)
        line = await asyncio.wait_for(connection.reader.readline(), timeout=self.timeout)
        if not line:
            raise ConnectionResetError("peer closed the connection")
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            raise ProtocolError("bad answer line") from None
        if not isinstance(answer, dict):
            raise ProtocolError("bad answer")
        connection.used = time.monotonic()
        return answer

    async def send(self, header: dict[str, Any], payload: bytes) -> int:
        """Deliver one message; returns the number of attempts it took. Raises TransferFailed."""
        outcome, attempts, _ = await self._deliver([Outgoing.of(header, payload)], str(header.get("token", "")))
        if outcome[0] is not None:
            raise TransferFailed(outcome[0].reason)
        return attempts

    async def deliver(self, header: dict[str, Any], payload: bytes) -> dict[str, Any]:
        """Deliver one message and return the receiver's answer line. Raises TransferFailed."""
        outcome, _, answer = await self._deliver([Outgoing.of(header, payload)], str(header.get("token", "")))
        if outcome[0] is not None:
            raise TransferFailed(outcome[0].reason)
        return answer

    async def send_batch(self, parts: list[Outgoing], token: str) -> tuple[list[Refusal | None], int]:
        """Deliver messages, several per round trip.

        Returns, per message, None once delivered or its refusal: `busy`
        (offer it again later), `restage` (a staged copy to make again,
        `jupiter.runtime.staging`), `refused` (for good) or `unreachable`
        (every retry failed); and the number of attempts made. Parts refused
        with `retry` (corruption, a receiver that cannot store now) are sent
        again; receivers recognise repeats, so re-sending a delivered part is safe.
        """
        outcome, attempts, _ = await self._deliver(parts, token)
        return outcome, attempts

    async def _deliver(self, parts: list[Outgoing], token: str) -> tuple[list[Refusal | None], int, dict[str, Any]]:
        outcome: list[Refusal | None] = [None] * len(parts)
        pending = list(range(len(parts)))
        backoff = self.first_backoff
        last = ""
        attempt = 0
        answer: dict[str, Any] = {}
        began = time.monotonic()
        async with self._semaphore():
            while attempt <= self.retries or time.monotonic() - began < self.patience:
                attempt += 1
                chosen = [parts[i] for i in pending]
                if len(chosen) == 1:
                    head = frame_bytes(chosen[0].wire_header())
                else:
                    head = frame_bytes({"kind": "batch", "token": token, "parts": [p.wire_header() for p in chosen]})
                connection = self._pooled()
                try:
                    if connection is None:
                        connection = await self._connect()
                    answer = await self._exchange(connection, chosen, head)
                except (OSError, TimeoutError, ProtocolError, asyncio.IncompleteReadError) as exc:
                    last = f"{type(exc).__name__}: {exc}"
                    if connection is not None:
                        connection.writer.close()
                else:
                    self._idle.append(connection)
                    results = self._results(answer, len(chosen))
                    still = []
                    for index, problem in zip(pending, results, strict=True):
                        if problem is None:
                            continue
                        if problem.kind in (RefusalKind.BUSY, RefusalKind.RESTAGE):
                            outcome[index] = problem  # the caller offers it again (after copying it again)
                        elif problem.kind is RefusalKind.REFUSED:
                            outcome[index] = Refusal.refused(f"{self.name} refused the message: {problem.reason}")
                        else:
                            last = problem.reason
                            still.append(index)
                    pending = still
                    if not pending:
                        return outcome, attempt, answer
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
        for index in pending:
            outcome[index] = Refusal(
                RefusalKind.UNREACHABLE, f"{self.name} unreachable after {attempt} attempts: {last}"
            )
        return outcome, attempt, answer

    async def ask(self, header: dict[str, Any], payload: bytes, timeout: float, attempts: int = 2) -> dict[str, Any]:
        """Send one request and return its answer line (e.g. pricing's `route`). Raises TransferFailed.

        Unlike `send`, a request is retried only a few times with a short
        timeout: the caller has an alternative (another controller) when
        this peer does not answer.
        """
        raw = encode(header, payload)
        last = ""
        async with self._semaphore():
            for _ in range(attempts):
                connection = self._pooled()
                try:
                    if connection is None:
                        reader, writer = await asyncio.wait_for(
                            asyncio.open_connection(self.host, self.port), timeout=timeout
                        )
                        connection = _Connection(reader, writer)
                    connection.writer.write(raw)
                    await connection.writer.drain()
                    line = await asyncio.wait_for(connection.reader.readline(), timeout=timeout)
                    if not line:
                        raise ConnectionResetError("peer closed the connection")
                    answer = json.loads(line)
                except (OSError, TimeoutError, json.JSONDecodeError, asyncio.IncompleteReadError) as exc:
                    last = f"{type(exc).__name__}: {exc}"
                    if connection is not None:
                        connection.writer.close()
                    continue
                connection.used = time.monotonic()
                self._idle.append(connection)
                if not isinstance(answer, dict) or not answer.get("ok"):
                    error = answer.get("error", "refused") if isinstance(answer, dict) else "bad answer"
                    raise TransferFailed(f"{self.name} refused the request: {error}")
                return answer
        raise TransferFailed(f"{self.name} does not answer: {last}")

    @staticmethod
    def _results(answer: dict[str, Any], count: int) -> list[Refusal | None]:
        """Per-part refusals (None = delivered) from an answer line."""
        if not answer.get("ok"):
            return [Refusal.from_answer(answer)] * count
        results = answer.get("results")
        if count == 1 and results is None:
            return [None]
        if not isinstance(results, list) or len(results) != count:
            return [Refusal.retry("bad answer to a batch")] * count
        return [Refusal.from_answer(result) if isinstance(result, dict) else None for result in results]

    async def close(self) -> None:
        """Close every pooled connection."""
        while self._idle:
            connection = self._idle.pop()
            connection.writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await connection.writer.wait_closed()
