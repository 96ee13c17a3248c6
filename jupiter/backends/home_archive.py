"""Extracting the archive of home's folder that a home agent sends (`GET /home/archive`).

Home's statistics and outputs reach this machine that way where it cannot
read home's folder (Kubernetes: it is inside the pod). The archive comes
from the network, so every member is checked before anything is extracted:
only regular files and folders named relative to the target, and only
home's statistics files and its `output/` tree (the local home folder also
holds the profile store, which an archive must not replace). One unsafe
member refuses the whole archive.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from jupiter.backends.base import BackendError
from jupiter.model.layout import is_statistics_file


def extract_home_archive(home: str, archive: str, folder: Path) -> None:
    """Extract a home's archive (base64 of a tar.gz) into `folder`; nothing at all if a member is unsafe."""
    try:
        data = gzip.decompress(base64.b64decode(archive, validate=True))
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            members = tar.getmembers()
    except (binascii.Error, EOFError, OSError, tarfile.TarError, zlib.error) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise BackendError(f"home {home} sent a corrupt archive of its folder: {why}") from None
    for member in members:
        problem = unsafe_member(member)
        if problem:
            raise BackendError(
                f"home {home} sent an unsafe archive of its folder: {member.name!r} {problem}; nothing was extracted"
            )
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            tar.extractall(folder, members=tar.getmembers(), filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise BackendError(f"cannot write home {home}'s statistics and outputs into {folder}: {exc}") from None


def unsafe_member(member: tarfile.TarInfo) -> str:
    """Why a member of a home's archive must not be extracted; empty when it may."""
    path = PurePosixPath(member.name)
    if path.is_absolute():
        return "is an absolute path"
    if ".." in path.parts:
        return "leaves the folder"
    if member.issym() or member.islnk():
        return "is a link"
    if not (member.isfile() or member.isdir()):
        return "is not a file or folder"
    parts = path.parts
    statistics = len(parts) == 1 and member.isfile() and is_statistics_file(parts[0])
    output = bool(parts) and parts[0] == "output" and (len(parts) > 1 or member.isdir())
    if not (statistics or output):
        return "is not one of home's statistics files or outputs"
    return ""
