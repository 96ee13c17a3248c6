"""What an agent offers its extensions, and what an extension offers the agent.

The agent (`jupiter.runtime.agent`) is composed of collaborators (inbox,
outbox, task runners, event sink) and of *extensions* — pricing CIRCE,
the profilers, distributed WAVE, and home's frame tracking — each of which
contributes data-plane message kinds, control-plane routes, background
loops and a part of `/status`. Extensions see the agent only through
:class:`AgentServices`, never its internals, and never import each other:
where two must cooperate (home restarts the frames pricing found stranded,
WAVE decides with the fits the profilers measured), the composition root
(`jupiter.runtime.node`) wires them together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol

from jupiter.model.events import Event
from jupiter.model.layout import DeploymentLayout, NodeLayout
from jupiter.model.plan import Plan
from jupiter.runtime.counters import TaskCounters
from jupiter.runtime.emulation import Emulation
from jupiter.runtime.peers import Peer
from jupiter.runtime.protocol import Message, Refusal
from jupiter.runtime.routes import Routes
from jupiter.runtime.spool import FolderPool, OutboxRecord

AcceptHandler = Callable[[Message], Awaitable[Refusal | None]]
"""Takes a checked in-memory message of a kind that is stored; None once taken."""
RequestHandler = Callable[[Message], Awaitable[bytes]]
"""Answers a checked request message with its answer line (never in a batch)."""


class Sink(Protocol):
    """Where a streamed payload goes: chunks written as they arrive, then kept (`commit`) or dropped (`abort`)."""

    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


ResultHandler = Callable[[dict[str, Any], str], "Refusal | Sink | None"]
"""Takes a frame's final output (a `file` for the `home` task) from a peer: a sink for its bytes, a refusal,
or None when it is not needed (a late or repeated delivery)."""


class AgentServices(Protocol):
    """The agent as its extensions see it."""

    node: str
    token: str
    layout: NodeLayout
    deployment: DeploymentLayout
    emulation: Emulation

    @property
    def plan(self) -> Plan:
        """The plan as dispatched so far (the mapping is installed after profiling)."""
        ...

    def emit(self, event: Event) -> None:
        """Record a statistics event (sent to home, or written there)."""
        ...

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine for the agent's lifetime (cancelled when it stops)."""
        ...

    def on_loop(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        """From a control-plane thread: run a coroutine on the agent's event loop and wait for its result."""
        ...

    def worker_env(self) -> dict[str, str]:
        """Environment of a task worker on this node."""
        ...

    def new_id(self) -> str:
        """A message id unique to this agent process and its restarts."""
        ...

    def peer(self, node: str) -> Peer:
        """The data-plane connection pool to a node."""
        ...

    def counters(self) -> Mapping[str, TaskCounters]:
        """Per-task progress of this node (read only)."""
        ...

    def pool(self, parent: str) -> FolderPool:
        """The pool of reusable folders under `parent`."""
        ...

    async def send(self, records: list[OutboxRecord], release: str | None = None) -> None:
        """Route (pricing may choose the nodes), journal and queue files for delivery.

        `release`: a folder the records share, freed once they are all delivered.
        """
        ...

    def deliver(self, records: list[OutboxRecord]) -> None:
        """Journal and queue records whose destinations are chosen already."""
        ...

    async def install_mapping(self, mapping: Mapping[str, str]) -> list[str]:
        """Dispatch: start the workers of the tasks the mapping gives this node; returns them."""
        ...


class Extension:
    """A part of the agent that only some nodes or deployments have; every method has a do-nothing default."""

    name = ""

    def accepts(self) -> Mapping[str, AcceptHandler]:
        """Message kinds this extension stores (like files)."""
        return {}

    def requests(self) -> Mapping[str, RequestHandler]:
        """Message kinds this extension answers (like pricing's `route`)."""
        return {}

    def results(self) -> ResultHandler | None:
        """Where this node takes frames' final outputs (home only)."""
        return None

    def add_routes(self, routes: Routes) -> None:
        """Add this extension's control-plane routes."""

    def loops(self) -> list[Coroutine[Any, Any, Any]]:
        """Background loops to run for the agent's lifetime."""
        return []

    def status(self) -> Mapping[str, Any]:
        """This extension's part of `/status` (merged into the agent's)."""
        return {}

    def counters(self) -> Mapping[str, int]:
        """Counters of this extension to keep when the agent restarts (`restore_counters` gets them back)."""
        return {}

    def restore_counters(self, saved: Mapping[str, int]) -> None:
        """After a restart, before `start`: the counters `counters()` gave when they were last saved."""

    async def start(self) -> None:
        """Called once the agent recovered its state, before it serves."""

    async def flush(self) -> None:
        """Make what this extension buffers durable (before a run is summarised)."""

    async def stop(self) -> None:
        """Called when the agent stops, after its loops are cancelled."""
