"""Typed inputs of the renderers: what one app image and one cluster deployment consist of.

`image_spec` and `cluster_spec` turn a resolved deployment spec (and, for a
cluster, the deployment's plan and token) into frozen specs; the renderers
read only these. Paths and names inside containers are fixed here, once:
the app's files live in `/app` (its scripts also at `/centralized_scheduler`,
where the original's images put them), configuration is mounted at `/etc/jupiter`,
agents keep their state in `/var/lib/jupiter`, and each agent's own plan
says it listens on `0.0.0.0` while its peers are reached by DNS name
(one plan for every pod, each agent told to listen on `0.0.0.0` by `--bind`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jupiter import __version__
from jupiter.model.config import ContainerSettings, Ports
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.errors import InputError
from jupiter.model.plan import NodeAddress, Plan, TaskSpec

APP_DIR = "/app"
"""Where the app folder (scripts, sample inputs) is copied in the image."""
ORIGINAL_SCRIPTS_DIR = "/centralized_scheduler"
"""Where the original's images had the app's `scripts/` folder; its generated apps read files there
(`/centralized_scheduler/communication.txt`), so the images have it too, as a link to `/app/scripts`."""
CONFIG_DIR = "/etc/jupiter"
"""Where plans (and the mapper's problem) are mounted in containers."""
STATE_DIR = "/var/lib/jupiter"
"""An agent's deployment folder inside its container."""
AGENT_UID = 10001
"""The image's non-root user (`jupiter`)."""
BIND_ALL = "0.0.0.0"  # noqa: S104 - agents in containers must accept peers on their network
LABEL_DEPLOYMENT = "jupiter/deployment-id"
LABEL_NODE = "jupiter/node"
TOKEN_SECRET = "jupiter-token"  # noqa: S105 - the Secret's name, not a secret
PLAN_CONFIGMAP = "jupiter-plans"
MAPPER_CONFIGMAP = "jupiter-mapper"
STAGES: tuple[str, ...] = ("profiler", "mapper", "circe")
"""Deploy stages in the original's order: profilers, then the mapper, then CIRCE (the agents)."""

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def dns_name(name: str) -> str:
    """A node or app name as a DNS label (Kubernetes object names): lower case, `_` as `-`."""
    label = name.lower().replace("_", "-").strip("-")
    if not label or not label[0].isalpha():
        label = f"n-{label}"
    return label[:50]


def image_name(settings: ContainerSettings, app: str) -> str:
    """`REGISTRY/jupiter-<app>:<tag>` (no registry part when REGISTRY is empty)."""
    repository = f"jupiter-{dns_name(app)}"
    tag = settings.image_tag or __version__
    return f"{settings.registry}/{repository}:{tag}" if settings.registry else f"{repository}:{tag}"


def agent_ports(ports: Ports) -> tuple[int, int]:
    """(control, data) port of every agent in a container: `[PORT] FLASK_DOCKER` and the next one."""
    control = ports.flask_docker
    return control, control + 1


@dataclass(frozen=True)
class ImageSpec:
    """One agent image: everything the Dockerfile template reads."""

    app: str
    image: str
    base_image: str
    jupiter_version: str
    ports: tuple[int, ...]
    """Ports the image exposes: control, data, the app's `[DOCKER_PORT]`s (and SSH with SCP)."""
    scp: bool = False
    """TRANSFER = scp: install an SSH server that accepts keys only."""
    ssh_port: int = 22
    uid: int = AGENT_UID


def image_spec(spec: DeploymentSpec) -> ImageSpec:
    """The image spec of a deployment's app."""
    settings = spec.containers
    control, data = agent_ports(spec.ports)
    scp = spec.transfer.method == "scp"
    extra = sorted(set(spec.app.ports.docker.values()))
    ports = (control, data, *extra, *((spec.ports.ssh_docker,) if scp else ()))
    return ImageSpec(
        app=spec.app.name,
        image=image_name(settings, spec.app.name),
        base_image=settings.base_image,
        jupiter_version=__version__,
        ports=tuple(dict.fromkeys(ports)),
        scp=scp,
        ssh_port=spec.ports.ssh_docker,
    )


def container_plan(plan: Plan, node: str | None = None) -> Plan:
    """The plan as agents in containers see it.

    Scripts are under `/app`; with `node`, that node's own address becomes
    `0.0.0.0` (it listens on every interface of its container) while its
    peers keep their DNS names.
    """
    app_root = Path(plan.app_path)

    def moved(task: TaskSpec) -> TaskSpec:
        script = Path(task.script)
        relative = script.relative_to(app_root) if script.is_relative_to(app_root) else Path("scripts", script.name)
        return dataclasses.replace(task, script=f"{APP_DIR}/{relative.as_posix()}")

    nodes = dict(plan.nodes)
    if node is not None:
        nodes[node] = dataclasses.replace(nodes[node], host=BIND_ALL)
    return dataclasses.replace(
        plan,
        app_path=APP_DIR,
        tasks={name: moved(task) for name, task in plan.tasks.items()},
        nodes=nodes,
    )


def shared_plan(plan: Plan) -> str:
    """The one plan every agent pod reads (compact JSON): `container_plan` without a node of its own.

    Each agent listens on `0.0.0.0` by its `--bind` option, so the plan is
    the same for every node and its size grows with tasks + nodes, not
    with their product as one plan per node would.
    """
    return container_plan(plan).to_json(compact=True)


@dataclass(frozen=True)
class AgentSpec:
    """One node's agent on the cluster."""

    node: str
    role: str
    hostname: str
    """Kubernetes node it is pinned to (`kubernetes.io/hostname`), from nodes.txt."""
    service: str
    """Its Service's name; peers reach it as `<service>.<namespace>.svc`."""
    cpus: float | None = None
    """CPU limit (`[DEPLOY] CPUS`); None = no limit."""
    memory: str = ""
    """Memory limit (`[DEPLOY] MEMORY_LIMIT`, a Kubernetes quantity); empty = no limit."""


@dataclass(frozen=True)
class AppPort:
    """An extra port of the app (`app_config.ini`)."""

    name: str
    container_port: int
    service_port: int


@dataclass(frozen=True)
class ClusterSpec:
    """One deployment on Kubernetes: everything the manifest templates read."""

    deployment_id: str
    app: str
    image: str
    version: str
    namespaces: Mapping[str, str]
    """Stage (`profiler`, `mapper`, `circe`) -> namespace."""
    agents: tuple[AgentSpec, ...]
    control_port: int
    data_port: int
    app_ports: tuple[AppPort, ...]
    cpu_request: str
    memory_request: str
    token: str
    plan: str
    """The plan every agent reads (compact JSON), as `shared_plan` makes it."""
    problem: str | None
    """Mapping problem (JSON) of the mapper Job; None = no mapper Job rendered.

    A measured deployment starts without it: the backend renders the mapper
    Job once the agents have profiled (`jupiter.backends.kubernetes`).
    """
    scheduler: str
    measured: bool = False
    """The agents start without tasks; profiling, the mapper Job and dispatch follow."""
    mapper_options: tuple[str, ...] = ()
    """More `jupiter map` options of the mapper Job (e.g. `--max-tasks-per-node 3` for heft_modified)."""
    rbac_group: str = "jupiter-users"
    """Group the rendered Role is bound to: the users who run `jupiter` against these namespaces."""

    @property
    def used_namespaces(self) -> tuple[str, ...]:
        """Every namespace the deployment puts objects in, CIRCE's first, once each.

        The mapper's joins when the deployment runs the mapper Job (now or after
        profiling); the profilers' would join if they had objects of their own.
        """
        mapper = self.problem is not None or self.measured
        stages = ("circe", "mapper") if mapper else ("circe",)
        return tuple(dict.fromkeys(self.namespaces[stage] for stage in stages))


def service_name(node: str) -> str:
    """Name of a node's agent Service (and Deployment)."""
    return f"jupiter-{dns_name(node)}"


def cluster_addresses(spec: DeploymentSpec, nodes: list[tuple[str, str]] | None = None) -> dict[str, NodeAddress]:
    """Agents' addresses on a cluster: their Services' DNS names, the same ports everywhere."""
    nodes = spec.roles() if nodes is None else nodes
    settings = spec.containers
    control, data = agent_ports(spec.ports)
    namespace = settings.namespace_of("circe")
    services: dict[str, str] = {}
    for name, _role in nodes:
        service = service_name(name)
        if service in services.values():
            other = next(node for node, svc in services.items() if svc == service)
            raise InputError(
                spec.nodes.path, None, f"nodes {other!r} and {name!r} both become Service {service!r}; rename one"
            )
        services[name] = service
    return {name: NodeAddress(name, role, f"{services[name]}.{namespace}.svc", data, control) for name, role in nodes}


def _port_name(name: str) -> str:
    label = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")[:15].strip("-")
    return label if label and any(c.isalpha() for c in label) else f"p-{label}"[:15]


def cluster_spec(spec: DeploymentSpec, plan: Plan, token: str, problem: str | None) -> ClusterSpec:
    """The cluster spec of a deployment (its plan must use `cluster_addresses`).

    A plan without a mapping is a measured deployment (`deploy` starts the
    agents without tasks and maps from their measurements).
    """
    settings = spec.containers
    control, data = agent_ports(spec.ports)
    by_name = {node.name: node for node in spec.nodes}
    agents = tuple(
        AgentSpec(
            node=name,
            role=address.role,
            hostname=by_name[name].hostname,
            service=service_name(name),
            cpus=settings.cpus.get(name),
            memory=settings.memory_limit,
        )
        for name, address in plan.nodes.items()
    )
    app_ports = tuple(
        AppPort(_port_name(name), port, spec.app.ports.svc.get(name, port))
        for name, port in sorted(spec.app.ports.docker.items())
    )
    return ClusterSpec(
        deployment_id=plan.deployment,
        app=spec.app.name,
        image=image_name(settings, spec.app.name),
        version=__version__,
        namespaces={stage: settings.namespace_of(stage) for stage in STAGES},
        agents=agents,
        control_port=control,
        data_port=data,
        app_ports=app_ports,
        cpu_request=settings.cpu_request,
        memory_request=settings.memory_request,
        token=token,
        plan=shared_plan(plan),
        problem=problem,
        scheduler=spec.mapping.scheduler,
        measured=not plan.mapping,
        rbac_group=settings.rbac_group,
    )


def check_dns_label(value: str, what: str) -> str:
    """`value` if it is a DNS label; raises InputError naming `what` otherwise."""
    if not _DNS_LABEL.match(value) or len(value) > 63:
        raise InputError(None, None, f"{what} {value!r} is not a DNS label (lower-case letters, digits, '-')")
    return value
