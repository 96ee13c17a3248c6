"""The deployments of a working folder: listing them, choosing the one a command means, pruning finished ones.

Several deployments may run side by side from one folder (the original ran
five apps at once), each in `<STATE_DIR>/<id>/` with its record and its
`state` (`jupiter.service.record`). A command that acts on a running
deployment (`status`, `submit`, `teardown`, ...) takes `--deployment ID`
(the whole id, a unique start of it, or its random last part) and otherwise
means the only running one, or the latest when several run (`choose`).
`jupiter list` shows every deployment with its state, backend, app, age and
size; `jupiter prune` removes the folders (and spools) of deployments that
are over, never one that still runs.

A deployment recorded as running whose backend says nothing of it runs any
more (its processes died with the machine, say) is *exited*: it still needs a
teardown to release what it holds, which `teardown` and `prune` do.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jupiter.backends.base import BackendError
from jupiter.backends.control import Unreachable
from jupiter.backends.local import remove_spool
from jupiter.model.errors import JupiterError
from jupiter.model.layout import LEGACY_CURRENT, DeploymentLayout
from jupiter.service.record import Deployment, DeploymentError, DeploymentRecord, State, read_state, write_state

ID_PATTERN = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")
"""A deployment id (`jupiter.service.deploy.new_id`): only such folders of STATE_DIR are deployments."""


@dataclass(frozen=True)
class Entry:
    """One deployment folder of a state folder, as recorded (no backend asked)."""

    id: str
    root: Path
    state: State
    record: DeploymentRecord | None
    """None when the deploy failed (or is still starting) before it wrote the record."""

    @property
    def created(self) -> float:
        if self.record is not None:
            return self.record.created
        with contextlib.suppress(OSError):
            return self.root.stat().st_mtime
        return 0.0

    @property
    def app(self) -> str:
        return self.record.app if self.record is not None else "-"

    @property
    def backend(self) -> str:
        return self.record.backend if self.record is not None else "-"

    def attach(self, progress: Callable[[str], None] = lambda _: None) -> Deployment:
        """The deployment re-attached to its backend (DeploymentError without a record)."""
        if self.record is None:
            raise DeploymentError(
                f"deployment {self.id} is {self.state.value} and has no record to reach it by; "
                f"`jupiter prune` removes its folder {self.root}"
            )
        return Deployment(self.record, progress=progress)


def _legacy_current(state_dir: Path) -> str | None:
    """The deployment a Jupiter from before side-by-side deployments named active, if any."""
    with contextlib.suppress(OSError):
        return (state_dir / LEGACY_CURRENT).read_text().strip() or None
    return None


def _legacy_state(deployment: str, recorded: bool, current: str | None) -> State:
    """The state of a folder made by a Jupiter without states: its `current` pointer named the one still active."""
    if not recorded:
        return State.FAILED  # the deploy failed before it wrote the record
    return State.RUNNING if deployment == current else State.STOPPED


def entries(state_dir: Path) -> list[Entry]:
    """Every deployment folder of a state folder, oldest first."""
    if not state_dir.is_dir():
        return []
    legacy = _legacy_current(state_dir)
    found: list[Entry] = []
    for root in state_dir.iterdir():
        if not ID_PATTERN.match(root.name) or not root.is_dir():
            continue
        layout = DeploymentLayout(root)
        record = DeploymentRecord.load(root) if layout.record.is_file() else None
        state = read_state(root)
        if state is None:
            state = _legacy_state(root.name, record is not None, legacy)
        found.append(Entry(root.name, root, state, record))
    return sorted(found, key=lambda entry: (entry.created, entry.id))


def is_running(deployment: Deployment) -> bool:
    """Whether anything of a deployment still runs, as its backend sees it."""
    return deployment.handle.running()


@dataclass(frozen=True)
class Choice:
    """The deployment a command acts on, and the other running ones it did not choose."""

    deployment: Deployment
    others: tuple[str, ...] = ()
    """Ids of the other running deployments (the command took the latest)."""


def find_entry(state_dir: Path, wanted: str) -> Entry:
    """The deployment folder an id names (the whole id, a unique start of it or its last part), in any state."""
    return _match(entries(state_dir), wanted, state_dir)


def _match(found: list[Entry], wanted: str, state_dir: Path) -> Entry:
    exact = [entry for entry in found if entry.id == wanted]
    matches = exact or [entry for entry in found if entry.id.startswith(wanted) or entry.id.endswith(wanted)]
    if not matches:
        known = ", ".join(entry.id for entry in found[-5:]) or "none"
        raise DeploymentError(
            f"no deployment {wanted!r} in {state_dir} (latest: {known}); `jupiter list` shows them all"
        )
    if len(matches) > 1:
        raise DeploymentError(
            f"{wanted!r} matches {len(matches)} deployments ({', '.join(e.id for e in matches)}); give more of the id"
        )
    return matches[0]


def choose(
    state_dir: Path,
    wanted: str | None = None,
    running: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> Choice:
    """The deployment a command means: `wanted` (an id, its start or its end), else the only or latest running one.

    `running=False` (teardown) also takes a deployment that was never torn
    down although nothing of it runs any more. DeploymentError when there is
    none, naming what to do.
    """
    found = entries(state_dir)
    if wanted is not None:
        return Choice(_match(found, wanted, state_dir).attach(progress))
    active = [entry for entry in reversed(found) if entry.state.active and entry.record is not None]
    if not active:
        raise DeploymentError(f"no deployment is running here ({state_dir}); start one with `jupiter deploy`")
    live: list[Deployment] = []
    for entry in active:
        deployment = entry.attach(progress)
        if is_running(deployment):
            live.append(deployment)
    if live:
        return Choice(live[0], tuple(d.id for d in live[1:]))
    if not running:
        return Choice(active[0].attach(progress))
    latest = active[0]
    raise DeploymentError(
        f"deployment {latest.id} ({latest.app}) is not running any more: its agents stopped without a teardown; "
        f"see its logs in {DeploymentLayout(latest.root).logs}, and clean it up with `jupiter teardown`"
    )


@dataclass(frozen=True)
class Listed:
    """A row of `jupiter list`."""

    entry: Entry
    status: str
    """The recorded state, or `exited` for one recorded running whose backend runs nothing of it,
    or `unknown` when its backend could not be asked."""
    size: int
    """Bytes of its folder and spool."""
    note: str = ""

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.entry.created)


def folder_size(path: Path) -> int:
    """Bytes of the regular files under a folder (links not followed; hard links counted once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for top, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                info = os.lstat(os.path.join(top, name))
                if (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_size
    return total


def _spool(entry: Entry) -> Path | None:
    spool = entry.record.info.get("spool") if entry.record is not None else None
    return Path(spool) if spool else None


def _size(entry: Entry) -> int:
    spool = _spool(entry)
    return folder_size(entry.root) + (folder_size(spool) if spool is not None and spool.is_dir() else 0)


def _live_status(entry: Entry) -> tuple[str, str]:
    """(status, note) of an entry, asking its backend whether an active one still runs."""
    if not entry.state.active or entry.record is None:
        return entry.state.value, ""
    try:
        return ("running" if is_running(entry.attach()) else "exited"), ""
    except (JupiterError, Unreachable) as exc:
        return "unknown", str(exc)


def listing(state_dir: Path) -> list[Listed]:
    """Every deployment of a state folder with its live status and size, oldest first."""
    rows = []
    for entry in entries(state_dir):
        status, note = _live_status(entry)
        rows.append(Listed(entry, status, _size(entry), note))
    return rows


@dataclass
class Pruned:
    """What `prune` did: the deployments removed (id, bytes freed) and those kept (id, why)."""

    removed: list[tuple[str, int]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(size for _, size in self.removed)


def prune(state_dir: Path, progress: Callable[[str], None] = lambda _: None) -> Pruned:
    """Remove the folders and spools of every deployment that is over; never one that runs or is starting."""
    result = Pruned()
    for entry in entries(state_dir):
        if entry.state is State.STARTING:
            result.kept.append((entry.id, "starting: a deploy may be in progress (`jupiter teardown` it if not)"))
            continue
        size = _size(entry)
        if entry.state.active:
            status, note = _live_status(entry)
            if status != "exited":
                result.kept.append((entry.id, status if not note else f"{status}: {note}"))
                continue
            # Nothing of it runs, but it was never torn down: release what it holds first.
            try:
                entry.attach(progress).handle.stop()
            except (BackendError, Unreachable) as exc:
                result.kept.append((entry.id, f"cannot be torn down: {exc}"))
                continue
            write_state(entry.root, State.STOPPED)
        spool = _spool(entry)
        if spool is not None:
            remove_spool(spool)
        try:
            shutil.rmtree(entry.root)
        except OSError as exc:
            result.kept.append((entry.id, f"cannot remove {entry.root}: {exc.strerror or exc}"))
            continue
        result.removed.append((entry.id, size))
    legacy = _legacy_current(state_dir)
    if legacy is not None and not (state_dir / legacy).exists():
        (state_dir / LEGACY_CURRENT).unlink(missing_ok=True)
    return result


def forget_legacy(state_dir: Path, deployment_id: str) -> None:
    """Drop the old single `current` pointer when it names a deployment being torn down."""
    if _legacy_current(state_dir) == deployment_id:
        (state_dir / LEGACY_CURRENT).unlink(missing_ok=True)
