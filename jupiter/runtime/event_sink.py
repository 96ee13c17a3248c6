"""Where an agent's statistics events go: to home over the data plane, or (at home) straight to its writer.

A node agent queues the typed events it emits and sends them to home in
batches every `FLUSH_SECONDS`, each to the home its frame belongs to (the
first home for events of no frame), as JSON lines (`jupiter.model.events`).
Home's own events go to its statistics writer directly
(`jupiter.runtime.statistics`), so `RecordingSink` is a thin adapter.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from jupiter.model import events
from jupiter.model.events import Event
from jupiter.runtime.peers import Peer, TransferFailed

log = logging.getLogger("jupiter.agent")

FLUSH_SECONDS = 0.1
BATCH = 1000
"""Most events per message."""


class EventSink(Protocol):
    """Takes an agent's events."""

    def emit(self, event: Event) -> None:
        """Record one event (never blocks)."""
        ...

    async def flush(self) -> None:
        """Deliver everything emitted so far."""
        ...

    async def run(self) -> None:
        """Deliver events as they come, for the agent's lifetime."""
        ...


class RemoteSink:
    """Queues events and sends them to their home nodes in batches."""

    def __init__(self, token: str, default_home: str, peer: Callable[[str], Peer]) -> None:
        self.token = token
        self.default_home = default_home
        self.peer = peer
        self.queue: deque[Event] = deque()

    def emit(self, event: Event) -> None:
        self.queue.append(event)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.send_some()

    async def flush(self) -> None:
        while self.queue:
            await self.send_some()

    async def send_some(self) -> None:
        """Send up to BATCH queued events, each to the home of its frame."""
        if not self.queue:
            return
        groups: dict[str, list[str]] = {}
        for _ in range(min(BATCH, len(self.queue))):
            event = self.queue.popleft()
            home = events.home_of(event) or self.default_home
            groups.setdefault(home, []).append(events.encode(event))
        for home, lines in groups.items():
            try:
                await self.peer(home).send({"kind": "event", "token": self.token}, "\n".join(lines).encode())
            except TransferFailed as exc:
                log.error("lost %d statistics events for %s: %s", len(lines), home, exc)


class RecordingSink:
    """Home's sink: every event goes to the statistics writer at once."""

    def __init__(self, record: Callable[[Event], None]) -> None:
        self.record = record

    def emit(self, event: Event) -> None:
        self.record(event)

    async def flush(self) -> None:
        """Nothing is queued."""

    async def run(self) -> None:
        """Nothing to deliver in the background."""
