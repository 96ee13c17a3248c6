"""The deployment record: what is needed to reach a deployment again, and finding it.

A deployment lives in `<STATE_DIR>/<id>/` (`jupiter.model.layout`); its
record, `deployment.json`, names the backend and what the backend saved to
reach and stop it, the agents' addresses, the app and the mapping. Beside it,
`state` says where the deployment is in its life (:class:`State`), written
by `deploy` and `teardown`, so any later CLI invocation can find the
deployments of a working folder (several may run side by side, each with its
own id), and teardown works even if the CLI that deployed one crashed.
:class:`Deployment` is a record re-attached to its backend: the handle and
its one control client. Finding them is `jupiter.service.deployments`'.
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from jupiter.backends import attach
from jupiter.backends.base import Attachment, Handle, Progress
from jupiter.backends.control import ControlClient
from jupiter.model.errors import JupiterError
from jupiter.model.layout import DeploymentLayout, HomeLayout, token_of
from jupiter.model.plan import NodeAddress


class DeploymentError(JupiterError):
    """A deployment could not be started, reached or stopped."""


class State(enum.Enum):
    """Where a deployment is in its life (the `state` file of its folder)."""

    STARTING = "starting"
    """`deploy` made the folder and is starting the agents (or the CLI doing it died: `teardown` it)."""
    RUNNING = "running"
    """Deployed; nobody has torn it down (its agents may still have stopped on their own)."""
    STOPPED = "stopped"
    """Torn down: nothing of it runs; its files stay until `jupiter prune`."""
    FAILED = "failed"
    """`deploy` failed and tore down what it had started."""

    @property
    def active(self) -> bool:
        """Whether the deployment may still have something running (it was never torn down)."""
        return self in (State.STARTING, State.RUNNING)


def write_state(root: Path, state: State) -> None:
    """Record a deployment's state (atomically: a reader sees the old state or the new one)."""
    layout = DeploymentLayout(root)
    tmp = layout.state.with_name(f".state.{os.getpid()}.tmp")
    tmp.write_text(state.value + "\n")
    tmp.replace(layout.state)


def read_state(root: Path) -> State | None:
    """A deployment's recorded state; None for a folder without one (made by a Jupiter before states)."""
    try:
        text = DeploymentLayout(root).state.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return State(text)
    except ValueError:
        raise DeploymentError(
            f"{DeploymentLayout(root).state}: unknown state {text!r}; expected one of: "
            + ", ".join(state.value for state in State)
        ) from None


@dataclass(frozen=True)
class DeploymentRecord:
    """`deployment.json`: what is needed to reach a running deployment again."""

    id: str
    root: Path
    backend: str
    info: dict[str, Any]
    """What the backend needs to reach and stop the deployment (e.g. the process group)."""
    home: str
    nodes: dict[str, NodeAddress]
    created: float
    app: str
    mapping: dict[str, str] = field(default_factory=dict)
    homes: list[str] = field(default_factory=list)
    """Every home node (several only with pricing); `home` is the first."""

    def save(self) -> None:
        data = asdict(self)
        data["root"] = str(self.root)
        layout = DeploymentLayout(self.root)
        tmp = layout.record.with_name(".deployment.json.tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(layout.record)

    @classmethod
    def load(cls, root: Path) -> DeploymentRecord:
        data = json.loads(DeploymentLayout(root).record.read_text())
        data["root"] = Path(data["root"])
        data["nodes"] = {name: NodeAddress(**node) for name, node in data["nodes"].items()}
        return cls(**data)


class Deployment:
    """A deployment re-attached from its record: its folder, its backend's handle and its control client."""

    def __init__(
        self, record: DeploymentRecord, handle: Handle | None = None, progress: Progress = lambda _: None
    ) -> None:
        self.record = record
        self.layout = DeploymentLayout(record.root, Path(record.info["spool"]) if record.info.get("spool") else None)
        self._handle = handle
        self.progress = progress

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def root(self) -> Path:
        return self.record.root

    @property
    def nodes(self) -> dict[str, NodeAddress]:
        return self.record.nodes

    @property
    def home(self) -> str:
        return self.record.home

    @property
    def mapping(self) -> dict[str, str]:
        return self.record.mapping

    @property
    def info(self) -> dict[str, Any]:
        return self.record.info

    @property
    def homes(self) -> list[str]:
        """Every home node, the first home first."""
        return self.record.homes or [self.record.home]

    @cached_property
    def token(self) -> str:
        return token_of(self.root)

    @property
    def handle(self) -> Handle:
        """The backend's handle on this deployment (made once)."""
        if self._handle is None:
            attachment = Attachment(self.id, self.layout, self.record.nodes, self.token, self.record.info)
            self._handle = attach(self.record.backend, attachment, self.progress)
        return self._handle

    @property
    def control(self) -> ControlClient:
        return self.handle.control()

    def home_layout(self, home: str | None = None) -> HomeLayout:
        """A home node's folder (default: the first home's, `home/`)."""
        return self.layout.home(home or self.home, self.home)

    @property
    def home_dir(self) -> Path:
        return self.home_layout().dir
