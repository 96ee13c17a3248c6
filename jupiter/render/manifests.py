"""Kubernetes manifests of a deployment, rendered from `templates/*.yaml.j2`, in deploy order.

`render_manifests` returns the stages the kubernetes backend applies one
after the other, as the original did: the shared objects (namespaces, the
token Secret, the plans), the profilers, the mapper Job, then CIRCE (one
Deployment and one Service per node). Every object carries the recommended
`app.kubernetes.io/*` labels and the deployment-id label teardown selects
on. Only `v1`, `apps/v1` and `batch/v1` objects are made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import yaml

from jupiter.render._jinja import render
from jupiter.render.spec import (
    AGENT_UID,
    CONFIG_DIR,
    LABEL_DEPLOYMENT,
    LABEL_NODE,
    MAPPER_CONFIGMAP,
    PLAN_CONFIGMAP,
    STATE_DIR,
    TOKEN_SECRET,
    AgentSpec,
    ClusterSpec,
)

MAPPER_JOB = "jupiter-mapper"
PROBLEM_KEY = "problem.json"

Wait = Literal["none", "ready", "complete"]


@dataclass(frozen=True)
class Stage:
    """Objects applied together, and what to wait for before the next stage."""

    name: str
    objects: tuple[dict[str, Any], ...]
    wait: Wait = "none"
    """`ready`: every Deployment of the stage available; `complete`: every Job succeeded."""


def plan_key(node: str) -> str:
    """ConfigMap key (and file name under `/etc/jupiter`) of a node's plan."""
    return f"plan-{node}.json"


def labels(spec: ClusterSpec, component: str, node: str | None = None) -> dict[str, str]:
    """The recommended labels plus the deployment id (and node) teardown and selectors use."""
    result = {
        "app.kubernetes.io/name": "jupiter",
        "app.kubernetes.io/instance": f"jupiter-{spec.deployment_id}",
        "app.kubernetes.io/version": spec.version,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": spec.app,
        "app.kubernetes.io/managed-by": "jupiter",
        LABEL_DEPLOYMENT: spec.deployment_id,
    }
    if node is not None:
        result[LABEL_NODE] = node
    return result


def deployment_selector(deployment_id: str) -> str:
    """Label selector of every object of a deployment."""
    return f"{LABEL_DEPLOYMENT}={deployment_id}"


def _load(template: str, **context: Any) -> dict[str, Any]:
    loaded = yaml.safe_load(render(template, **context))
    assert isinstance(loaded, dict), f"{template} does not render one object"
    return loaded


def _agent_objects(spec: ClusterSpec, agent: AgentSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    namespace = spec.namespaces["circe"]
    selector = {LABEL_DEPLOYMENT: spec.deployment_id, LABEL_NODE: agent.node}
    common = {
        "agent": agent,
        "namespace": namespace,
        "labels": labels(spec, f"agent-{agent.role}", agent.node),
        "selector": selector,
        "control_port": spec.control_port,
        "data_port": spec.data_port,
        "app_ports": spec.app_ports,
    }
    deployment = _load(
        "templates/agent-deployment.yaml.j2",
        **common,
        image=spec.image,
        uid=AGENT_UID,
        plan_path=f"{CONFIG_DIR}/{plan_key(agent.node)}",
        state_dir=STATE_DIR,
        config_dir=CONFIG_DIR,
        secret=TOKEN_SECRET,
        configmap=PLAN_CONFIGMAP,
        cpu_request=spec.cpu_request,
        memory_request=spec.memory_request,
    )
    service = _load("templates/agent-service.yaml.j2", **common)
    return deployment, service


def render_manifests(spec: ClusterSpec) -> list[Stage]:
    """Every object of a deployment, grouped in the stages they are applied in."""
    setup: list[dict[str, Any]] = [
        _load("templates/namespace.yaml.j2", namespace=namespace, labels=labels(spec, "namespace"))
        for namespace in spec.used_namespaces
    ]
    circe_ns = spec.namespaces["circe"]
    setup.append(
        _load(
            "templates/secret.yaml.j2",
            name=TOKEN_SECRET,
            namespace=circe_ns,
            labels=labels(spec, "token"),
            token=spec.token,
        )
    )
    setup.append(
        _load(
            "templates/configmap.yaml.j2",
            name=PLAN_CONFIGMAP,
            namespace=circe_ns,
            labels=labels(spec, "plans"),
            data={plan_key(node): plan for node, plan in sorted(spec.plans.items())},
        )
    )
    stages = [Stage("setup", tuple(setup))]
    # The profiling issue adds the per-node profilers here; until then the
    # mapper works from the default problem (see jupiter.planning).
    stages.append(Stage("profilers", ()))
    if spec.problem is not None:
        mapper_ns = spec.namespaces["mapper"]
        mapper_labels = labels(spec, "mapper")
        config = _load(
            "templates/configmap.yaml.j2",
            name=MAPPER_CONFIGMAP,
            namespace=mapper_ns,
            labels=mapper_labels,
            data={PROBLEM_KEY: spec.problem},
        )
        job = _load(
            "templates/mapper-job.yaml.j2",
            name=MAPPER_JOB,
            namespace=mapper_ns,
            labels=mapper_labels,
            image=spec.image,
            uid=AGENT_UID,
            problem_path=f"{CONFIG_DIR}/{PROBLEM_KEY}",
            scheduler=spec.scheduler,
            config_dir=CONFIG_DIR,
            configmap=MAPPER_CONFIGMAP,
            cpu_request=spec.cpu_request,
            memory_request=spec.memory_request,
        )
        stages.append(Stage("mapper", (config, job), wait="complete"))
    circe: list[dict[str, Any]] = []
    for agent in spec.agents:
        circe.extend(_agent_objects(spec, agent))
    stages.append(Stage("circe", tuple(circe), wait="ready"))
    return stages
