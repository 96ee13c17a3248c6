"""Fault injection on a running deployment: a node's emulated speed, killing a node's agent."""

from __future__ import annotations

from jupiter.backends.control import Unreachable
from jupiter.model.errors import InputError
from jupiter.service.record import Deployment, DeploymentError


def _check_node(deployment: Deployment, node: str) -> None:
    if node not in deployment.nodes:
        raise InputError(
            None, None, f"node {node} is not in this deployment; use one of: {', '.join(deployment.nodes)}"
        )


def set_speed(deployment: Deployment, node: str, speed: float) -> float:
    """Change a node's emulated speed factor while the deployment runs (testbed emulation)."""
    _check_node(deployment, node)
    try:
        answer = deployment.control.post(node, "/testbed/speed", {"speed": speed}, 10.0)
    except Unreachable as exc:
        raise DeploymentError(str(exc)) from None
    if "speed" not in answer:
        raise DeploymentError(f"agent {node} refused the speed {speed}: {answer.get('error', answer)}")
    return float(answer["speed"])


def kill_node(deployment: Deployment, node: str) -> int:
    """Kill a node's agent and keep it down (NotSupported outside the local backend); returns its pid."""
    _check_node(deployment, node)
    return deployment.handle.kill_node(node)
