"""On-disk state of an agent, written with as few system calls as crash safety allows.

A received input is first written to a marker file whose name records the
frame, the slot it fills (source task, output index) and its real name
(`.slot@<frame>@<src>@<idx>@<name>`); only when the data is complete is the
real name linked to it, so no half file is ever seen under its real name and
one hard link does the work of a rename plus a separate marker. Messages waiting to be sent are journaled in
an append-only file (`+record` when queued, `-id` when acknowledged) that is
compacted on restart.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

log = logging.getLogger("jupiter.agent")

_SLOT = ".slot@"
_COUNTER = itertools.count()


def _place(
    folder: str, name: str, scratch: str, data: bytes | None, source: str | None, keep: bool, copy: bool = False
) -> str:
    """Put `data` (or `source`, hard-linked or copied) at `folder/name` through the name `scratch`.

    The bytes land under `scratch` first and `name` appears only when they
    are complete, so a crash never leaves a half file under its real name.
    `keep`: `scratch` stays as a second link (a slot marker), else it is
    renamed onto `name`. A copy of `source` is made by the kernel
    (`copy_file_range`), never through Python's memory.
    """
    if source is not None and copy:
        shutil.copyfile(source, scratch)
    elif source is not None:
        os.link(source, scratch)
    else:
        with open(scratch, "wb") as handle:
            handle.write(data or b"")
    final = f"{folder}/{name}"
    if keep:
        os.link(scratch, final)
    else:
        os.replace(scratch, final)
    return final


def write_atomic(folder: str, name: str, data: bytes) -> str:
    """Write `folder/name` via a temporary name; returns the final path."""
    return _place(folder, name, f"{folder}/.tmp-{os.getpid()}-{next(_COUNTER)}", data, None, keep=False)


def marker(folder: str, frame: str, slot: str, name: str) -> str:
    """The slot marker of an input: `.slot@<frame>@<src>@<idx>@<name>` (fields never hold `@`)."""
    return f"{folder}/{_SLOT}{frame}@{slot}@{name}"


def store_input(
    folder: str,
    frame: str,
    slot: str,
    name: str,
    data: bytes | None,
    source: str | None = None,
    copy: bool = False,
) -> str:
    """Store one input of a frame (`slot` = `<src>@<idx>`): its bytes, or `source` on this node (linked or copied).

    The marker is a second link of the file, so one `link` does the work of
    a rename plus a separate marker.
    """
    return _place(folder, name, marker(folder, frame, slot, name), data, source, keep=True, copy=copy)


class Incoming:
    """An input being received in chunks: written under its slot marker, given its real name on `commit`.

    A crash (or `abort`) before the commit leaves only the marker, which
    recovery (`read_slots`) deletes: no half file is ever seen as an input.
    """

    def __init__(self, folder: str, frame: str, slot: str, name: str) -> None:
        self.scratch = marker(folder, frame, slot, name)
        self.final = f"{folder}/{name}"
        self.handle: IO[bytes] = open(self.scratch, "wb")  # noqa: SIM115 - closed by commit or abort

    def write(self, chunk: bytes) -> None:
        self.handle.write(chunk)

    def commit(self) -> str:
        """The input is complete: give it its real name; returns its path."""
        self.handle.close()
        os.link(self.scratch, self.final)
        return self.final

    def abort(self) -> None:
        """The input did not arrive whole: forget it."""
        self.handle.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.scratch)


def read_slots(folder: str) -> tuple[str | None, dict[str, str]]:
    """The frame a folder holds and its complete inputs (slot -> name); drops unfinished ones."""
    frame: str | None = None
    slots: dict[str, str] = {}
    with os.scandir(folder) as entries:
        names = {entry.name for entry in entries}
    for entry in names:
        if entry.startswith(_SLOT):
            fields = entry[len(_SLOT) :].split("@", 3)
            if len(fields) != 4:
                os.unlink(f"{folder}/{entry}")  # not a marker this agent wrote
                continue
            marked_frame, src, index, name = fields
            if name in names:
                frame = marked_frame
                slots[f"{src}@{index}"] = name
            else:
                os.unlink(f"{folder}/{entry}")
        elif entry.startswith(".tmp-"):
            os.unlink(f"{folder}/{entry}")
    return frame, slots


def drop_markers(folder: str) -> None:
    """Remove a folder's slot markers and unfinished temporaries, keeping the files under their real names.

    A finished frame's folder (home's outputs) needs no markers any more: they
    only tell recovery which slots of a frame in flight are filled.
    """
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries if entry.name.startswith((_SLOT, ".tmp-"))]
    except FileNotFoundError:
        return
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{folder}/{name}")


def clear_folder(folder: str) -> None:
    """Delete a folder and everything in it; a missing folder is fine."""
    try:
        empty_folder(folder)
        os.rmdir(folder)
    except FileNotFoundError:
        pass


def empty_folder(folder: str) -> None:
    """Delete everything inside a folder, keeping the folder."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                clear_folder(entry.path)
            else:
                os.unlink(entry.path)


class FolderPool:
    """Reusable empty folders under one parent.

    Creating and removing a folder per frame costs far more than the files
    in it (directory updates on ext4 are tens of microseconds), so a frame
    borrows an empty folder and gives it back emptied.
    """

    def __init__(self, parent: str) -> None:
        self.parent = parent
        self.free: list[str] = []
        self.made = 0
        os.makedirs(parent, exist_ok=True)

    def acquire(self) -> str:
        """An empty folder."""
        if self.free:
            return self.free.pop()
        while True:
            self.made += 1
            path = f"{self.parent}/d{self.made}"
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
            return path

    def release(self, folder: str) -> None:
        """Empty a folder and keep it for the next frame."""
        try:
            empty_folder(folder)
        except FileNotFoundError:
            return
        self.free.append(folder)


@dataclass
class OutboxRecord:
    """A message waiting to be acknowledged, persisted until it is."""

    ident: str
    dest: str
    header: dict[str, Any]
    payload: str
    """Path of the file to send."""
    release: str | None = None
    """Work folder to delete once every record that needs it is delivered."""


class OutboxJournal:
    """Append-only journal of the outbox."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle: IO[str] | None = None

    def recover(self) -> list[OutboxRecord]:
        """Records never acknowledged; rewrites the journal to hold only them."""
        pending: dict[str, OutboxRecord] = {}
        if os.path.exists(self.path):
            with open(self.path) as journal:
                for line in journal:
                    if line.startswith("+") and line.endswith("\n"):
                        try:
                            record = OutboxRecord(**json.loads(line[1:]))
                        except (json.JSONDecodeError, TypeError):
                            continue
                        pending[record.ident] = record
                    elif line.startswith("-"):
                        pending.pop(line[1:].strip(), None)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as fresh:
            fresh.writelines(self._line(record) for record in pending.values())
        os.replace(tmp, self.path)
        self.handle = open(self.path, "a")  # noqa: SIM115 - kept open for the agent's lifetime
        return list(pending.values())

    @staticmethod
    def _line(record: OutboxRecord) -> str:
        # Fields by hand: dataclasses.asdict deep-copies the header, which costs more than the rest.
        data = {
            "ident": record.ident,
            "dest": record.dest,
            "header": record.header,
            "payload": record.payload,
            "release": record.release,
        }
        return "+" + json.dumps(data, separators=(",", ":")) + "\n"

    def add(self, records: list[OutboxRecord]) -> None:
        """Journal new records (one write for all of them)."""
        assert self.handle is not None
        self.handle.write("".join(self._line(record) for record in records))
        self.handle.flush()

    def ack(self, idents: list[str]) -> None:
        """Journal that records were delivered (or given up on)."""
        assert self.handle is not None
        self.handle.write("".join(f"-{ident}\n" for ident in idents))
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


class SpaceWatch:
    """Whether a spool has room for more frames: its free space against two marks, checked at most every 0.2 s.

    Below the watermark (`[LIMITS] SPOOL_FREE`) a node takes no *new* frame
    from home; frames already inside the pipeline keep moving until only a
    quarter of it is left (the floor). Nodes that share one disk (the local
    backend, containers on one host) then drain what they hold instead of
    each waiting for another to make room.
    """

    CHECK_SECONDS = 0.2

    def __init__(self, folder: str, watermark: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.folder = folder
        self.watermark = watermark
        self.floor = watermark // 4
        self.clock = clock
        self.checked = -self.CHECK_SECONDS
        self.free = watermark + 1
        self.holding = False
        """Whether frames are being held back now (logged when it starts and when it ends, not per frame)."""

    def free_bytes(self) -> int:
        now = self.clock()
        if now - self.checked >= self.CHECK_SECONDS:
            self.checked = now
            try:
                stats = os.statvfs(self.folder)
            except FileNotFoundError:
                return self.watermark + 1
            self.free = stats.f_bavail * stats.f_frsize
        return self.free

    def low(self, new_frame: bool = True, size: int = 0) -> str | None:
        """Why a frame's `size` bytes do not fit (the `busy` refusal's reason), or None (they are counted as used).

        `new_frame` is a frame entering the pipeline (home's input to an
        entry task); others are held back only below the floor. Bytes taken
        since the last look count against the free space, so a burst
        between two looks cannot overshoot.
        """
        if self.watermark <= 0:
            return None
        free = self.free_bytes()
        mark = self.watermark if new_frame else self.floor
        if free - size >= mark:
            self.free -= size
            if self.holding and free - size >= self.watermark:
                self.holding = False
                log.info("spool %s has room again: %s MiB free; taking new frames", self.folder, _mib(free))
            return None
        which = "SPOOL_FREE" if new_frame else "a quarter of SPOOL_FREE, kept for frames in the pipeline"
        reason = f"spool full: {_mib(free)} MiB free, below {which} ({_mib(mark)} MiB)"
        if not self.holding:
            self.holding = True
            log.warning("%s; frames wait at their senders until there is room (%s)", reason, self.folder)
        return reason


def _mib(size: int) -> str:
    return f"{size / 1024**2:.1f}".removesuffix(".0")
