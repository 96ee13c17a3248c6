"""What `jupiter status` shows: every agent's counters, and the backend's view of its processes."""

from __future__ import annotations

from typing import Any

from jupiter.backends.control import Unreachable
from jupiter.service.record import Deployment

STATUS_TIMEOUT = 5.0


def status(deployment: Deployment) -> dict[str, Any]:
    """Status of every agent (unreachable agents are reported, not fatal)."""
    agents: dict[str, Any] = {}
    for node in deployment.nodes:
        try:
            agents[node] = deployment.control.get(node, "/status", STATUS_TIMEOUT)
        except Unreachable as exc:
            agents[node] = {"error": str(exc)}
    return {
        "deployment": deployment.id,
        "app": deployment.record.app,
        "mapping": deployment.record.mapping,
        "agents": agents,
        "backend": deployment.handle.describe(),
    }
