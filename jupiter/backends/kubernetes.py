"""The kubernetes backend: the rendered manifests applied stage by stage, teardown by label.

What is applied comes from `jupiter.render` (pure builders); this module only
sends it, in the original's order (shared objects, profilers, the mapper Job,
then CIRCE: one agent Deployment pinned to its node and one Service per
node), waiting at each stage with watches and a deadline. When something
does not come up, the error names the pod and its last events, and
everything created so far is deleted before the error is raised. Every call
to the cluster goes through `jupiter.backends.k8s_client.Cluster`, which
tests replace with a fake.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupiter.backends.k8s_client import Cluster, ClusterError, KubeClient, KubeConfig
from jupiter.errors import JupiterError
from jupiter.model.workspace import Workspace
from jupiter.render.manifests import deployment_selector, render_manifests
from jupiter.render.spec import cluster_addresses, cluster_spec, service_name
from jupiter.runtime.plan import NodeAddress, Plan

DEFAULT_TIMEOUT = 300.0

ClusterFactory = Callable[[KubeConfig], Cluster]


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
        problem: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        progress: Callable[[str], None] = lambda _: None,
        cluster_factory: ClusterFactory = _real_cluster,
    ) -> None:
        """`workspace` and `problem` (the mapper Job's input) are needed to start, not to reach or stop."""
        self.workspace = workspace
        self.problem = problem
        self.timeout = timeout
        self.progress = progress
        self.cluster_factory = cluster_factory

    def _workspace(self) -> Workspace:
        if self.workspace is None:
            raise KubernetesError("internal: the kubernetes backend was made without a workspace")
        return self.workspace

    def _cluster(self, info: dict[str, Any]) -> Cluster:
        kubeconfig = info.get("kubeconfig")
        return self.cluster_factory(KubeConfig(Path(kubeconfig) if kubeconfig else None, info.get("context", "")))

    def addresses(self, nodes: list[tuple[str, str]]) -> dict[str, NodeAddress]:
        workspace = self._workspace()
        return cluster_addresses(nodes, workspace.config.deploy.containers, workspace.config)

    def start(self, root: Path, plan: Plan, nodes: list[str]) -> dict[str, Any]:
        workspace = self._workspace()
        settings = workspace.config.deploy.containers
        token = (root / "token").read_text().strip()
        spec = cluster_spec(workspace, plan, token, self.problem)
        stages = render_manifests(spec)
        kubeconfig = workspace.config.resolve(settings.kubeconfig) if settings.kubeconfig else None
        info: dict[str, Any] = {
            "deployment_id": plan.deployment,
            "namespaces": list(spec.used_namespaces),
            "circe_namespace": spec.namespaces["circe"],
            "kubeconfig": str(kubeconfig) if kubeconfig else None,
            "context": settings.context,
            "services": {agent.node: agent.service for agent in spec.agents},
            "control_port": spec.control_port,
            # Readiness is waited for here (watches), not by polling agents from this machine.
            "ready": True,
        }
        cluster = self._cluster(info)
        try:
            for stage in stages:
                self.progress(f"{stage.name}: {len(stage.objects)} objects")
                for obj in stage.objects:
                    if obj["kind"] == "Namespace" and cluster.namespace_exists(obj["metadata"]["name"]):
                        continue
                    cluster.create(obj)
                if stage.wait == "complete":
                    for job in (o for o in stage.objects if o["kind"] == "Job"):
                        self.progress(f"{stage.name}: waiting for Job {job['metadata']['name']} to complete")
                        cluster.wait_complete(job["metadata"]["namespace"], job["metadata"]["name"], self.timeout)
                elif stage.wait == "ready":
                    deployments = [o for o in stage.objects if o["kind"] == "Deployment"]
                    if deployments:
                        namespace = deployments[0]["metadata"]["namespace"]
                        self.progress(f"{stage.name}: waiting for {len(deployments)} agents to be ready")
                        cluster.wait_ready(
                            namespace, deployment_selector(plan.deployment), len(deployments), self.timeout
                        )
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

    def control(self, info: dict[str, Any], node: str, path: str, token: str) -> Any:
        """GET a control-plane path of one agent through the API server's service proxy."""
        service = info["services"].get(node) or service_name(node)
        text = self._cluster(info).proxy_get(info["circe_namespace"], service, info["control_port"], path, token)
        try:
            return json.loads(text)
        except ValueError:
            raise KubernetesError(f"agent {node} answered {path} with something that is not JSON") from None

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
