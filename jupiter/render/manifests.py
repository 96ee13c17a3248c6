"""Kubernetes manifests of a deployment, rendered from `templates/*.yaml.j2`, in deploy order.

`render_manifests` returns the stages in the order the kubernetes backend
applies them: the shared objects (namespaces, the token Secret, the plans),
the agents (one Deployment and one Service per node), then the mapper Job.
That is the original's order profilers -> mapper -> CIRCE: the same agents
first profile, the mapper Job maps from their measurements, and CIRCE is the
mapping dispatched to them, which needs no objects of its own. A measured
deployment has no mapping problem when it starts; the backend renders the
mapper stage with `render_mapper` once the profile exists, and dispatch
sends the plans again (`plans_data`) with the mapping in them. Every object
carries the recommended `app.kubernetes.io/*` labels and the deployment-id
label teardown selects on. Only `v1`, `apps/v1` and `batch/v1` objects are
made.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def plans_data(plans: Mapping[str, str]) -> dict[str, str]:
    """The plans ConfigMap's data: each node's plan (JSON) under `plan_key(node)`.

    Rendered at deploy time and sent again by dispatch, so an agent pod
    restarted after dispatch reads the mapping it was given.
    """
    return {plan_key(node): plan for node, plan in sorted(plans.items())}


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


def mapper_command(spec: ClusterSpec) -> list[str]:
    """The mapper Job's command: `jupiter map` on the mounted problem, printing its JSON document (MAP_FORMAT)."""
    problem = f"{CONFIG_DIR}/{PROBLEM_KEY}"
    return [
        "jupiter",
        "map",
        "--problem",
        problem,
        "--scheduler",
        spec.scheduler,
        *spec.mapper_options,
        "--output",
        "json",
    ]


def render_mapper(spec: ClusterSpec) -> Stage:
    """The mapper stage: the problem in a ConfigMap and the Job mapping it, waited for until complete."""
    if spec.problem is None:
        raise ValueError("the mapper stage needs a mapping problem")
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
        command=mapper_command(spec),
        config_dir=CONFIG_DIR,
        configmap=MAPPER_CONFIGMAP,
        cpu_request=spec.cpu_request,
        memory_request=spec.memory_request,
    )
    return Stage("mapper", (config, job), wait="complete")


def render_manifests(spec: ClusterSpec) -> list[Stage]:
    """Every object of a deployment, grouped in the stages they are applied in.

    The mapper stage is there when the spec has a problem (`jupiter render`
    shows it with the default-cost problem; a deployment renders it after profiling).
    """
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
            data=plans_data(spec.plans),
        )
    )
    agents: list[dict[str, Any]] = []
    for agent in spec.agents:
        agents.extend(_agent_objects(spec, agent))
    stages = [Stage("setup", tuple(setup)), Stage("agents", tuple(agents), wait="ready")]
    if spec.problem is not None:
        stages.append(render_mapper(spec))
    return stages
