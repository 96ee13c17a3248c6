"""The deployment record: what is needed to reach a deployment again, and finding it.

A deployment lives in `<STATE_DIR>/<id>/` (`jupiter.model.layout`); its
record, `deployment.json`, names the backend and what the backend saved to
reach and stop it, the agents' addresses, the app and the mapping.
`<STATE_DIR>/current` names the active one, so any later CLI invocation can
find it, and teardown works even if the CLI that deployed it crashed.
:class:`Deployment` is a record re-attached to its backend: the handle and
its one control client.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from jupiter.backends import attach
from jupiter.backends.base import Attachment, Handle, Progress
from jupiter.backends.control import ControlClient
from jupiter.model.errors import JupiterError
from jupiter.model.layout import CURRENT, DeploymentLayout, HomeLayout, token_of
from jupiter.model.plan import NodeAddress


class DeploymentError(JupiterError):
    """A deployment could not be started, reached or stopped."""


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


def find(state_dir: Path, required: bool = True) -> Deployment | None:
    """The current deployment of a state folder (None, or DeploymentError when `required`, without one)."""
    pointer = state_dir / CURRENT
    if not pointer.exists():
        if required:
            raise DeploymentError(f"no deployment is running here ({state_dir}); start one with `jupiter deploy`")
        return None
    root = state_dir / pointer.read_text().strip()
    if not DeploymentLayout(root).record.exists():
        pointer.unlink()
        if required:
            raise DeploymentError(f"the current deployment's folder {root} is gone; nothing to do")
        return None
    return Deployment(DeploymentRecord.load(root))


def make_current(state_dir: Path, deployment_id: str) -> None:
    """Name a deployment the active one."""
    (state_dir / CURRENT).write_text(deployment_id)


def forget_current(state_dir: Path, deployment_id: str) -> None:
    """Stop naming a deployment the active one (when it is)."""
    pointer = state_dir / CURRENT
    if pointer.exists() and pointer.read_text().strip() == deployment_id:
        pointer.unlink()
