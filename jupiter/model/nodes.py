"""`nodes.txt`: the nodes of a deployment, one `<name> <hostname>` per line.

The role of a node comes from its name, as in the original: names starting
with `home` are home nodes, names starting with `datasource` are data
sources, every other node is a compute node. The hostname is the Kubernetes
node name; the local backend ignores it. Several of the original's node
files add a user and a password (`home <hostname> root PASSWORD`); those
columns are ignored with a warning that never repeats them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from jupiter.model.errors import InputError
from jupiter.model.textfile import significant_lines

# Node names become process names, container names and Kubernetes service
# names, so they are kept to characters every backend accepts.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class NodeRole(Enum):
    """What a node is for, derived from its name."""

    HOME = "home"
    DATASOURCE = "datasource"
    COMPUTE = "compute"

    @classmethod
    def of(cls, name: str) -> NodeRole:
        """Role of a node by the original's name-prefix rule."""
        if name.startswith("home"):
            return cls.HOME
        if name.startswith("datasource"):
            return cls.DATASOURCE
        return cls.COMPUTE


@dataclass(frozen=True)
class Node:
    """One line of `nodes.txt`."""

    name: str
    hostname: str
    role: NodeRole
    line: int = 0


@dataclass(frozen=True)
class NodeList:
    """All nodes of a deployment, in file order."""

    nodes: tuple[Node, ...]
    path: Path | None = None
    warnings: tuple[str, ...] = ()
    """`file:line: message` for what was accepted but ignored (extra columns)."""

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(node.name == name for node in self.nodes)

    def with_role(self, role: NodeRole) -> tuple[Node, ...]:
        """Nodes of one role, in file order."""
        return tuple(node for node in self.nodes if node.role is role)

    @property
    def homes(self) -> tuple[Node, ...]:
        """Home nodes (`home`, `home2`, ...)."""
        return self.with_role(NodeRole.HOME)

    @property
    def compute(self) -> tuple[Node, ...]:
        """Compute nodes: the only ones tasks are mapped to."""
        return self.with_role(NodeRole.COMPUTE)

    @property
    def datasources(self) -> tuple[Node, ...]:
        """Data-source nodes; never chosen to run tasks."""
        return self.with_role(NodeRole.DATASOURCE)


def parse_nodes(path: Path) -> NodeList:
    """Parse `nodes.txt`, raising InputError with file:line on the first problem."""
    seen: dict[str, int] = {}
    nodes: list[Node] = []
    warnings: list[str] = []
    for number, text in significant_lines(
        path, "node list", "make a working folder with `jupiter init`, or point to the file with --nodes FILE"
    ):
        fields = text.split()
        if len(fields) < 2:
            raise InputError(path, number, f"expected `<name> <hostname>`, got {len(fields)} fields: {text!r}")
        name, hostname, *extra = fields
        if extra:
            # The original's `<name> <hostname> <user> <password>`: the values are
            # left out of the message, since the last one is a password.
            warnings.append(
                f"{path}:{number}: {len(extra)} column(s) after the hostname (the original's user and "
                "password) are ignored: Jupiter logs in with keys and a per-deployment token, never a "
                "password; delete them"
            )
        if not _NAME.match(name):
            raise InputError(
                path,
                number,
                f"node name {name!r} may hold only letters, digits, '-' and '_' and must start with a letter or digit",
            )
        if name in seen:
            raise InputError(
                path,
                number,
                f"node {name!r} is already listed on line {seen[name]}; node names must be unique",
            )
        seen[name] = number
        nodes.append(Node(name=name, hostname=hostname, role=NodeRole.of(name), line=number))
    result = NodeList(tuple(nodes), path, tuple(warnings))
    if not result.homes:
        raise InputError(path, None, "no home node; add a line `home <hostname>` (the first line, by convention)")
    if not result.compute:
        raise InputError(path, None, "no compute node; add at least one line such as `node1 <hostname>`")
    return result
