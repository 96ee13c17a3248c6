"""The deployment plan: everything an agent needs to know, as one JSON file.

`jupiter deploy` builds it from the resolved deployment spec and the
mapping; each agent reads it at start. Agents never read the user's config
files themselves, so every backend gives them the same, already-checked
view. Each concern has a typed section (`PlanPricing`, `PlanTransfer`,
`PlanProfiling`, `StoreSpec`, the testbed) that reuses the config's own
settings classes; `to_json`/`from_json` are the only writer and reader.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupiter.mapping.problem import Problem
from jupiter.model.config import ControlLimits, PricingSettings
from jupiter.model.problem_files import problem_from_json, problem_to_json
from jupiter.model.testbed import Testbed

HOME_TASK = "home"
SCHEMES = ("push", "event")
"""Pricing CIRCE's schemes (`nonpricing` is a plan without pricing)."""


@dataclass(frozen=True)
class NodeAddress:
    """Where one node's agent listens."""

    name: str
    role: str
    host: str
    data_port: int
    control_port: int


@dataclass(frozen=True)
class TaskSpec:
    """One DAG task as the runtime needs it."""

    name: str
    num_inputs: int
    flag: bool
    children: tuple[str, ...]
    """Children in file order; `home` = final output."""
    parents: tuple[str, ...]
    script: str
    """Absolute path of the task's script."""
    worker: str = "resident"
    """`fresh`: every frame in a fresh copy of the imported script; `resident`: one process for all frames."""
    timeout: float = 0.0
    """Seconds one frame may run before its worker is stopped; 0 = no limit."""
    memory: int = 0
    """Bytes of data the worker may allocate (RLIMIT_DATA); 0 = no limit."""


@dataclass(frozen=True)
class HelperSpec:
    """One of the app's helper processes (`jupiter.model.app.Helper`) as the agent of its node starts it."""

    name: str
    script: str
    """Path of the script relative to the app folder (`scripts/dftslave.py`); `.py` runs with Python, else `sh`."""
    args: tuple[str, ...]
    node: str


@dataclass(frozen=True)
class StoreSpec:
    """Where home keeps profiles and runtime statistics: a SQLite file, or a MongoDB database."""

    kind: str = "sqlite"
    """`sqlite` or `mongodb`."""
    path: str = ""
    """SQLite: the database file."""
    url: str = ""
    """MongoDB: the server's URL."""
    database: str = "jupiter"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoreSpec:
        return cls(**{key: str(value) for key, value in data.items()})


@dataclass(frozen=True)
class PlanProfiling:
    """What an agent's profilers do: the network probe sizes, re-profiling, resource sampling."""

    sizes: tuple[int, ...] = (1024, 10 * 1024, 100 * 1024, 1024 * 1024)
    samples: int = 3
    interval: float = 0.0
    """Seconds between periodic network re-profiles; 0 = none."""
    links: tuple[tuple[str, str], ...] | None = None
    """Links to probe (`src`, `dst`); None = every other agent."""
    resource_interval: float = 1.0
    """Seconds between CPU and memory samples."""

    def to_json(self) -> dict[str, Any]:
        return {
            "sizes": list(self.sizes),
            "samples": self.samples,
            "interval": self.interval,
            "links": [list(link) for link in self.links] if self.links is not None else None,
            "resource_interval": self.resource_interval,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlanProfiling:
        links = data.get("links")
        return cls(
            sizes=tuple(int(size) for size in data.get("sizes", cls.sizes)),
            samples=int(data.get("samples", cls.samples)),
            interval=float(data.get("interval", cls.interval)),
            links=tuple((str(src), str(dst)) for src, dst in links) if links is not None else None,
            resource_interval=float(data.get("resource_interval", cls.resource_interval)),
        )


@dataclass(frozen=True)
class PlanTransfer:
    """Settings of a transfer method other than `http` (files staged by it, `jupiter.runtime.staging`)."""

    user: str
    port: int
    key_file: str | None
    known_hosts: str | None
    staging: Mapping[str, str]
    """node -> its staging folder, relative to the deployment folder (the same path on every node)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "port": self.port,
            "key_file": self.key_file,
            "known_hosts": self.known_hosts,
            "staging": dict(self.staging),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlanTransfer:
        return cls(
            user=str(data["user"]),
            port=int(data["port"]),
            key_file=data.get("key_file"),
            known_hosts=data.get("known_hosts"),
            staging={str(node): str(folder) for node, folder in data["staging"].items()},
        )


@dataclass(frozen=True)
class PlanPricing:
    """Pricing CIRCE: the scheme, the config's `[PRICING]` settings and the cost model controllers price with."""

    scheme: str
    """`push` or `event`."""
    aggregate: str = "sum"
    """How price terms combine (`PRICE_OPTION`): `sum` or `max`."""
    settings: PricingSettings = field(default_factory=PricingSettings)
    problem: Problem | None = None
    """The cost model: default costs at start, the measured problem once profiled."""
    network: bool = False
    """Whether the problem's links were measured (else the network term is 0)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "aggregate": self.aggregate,
            "settings": dataclasses.asdict(self.settings),
            "problem": problem_to_json(self.problem) if self.problem is not None else None,
            "network": self.network,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlanPricing:
        problem = data.get("problem")
        return cls(
            scheme=str(data["scheme"]),
            aggregate=str(data.get("aggregate", "sum")),
            settings=PricingSettings(**data.get("settings", {})),
            problem=problem_from_json(problem) if problem else None,
            network=bool(data.get("network", False)),
        )


@dataclass(frozen=True)
class Limits:
    """What an agent accepts from peers and how much room it keeps (`[LIMITS]`; see docs/security.md)."""

    max_header: int = 64 * 1024
    """Bytes of a data-plane message's JSON header."""
    max_payload: int = 1024**3
    """Bytes of a file's payload (streamed to disk, never held in memory)."""
    max_message: int = 16 * 1024**2
    """Bytes of a payload read into memory (events, pricing messages, uploads of one frame)."""
    idle_timeout: float = 120.0
    """Seconds a data-plane connection may wait for its next message before it is closed."""
    read_timeout: float = 30.0
    """Seconds a peer may take to send the rest of a message it started (each chunk of a payload)."""
    max_connections: int = 256
    """Data-plane connections served at once; more are closed at once."""
    batch_bytes: int = 8 * 1024**2
    """Payload bytes a sender puts in one batch message (a single bigger file travels alone)."""
    spool_free: int = 64 * 1024**2
    """Free bytes below which an agent's spool takes no new frames (senders keep them and retry)."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Limits:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass(frozen=True)
class Plan:
    """A deployment, as every agent sees it."""

    deployment: str
    app_name: str
    app_path: str
    tasks: Mapping[str, TaskSpec]
    order: tuple[str, ...]
    mapping: Mapping[str, str]
    nodes: Mapping[str, NodeAddress]
    ingress: tuple[str, ...]
    home: str
    queue_size: int = -1
    retries: int = 20
    receiver_stats: bool = True
    transfer: str = "http"
    """`http` (files inside data-plane messages), `scp` or a plug-in `package.module:Factory`
    (files staged by that method with `transfer_settings`, see `jupiter.runtime.staging`)."""
    transfer_settings: PlanTransfer | None = None
    pricing: PlanPricing | None = None
    """None: run each task on its mapped node; else pricing CIRCE chooses per frame."""
    homes: tuple[str, ...] = ()
    """Every home node (`home` first); several only with pricing."""
    profiling: PlanProfiling = field(default_factory=PlanProfiling)
    store: StoreSpec | None = None
    """Home's store of profiles and statistics; None = the files only."""
    testbed: Testbed | None = None
    """The emulated testbed (local backend), or None."""
    limits: Limits = field(default_factory=Limits)
    control: ControlLimits = field(default_factory=ControlLimits)
    """What the agents' control plane serves at once (`[LIMITS] CONTROL_*`)."""
    helpers: Mapping[str, HelperSpec] = field(default_factory=dict)
    """The app's helper processes, each run by the agent of its node."""
    app_env: str = ""
    """Folder of the app's installed requirements, first on the task workers' PYTHONPATH; empty = none."""
    umask: int = 0o077
    """The agents' umask: deployment folders 0700 and files 0600 by default (`[DEPLOY] UMASK`)."""
    io_names: tuple[str, str] | None = None
    """(output name, input name) of the app, the `input` row of `name_convert.txt`: home's statistics name
    each frame after its input with it (`jupiter.model.app.frame_name`); None = the files' own names."""

    @property
    def priced(self) -> bool:
        """Whether compute nodes are chosen per frame by price (pricing CIRCE)."""
        return self.pricing is not None

    @property
    def scheme(self) -> str:
        """`nonpricing`, `push` or `event`."""
        return self.pricing.scheme if self.pricing is not None else "nonpricing"

    @property
    def all_homes(self) -> tuple[str, ...]:
        return self.homes or (self.home,)

    def tasks_on(self, node: str) -> tuple[str, ...]:
        """Tasks a node runs, in topological order.

        Without pricing, the tasks mapped to it. With pricing, every compute
        node can run every task (once a mapping names the controllers).
        """
        if self.priced and self.mapping and self.nodes[node].role == "compute":
            return self.order
        return tuple(task for task in self.order if self.mapping.get(task) == node)

    def helpers_on(self, node: str) -> tuple[HelperSpec, ...]:
        """The helper processes a node's agent runs."""
        return tuple(helper for helper in self.helpers.values() if helper.node == node)

    def controls(self, node: str) -> tuple[str, ...]:
        """Tasks whose controller is this node (pricing: the node the mapper chose)."""
        return tuple(task for task in self.order if self.mapping.get(task) == node)

    def expected_results(self) -> int:
        """Files home receives per frame: one per task that lists home as a child."""
        return sum(1 for task in self.tasks.values() if HOME_TASK in task.children)

    def to_json(self, compact: bool = False) -> str:
        """Serialise for the agents (`compact`: no indentation, for size-limited objects such as a ConfigMap)."""
        data = {
            "deployment": self.deployment,
            "app_name": self.app_name,
            "app_path": self.app_path,
            "tasks": {name: dataclasses.asdict(spec) for name, spec in self.tasks.items()},
            "order": list(self.order),
            "mapping": dict(self.mapping),
            "nodes": {name: dataclasses.asdict(address) for name, address in self.nodes.items()},
            "ingress": list(self.ingress),
            "home": self.home,
            "queue_size": self.queue_size,
            "retries": self.retries,
            "receiver_stats": self.receiver_stats,
            "transfer": self.transfer,
            "transfer_settings": self.transfer_settings.to_json() if self.transfer_settings else None,
            "pricing": self.pricing.to_json() if self.pricing is not None else None,
            "homes": list(self.homes),
            "profiling": self.profiling.to_json(),
            "store": self.store.to_json() if self.store is not None else None,
            "testbed": self.testbed.to_json() if self.testbed is not None else None,
            "limits": self.limits.to_json(),
            "control": dataclasses.asdict(self.control),
            "helpers": {name: dataclasses.asdict(helper) for name, helper in self.helpers.items()},
            "app_env": self.app_env,
            "umask": self.umask,
            "io_names": list(self.io_names) if self.io_names is not None else None,
        }
        if compact:
            return json.dumps(data, separators=(",", ":"), sort_keys=True)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Inverse of to_json."""
        data = json.loads(text)
        transfer = data.get("transfer_settings")
        pricing = data.get("pricing")
        store = data.get("store")
        testbed = data.get("testbed")
        return cls(
            deployment=str(data["deployment"]),
            app_name=str(data["app_name"]),
            app_path=str(data["app_path"]),
            tasks={
                name: TaskSpec(**{**spec, "children": tuple(spec["children"]), "parents": tuple(spec["parents"])})
                for name, spec in data["tasks"].items()
            },
            order=tuple(data["order"]),
            mapping=dict(data["mapping"]),
            nodes={name: NodeAddress(**node) for name, node in data["nodes"].items()},
            ingress=tuple(data["ingress"]),
            home=str(data["home"]),
            queue_size=int(data.get("queue_size", -1)),
            retries=int(data.get("retries", 20)),
            receiver_stats=bool(data.get("receiver_stats", True)),
            transfer=str(data.get("transfer", "http")),
            transfer_settings=PlanTransfer.from_json(transfer) if transfer else None,
            pricing=PlanPricing.from_json(pricing) if pricing else None,
            homes=tuple(data.get("homes", ())),
            profiling=PlanProfiling.from_json(data.get("profiling") or {}),
            store=StoreSpec.from_json(store) if store else None,
            testbed=Testbed.from_json(testbed) if testbed else None,
            limits=Limits.from_json(data.get("limits") or {}),
            control=_control_limits(data.get("control") or {}),
            helpers={
                name: HelperSpec(**{**helper, "args": tuple(helper["args"])})
                for name, helper in data.get("helpers", {}).items()
            },
            app_env=str(data.get("app_env", "")),
            umask=int(data.get("umask", 0o077)),
            io_names=_io_names(data.get("io_names")),
        )

    @classmethod
    def load(cls, path: Path) -> Plan:
        """Read a plan file."""
        return cls.from_json(path.read_text())

    def save(self, path: Path) -> None:
        """Write the plan file atomically (a temporary name, then rename)."""
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)


def _control_limits(data: Mapping[str, Any]) -> ControlLimits:
    """The plan's control-plane limits (the defaults for a plan written before they existed)."""
    defaults = ControlLimits()
    return ControlLimits(
        connections=int(data.get("connections", defaults.connections)),
        threads=int(data.get("threads", defaults.threads)),
        idle_timeout=float(data.get("idle_timeout", defaults.idle_timeout)),
        max_body=int(data.get("max_body", defaults.max_body)),
    )


def _io_names(value: Any) -> tuple[str, str] | None:
    """A plan's `io_names`: two names, or null."""
    if value is None:
        return None
    output, input_name = value
    return (str(output), str(input_name))
