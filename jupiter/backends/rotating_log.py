"""An agent's log file on the local backend, rotated by size: `<node>.log`, `<node>.log.1`, ...

The supervisor (`jupiter.backends.supervisor`) reads each agent's output
from a pipe and writes it here, so that a deployment left running for days,
or an agent flooded with refused messages, keeps at most `[OTHER] MAX_LOG`
files of at most `LOG_FILE_SIZE` bytes each. When a write would take the
current file past the size, the lines that fit are written, the file is
renamed `<node>.log.1` (and `.1` to `.2` ..., the oldest dropped) and a new
`<node>.log` takes the rest, so the newest
lines are always in `<node>.log` and `jupiter logs` reads the files in
order from the highest number down. One agent's output may come from two
pipes at once (an agent that was restarted while the old one's last lines
were still being read), hence the lock.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import IO


def rotated(path: Path, index: int) -> Path:
    """The `index`-th older file of a log (0: the log itself)."""
    return path if index == 0 else path.with_name(f"{path.name}.{index}")


class RotatingLog:
    """Bytes appended to a log file, rotated at `size` bytes, `keep` files kept (module docstring)."""

    def __init__(self, path: Path, size: int, keep: int) -> None:
        if size < 1 or keep < 1:
            raise ValueError(f"a log needs a size and a number of files of at least 1, got {size} and {keep}")
        self.path = path
        self.size = size
        self.keep = keep
        self._lock = threading.Lock()
        self._file: IO[bytes] = self._open()
        self._written = self._file.tell()

    def _open(self) -> IO[bytes]:
        return self.path.open("ab")

    def write(self, data: bytes) -> None:
        """Append `data`, rotating between whole lines (only a line longer than `size` is split)."""
        with self._lock:
            while data:
                room = self.size - self._written
                if len(data) <= room:
                    self._append(data)
                    return
                cut = data.rfind(b"\n", 0, room) + 1  # after the last whole line that fits
                if cut == 0 and self._written:
                    self._rotate()  # the next line starts the next file
                    continue
                cut = cut or room
                self._append(data[:cut])
                data = data[cut:]
                self._rotate()

    def _append(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        self._written += len(data)

    def _rotate(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            rotated(self.path, self.keep - 1).unlink()
        for index in range(self.keep - 2, -1, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(rotated(self.path, index), rotated(self.path, index + 1))
        self._file = self._open()
        self._written = 0

    def pump(self, source: IO[bytes]) -> None:
        """Copy everything `source` (a pipe) gives into the log, until it ends."""
        descriptor = source.fileno()
        try:
            while chunk := os.read(descriptor, 65536):
                self.write(chunk)
        except OSError:
            return  # the pipe was closed under us (the supervisor is stopping)
        finally:
            source.close()

    def close(self) -> None:
        with self._lock:
            self._file.close()
