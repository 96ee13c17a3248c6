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
QUEUE_EVENTS = 200_000
"""Most events an agent keeps for home (about 50 MB at worst)."""


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
    """Queues events and sends them to their home nodes in batches.

    The queue is bounded (`QUEUE_EVENTS`): while home cannot be reached, the
    oldest events are dropped (and counted in the log) rather than the
    agent's memory growing. Home's answer names the oldest frame it still has
    in flight; `on_oldest(home, sequence)` passes it on (the inbox forgets
    what it remembers of older frames).
    """

    def __init__(
        self,
        token: str,
        default_home: str,
        peer: Callable[[str], Peer],
        on_oldest: Callable[[str, int], None] = lambda home, sequence: None,
    ) -> None:
        self.token = token
        self.default_home = default_home
        self.peer = peer
        self.on_oldest = on_oldest
        self.queue: deque[Event] = deque(maxlen=QUEUE_EVENTS)
        self.dropped = 0

    def emit(self, event: Event) -> None:
        if len(self.queue) == QUEUE_EVENTS:
            self.dropped += 1
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
        if self.dropped:
            log.error("dropped %d statistics events while home could not keep up or be reached", self.dropped)
            self.dropped = 0
        for home, lines in groups.items():
            try:
                answer = await self.peer(home).deliver(
                    {"kind": "event", "token": self.token}, "\n".join(lines).encode()
                )
            except TransferFailed as exc:
                log.error("lost %d statistics events for %s: %s", len(lines), home, exc)
                continue
            oldest = answer.get("oldest")
            if isinstance(oldest, int) and not isinstance(oldest, bool):
                self.on_oldest(home, oldest)


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
