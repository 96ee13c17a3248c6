"""An agent's outbox: every output waiting to be delivered, journalled until its receiver says `ok`.

A task's outputs become :class:`~jupiter.runtime.spool.OutboxRecord`s, one
per child. A child on this node gets its file handed over by hard link
(`hand_over`: no copy, no network, no journal entry — a crash before the
parent is marked done runs it again, and the child recognises the slot).
Every other record is journalled (`outbox.log`) and queued for its
destination, where two send loops per peer take as many records per round
trip as are waiting. A `busy` refusal (backpressure) puts a record back in
the queue a moment later; any other failure after the peer's retries is
offered to the router (pricing may send it elsewhere), else reported as a
failed transfer. A task's work folder is freed when the last record that
needs it is settled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from jupiter.model.events import Event, Transfer, TransferFailed
from jupiter.model.plan import HOME_TASK, Plan
from jupiter.runtime.emulation import Emulation
from jupiter.runtime.inbox import Inbox
from jupiter.runtime.peers import Peer
from jupiter.runtime.protocol import MAX_BATCH, Outgoing, Refusal, file_checksum
from jupiter.runtime.router import MappedRouter, Router
from jupiter.runtime.spool import FolderPool, OutboxJournal, OutboxRecord
from jupiter.runtime.staging import Staging

log = logging.getLogger("jupiter.agent")

BUSY_RETRY_SECONDS = (0.02, 0.5)
"""How long a peer that answered `busy` is left alone: doubling from the first to the second while it stays busy."""
SEND_LOOPS = 2
"""Send loops per destination: one can wait for an answer while the other sends."""


class Outbox:
    """Delivery of one node's outputs (module docstring)."""

    def __init__(
        self,
        node: str,
        token: str,
        plan: Callable[[], Plan],
        journal: OutboxJournal,
        peer: Callable[[str], Peer],
        pool: Callable[[str], FolderPool],
        emulation: Emulation,
        staging: Staging | None,
        emit: Callable[[Event], None],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self.node = node
        self.token = token
        self._plan = plan
        self.journal = journal
        self.peer = peer
        self.pool = pool
        self.emulation = emulation
        self.staging = staging
        self.emit = emit
        self.spawn = spawn
        self.queues: dict[str, asyncio.Queue[OutboxRecord]] = {}
        self.pending_release: dict[str, int] = {}
        self.backoff: dict[str, float] = {}
        """Per peer that answered `busy` last time: seconds until its records are offered again."""
        self.router: Router = MappedRouter()
        """Set by the agent: where records that could not be delivered go instead (pricing)."""
        self.inbox: Inbox | None = None
        """Set by the agent: the node's own inbox, for hand-overs."""

    # --------------------------------------------------------------- records

    def recover(self) -> set[str]:
        """Queue again every record never acknowledged; returns the work folders they hold."""
        referenced: set[str] = set()
        for record in self.journal.recover():
            if record.release:
                referenced.add(record.release)
                self.pending_release[record.release] = self.pending_release.get(record.release, 0) + 1
            self._queue_for(record.dest).put_nowait(record)
        return referenced

    def hold(self, folder: str, count: int) -> None:
        """`count` more records need `folder`; it is released when they are all settled."""
        self.pending_release[folder] = self.pending_release.get(folder, 0) + count

    def send(self, records: list[OutboxRecord]) -> None:
        """Journal and queue records for their destinations."""
        if not records:
            return
        self.journal.add(records)
        for record in records:
            self._queue_for(record.dest).put_nowait(record)

    def release(self, folder: str | None) -> None:
        """One record that needed `folder` is settled."""
        if folder is None:
            return
        left = self.pending_release.get(folder, 1) - 1
        if left <= 0:
            self.pending_release.pop(folder, None)
            self.pool(os.path.dirname(folder)).release(folder)
        else:
            self.pending_release[folder] = left

    def waiting(self) -> int:
        """Records queued for delivery now."""
        return sum(queue.qsize() for queue in self.queues.values())

    # ------------------------------------------------------------ hand-over

    def hand_over(self, records: list[OutboxRecord]) -> list[OutboxRecord]:
        """Give outputs whose child runs on this node straight to it; returns the records still to send.

        The output file is hard-linked into the child's inbox. A child that
        is full (TASK_QUEUE_SIZE) gets it through the outbox, which waits and
        offers it again.
        """
        inbox = self.inbox
        if inbox is None or self.staging is not None:
            return records
        remote: list[OutboxRecord] = []
        linked: set[str] = set()
        for record in records:
            if record.dest != self.node or record.header.get("task") == HOME_TASK:
                remote.append(record)
                continue
            try:
                # One output for several children here (FLAG true): each later one gets its own copy,
                # as over the network, so a task that writes to its input cannot touch another's.
                copy = record.payload in linked
                problem = inbox.accept(record.header, None, source=record.payload, copy=copy, peer=self.node)
                linked.add(record.payload)
            except OSError as exc:
                problem = Refusal.retry(f"cannot hand over {record.payload}: {exc}")
            if problem is not None:
                remote.append(record)
                continue
            self.emit(self._sent(record, time.time(), 0.0, 0))
            self.release(record.release)
        return remote

    def _sent(self, record: OutboxRecord, when: float, seconds: float, size: int) -> Transfer:
        plan = self._plan()
        return Transfer(
            side="sender",
            node=self.node,
            path=record.payload,
            time=when,
            frame=str(record.header.get("frame")),
            home=str(record.header.get("home") or plan.home),
            peer=record.dest,
            bytes=size,
            seconds=seconds,
            task=str(record.header.get("task", "")),
        )

    # ------------------------------------------------------------ send loops

    def _queue_for(self, dest: str) -> asyncio.Queue[OutboxRecord]:
        if dest not in self.queues:
            self.queues[dest] = asyncio.Queue()
            for _ in range(SEND_LOOPS):
                self.spawn(self._send_loop(dest))
        return self.queues[dest]

    def _outgoing(self, record: OutboxRecord) -> Outgoing:
        """A record as a message: its file streamed, its checksum the one its worker computed (else computed now)."""
        size = os.stat(record.payload).st_size
        known = record.header.get("sum")
        if isinstance(known, str) and known and record.header.get("size") == size:
            digest = known
        else:
            size, digest = file_checksum(record.payload)
        header = {key: value for key, value in record.header.items() if key not in ("size", "sum")}
        header.update(token=self.token, **{"from": self.node})
        return Outgoing(header, path=record.payload, size=size, sum=digest)

    async def _send_loop(self, dest: str) -> None:
        """Send queued records to one peer, as many per round trip as are waiting, within the batch's bytes."""
        queue = self.queues[dest]
        peer = self.peer(dest)
        while True:
            batch = [await queue.get()]
            budget = self._plan().limits.batch_bytes
            total = int(batch[0].header.get("size") or 0)
            while len(batch) < MAX_BATCH and not queue.empty() and total < budget:
                record = queue.get_nowait()
                batch.append(record)
                total += int(record.header.get("size") or 0)
            started = time.time()
            parts: list[Outgoing] = []
            sendable: list[OutboxRecord] = []
            errors: dict[str, Refusal] = {}
            for record in batch:
                try:
                    parts.append(self._outgoing(record))
                    sendable.append(record)
                except OSError as exc:
                    errors[record.ident] = Refusal.refused(f"cannot read {record.payload}: {exc.strerror}")
            sizes = {record.ident: part.size for record, part in zip(sendable, parts, strict=True)}
            if parts:
                await self.emulation.shape(dest, [part.size for part in parts])
                if self.staging is None:
                    outcome, _ = await peer.send_batch(parts, self.token)
                else:
                    outcome = await self.staging.send_batch(peer, sendable, parts, self.token)
                errors.update(
                    (record.ident, error) for record, error in zip(sendable, outcome, strict=True) if error is not None
                )
            if errors:
                kept = await self.router.reroute(dest, batch, errors)
                idents = {record.ident for record in kept}
                moved = [record.ident for record in batch if record.ident not in idents]
                if moved:
                    # Journalled again for their new node: settled here without a failure or a release.
                    self.journal.ack(moved)
                batch = kept
            busy = [record for record in batch if record.ident in errors and errors[record.ident].busy]
            if busy:
                first, most = BUSY_RETRY_SECONDS
                delay = self.backoff[dest] = min(most, 2 * self.backoff.get(dest, first / 2))
                loop = asyncio.get_running_loop()
                for record in busy:
                    loop.call_later(delay, queue.put_nowait, record)
                batch = [record for record in batch if record not in busy]
            else:
                self.backoff.pop(dest, None)
            seconds = time.time() - started
            plan = self._plan()
            for record in batch:
                error = errors.get(record.ident)
                if error is not None:
                    log.error("transfer of %s to %s failed: %s", record.payload, dest, error)
                    self.emit(
                        TransferFailed(
                            node=self.node,
                            dest=dest,
                            frame=str(record.header.get("frame")),
                            task=str(record.header.get("task")),
                            error=error.reason,
                            home=str(record.header.get("home") or plan.home),
                        )
                    )
                self.emit(self._sent(record, -1 if error else started, seconds, sizes.get(record.ident, 0)))
            if batch:
                self.journal.ack([record.ident for record in batch])
            for record in batch:
                self.release(record.release)
