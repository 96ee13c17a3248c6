"""What `jupiter status` shows: every agent's counters, and the backend's view of its processes."""

from __future__ import annotations

import time
from typing import Any

from jupiter.backends.control import Unreachable
from jupiter.model.outputs import STATUS_FORMAT, VERSION
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


def status_document(deployment: Deployment, report: dict[str, Any]) -> dict[str, Any]:
    """`status --output json` (schema in docs/events.md) from what `status` gathered."""
    nodes: dict[str, Any] = {}
    for node, agent in report["agents"].items():
        reachable = "error" not in agent
        nodes[node] = {
            "role": deployment.nodes[node].role,
            "reachable": reachable,
            "error": None if reachable else str(agent["error"]),
            "pid": agent.get("pid"),
            "uptime": agent.get("uptime"),
            "tasks": agent.get("tasks", {}),
            "outbox": agent.get("outbox"),
        }
    home = report["agents"].get(deployment.home, {})
    return {
        "format": STATUS_FORMAT,
        "version": VERSION,
        "deployment": deployment.id,
        "app": report["app"],
        "backend": deployment.record.backend,
        "time": time.time(),
        "mapping": dict(report["mapping"]),
        "nodes": nodes,
        "frames": home.get("frames"),
        "pricing": home.get("pricing"),
        "processes": list(report["backend"]),
    }
