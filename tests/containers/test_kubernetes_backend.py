"""The kubernetes backend's deploy, status and teardown logic against a fake of our cluster wrapper."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from jupiter.backends.k8s_client import (
    AlreadyExists,
    ClusterError,
    Forbidden,
    KubeClient,
    KubeConfig,
    NotUp,
    PodState,
)
from jupiter.backends.kubernetes import KubernetesBackend, KubernetesError
from jupiter.model.workspace import Workspace
from jupiter.runtime.plan import Plan
from tests.containers.conftest import DEPLOYMENT_ID, fixed_plan

SELECTOR = f"jupiter/deployment-id={DEPLOYMENT_ID}"


class FakeCluster:
    """Records every call; objects live in a dict; failures are injected per call."""

    def __init__(self, existing_namespaces: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.namespaces = set(existing_namespaces)
        self.fail: dict[tuple[Any, ...], ClusterError] = {}
        self.configs: list[KubeConfig] = []

    def _maybe_fail(self, call: tuple[Any, ...]) -> None:
        self.calls.append(call)
        if call in self.fail:
            raise self.fail[call]

    def create(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self._maybe_fail(("create", obj["kind"], meta.get("namespace", ""), meta["name"]))
        key = (obj["kind"], meta.get("namespace", ""), meta["name"])
        if key in self.objects:
            raise AlreadyExists(f"create {obj['kind']} {meta['name']}: already exists")
        self.objects[key] = obj
        if obj["kind"] == "Namespace":
            self.namespaces.add(meta["name"])

    def namespace_exists(self, name: str) -> bool:
        return name in self.namespaces

    def wait_ready(self, namespace: str, selector: str, count: int, timeout: float) -> None:
        self._maybe_fail(("wait_ready", namespace, selector, count))

    def wait_complete(self, namespace: str, job: str, timeout: float) -> None:
        self._maybe_fail(("wait_complete", namespace, job))

    def pods(self, namespace: str, selector: str) -> list[PodState]:
        return [
            PodState(f"{name}-abc", namespace, "Running", True)
            for (kind, ns, name) in self.objects
            if kind == "Deployment" and ns == namespace
        ]

    def _matches(self, obj: dict[str, Any], selector: str) -> bool:
        key, _, value = selector.partition("=")
        return bool(obj["metadata"]["labels"].get(key) == value)

    def delete_all(self, namespace: str, selector: str) -> list[str]:
        self.calls.append(("delete_all", namespace, selector))
        doomed = [k for k, o in self.objects.items() if k[1] == namespace and self._matches(o, selector)]
        for key in doomed:
            del self.objects[key]
        return [f"{kind}/{name}" for kind, _, name in doomed]

    def delete_namespaces(self, selector: str) -> list[str]:
        self.calls.append(("delete_namespaces", selector))
        doomed = [k for k, o in self.objects.items() if k[0] == "Namespace" and self._matches(o, selector)]
        for key in doomed:
            del self.objects[key]
            self.namespaces.discard(key[2])
        return [f"Namespace/{name}" for _, _, name in doomed]

    def proxy_get(self, namespace: str, service: str, port: int, path: str, token: str) -> str:
        self.calls.append(("proxy_get", namespace, service, port, path))
        return '{"node": "home", "tasks": {}}'


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


def _backend(workspace: Workspace, cluster: FakeCluster, problem: str | None = "{}") -> KubernetesBackend:
    def factory(config: KubeConfig) -> FakeCluster:
        cluster.configs.append(config)
        return cluster

    return KubernetesBackend(workspace, problem, timeout=5, cluster_factory=factory)


def _start(workspace: Workspace, backend: KubernetesBackend, tmp_path: Path) -> tuple[dict[str, Any], Plan]:
    nodes = [(node.name, node.role.value) for node in workspace.nodes]
    plan = fixed_plan(workspace, backend.addresses(nodes))
    root = tmp_path / "deployment"
    root.mkdir()
    (root / "token").write_text("secret-token")
    return backend.start(root, plan, [name for name, _ in nodes]), plan


CREATES = [
    ("create", "Namespace", "", "jupiter-test"),
    ("create", "Namespace", "", "jupiter-mapper"),
    ("create", "Secret", "jupiter-test", "jupiter-token"),
    ("create", "ConfigMap", "jupiter-test", "jupiter-plans"),
    ("create", "ConfigMap", "jupiter-mapper", "jupiter-mapper"),
    ("create", "Job", "jupiter-mapper", "jupiter-mapper"),
    ("wait_complete", "jupiter-mapper", "jupiter-mapper"),
    ("create", "Deployment", "jupiter-test", "jupiter-home"),
    ("create", "Service", "jupiter-test", "jupiter-home"),
    ("create", "Deployment", "jupiter-test", "jupiter-node1"),
    ("create", "Service", "jupiter-test", "jupiter-node1"),
    ("create", "Deployment", "jupiter-test", "jupiter-node-2"),
    ("create", "Service", "jupiter-test", "jupiter-node-2"),
    ("wait_ready", "jupiter-test", SELECTOR, 3),
]
TEARDOWN = [
    ("delete_all", "jupiter-test", SELECTOR),
    ("delete_all", "jupiter-mapper", SELECTOR),
    ("delete_namespaces", SELECTOR),
]


def test_deploy_creates_in_the_original_order_and_waits(
    workspace: Workspace, cluster: FakeCluster, tmp_path: Path
) -> None:
    info, _ = _start(workspace, _backend(workspace, cluster), tmp_path)
    assert cluster.calls == CREATES
    assert info["ready"] is True
    assert info["namespaces"] == ["jupiter-test", "jupiter-mapper"]
    assert cluster.configs[0] == KubeConfig(None, "")


def test_addresses_are_service_dns_names(workspace: Workspace, cluster: FakeCluster) -> None:
    addresses = _backend(workspace, cluster).addresses([("home", "home"), ("node_2", "compute")])
    assert addresses["node_2"].host == "jupiter-node-2.jupiter-test.svc"
    assert (addresses["home"].control_port, addresses["home"].data_port) == (8888, 8889)


def test_existing_namespaces_are_not_created(workspace: Workspace, tmp_path: Path) -> None:
    cluster = FakeCluster(existing_namespaces=("jupiter-test", "jupiter-mapper"))
    _start(workspace, _backend(workspace, cluster), tmp_path)
    assert [c for c in cluster.calls if c[1] == "Namespace"] == []


def test_static_mapping_skips_the_mapper(workspace: Workspace, cluster: FakeCluster, tmp_path: Path) -> None:
    _start(workspace, _backend(workspace, cluster, problem=None), tmp_path)
    assert not [c for c in cluster.calls if "jupiter-mapper" in c[2:]]


def test_teardown_deletes_by_label_in_every_namespace_and_is_idempotent(
    workspace: Workspace, cluster: FakeCluster, tmp_path: Path
) -> None:
    backend = _backend(workspace, cluster)
    info, _ = _start(workspace, backend, tmp_path)
    cluster.calls.clear()
    removed = backend.stop(info)
    assert cluster.calls == TEARDOWN
    assert cluster.objects == {}
    assert "Namespace/jupiter-test" in removed
    assert "jupiter-test/Deployment/jupiter-node1" in removed
    cluster.calls.clear()
    assert backend.stop(info) == []
    assert cluster.calls == TEARDOWN


def test_image_pull_error_names_the_pod_and_removes_what_was_created(
    workspace: Workspace, cluster: FakeCluster, tmp_path: Path
) -> None:
    cluster.fail[("wait_ready", "jupiter-test", SELECTOR, 3)] = NotUp(
        "pod jupiter-test/jupiter-node1-abc is in ImagePullBackOff; last events: Failed: pull access denied"
    )
    with pytest.raises(KubernetesError) as caught:
        _start(workspace, _backend(workspace, cluster), tmp_path)
    message = str(caught.value)
    assert "jupiter-node1-abc is in ImagePullBackOff" in message
    assert "pull access denied" in message
    assert "removed 12 objects created so far" in message
    assert cluster.calls == [*CREATES, *TEARDOWN]
    assert cluster.objects == {}


def test_mapper_timeout_stops_before_circe_and_cleans_up(
    workspace: Workspace, cluster: FakeCluster, tmp_path: Path
) -> None:
    cluster.fail[("wait_complete", "jupiter-mapper", "jupiter-mapper")] = NotUp(
        "Job jupiter-mapper/jupiter-mapper did not complete within 5 s: pod jupiter-mapper-x did not finish"
    )
    with pytest.raises(KubernetesError, match="did not complete within 5 s"):
        _start(workspace, _backend(workspace, cluster), tmp_path)
    assert cluster.calls == [*CREATES[:7], *TEARDOWN]
    assert cluster.objects == {}


def test_forbidden_namespace_says_how_to_fix(workspace: Workspace, cluster: FakeCluster, tmp_path: Path) -> None:
    cluster.fail[("create", "Namespace", "", "jupiter-mapper")] = Forbidden(
        "create Namespace jupiter-mapper: forbidden (namespaces is forbidden: User cannot create resource); "
        "ask for RBAC rights or use another namespace"
    )
    with pytest.raises(KubernetesError) as caught:
        _start(workspace, _backend(workspace, cluster), tmp_path)
    assert "create Namespace jupiter-mapper: forbidden" in str(caught.value)
    assert "use another namespace" in str(caught.value)
    # The namespace created before the refusal is removed again.
    assert cluster.calls == [*CREATES[:2], *TEARDOWN]
    assert cluster.objects == {}


def test_interrupt_during_deploy_cleans_up_and_propagates(
    workspace: Workspace, cluster: FakeCluster, tmp_path: Path
) -> None:
    def interrupted(*args: Any) -> None:
        raise KeyboardInterrupt

    cluster.wait_ready = interrupted  # type: ignore[method-assign,assignment]
    with pytest.raises(KeyboardInterrupt):
        _start(workspace, _backend(workspace, cluster), tmp_path)
    assert cluster.objects == {}


def test_status_lists_pods_per_phase_and_reaches_agents_through_the_proxy(
    workspace: Workspace, cluster: FakeCluster, tmp_path: Path
) -> None:
    backend = _backend(workspace, cluster)
    info, _ = _start(workspace, backend, tmp_path)
    lines = backend.describe(info)
    assert lines == [
        "namespace jupiter-test: Running: 3 (jupiter-home-abc, jupiter-node-2-abc, jupiter-node1-abc)",
        "namespace jupiter-mapper: no pods",
    ]
    assert backend.running(info)
    assert backend.control(info, "home", "/status", "tok") == {"node": "home", "tasks": {}}
    assert cluster.calls[-1] == ("proxy_get", "jupiter-test", "jupiter-home", 8888, "/status")


# ------------------------------------------------------------ the real wrapper's messages


def _pod(name: str, phase: str, ready: bool, waiting: str = "") -> SimpleNamespace:
    state = SimpleNamespace(waiting=SimpleNamespace(reason=waiting) if waiting else None, terminated=None)
    return SimpleNamespace(
        metadata=SimpleNamespace(name=name, namespace="ns", deletion_timestamp=None),
        status=SimpleNamespace(
            phase=phase,
            container_statuses=[SimpleNamespace(state=state)],
            init_container_statuses=None,
            conditions=[SimpleNamespace(type="Ready", status="True" if ready else "False")],
        ),
        spec=SimpleNamespace(node_name="worker"),
    )


def _client(pods: list[SimpleNamespace], events: list[str]) -> KubeClient:
    client = object.__new__(KubeClient)
    client.progress = lambda _: None
    client.core = SimpleNamespace(list_namespaced_pod=None)
    client._watch = lambda *args, **kwargs: iter(pods)  # type: ignore[method-assign]
    client._events = lambda namespace, pod, last=3: events  # type: ignore[method-assign]
    return client


@pytest.mark.parametrize("reason", ["CrashLoopBackOff", "ImagePullBackOff"])
def test_wrapper_names_the_failing_pod_and_its_events(reason: str) -> None:
    client = _client([_pod("a-1", "Pending", False, reason)], ["BackOff: Back-off restarting failed container"])
    with pytest.raises(NotUp) as caught:
        client.wait_ready("ns", "x=y", 1, timeout=1)
    assert str(caught.value) == (
        f"pod ns/a-1 is in {reason}; last events: BackOff: Back-off restarting failed container; "
        "see `kubectl -n ns describe pod a-1`"
    )


def test_wrapper_returns_when_all_pods_are_ready() -> None:
    client = _client([_pod("a-1", "Running", False), _pod("a-1", "Running", True), _pod("b-1", "Running", True)], [])
    client.wait_ready("ns", "x=y", 2, timeout=5)


def test_wrapper_timeout_names_a_pending_pod() -> None:
    client = _client([_pod("a-1", "Pending", False)], ["Scheduled: assigned"])
    client.pods = lambda namespace, selector: [PodState("a-1", "ns", "Pending", False)]  # type: ignore[method-assign]
    with pytest.raises(NotUp, match=r"pod ns/a-1 was not ready within 1 s; last events: Scheduled: assigned"):
        client.wait_ready("ns", "x=y", 1, timeout=1)
