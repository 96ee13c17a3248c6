"""The kubernetes backend: the rendered manifests applied stage by stage, teardown by label.

What is applied comes from `jupiter.render` (pure builders); this module only
sends it, in the original's order profilers -> mapper -> CIRCE: `start`
applies the shared objects and the agents (one Deployment pinned to its node
and one Service per node) and waits until they are ready; the agents profile
(reached through the API server's service proxy: this machine cannot reach
pods, so the handle's control client uses `ProxyTransport`); `map_in_cluster`
runs the mapper as a Job on the measured problem (`jupiter map --output json`)
and reads the mapping from the JSON document in its log; the deployment then dispatches it to the agents (CIRCE) and
`publish_plan` puts the plans with the mapping into the plans ConfigMap,
which an agent pod restarted later reads. Submitting files, waiting for
frames and flushing statistics go through the proxy too, and
`fetch_home_files` brings home's statistics and outputs from its pod. Every
wait uses watches and a deadline. When something does not come up, the error
names the pod and its last events; `start` deletes what it created before
raising, and the deployment tears everything down when a later step fails.
Objects are named after their nodes, so deployments side by side on one
cluster each need their own namespace (`[DEPLOY] NAMESPACE`); a second one
in a namespace in use stops before it creates anything, and says so.
Every call to the cluster goes through `jupiter.backends.k8s_client.Cluster`,
which tests replace with a fake.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jupiter.backends.base import (
    Attachment,
    Backend,
    BrowserAccess,
    Handle,
    LogCursor,
    LogLine,
    Progress,
    engine_line_time,
)
from jupiter.backends.control import Body, Stream, Unreachable
from jupiter.backends.home_archive import extract_home_archive
from jupiter.backends.k8s_client import AlreadyExists, Cluster, ClusterError, KubeClient, KubeConfig, NotFound, NotUp
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.errors import JupiterError
from jupiter.model.layout import DeploymentLayout
from jupiter.model.outputs import MAP_FORMAT
from jupiter.model.plan import NodeAddress, Plan
from jupiter.render.manifests import (
    MAPPER_JOB,
    Stage,
    deployment_selector,
    plans_data,
    render_manifests,
    render_mapper,
)
from jupiter.render.spec import (
    LABEL_NODE,
    PLAN_CONFIGMAP,
    cluster_addresses,
    cluster_spec,
    service_name,
    shared_plan,
)

DEFAULT_TIMEOUT = 300.0
LOG_LINES = 5
"""Last lines of the mapper's log shown when it fails."""
HOME_ARCHIVE_TIMEOUT = 120.0
"""Seconds to fetch a home's statistics and outputs (through the API server: they may be large)."""

ClusterFactory = Callable[[KubeConfig], Cluster]

# Parameters `jupiter map` (the mapper Job's command) has no option for, with the value it uses.
_MAP_DEFAULTS: dict[str, object] = {"seed": 0}


class KubernetesError(JupiterError):
    """A deployment on Kubernetes could not be started, reached or stopped."""


def real_cluster(config: KubeConfig) -> Cluster:
    """A client of the cluster the kubeconfig names (tests pass a fake factory instead)."""
    return KubeClient(config)


class ProxyTransport:
    """Agents' control planes through the API server's service proxy (`jupiter.backends.control.Transport`)."""

    def __init__(self, cluster: Callable[[], Cluster], namespace: str, services: Mapping[str, str], port: int) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.services = dict(services)
        self.port = port

    def request(
        self, node: str, method: str, path: str, body: Body, content_type: str, token: str, timeout: float
    ) -> Any:
        service = self.services.get(node) or service_name(node)
        # The proxy sends JSON bodies itself: give it the value, or the raw bytes with their content type
        # (an upload is gathered first: the API server's proxy takes one body).
        payload: Any = body.read_all() if isinstance(body, Stream) else body
        if content_type == "application/json" and isinstance(payload, bytes):
            payload, content_type = json.loads(payload), ""
        try:
            return self.cluster().proxy(
                self.namespace, service, self.port, method, path, token, payload, timeout, content_type
            )
        except ClusterError as exc:
            raise Unreachable(f"agent {node}: {exc}") from None


class KubernetesHandle(Handle):
    """A deployment's objects on the cluster, found again by its labels."""

    backend = "kubernetes"
    waits_ready = True
    maps_in_cluster = True
    home_files_are_local = False
    profiles_side_by_side = True  # every agent's pod is pinned to a node of its own (nodes.txt's hostname)

    def __init__(
        self,
        attachment: Attachment,
        progress: Progress = lambda _: None,
        cluster_factory: ClusterFactory | None = None,
        spec: DeploymentSpec | None = None,
        cluster: Cluster | None = None,
    ) -> None:
        super().__init__(attachment, progress)
        self.cluster_factory = cluster_factory or real_cluster
        self.spec = spec
        """Only for mapping in the cluster (a handle re-attached from the record does not map)."""
        self._cluster = cluster

    def cluster(self) -> Cluster:
        """The cluster client, made once per handle (it loads the kubeconfig and keeps a connection pool)."""
        if self._cluster is None:
            kubeconfig = self.info.get("kubeconfig")
            config = KubeConfig(Path(kubeconfig) if kubeconfig else None, str(self.info.get("context", "")))
            self._cluster = self.cluster_factory(config)
        return self._cluster

    def transport(self) -> ProxyTransport:
        return ProxyTransport(
            self.cluster, self.info["circe_namespace"], self.info["services"], self.info["control_port"]
        )

    def running(self) -> bool:
        return bool(self.cluster().pods(self.info["circe_namespace"], deployment_selector(self.info["deployment_id"])))

    def stop(self) -> list[str]:
        cluster = self.cluster()
        selector = deployment_selector(self.info["deployment_id"])
        removed: list[str] = []
        for namespace in self.info["namespaces"]:
            removed += [f"{namespace}/{item}" for item in cluster.delete_all(namespace, selector)]
        removed += cluster.delete_namespaces(selector)
        return removed

    def browser_access(self, node: str) -> list[BrowserAccess]:
        """Pods are not reachable from this machine: forward a local port to the node's Service, or use
        the API server's proxy through `kubectl proxy` (both with this machine's kubeconfig)."""
        namespace = self.info["circe_namespace"]
        service = self.info["services"].get(node) or service_name(node)
        port = self.info["control_port"]
        kubectl = "kubectl" + (f" --context {self.info['context']}" if self.info.get("context") else "")
        return [
            BrowserAccess(
                "http://127.0.0.1:8080", (f"{kubectl} -n {namespace} port-forward service/{service} 8080:{port}",)
            ),
            BrowserAccess(
                f"http://127.0.0.1:8001/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy",
                (f"{kubectl} proxy --port 8001",),
            ),
        ]

    def read_log(self, node: str, cursor: LogCursor) -> tuple[list[LogLine], LogCursor]:
        """The node's agent pods' logs through the API server, with its timestamps.

        The cursor is the timestamp of the last line read; a later call asks
        for the seconds since then only (rounded up, so the lines already read
        are dropped here). A pod restarted by its Deployment is a new pod: its
        log is read too.
        """
        namespace = self.info["circe_namespace"]
        selector = f"{deployment_selector(self.info['deployment_id'])},{LABEL_NODE}={node}"
        last = float(cursor) if cursor is not None else 0.0
        since = max(1, math.ceil(time.time() - last) + 1) if last else None
        cluster = self.cluster()
        lines: list[LogLine] = []
        try:
            for pod in cluster.pods(namespace, selector):
                with contextlib.suppress(NotFound):  # gone since it was listed
                    for raw in cluster.pod_log(namespace, pod.name, since).splitlines():
                        stamp, text = engine_line_time(raw)
                        if not math.isnan(stamp) and stamp > last:
                            lines.append(LogLine(stamp, node, text))
        except ClusterError as exc:
            raise KubernetesError(f"cannot read the log of {node}: {exc}") from None
        lines.sort(key=lambda line: line.time)
        return lines, (lines[-1].time if lines else cursor)

    def publish_plan(self, plan: Plan) -> None:
        """Put a dispatched plan into the plans ConfigMap, so agent pods restarted later get their tasks.

        The agents read their plans from the ConfigMap (mounted as files),
        not from this machine's plan.json; without this a restarted pod
        would come back with the plan it started with, i.e. without tasks.
        """
        data = plans_data(shared_plan(plan))
        try:
            self.cluster().update_config_map(self.info["circe_namespace"], PLAN_CONFIGMAP, data)
        except ClusterError as exc:
            raise KubernetesError(f"cannot put the mapping into the plans the agent pods read: {exc}") from None

    def map_in_cluster(
        self, problem: Mapping[str, Any], scheduler: str, params: Mapping[str, object]
    ) -> dict[str, str]:
        """The mapper stage on a measured problem: run the mapper Job and return its mapping.

        The problem goes to the Job in a ConfigMap; the Job runs `jupiter map
        --output json` with the configured scheduler and the mapping is read
        from the document in its pod's log. A failed or late Job raises `KubernetesError` naming the pod, its
        last events and its last log lines; the deployment tears down.
        """
        if self.spec is None:
            raise KubernetesError("internal: mapping in the cluster needs the deployment's spec (deploy does it)")
        layout = self.attachment.layout
        spec = cluster_spec(
            self.spec, Plan.load(layout.plan), self.attachment.token, json.dumps(problem, sort_keys=True)
        )
        spec = dataclasses.replace(spec, scheduler=scheduler, mapper_options=self._options(params))
        stage = render_mapper(spec)
        namespace = spec.namespaces["mapper"]
        cluster = self.cluster()
        timeout = float(self.info.get("timeout", DEFAULT_TIMEOUT))  # the deploy's --timeout, kept by `start`
        try:
            _apply(cluster, stage, spec.deployment_id, timeout, self.progress)
            log = cluster.job_log(namespace, MAPPER_JOB)
        except NotUp as exc:
            raise KubernetesError(f"the mapper failed: {exc}{self._log_tail(cluster, namespace)}") from None
        except ClusterError as exc:
            raise KubernetesError(f"the mapper failed: {exc}") from None
        tasks = [str(task) for task in problem["tasks"]]
        mapping = parse_mapper_output(log, tasks, [str(node) for node in problem["nodes"]])
        if mapping is None:
            raise KubernetesError(
                f"the mapper Job {namespace}/{MAPPER_JOB} printed no mapping of every task"
                f"{_tail(log)}; see `kubectl -n {namespace} logs job/{MAPPER_JOB}`"
            )
        self.progress(f"mapper: Job {MAPPER_JOB} mapped {len(mapping)} tasks with {scheduler}")
        return mapping

    def _options(self, params: Mapping[str, object]) -> tuple[str, ...]:
        """`jupiter map` options for the mapper's parameters; says which ones it cannot pass."""
        options: list[str] = []
        for key, value in sorted(params.items()):
            if key == "max_tasks_per_node":
                options += ["--max-tasks-per-node", str(value)]
            elif key not in _MAP_DEFAULTS or _MAP_DEFAULTS[key] != value:
                default = f"; it uses {_MAP_DEFAULTS[key]}" if key in _MAP_DEFAULTS else ""
                self.progress(f"mapper: `jupiter map` has no option for {key} = {value!r}{default}")
        return tuple(options)

    def _log_tail(self, cluster: Cluster, namespace: str) -> str:
        """The failed mapper's last log lines, if its pod left any (best effort, for the message)."""
        with contextlib.suppress(ClusterError):
            return _tail(cluster.job_log(namespace, MAPPER_JOB))
        return ""

    def fetch_home_files(self) -> None:
        """Copy every home's statistics, event log and outputs from its pod into the deployment folder.

        Call after flushing, so the archive holds every event.
        """
        layout = self.attachment.layout
        homes = [name for name, address in self.attachment.nodes.items() if address.role == "home"]
        control = self.control()
        for home in homes:
            answer = control.get(home, "/home/archive", HOME_ARCHIVE_TIMEOUT)
            if not isinstance(answer, dict) or not isinstance(answer.get("archive"), str):
                why = answer.get("error", answer) if isinstance(answer, dict) else answer
                raise KubernetesError(f"home {home} did not send its statistics and outputs: {why}")
            if answer.get("home") != home:
                raise KubernetesError(
                    f"asked home {home} for its statistics and outputs, {answer.get('home')} answered"
                )
            extract_home_archive(home, answer["archive"], layout.home(home, homes[0]).dir)

    def describe(self) -> list[str]:
        """Pods of the deployment per phase, one line per namespace (for `jupiter status`)."""
        cluster = self.cluster()
        lines = []
        for namespace in self.info["namespaces"]:
            pods = cluster.pods(namespace, deployment_selector(self.info["deployment_id"]))
            phases: dict[str, list[str]] = {}
            for pod in pods:
                label = pod.phase + ("" if pod.ready or pod.phase != "Running" else " (not ready)")
                label = f"{label} [{pod.reason}]" if pod.reason else label
                phases.setdefault(label, []).append(pod.name)
            summary = "; ".join(
                f"{phase}: {len(names)} ({', '.join(sorted(names))})" for phase, names in sorted(phases.items())
            )
            lines.append(f"namespace {namespace}: {summary or 'no pods'}")
        return lines


def _apply(cluster: Cluster, stage: Stage, deployment_id: str, timeout: float, progress: Progress) -> None:
    """Create a stage's objects (namespaces only when missing), then wait as the stage says."""
    progress(f"{stage.name}: {len(stage.objects)} objects")
    for obj in stage.objects:
        if obj["kind"] == "Namespace" and cluster.namespace_exists(obj["metadata"]["name"]):
            continue
        cluster.create(obj)
    if stage.wait == "complete":
        for job in (o for o in stage.objects if o["kind"] == "Job"):
            progress(f"{stage.name}: waiting for Job {job['metadata']['name']} to complete")
            cluster.wait_complete(job["metadata"]["namespace"], job["metadata"]["name"], timeout)
    elif stage.wait == "ready":
        deployments = [o for o in stage.objects if o["kind"] == "Deployment"]
        if deployments:
            namespace = deployments[0]["metadata"]["namespace"]
            progress(f"{stage.name}: waiting for {len(deployments)} agents to be ready")
            cluster.wait_ready(namespace, deployment_selector(deployment_id), len(deployments), timeout)


class KubernetesBackend(Backend):
    """Agents as pods: one Deployment and one Service per node, in the configured namespaces."""

    name = "kubernetes"
    handle = KubernetesHandle

    def __init__(
        self,
        spec: DeploymentSpec,
        progress: Progress = lambda _: None,
        timeout: float = DEFAULT_TIMEOUT,
        cluster_factory: ClusterFactory | None = None,
    ) -> None:
        super().__init__(spec, progress, timeout)
        self.cluster_factory = cluster_factory or real_cluster
        self._cluster: Cluster | None = None

    def addresses(self, nodes: list[tuple[str, str]]) -> dict[str, NodeAddress]:
        return cluster_addresses(self.spec, nodes)

    def attach(self, attachment: Attachment) -> KubernetesHandle:
        """A handle sharing this launcher's cluster client (one kubeconfig load and connection pool per deploy)."""
        handle = KubernetesHandle(attachment, self.progress, self.cluster_factory, self.spec, self._cluster)
        self._cluster = handle.cluster()
        return handle

    def start(self, layout: DeploymentLayout, plan: Plan, nodes: list[str]) -> dict[str, Any]:
        """Apply the shared objects and the agents, and wait until every agent is ready.

        A measured deployment (a plan without a mapping) gets its mapper Job
        later, from `map_in_cluster`; with a static mapping there is none.
        """
        settings = self.spec.containers
        token = layout.token.read_text().strip()
        spec = cluster_spec(self.spec, plan, token, None)
        info: dict[str, Any] = {
            "deployment_id": plan.deployment,
            "root": str(layout.root),
            "namespaces": list(spec.used_namespaces),
            "circe_namespace": spec.namespaces["circe"],
            "kubeconfig": str(settings.kubeconfig) if settings.kubeconfig else None,
            "context": settings.context,
            "services": {agent.node: agent.service for agent in spec.agents},
            "control_port": spec.control_port,
            "timeout": self.timeout,
        }
        handle = self.attach(Attachment(plan.deployment, layout, plan.nodes, token, info))
        cluster = handle.cluster()
        try:
            for stage in render_manifests(spec):
                _apply(cluster, stage, plan.deployment, self.timeout, self.progress)
        except BaseException as exc:
            # Leave nothing half-made behind: delete what this deployment created so far.
            try:
                removed = handle.stop()
            except ClusterError as cleanup:
                raise KubernetesError(f"{exc}; cleaning up also failed: {cleanup}") from None
            if isinstance(exc, AlreadyExists):
                # Objects are named after the nodes: two deployments cannot share a namespace.
                raise KubernetesError(
                    f"{exc}: another deployment runs in namespace {spec.namespaces['circe']}; tear it down "
                    "(`jupiter list`, `jupiter teardown --deployment ID`) or give this one its own [DEPLOY] NAMESPACE "
                    f"(removed {len(removed)} objects created so far)"
                ) from None
            if isinstance(exc, ClusterError):
                raise KubernetesError(f"{exc} (removed {len(removed)} objects created so far)") from None
            raise
        return info


def parse_mapper_output(log: str, tasks: Sequence[str], nodes: Sequence[str]) -> dict[str, str] | None:
    """The mapping in `jupiter map --output json`'s document in a Job's log, or None without every task.

    The log also holds what went to stderr (warnings), so the document is the
    first JSON object starting at the beginning of a line whose `format` is
    `jupiter-map`; its `mapping` must map every task to one of the nodes.
    """
    decoder = json.JSONDecoder()
    known_nodes = set(nodes)
    position = 0
    while True:
        start = log.find("{", position)
        if start < 0:
            return None
        position = start + 1
        if start > 0 and log[start - 1] != "\n":
            continue
        try:
            document, _ = decoder.raw_decode(log, start)
        except json.JSONDecodeError:
            continue
        if not isinstance(document, dict) or document.get("format") != MAP_FORMAT:
            continue
        mapping = document.get("mapping")
        if not isinstance(mapping, dict) or set(mapping) != set(tasks):
            return None
        if not all(isinstance(node, str) and node in known_nodes for node in mapping.values()):
            return None
        return {task: str(mapping[task]) for task in tasks}


def _tail(log: str) -> str:
    lines = [line.rstrip() for line in log.splitlines() if line.strip()][-LOG_LINES:]
    return f"; last log lines: {' | '.join(lines)}" if lines else ""
