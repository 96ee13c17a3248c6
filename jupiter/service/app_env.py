"""An app's `requirements.txt`, installed once into a cached folder the app's tasks import from.

The container images install an app's requirements when they are built; the
local backend runs tasks with Jupiter's own Python, which has none of them.
So before the local backend deploys (and before `jupiter validate` imports
the scripts) the requirements are installed with pip into a folder of their
own, `<ENV_DIR>/<app>-<key>`, and that folder goes first on the `PYTHONPATH`
of the app's task workers, helpers and script check: what the app asks for
wins over what Jupiter's environment has. The key is a hash of the
requirements' text and of the Python version, so an unchanged app reuses
its folder at once and any edit makes a new one.

Offline: with `[DEPLOY] WHEELS` set, pip installs from that folder only
(`--no-index --find-links`); otherwise from pip's configured index. The
folder is built under a temporary name and renamed when pip succeeded, under
a lock, so two commands never see half an environment; an app whose
requirements hold nothing but comments needs none.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from jupiter.model.app import App
from jupiter.model.errors import InputError

MARKER = "jupiter-env.json"
"""File in a finished environment: what was installed, from which requirements."""
PIP_TIMEOUT = 1800.0
"""Seconds pip may take to install an app's requirements."""


@dataclass(frozen=True)
class AppEnvironment:
    """A built environment: its folder and what it holds."""

    path: Path
    installed: tuple[tuple[str, str], ...]
    """(name, version) of every distribution in it."""
    reused: bool
    """Whether it was already there (else it was just built)."""

    def describe(self) -> str:
        """`<path>: name version, ...` (reused) for the user."""
        packages = ", ".join(f"{name} {version}" for name, version in self.installed) or "nothing"
        how = "reused" if self.reused else "installed"
        return f"{self.path}: {how} {packages}"


def requirements_text(app: App) -> str | None:
    """The app's requirements, None when it has no file or the file holds only blank lines and comments."""
    if app.requirements is None:
        return None
    text = app.requirements.read_text(errors="replace")
    meaningful = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return text if meaningful else None


def environment_key(text: str) -> str:
    """The cache key of a requirements text: its content and this Python's version."""
    digest = hashlib.sha256()
    digest.update(f"{sys.implementation.name}-{sys.version_info.major}.{sys.version_info.minor}\n".encode())
    digest.update(text.encode())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _installed(folder: Path) -> tuple[tuple[str, str], ...]:
    found = {(dist.metadata["Name"] or "?", dist.version) for dist in metadata.distributions(path=[str(folder)])}
    return tuple(sorted(found, key=lambda item: item[0].lower()))


def _pip(app: App, target: Path, wheels: Path | None) -> None:
    """Install the app's requirements into `target` with pip; InputError naming requirements.txt on failure."""
    assert app.requirements is not None
    source = ["--no-index", "--find-links", str(wheels)] if wheels is not None else []
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--no-warn-script-location",
        "--target",
        str(target),
        *source,
        "-r",
        str(app.requirements.resolve()),
    ]
    fix = "fix requirements.txt, or set [DEPLOY] WHEELS to a folder holding every wheel it needs"
    try:
        done = subprocess.run(  # noqa: S603 - argument list, our own interpreter
            command,
            capture_output=True,
            text=True,
            cwd=app.path,  # relative paths in requirements.txt are the app's
            timeout=PIP_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise InputError(
            app.requirements, None, f"pip did not finish installing within {PIP_TIMEOUT:.0f} s; {fix}"
        ) from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines[-1:]
        why = errors[0] if errors else f"exit code {done.returncode}"
        if "No module named pip" in (done.stderr or ""):
            why, fix = "pip is not installed in Jupiter's environment", "install pip next to Jupiter"
        raise InputError(app.requirements, None, f"cannot install the app's requirements ({why}); {fix}")


def prepare(app: App, cache: Path, wheels: Path | None) -> AppEnvironment | None:
    """The app's environment in `cache`, built if it is not there yet; None when the app needs none."""
    text = requirements_text(app)
    if text is None:
        return None
    if wheels is not None and not wheels.is_dir():
        raise InputError(wheels, None, "[DEPLOY] WHEELS: no such folder; name the folder of wheels, or leave it empty")
    folder = cache / f"{app.name}-{environment_key(text)}"
    with _locked(cache / f".{folder.name}.lock"):
        if (folder / MARKER).is_file():
            return AppEnvironment(folder, _installed(folder), reused=True)
        building = cache / f".build-{folder.name}-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        try:
            _pip(app, building, wheels)
            installed = _installed(building)
            (building / MARKER).write_text(
                json.dumps({"requirements": text, "installed": installed, "python": sys.version.split()[0]}, indent=2)
            )
            shutil.rmtree(folder, ignore_errors=True)  # a folder left without its marker is half built
            building.rename(folder)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return AppEnvironment(folder, installed, reused=False)
