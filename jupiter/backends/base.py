"""The backend interface: a launcher that starts deployments, and a handle on one that runs.

In the spirit of dask's `Cluster`: every capability a caller may need is
named here, each with a documented default, so callers never probe a
backend with `getattr` or `isinstance`.

* :class:`Backend` (the launcher) is built from a resolved deployment spec;
  it chooses the agents' addresses and starts one agent per node, returning
  the plain JSON `info` that is saved with the deployment record.
* :class:`Handle` is re-attached from that record by any later CLI process
  (status, submit, teardown): `running`, `stop` and `describe`, a control
  client to the agents (the way to reach them — direct HTTP, or the
  Kubernetes API proxy — is chosen once, here), publishing a plan, mapping
  inside the cluster, fetching home's files, and killing a node for fault
  injection. What a backend cannot do raises :class:`NotSupported` with a
  one-line reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from jupiter.backends.control import ControlClient, DirectTransport
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.errors import JupiterError
from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import NodeAddress, Plan

Progress = Callable[[str], None]


class BackendError(JupiterError):
    """A backend could not start, reach or stop a deployment."""


class NotSupported(JupiterError):
    """The deployment's backend does not offer this (e.g. killing a node outside the local backend)."""

    exit_code = 2


@dataclass(frozen=True)
class Attachment:
    """What a handle is re-attached from: the deployment record's backend part."""

    deployment: str
    layout: DeploymentLayout
    nodes: Mapping[str, NodeAddress]
    token: str
    info: Mapping[str, Any] = field(default_factory=dict)
    """What the backend saved when it started the deployment (`Backend.start`)."""


class Handle(ABC):
    """A running (or stopped) deployment of one backend, re-attached from its record."""

    backend: ClassVar[str] = ""
    waits_ready: ClassVar[bool] = False
    """Whether `Backend.start` already waited until every agent was ready (else the caller polls `/health`)."""
    maps_in_cluster: ClassVar[bool] = False
    """Whether the mapper runs inside the cluster (`map_in_cluster`) rather than in this process."""
    home_files_are_local: ClassVar[bool] = True
    """Whether home writes its statistics and outputs into this machine's deployment folder."""
    profiles_side_by_side: ClassVar[bool] = False
    """Whether the compute nodes may run the execution profiler at once (`[PROFILING] EXEC_PARALLEL = auto`):
    each has processors of its own (a machine, or a container with its own CPU limit), so one node's runs do
    not slow another's. Not by default: agents sharing this machine's CPUs would skew each other's times."""

    def __init__(self, attachment: Attachment, progress: Progress = lambda _: None) -> None:
        self.attachment = attachment
        self.info = attachment.info
        self.progress = progress
        self._control: ControlClient | None = None

    @abstractmethod
    def running(self) -> bool:
        """Whether anything of the deployment is still running."""

    @abstractmethod
    def stop(self) -> list[str]:
        """Stop everything the deployment started; returns what was stopped (for the user)."""

    def describe(self) -> list[str]:
        """Lines about the deployment's processes, containers or pods for `jupiter status`; none by default."""
        return []

    def control(self) -> ControlClient:
        """The client of the agents' control planes (made once per handle)."""
        if self._control is None:
            self._control = ControlClient(self.transport(), self.attachment.token)
        return self._control

    def transport(self) -> Any:
        """How this machine reaches the agents' control planes: directly over HTTP by default."""
        hosts = {name: (address.host, address.control_port) for name, address in self.attachment.nodes.items()}
        return DirectTransport(hosts)

    def publish_plan(self, plan: Plan) -> None:  # noqa: B027 - a documented default, not a missing method
        """Make a dispatched plan what restarted agents read.

        By default agents read `plan.json` from the deployment folder, which
        the caller has already rewritten: nothing more to do.
        """

    def map_in_cluster(
        self, problem: Mapping[str, Any], scheduler: str, params: Mapping[str, object]
    ) -> dict[str, str]:
        """Run the mapper inside the cluster on a problem document (only where `maps_in_cluster`)."""
        raise NotSupported(f"the {self.backend} backend maps in this process, not in a cluster")

    def fetch_home_files(self) -> None:  # noqa: B027 - a documented default, not a missing method
        """Copy home's statistics and outputs here; nothing to do where `home_files_are_local`."""

    def kill_node(self, node: str) -> int:
        """Fault injection: kill a node's agent and keep it down; returns its pid."""
        raise NotSupported(f"killing a node is a fault injection of the local backend, not of {self.backend}")


class Backend(ABC):
    """A launcher of deployments on one kind of infrastructure, built from a resolved spec."""

    name: ClassVar[str] = ""
    handle: ClassVar[type[Handle]]
    tasks_use_app_environment: ClassVar[bool] = False
    """Whether tasks run on this machine with Jupiter's Python, so the app's requirements.txt must be
    installed here first (`jupiter.service.app_env`); images install them when they are built."""

    def __init__(self, spec: DeploymentSpec, progress: Progress = lambda _: None, timeout: float = 30.0) -> None:
        self.spec = spec
        self.progress = progress
        self.timeout = timeout

    @abstractmethod
    def addresses(self, nodes: list[tuple[str, str]]) -> dict[str, NodeAddress]:
        """Data and control addresses for (name, role) nodes, as agents and this machine reach them."""

    @abstractmethod
    def start(self, layout: DeploymentLayout, plan: Plan, nodes: list[str]) -> dict[str, Any]:
        """Start one agent per named node; returns the `info` saved with the record (plain JSON data)."""

    def attach(self, attachment: Attachment) -> Handle:
        """A handle on a deployment this launcher just started (it may use the spec, e.g. to map in the cluster)."""
        return self.handle(attachment, self.progress)
