"""The deployment plan: everything an agent needs to know, as one JSON file.

`jupiter deploy` builds it from the validated workspace and the mapping; each
agent reads it at start. Agents never read the user's config files
themselves, so every backend gives them the same, already-checked view.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HOME_TASK = "home"


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
    (files staged by that method; its settings in `extra["transfer"]`, see `jupiter.runtime.staging`)."""
    pricing: str = "nonpricing"
    """`nonpricing` (run each task on its mapped node), `push` or `event` (pricing CIRCE)."""
    homes: tuple[str, ...] = ()
    """Every home node (`home` first); several only with pricing."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def priced(self) -> bool:
        """Whether compute nodes are chosen per frame by price (pricing CIRCE)."""
        return self.pricing != "nonpricing"

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

    def controls(self, node: str) -> tuple[str, ...]:
        """Tasks whose controller is this node (pricing: the node the mapper chose)."""
        return tuple(task for task in self.order if self.mapping.get(task) == node)

    def expected_results(self) -> int:
        """Files home receives per frame: one per task that lists home as a child."""
        return sum(1 for task in self.tasks.values() if HOME_TASK in task.children)

    def to_json(self) -> str:
        """Serialise for the agents."""
        data = asdict(self)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Inverse of to_json."""
        data = json.loads(text)
        data["tasks"] = {
            name: TaskSpec(**{**spec, "children": tuple(spec["children"]), "parents": tuple(spec["parents"])})
            for name, spec in data["tasks"].items()
        }
        data["nodes"] = {name: NodeAddress(**node) for name, node in data["nodes"].items()}
        data["order"] = tuple(data["order"])
        data["ingress"] = tuple(data["ingress"])
        data["homes"] = tuple(data.get("homes", ()))
        return cls(**data)

    @classmethod
    def load(cls, path: Path) -> Plan:
        """Read a plan file."""
        return cls.from_json(path.read_text())
