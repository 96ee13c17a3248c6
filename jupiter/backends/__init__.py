"""Backends decide where agents run and how they find each other.

Profiling, mapping and dispatch never depend on the backend: every backend
starts the same agent program (`python -m jupiter.runtime.node`) with the
same plan, and only chooses the addresses and the kind of process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from jupiter.runtime.plan import NodeAddress, Plan


class Backend(Protocol):
    """Where agents run. Everything a backend needs to find a deployment again is in `info`.

    `info` is plain JSON data saved with the deployment, so a later CLI
    process (status, teardown) can reach and stop what an earlier one started.
    """

    name: str

    def addresses(self, nodes: list[tuple[str, str]]) -> dict[str, NodeAddress]:
        """Data and control addresses for (name, role) nodes, as agents and the CLI reach them."""
        ...

    def start(self, root: Path, plan: Plan, nodes: list[str]) -> dict[str, Any]:
        """Start one agent per named node; returns the backend's `info`."""
        ...

    def running(self, info: dict[str, Any]) -> bool:
        """Whether anything of the deployment is still running."""
        ...

    def stop(self, info: dict[str, Any]) -> list[str]:
        """Stop everything the deployment started; returns what was stopped (for the user)."""
        ...
