"""Home's folder as an archive: its statistics, event log and outputs, for a CLI that cannot read it.

On Kubernetes home's folder is inside its pod; `GET /home/archive` sends a
tar.gz of what `jupiter run` reads (its counterpart, which checks every
member before extracting anything, is `jupiter.service.archive`).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from jupiter.model.layout import is_statistics_file

STORE_BOOKKEEPING = (".slot@", ".tmp-")
"""Prefixes of the spool's marker and temporary files (`jupiter.runtime.spool`): not outputs."""


def statistics_sizes(folder: Path) -> dict[str, int]:
    """Size of each statistics file in home's folder, by name."""
    sizes: dict[str, int] = {}
    if not folder.is_dir():  # home has not opened its files yet
        return sizes
    with os.scandir(folder) as entries:
        for entry in entries:
            if is_statistics_file(entry.name) and entry.is_file(follow_symlinks=False):
                sizes[entry.name] = entry.stat(follow_symlinks=False).st_size
    return sizes


def pack_home_folder(folder: Path, sizes: Mapping[str, int]) -> bytes:
    """A tar.gz of home's statistics files (their first `sizes[name]` bytes) and its `output/` tree.

    Only regular files, as regular members with relative names: an output
    and its store marker are hard links of one file, which `TarFile.add`
    would archive as a link. The store's markers and temporaries are left
    out, and so are `input/` and `frames/` (home's copies of the inputs).
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, size in sorted(sizes.items()):
            with (folder / name).open("rb") as handle:
                _add_file(archive, name, handle, size)
        for top, dirs, files in os.walk(folder / "output"):  # a missing output/ yields nothing
            dirs.sort()
            relative = Path(top).relative_to(folder).as_posix()
            for name in sorted(files):
                path = Path(top, name)
                if name.startswith(STORE_BOOKKEEPING) or not stat.S_ISREG(path.lstat().st_mode):
                    continue  # bookkeeping, or a symlink or other non-file
                with path.open("rb") as handle:
                    _add_file(archive, f"{relative}/{name}", handle, os.fstat(handle.fileno()).st_size)
    return buffer.getvalue()


def _add_file(archive: tarfile.TarFile, name: str, handle: IO[bytes], size: int) -> None:
    member = tarfile.TarInfo(name)
    member.size = size
    member.mode = 0o644
    member.mtime = int(os.fstat(handle.fileno()).st_mtime)
    archive.addfile(member, handle)
