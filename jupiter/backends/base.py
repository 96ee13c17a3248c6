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
  Kubernetes API proxy — is chosen once, here), how a browser reaches a
  node's control plane (the live dashboard), reading the agents' logs,
  publishing a plan, mapping inside the cluster, fetching home's files, and
  killing a node for fault injection. What a backend cannot do raises
  :class:`NotSupported` with a one-line reason.
"""

from __future__ import annotations

import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
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


@dataclass(frozen=True)
class BrowserAccess:
    """One way a browser on this machine opens a node's control plane (home's live dashboard)."""

    url: str
    """Base URL of the control plane, without a trailing `/`."""
    steps: tuple[str, ...] = ()
    """Commands to run first, in another terminal (e.g. `kubectl port-forward ...`)."""


@dataclass(frozen=True)
class LogLine:
    """One line of an agent's log."""

    time: float
    """When it was written (epoch seconds): the engine's timestamp, or the agent's own at the line's start;
    a line without one (a traceback's) has its previous line's time."""
    node: str
    text: str


LogCursor = Any
"""Where a node's log was read up to: opaque to callers, each backend keeps its own kind."""

_AGENT_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(\d{3}) ")


def agent_line_time(text: str, previous: float) -> float:
    """The time an agent log line starts with (`2026-12-04 01:27:00,123 node ...`, local time), else `previous`."""
    match = _AGENT_TIME.match(text)
    if match is None:
        return previous
    try:
        stamp = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
    except (ValueError, OverflowError):
        return previous
    return stamp + int(match.group(2)) / 1000


def engine_line_time(text: str) -> tuple[float, str]:
    """Split a container engine's `2026-12-04T01:27:00.123456789Z text` line into (epoch seconds, text).

    A line without a timestamp gives NaN and the line unchanged.
    """
    stamp, _, rest = text.partition(" ")
    if not stamp.endswith("Z") or "T" not in stamp:
        return math.nan, text
    whole, _, fraction = stamp[:-1].partition(".")
    try:
        seconds = datetime.fromisoformat(whole + "+00:00").timestamp()
    except ValueError:
        return math.nan, text
    return seconds + (float(f"0.{fraction}") if fraction.isdigit() else 0.0), rest


def split_log(node: str, text: str, previous: float = math.nan) -> list[LogLine]:
    """An agent's log file as lines, each with its time (`agent_line_time`)."""
    lines = []
    for line in text.splitlines():
        previous = agent_line_time(line, previous)
        lines.append(LogLine(previous, node, line))
    return lines


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

    def browser_access(self, node: str) -> list[BrowserAccess]:
        """Ways a browser on this machine opens `node`'s control plane: by default its address, directly."""
        address = self.attachment.nodes[node]
        return [BrowserAccess(f"http://{address.host}:{address.control_port}")]

    def read_log(self, node: str, cursor: LogCursor) -> tuple[list[LogLine], LogCursor]:
        """The lines of `node`'s agent log written since `cursor` (None: from the start), and the new cursor.

        By default the log file `logs/<node>.log` of the deployment folder,
        where the local backend's agents write and the docker backend keeps
        each container's output after teardown; the cursor is a byte offset.
        Only whole lines are returned: a line still being written waits for
        the next call.
        """
        path = self.attachment.layout.log(node)
        offset, previous = cursor if cursor is not None else (0, math.nan)
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return [], cursor
        except OSError as exc:
            raise BackendError(f"cannot read the log of {node} ({path}): {exc.strerror or exc}") from None
        complete = data[: data.rfind(b"\n") + 1]
        lines = split_log(node, complete.decode("utf-8", errors="replace"), previous)
        return lines, (offset + len(complete), lines[-1].time if lines else previous)

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
