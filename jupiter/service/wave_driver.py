"""Distributed WAVE from the deployment's side: start it at home, wait for the mapping, with a timeout.

The agents appoint the nodes among themselves
(`jupiter.runtime.extensions.distributed_wave`); this module gives home
the context (controllers, policy, candidates, root placements, resources,
edge sizes) and polls home's result until every task has a node, or raises
naming the tasks and the nodes that did not answer.
"""

from __future__ import annotations

import time
from typing import Any

from jupiter.backends.control import Unreachable
from jupiter.mapping import Problem, select_controllers
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.service.record import Deployment, DeploymentError

POLL_SECONDS = 0.05


def wave_context(spec: DeploymentSpec, profile: dict[str, Any], problem: Problem) -> dict[str, Any]:
    """What home and every agent need to appoint nodes."""
    settings = spec.mapping.settings
    return {
        "policy": "random" if spec.mapping.scheduler == "wave_random" else "greedy",
        "seed": settings.seed,
        "weights": [settings.w_net, settings.w_cpu, settings.w_mem],
        "controllers": select_controllers(problem),
        "order": list(problem.topological_order),
        "candidates": list(problem.nodes),
        "initial": dict(spec.app.input_nodes),
        "resources": profile.get("resources", {}),
        "edge_sizes": {f"{e.parent}->{e.child}": e.size for e in problem.edges},
    }


def wave_mapping(
    spec: DeploymentSpec, deployment: Deployment, profile: dict[str, Any], problem: Problem
) -> dict[str, str]:
    """Distributed WAVE: the agents appoint the nodes; home assembles the mapping (with a timeout)."""
    context = wave_context(spec, profile, problem)
    control = deployment.control
    home = deployment.home
    timeout = spec.mapping.settings.wave_timeout
    try:
        answer = control.post(home, "/wave/start", context, 10.0)
        if "error" in answer:
            raise DeploymentError(f"home refused to start distributed WAVE: {answer['error']}")
        deadline = time.time() + timeout
        while True:
            result = control.get(home, "/wave/result", 10.0)
            if result["complete"]:
                return dict(result["mapping"])
            if time.time() > deadline:
                break
            time.sleep(POLL_SECONDS)
    except Unreachable as exc:
        raise DeploymentError(str(exc)) from None
    controllers = context["controllers"]
    missing = result["missing"]
    silent = sorted({result["mapping"].get(controllers.get(task, ""), home) for task in missing})
    why = "; ".join(result["errors"][:3]) or f"no answer from {', '.join(silent)}"
    raise DeploymentError(
        f"distributed WAVE did not map {', '.join(missing)} within {timeout:g} s ({why}); "
        f"see the logs in {deployment.layout.logs} or raise [MAPPER] WAVE_TIMEOUT"
    )
