"""Moving files with another transfer method: `[CONFIG] TRANSFER = scp` or a plug-in.

With the default, `http`, a file travels inside its data-plane message.
With another method the sender first copies the file with the method's
`data_transfer(host, user, source, destination)` into the receiving node's
staging folder, then sends the usual `file` message without payload, naming
the staged copy (`staged`, a plain name) with its size and checksum. The
receiver takes that name only from its own staging folder, checks the copy
and stores it exactly like a payload. A missing or corrupt copy is refused
with `restage:`: the sender copies it again and re-sends, up to the data
plane's retries. Retries, backpressure, the outbox journal and the
statistics stay the data plane's; only the bytes take another path.

A copy is named after its outbox record, so a sender that restarts
overwrites its own unfinished copies instead of leaving new ones. The
receiver deletes a copy once it has read it, except when it answers `busy:`:
the sender then offers the same copy again later without copying it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jupiter.model.plan import Plan
from jupiter.profiling.interface import DataTransfer, TransferSettings
from jupiter.profiling.plugins import get_transfer
from jupiter.runtime.peers import Peer
from jupiter.runtime.protocol import Message, Outgoing, Refusal, RefusalKind, checksum, safe_name
from jupiter.runtime.spool import OutboxRecord


class Staging:
    """One agent's staged transfers: copying files to peers, taking copies from its own folder."""

    def __init__(
        self,
        name: str,
        method: DataTransfer,
        user: str,
        hosts: Mapping[str, str],
        folders: Mapping[str, str],
        node: str,
    ) -> None:
        self.name = name
        """The method's name as `[CONFIG] TRANSFER` gives it (also the statistics' Transfer_Type)."""
        self.method = method
        self.user = user
        self.hosts = hosts
        self.folders = folders
        """Every node's staging folder (absolute)."""
        self.node = node
        self.folder = folders[node]
        """This node's staging folder: the only place copies are taken from."""
        self.in_place: set[str] = set()
        """Copies a receiver kept after answering `busy:` (not copied again when offered again)."""

    @classmethod
    def from_plan(cls, plan: Plan, node: str, root: Path) -> Staging | None:
        """The staged transfers a plan asks for; None with `TRANSFER = http` (files travel in messages).

        `plan.transfer_settings` holds the user, port, key file, known hosts
        and every node's staging folder (relative to the deployment folder
        `root`, which is the same path on every node).
        """
        if plan.transfer == "http":
            return None
        extra = plan.transfer_settings
        if extra is None:
            raise ValueError(f"TRANSFER = {plan.transfer} needs the plan's transfer settings")
        settings = TransferSettings(
            port=extra.port,
            key_file=Path(extra.key_file) if extra.key_file else None,
            known_hosts=Path(extra.known_hosts) if extra.known_hosts else None,
        )
        return cls(
            plan.transfer,
            get_transfer(plan.transfer, settings),
            extra.user,
            {name: address.host for name, address in plan.nodes.items()},
            {name: str(root / folder) for name, folder in extra.staging.items()},
            node,
        )

    # ---------------------------------------------------------------- sender

    async def check(self, peers: Sequence[str], probe: Path) -> dict[str, str]:
        """Copy `probe` once to each peer's staging folder, side by side; peer -> why it failed (none: all fine).

        One attempt, no retries: a deployment checks its transfer method before
        anything depends on it, so a missing SSH server is named in seconds, not
        after every retry of every file.
        """

        async def one(peer: str) -> str | None:
            destination = f"{self.folders[peer]}/.probe-from-{self.node}"
            try:
                await asyncio.to_thread(self.method.data_transfer, self.hosts[peer], self.user, probe, destination)
            except Exception as exc:  # noqa: BLE001 - a plug-in may raise anything; it is reported with its type
                return str(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
            return None

        answers = await asyncio.gather(*(one(peer) for peer in peers))
        return {peer: why for peer, why in zip(peers, answers, strict=True) if why is not None}

    async def send_batch(
        self, peer: Peer, records: list[OutboxRecord], parts: list[Outgoing], token: str
    ) -> list[Refusal | None]:
        """Copy each record's file to `peer`'s node, then send its message without payload.

        `parts` are the records' messages as `Peer.send_batch` takes them; the
        answer is per part as `Peer.send_batch` gives it. A copy that fails or
        arrives corrupt is made again, up to the peer's retries.
        """
        outcome: list[Refusal | None] = [None] * len(parts)
        pending = list(range(len(parts)))
        backoff = peer.first_backoff
        for attempt in range(peer.retries + 1):
            if attempt:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, peer.max_backoff)
            copies = await asyncio.gather(*(self._copy(peer.name, records[index]) for index in pending))
            copied = []
            for index, problem in zip(pending, copies, strict=True):
                outcome[index] = problem
                if problem is None:
                    copied.append(index)
            if copied:
                messages = [self._announce(records[index].ident, parts[index]) for index in copied]
                answers, _ = await peer.send_batch(messages, token)
                for index, answer in zip(copied, answers, strict=True):
                    outcome[index] = answer
                    if answer is not None and answer.busy:
                        self.in_place.add(records[index].ident)
                    else:
                        self.in_place.discard(records[index].ident)
            pending = [
                index for index in pending if (refusal := outcome[index]) and refusal.kind is RefusalKind.RESTAGE
            ]
            if not pending:
                return outcome
        for index in pending:
            outcome[index] = Refusal(
                RefusalKind.UNREACHABLE,
                f"{peer.name} got no good copy after {peer.retries + 1} attempts: {outcome[index]}",
            )
        return outcome

    async def _copy(self, dest: str, record: OutboxRecord) -> Refusal | None:
        """Copy a record's file into `dest`'s staging folder; None once there, else why not."""
        if record.ident in self.in_place:
            return None
        try:
            await asyncio.to_thread(
                self.method.data_transfer,
                self.hosts[dest],
                self.user,
                Path(record.payload),
                f"{self.folders[dest]}/{record.ident}",
            )
        except PermissionError as exc:
            return Refusal.refused(f"{self.name} transfer to {dest} refused: {exc}")
        except OSError as exc:
            return Refusal.restage(f"{self.name} transfer to {dest} failed: {exc}")
        except Exception as exc:  # noqa: BLE001 - a plug-in may raise anything; the file is reported failed
            return Refusal.refused(f"{self.name} transfer to {dest} failed: {type(exc).__name__}: {exc}")
        return None

    @staticmethod
    def _announce(name: str, part: Outgoing) -> Outgoing:
        """The message naming a staged copy instead of carrying it."""
        return Outgoing.of(dict(part.header, staged=name, staged_size=part.size, staged_sum=part.sum), b"")

    # -------------------------------------------------------------- receiver

    def take(self, message: Message) -> tuple[Message, Refusal | None]:
        """The message with its staged copy as payload; or, with the message, why it is refused."""
        header = message.header
        name = header.get("staged")
        if not isinstance(name, str) or not safe_name(name):
            return message, Refusal.refused(
                f"unsafe file name {name!r} for a staged copy: plain names only, no folders or '..'"
            )
        try:
            descriptor = os.open(f"{self.folder}/{name}", os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return message, Refusal.restage(f"no staged copy {name} in {self.folder}")
        except OSError:
            return message, Refusal.refused(f"unsafe file name {name!r} for a staged copy: not a plain file")
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return message, Refusal.refused(f"unsafe file name {name!r} for a staged copy: not a plain file")
            data = handle.read()
        if len(data) != header.get("staged_size") or checksum(data) != header.get("staged_sum"):
            return message, Refusal.restage(f"checksum mismatch: staged copy {name} is corrupt or incomplete")
        return Message(header, data), None

    def discard(self, header: Mapping[str, Any]) -> None:
        """Delete the staged copy a message named (once read; a missing one is fine)."""
        name = header.get("staged")
        if isinstance(name, str) and safe_name(name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.folder}/{name}")
