"""The kubernetes backend: the rendered manifests applied stage by stage, teardown by label.

What is applied comes from `jupiter.render` (pure builders); this module only
sends it, in the original's order profilers -> mapper -> CIRCE: `start`
applies the shared objects and the agents (one Deployment pinned to its node
and one Service per node) and waits until they are ready; the agents profile
(the deployment calls them through `control`, i.e. the API server's service
proxy, since this machine cannot reach pods); `map_profile` runs the mapper
as a Job on the measured problem and reads the mapping from its log; the
deployment then dispatches it to the agents (CIRCE) and `update_plan` puts
the plans with the mapping into the plans ConfigMap, which an agent pod
restarted later reads. Submitting files, waiting for frames and flushing
statistics go through `control` too. Every wait uses watches
and a deadline. When something does not come up, the error names the pod
and its last events; `start` deletes what it created before raising, and the
deployment tears everything down when a later step fails. Every call to the
cluster goes through `jupiter.backends.k8s_client.Cluster`, which tests
replace with a fake.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from jupiter.backends.k8s_client import Cluster, ClusterError, KubeClient, KubeConfig, NotUp
from jupiter.errors import JupiterError
from jupiter.mapping import Problem
from jupiter.model.workspace import Workspace
from jupiter.profiles import problem_from_profile, problem_to_json
from jupiter.render.manifests import (
    MAPPER_JOB,
    Stage,
    deployment_selector,
    plans_data,
    render_manifests,
    render_mapper,
)
from jupiter.render.spec import PLAN_CONFIGMAP, cluster_addresses, cluster_spec, node_plans, service_name
from jupiter.runtime.plan import NodeAddress, Plan

DEFAULT_TIMEOUT = 300.0
LOG_LINES = 5
"""Last lines of the mapper's log shown when it fails."""

ClusterFactory = Callable[[KubeConfig], Cluster]
MapperFor = Callable[[Problem], tuple[str, dict[str, object]]]
"""The configured mapper's name and parameters for a problem (`jupiter.planning.mapper_for`)."""

# Parameters `jupiter map` (the mapper Job's command) has no option for, with the value it uses.
_MAP_DEFAULTS: dict[str, object] = {"seed": 0}


class KubernetesError(JupiterError):
    """A deployment on Kubernetes could not be started, reached or stopped."""


def _real_cluster(config: KubeConfig) -> Cluster:
    return KubeClient(config)


class KubernetesBackend:
    """Agents as pods: one Deployment and one Service per node, in the configured namespaces."""

    name = "kubernetes"

    def __init__(
        self,
        workspace: Workspace | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        progress: Callable[[str], None] = lambda _: None,
        cluster_factory: ClusterFactory | None = None,
        mapper_for: MapperFor | None = None,
    ) -> None:
        """`workspace` is needed to start and to map, not to reach or stop; `mapper_for` to map."""
        self.workspace = workspace
        self.timeout = timeout
        self.progress = progress
        self.cluster_factory = cluster_factory or _real_cluster
        self.mapper_for = mapper_for

    def _workspace(self) -> Workspace:
        if self.workspace is None:
            raise KubernetesError("internal: the kubernetes backend was made without a workspace")
        return self.workspace

    # One client per cluster factory, kubeconfig and context for the whole process, shared by
    # every backend object: the deployment makes a backend per call (`jupiter run` asks home
    # for its frames twice a second), and a client loads the kubeconfig (maybe running an
    # auth plugin) and holds a connection pool. The profilers use it from several threads.
    _clusters: ClassVar[dict[tuple[ClusterFactory, str | None, str], Cluster]] = {}
    _clusters_lock: ClassVar[threading.Lock] = threading.Lock()

    def _cluster(self, info: dict[str, Any]) -> Cluster:
        kubeconfig: str | None = info.get("kubeconfig")
        context = str(info.get("context", ""))
        key = (self.cluster_factory, kubeconfig, context)
        with self._clusters_lock:
            if key not in self._clusters:
                config = KubeConfig(Path(kubeconfig) if kubeconfig else None, context)
                self._clusters[key] = self.cluster_factory(config)
            return self._clusters[key]

    def addresses(self, nodes: list[tuple[str, str]]) -> dict[str, NodeAddress]:
        workspace = self._workspace()
        return cluster_addresses(nodes, workspace.config.deploy.containers, workspace.config)

    def start(self, root: Path, plan: Plan, nodes: list[str]) -> dict[str, Any]:
        """Apply the shared objects and the agents, and wait until every agent is ready.

        A measured deployment (a plan without a mapping) gets its mapper Job
        later, from `map_profile`; with a static mapping there is none.
        """
        workspace = self._workspace()
        settings = workspace.config.deploy.containers
        token = (root / "token").read_text().strip()
        spec = cluster_spec(workspace, plan, token, None)
        kubeconfig = workspace.config.resolve(settings.kubeconfig) if settings.kubeconfig else None
        info: dict[str, Any] = {
            "deployment_id": plan.deployment,
            "root": str(root),
            "namespaces": list(spec.used_namespaces),
            "circe_namespace": spec.namespaces["circe"],
            "kubeconfig": str(kubeconfig) if kubeconfig else None,
            "context": settings.context,
            "services": {agent.node: agent.service for agent in spec.agents},
            "control_port": spec.control_port,
            "timeout": self.timeout,
            # Readiness is waited for here (watches), not by polling agents from this machine.
            "ready": True,
        }
        cluster = self._cluster(info)
        try:
            for stage in render_manifests(spec):
                self._apply(cluster, stage, plan.deployment, self.timeout)
        except BaseException as exc:
            # Leave nothing half-made behind: delete what this deployment created so far.
            try:
                removed = self.stop(info)
            except ClusterError as cleanup:
                raise KubernetesError(f"{exc}; cleaning up also failed: {cleanup}") from None
            if isinstance(exc, ClusterError):
                raise KubernetesError(f"{exc} (removed {len(removed)} objects created so far)") from None
            raise
        return info

    def _apply(self, cluster: Cluster, stage: Stage, deployment_id: str, timeout: float) -> None:
        """Create a stage's objects (namespaces only when missing), then wait as the stage says."""
        self.progress(f"{stage.name}: {len(stage.objects)} objects")
        for obj in stage.objects:
            if obj["kind"] == "Namespace" and cluster.namespace_exists(obj["metadata"]["name"]):
                continue
            cluster.create(obj)
        if stage.wait == "complete":
            for job in (o for o in stage.objects if o["kind"] == "Job"):
                self.progress(f"{stage.name}: waiting for Job {job['metadata']['name']} to complete")
                cluster.wait_complete(job["metadata"]["namespace"], job["metadata"]["name"], timeout)
        elif stage.wait == "ready":
            deployments = [o for o in stage.objects if o["kind"] == "Deployment"]
            if deployments:
                namespace = deployments[0]["metadata"]["namespace"]
                self.progress(f"{stage.name}: waiting for {len(deployments)} agents to be ready")
                cluster.wait_ready(namespace, deployment_selector(deployment_id), len(deployments), timeout)

    def map_profile(self, info: dict[str, Any], profile: Mapping[str, Any]) -> dict[str, str]:
        """The mapper stage on a measured profile: run the mapper Job and return its mapping.

        The problem goes to the Job in a ConfigMap; the Job runs `jupiter map`
        with the configured scheduler and the mapping is read from its pod's
        log. A failed or late Job raises `KubernetesError` naming the pod, its
        last events and its last log lines; the deployment tears down.
        """
        workspace = self._workspace()
        problem = problem_from_profile(profile, "<profile>")
        scheduler, params = self.mapper_for(problem) if self.mapper_for else (workspace.config.scheduler, {})
        root = Path(info["root"])
        spec = cluster_spec(
            workspace,
            Plan.load(root / "plan.json"),
            (root / "token").read_text().strip(),
            json.dumps(problem_to_json(problem), sort_keys=True),
        )
        spec = dataclasses.replace(spec, scheduler=scheduler, mapper_options=self._options(params))
        stage = render_mapper(spec)
        namespace = spec.namespaces["mapper"]
        cluster = self._cluster(info)
        timeout = float(info.get("timeout", self.timeout))  # the deploy's --timeout, kept by `start`
        try:
            self._apply(cluster, stage, spec.deployment_id, timeout)
            log = cluster.job_log(namespace, MAPPER_JOB)
        except NotUp as exc:
            raise KubernetesError(f"the mapper failed: {exc}{self._log_tail(cluster, namespace)}") from None
        except ClusterError as exc:
            raise KubernetesError(f"the mapper failed: {exc}") from None
        mapping = parse_mapper_log(log, problem.tasks, problem.nodes)
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

    def running(self, info: dict[str, Any]) -> bool:
        cluster = self._cluster(info)
        return bool(cluster.pods(info["circe_namespace"], deployment_selector(info["deployment_id"])))

    def stop(self, info: dict[str, Any]) -> list[str]:
        cluster = self._cluster(info)
        selector = deployment_selector(info["deployment_id"])
        removed: list[str] = []
        for namespace in info["namespaces"]:
            removed += [f"{namespace}/{item}" for item in cluster.delete_all(namespace, selector)]
        removed += cluster.delete_namespaces(selector)
        return removed

    def control(
        self,
        info: dict[str, Any],
        node: str,
        path: str,
        token: str,
        method: str = "GET",
        body: Any = None,
        timeout: float = 10.0,
        content_type: str = "",
    ) -> Any:
        """Call a control-plane path of one agent through the API server's service proxy.

        `body` is sent as JSON, or as the bytes given with `content_type`
        (home's `/submit` takes a multipart upload). `timeout` covers the
        whole call, so a long poll needs more than it waits. Returns the
        agent's JSON answer (error answers included, as over HTTP);
        `KubernetesError` naming the node when the agent cannot be reached.
        """
        service = info["services"].get(node) or service_name(node)
        try:
            return self._cluster(info).proxy(
                info["circe_namespace"], service, info["control_port"], method, path, token, body, timeout, content_type
            )
        except ClusterError as exc:
            raise KubernetesError(f"agent {node}: {exc}") from None

    def update_plan(self, info: dict[str, Any], plan_json: str) -> None:
        """Put a dispatched plan into the plans ConfigMap, so agent pods restarted later get their tasks.

        The agents read their plans from the ConfigMap (mounted as files),
        not from this machine's plan.json; without this a restarted pod
        would come back with the plan it started with, i.e. without tasks.
        """
        namespace = info["circe_namespace"]
        data = plans_data(node_plans(Plan.from_json(plan_json)))
        try:
            self._cluster(info).update_config_map(namespace, PLAN_CONFIGMAP, data)
        except ClusterError as exc:
            raise KubernetesError(f"cannot put the mapping into the plans the agent pods read: {exc}") from None

    def describe(self, info: dict[str, Any]) -> list[str]:
        """Pods of the deployment per phase, one line per namespace (for `jupiter status`)."""
        cluster = self._cluster(info)
        lines = []
        for namespace in info["namespaces"]:
            pods = cluster.pods(namespace, deployment_selector(info["deployment_id"]))
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


def parse_mapper_log(log: str, tasks: Sequence[str], nodes: Sequence[str]) -> dict[str, str] | None:
    """The mapping in `jupiter map`'s table (`task node start finish` rows), or None without every task.

    Task and node names never contain white space (the DAG and nodes.txt are
    split on it), so a row splits into exactly four fields. Lines before the
    table (warnings on stderr) are skipped; the table ends at its first blank line.
    """
    known_tasks, known_nodes = set(tasks), set(nodes)
    mapping: dict[str, str] = {}
    in_table = False
    for line in log.splitlines():
        fields = line.split()
        if not in_table:
            in_table = fields == ["task", "node", "start", "finish"]
            continue
        if not fields:
            break
        if len(fields) == 4 and fields[0] in known_tasks and fields[1] in known_nodes:
            mapping[fields[0]] = fields[1]
    if set(mapping) != known_tasks:
        return None
    return {task: mapping[task] for task in tasks}


def _tail(log: str) -> str:
    lines = [line.rstrip() for line in log.splitlines() if line.strip()][-LOG_LINES:]
    return f"; last log lines: {' | '.join(lines)}" if lines else ""
