"""Kubernetes manifests of a deployment, rendered from `templates/*.yaml.j2`, in deploy order.

`render_manifests` returns the stages in the order the kubernetes backend
applies them: the shared objects (namespaces, the token Secret, the plan,
the NetworkPolicy), the agents (one Deployment and one Service per node),
then the mapper Job. That is the original's order profilers -> mapper ->
CIRCE: the same agents first profile, the mapper Job maps from their
measurements, and CIRCE is the mapping dispatched to them, which needs no
objects of its own. A measured deployment has no mapping problem when it
starts; the backend renders the mapper stage with `render_mapper` once the
profile exists, and dispatch sends the plan again (`plans_data`) with the
mapping in it. Every object carries the recommended `app.kubernetes.io/*`
labels and the deployment-id label teardown selects on. Only `v1`,
`apps/v1`, `batch/v1` and `networking.k8s.io/v1` objects are applied;
`render_access` makes the Role and RoleBinding an administrator grants the
CLI's users (`rbac.authorization.k8s.io/v1`, shown by `jupiter render`,
never applied by the CLI, which could not grant itself rights).

What a cluster would refuse is refused here, with the fix: a ConfigMap
holds at most 1 MiB (`CONFIGMAP_LIMIT`), so the agents share one plan
(`shared_plan`: its size grows with tasks + nodes) and a plan or a mapping
problem that still does not fit is an error naming its size. Every object
is rendered once and loaded with libyaml when it is there, so rendering
takes time in proportion to the number of nodes plus tasks.

Pods run as the image's non-root user with every capability dropped, no
privilege escalation and the runtime's default seccomp profile (what the
`restricted` Pod Security level asks), with an optional memory limit
(`[DEPLOY] MEMORY_LIMIT`). The NetworkPolicy lets only the deployment's own
pods reach the agents' data and app ports; the control port stays open to
the cluster, since the CLI reaches it through the API server's proxy and
the kubelet probes it, and every route but `/health` needs the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from jupiter.model.errors import InputError
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
PLAN_KEY = "plan.json"
"""ConfigMap key (and file name under `/etc/jupiter`) of the plan every agent reads."""
CONFIGMAP_LIMIT = 1024 * 1024
"""Bytes of data a ConfigMap may hold (the API server refuses more)."""
NETWORK_POLICY = "jupiter-agents"
ACCESS_ROLE = "jupiter-cli"
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Wait = Literal["none", "ready", "complete"]


@dataclass(frozen=True)
class Stage:
    """Objects applied together, and what to wait for before the next stage."""

    name: str
    objects: tuple[dict[str, Any], ...]
    wait: Wait = "none"
    """`ready`: every Deployment of the stage available; `complete`: every Job succeeded."""


def fits(what: str, data: Mapping[str, str], fix: str) -> dict[str, str]:
    """`data` if a ConfigMap can hold it; else an InputError naming `what`, its size, and `fix`."""
    size = sum(len(key.encode()) + len(value.encode()) for key, value in data.items())
    if size > CONFIGMAP_LIMIT:
        raise InputError(
            None,
            None,
            f"{what} is {size / 1024**2:.2f} MiB, more than the 1 MiB a Kubernetes ConfigMap holds; {fix}",
        )
    return dict(data)


def plans_data(plan: str) -> dict[str, str]:
    """The plans ConfigMap's data: the plan every agent reads (compact JSON) under `PLAN_KEY`.

    Rendered at deploy time and sent again by dispatch, so an agent pod
    restarted after dispatch reads the mapping it was given. An InputError
    when it cannot fit in a ConfigMap.
    """
    return fits(
        "the deployment's plan",
        {PLAN_KEY: plan},
        "split the app or the node list into several deployments",
    )


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
    loaded = yaml.load(render(template, **context), Loader=_LOADER)  # noqa: S506 - a safe loader, C or Python
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
        plan_path=f"{CONFIG_DIR}/{PLAN_KEY}",
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
    problem = fits(
        "the mapping problem of the mapper Job",
        {PROBLEM_KEY: spec.problem},
        "map with a static mapping ([CONFIG] STATIC_MAPPING = 1 and [DEPLOY] MAPPING) instead",
    )
    config = _load(
        "templates/configmap.yaml.j2",
        name=MAPPER_CONFIGMAP,
        namespace=mapper_ns,
        labels=mapper_labels,
        data=problem,
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
            data=plans_data(spec.plan),
        )
    )
    setup.append(
        _load(
            "templates/network-policy.yaml.j2",
            name=NETWORK_POLICY,
            namespace=circe_ns,
            labels=labels(spec, "network-policy"),
            selector={LABEL_DEPLOYMENT: spec.deployment_id},
            control_port=spec.control_port,
            data_port=spec.data_port,
            app_ports=spec.app_ports,
        )
    )
    agents: list[dict[str, Any]] = []
    for agent in spec.agents:
        agents.extend(_agent_objects(spec, agent))
    stages = [Stage("setup", tuple(setup)), Stage("agents", tuple(agents), wait="ready")]
    if spec.problem is not None:
        stages.append(render_mapper(spec))
    return stages


def render_access(spec: ClusterSpec) -> tuple[dict[str, Any], ...]:
    """A Role and a RoleBinding per namespace: what `jupiter` needs there, granted to `[DEPLOY] RBAC_GROUP`.

    For an administrator to apply once, for every deployment to come
    (`jupiter render` shows them); creating
    the namespaces themselves needs a cluster-wide right, so an
    administrator creates them too, or grants `create` on namespaces.
    """
    # Not one deployment's objects: they outlive every deployment (no deployment-id label, no app).
    access_labels = {
        "app.kubernetes.io/name": "jupiter",
        "app.kubernetes.io/component": "access",
        "app.kubernetes.io/managed-by": "jupiter",
        "app.kubernetes.io/version": spec.version,
    }
    objects: list[dict[str, Any]] = []
    for namespace in spec.used_namespaces:
        common = {"name": ACCESS_ROLE, "namespace": namespace, "labels": access_labels}
        objects.append(_load("templates/role.yaml.j2", **common))
        objects.append(_load("templates/role-binding.yaml.j2", **common, group=spec.rbac_group))
    return tuple(objects)
