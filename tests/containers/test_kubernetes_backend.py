"""The kubernetes backend's deploy, map, status and teardown logic against a fake of our cluster wrapper.

The fake records every call. Its agents answer like agents do; its mapper
Job really runs `jupiter map` with the Job's command on the ConfigMap's
problem, so the test covers what the pod would print and how the backend
reads it. The wrapper itself is tested at the end against a local HTTP
server playing the API server.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import email
import email.message
import email.policy
import http.server
import io
import json
import re
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from jupiter.backends import kubernetes
from jupiter.backends.base import Attachment
from jupiter.backends.control import Unreachable
from jupiter.backends.home_archive import extract_home_archive
from jupiter.backends.k8s_client import (
    AlreadyExists,
    ClusterError,
    Forbidden,
    KubeClient,
    KubeConfig,
    NotFound,
    NotUp,
    PodState,
)
from jupiter.backends.kubernetes import (
    KubernetesBackend,
    KubernetesError,
    KubernetesHandle,
    parse_mapper_output,
)
from jupiter.backends.local import LocalHandle
from jupiter.cli import cli
from jupiter.mapping import get_mapper
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.errors import JupiterError
from jupiter.model.events import Event, FrameDone, FrameSubmitted, TaskRun, encode
from jupiter.model.layout import STORE_FILE, DeploymentLayout
from jupiter.model.plan import NodeAddress, Plan
from jupiter.model.problem_files import problem_from_profile, problem_to_json
from jupiter.model.workspace import Workspace
from jupiter.render.manifests import PLAN_KEY, plans_data
from jupiter.render.spec import PLAN_CONFIGMAP, shared_plan
from jupiter.runtime.control import create_app
from jupiter.runtime.extensions.home import Home
from jupiter.runtime.routes import Routes
from jupiter.runtime.spool import store_input, write_atomic
from jupiter.service.deploy import deploy, teardown
from jupiter.service.record import Deployment, DeploymentError
from jupiter.service.run import flush_events, run, submit_data, wait_frames
from tests.containers.conftest import CONFIG, DEPLOYMENT_ID, fixed_plan, make_workspace

SELECTOR = f"jupiter/deployment-id={DEPLOYMENT_ID}"
MAPPER = ("jupiter-mapper", "jupiter-mapper")
"""(namespace, name) of the mapper Job and of its ConfigMap."""


class FakeAgents:
    """Answers like the agents: node_2 runs twice as slow, links cost 1 s per MB plus 10 ms.

    Home takes multipart uploads on `/submit` (each file one frame, done at
    once: the fake runs no tasks), counts them on `/frames/wait` and sends
    its folder on `/home/archive`: an event log and `runtime_tasks.txt`
    saying each frame ran split on node1 in 0.5 s, and each input back as
    the frame's output.
    """

    def __init__(self) -> None:
        self.mappings: dict[str, Any] = {}
        self.submitted: list[tuple[str, bytes]] = []
        self.flushed: list[str] = []
        self.archived: list[str] = []
        self.sent: dict[str, bytes] = {}
        """Home's folder (relative path -> content) as `/home/archive` last sent it."""

    def __call__(self, plan: Plan, node: str, method: str, path: str, body: Any, content_type: str = "") -> Any:
        """The answer of `node`'s agent, which started with `plan`."""
        if (method, path) == ("GET", "/health"):
            return {"node": node, "deployment": plan.deployment, "ready": True}
        if (method, path) == ("POST", "/submit") and node == "home":
            files = _multipart(content_type, body)
            first = len(self.submitted)
            self.submitted += files
            return {"frames": [{"name": name, "frame": f"f{first + i}"} for i, (name, _) in enumerate(files)]}
        if method == "GET" and path.startswith("/frames/wait?") and node == "home":
            query = urllib.parse.parse_qs(path.partition("?")[2])
            assert set(query) == {"count", "timeout"}
            done = len(self.submitted)
            return {"submitted": done, "done": done, "failed": 0, "in_flight": 0}
        if (method, path) == ("POST", "/flush"):
            assert body == {}
            self.flushed.append(node)
            return {"ok": True}
        if (method, path) == ("POST", "/dashboard/code") and node == "home":
            return {"code": "c0de", "expires": 600.0}
        if (method, path) == ("GET", "/home/archive") and node == "home":
            assert body is None
            self.archived.append(node)
            self.sent = self.home_folder()
            return {"home": node, "archive": _archive(*self.sent.items())}
        if (method, path) == ("POST", "/profile/network"):
            peers = body["peers"] or [n for n in ("home", "node1", "node_2") if n != node]
            links = [{"src": node, "dst": p, "a": 0.0, "b": 1e-6, "c": 0.01, "points": 2, "time": 1.0} for p in peers]
            return {"links": links, "samples": [[node, p, s, 0.01 + s * 1e-6] for p in peers for s in body["sizes"]]}
        if (method, path) == ("GET", "/profile/resources"):
            return {"cpu": 10.0, "memory": 50.0, "samples": 3, "time": 1.0}
        if (method, path) == ("POST", "/profile/execution"):
            slow = 2.0 if node == "node_2" else 1.0
            return {
                "tasks": {
                    "split": {"seconds": 1.0 * slow, "output_bytes": {"join": 10}, "runs": 2},
                    "join": {"seconds": 3.0 * slow, "output_bytes": {"home": 10}, "runs": 2},
                }
            }
        if (method, path) == ("POST", "/mapping"):
            self.mappings[node] = body["mapping"]
            return {}
        if (method, path) == ("GET", "/status"):
            return {"node": node, "tasks": {}}
        raise AssertionError(f"unexpected {method} {path}")

    def home_folder(self) -> dict[str, bytes]:
        """Home's statistics files and outputs (relative path -> content) for the frames it was given."""
        now = time.time()
        events: list[Event] = []
        tasks = "Task_name local_input_file Enter_time Execute_time Finish_time Elapse_time Duration_time Waiting_time"
        tasks += "\n"
        outputs: dict[str, bytes] = {}
        for index, (name, data) in enumerate(self.submitted):
            frame = f"f{index}"
            events += [
                FrameSubmitted(frame, name, now),
                TaskRun("split", frame, "node1", (name,), now, now, now, now + 0.5, True, None, "home"),
                FrameDone(frame, name, now + 1, 1.0, (name,)),
            ]
            tasks += f"split {name} {now:.6f} {now:.6f} {now + 0.5:.6f} 0.500000 0.500000 0.000000\n"
            outputs[f"output/{frame}/{name}"] = data
        log = "".join(encode(event) + "\n" for event in events)
        return {"events.jsonl": log.encode(), "runtime_tasks.txt": tasks.encode(), **outputs}


def _archive(*members: tuple[str, bytes] | tarfile.TarInfo) -> str:
    """What `/home/archive` answers: base64 of a tar.gz of files (name, content) and other members as given."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
                continue
            name, data = member
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buffer.getvalue()).decode()


def _truncated(archive: str) -> str:
    """An archive cut short: without the gzip trailer."""
    return base64.b64encode(base64.b64decode(archive)[:-8]).decode()


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _multipart(content_type: str, body: Any) -> list[tuple[str, bytes]]:
    """(file name, content) of each file of a `multipart/form-data` upload, as home's Flask reads it."""
    assert content_type.startswith("multipart/form-data; boundary="), content_type
    assert isinstance(body, bytes)
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    assert isinstance(message, email.message.EmailMessage) and message.is_multipart()
    files = []
    for part in message.iter_parts():
        field = part.get_param("name", header="content-disposition")
        if field == "manifest":  # which files make which frame (`jupiter.service.run.submit`)
            continue
        assert field == "file"
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        files.append((str(part.get_filename()), payload))
    return files


def run_mapper_job(objects: Mapping[tuple[str, str, str], dict[str, Any]], work: Path) -> str:
    """What the mapper Job's pod prints: its command run on the problem its ConfigMap mounts."""
    job = objects[("Job", *MAPPER)]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["command"]
    problem_path = Path(command[command.index("--problem") + 1])
    # The path the command reads is where the ConfigMap holding the problem is mounted.
    (mount,) = container["volumeMounts"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert Path(mount["mountPath"]) == problem_path.parent
    configmap = objects[("ConfigMap", job["metadata"]["namespace"], volume["configMap"]["name"])]
    local = work / problem_path.name
    local.write_text(configmap["data"][problem_path.name])
    assert command[:2] == ["jupiter", "map"]
    result = CliRunner().invoke(cli, [str(local) if arg == str(problem_path) else arg for arg in command[1:]])
    assert result.exit_code == 0, result.output
    return result.output


class FakeCluster:
    """Records every call; objects live in a dict; failures are injected per call."""

    def __init__(self, work: Path, existing_namespaces: tuple[str, ...] = ()) -> None:
        self.work = work
        self.calls: list[tuple[Any, ...]] = []
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.namespaces = set(existing_namespaces)
        self.fail: dict[tuple[Any, ...], ClusterError] = {}
        self.configs: list[KubeConfig] = []
        self.agents = FakeAgents()
        self.logs: dict[tuple[str, str], str] = {}
        self.pod_logs: dict[tuple[str, str], str] = {}
        """(namespace, pod) -> its log as the API server sends it (timestamped lines)."""
        self.mapper_output: str | None = None
        """What the mapper Job prints instead of running `jupiter map`, when set."""
        self.timeouts: list[float] = []
        """The timeout of every proxy call, in order."""

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
        if (namespace, job) == MAPPER:
            output = self.mapper_output
            self.logs[MAPPER] = run_mapper_job(self.objects, self.work) if output is None else output

    def job_log(self, namespace: str, job: str) -> str:
        self._maybe_fail(("job_log", namespace, job))
        if (namespace, job) not in self.logs:
            raise NotFound(f"Job {namespace}/{job} has no pod to read the log of")
        return self.logs[(namespace, job)]

    def pod_log(self, namespace: str, pod: str, since_seconds: int | None = None) -> str:
        self._maybe_fail(("pod_log", namespace, pod, since_seconds))
        if (namespace, pod) not in self.pod_logs:
            raise NotFound(f"read the log of pod {namespace}/{pod}: not found")
        return self.pod_logs[(namespace, pod)]

    def update_config_map(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self._maybe_fail(("update_config_map", namespace, name))
        if ("ConfigMap", namespace, name) not in self.objects:
            raise NotFound(f"update ConfigMap {namespace}/{name}: not found")
        self.objects[("ConfigMap", namespace, name)]["data"].update(data)

    def pods(self, namespace: str, selector: str) -> list[PodState]:
        # Every agent's pod, or (`jupiter/node=...` in the selector) that node's only.
        wanted = dict(term.split("=", 1) for term in selector.split(",") if "=" in term).get("jupiter/node")
        return [
            PodState(f"{name}-abc", namespace, "Running", True)
            for (kind, ns, name), obj in self.objects.items()
            if kind == "Deployment"
            and ns == namespace
            and wanted in (None, obj["metadata"]["labels"].get("jupiter/node"))
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

    def proxy(
        self,
        namespace: str,
        service: str,
        port: int,
        method: str,
        path: str,
        token: str,
        body: Any = None,
        timeout: float = 10.0,
        content_type: str = "",
    ) -> Any:
        self._maybe_fail(("proxy", namespace, service, port, method, path))
        self.timeouts.append(timeout)
        # The Service selects its agent's pod by the node label.
        (deployment,) = [o for k, o in self.objects.items() if k == ("Deployment", namespace, service)]
        node = deployment["metadata"]["labels"]["jupiter/node"]
        return self.agents(self.mounted_plan(namespace, node), node, method, path, body, content_type)

    def mounted_plan(self, namespace: str, node: str) -> Plan:
        """The plan an agent pod of `node` reads when it (re)starts: the plans ConfigMap's one plan.

        (The agent then listens on 0.0.0.0, its `--bind`; its peers reach it by the plan's address.)
        """
        return Plan.from_json(self.objects[("ConfigMap", namespace, PLAN_CONFIGMAP)]["data"][PLAN_KEY])


@pytest.fixture
def cluster(tmp_path: Path) -> FakeCluster:
    return FakeCluster(tmp_path)


def _backend(workspace: Workspace, cluster: FakeCluster) -> KubernetesBackend:
    def factory(config: KubeConfig) -> FakeCluster:
        cluster.configs.append(config)
        return cluster

    return KubernetesBackend(resolve_spec(workspace), timeout=5, cluster_factory=factory)


def _start(
    workspace: Workspace, backend: KubernetesBackend, tmp_path: Path, measured: bool = False
) -> tuple[dict[str, Any], Plan]:
    """Start with the fixed plan: its mapping (static), or none (measured: the agents start without tasks)."""
    nodes = [(node.name, node.role.value) for node in workspace.nodes]
    plan = fixed_plan(workspace, backend.addresses(nodes))
    if measured:
        plan = dataclasses.replace(plan, mapping={})
    layout = DeploymentLayout(tmp_path / "deployment")
    layout.root.mkdir()
    layout.token.write_text("secret-token")
    plan.save(layout.plan)
    return backend.start(layout, plan, [name for name, _ in nodes]), plan


def _handle(backend: KubernetesBackend, info: dict[str, Any], plan: Plan, tmp_path: Path) -> KubernetesHandle:
    """The handle on a deployment `_start` started."""
    attachment = Attachment(plan.deployment, DeploymentLayout(tmp_path / "deployment"), plan.nodes, "tok", info)
    return backend.attach(attachment)


AGENTS = [
    ("create", "Deployment", "jupiter-test", "jupiter-home"),
    ("create", "Service", "jupiter-test", "jupiter-home"),
    ("create", "Deployment", "jupiter-test", "jupiter-node1"),
    ("create", "Service", "jupiter-test", "jupiter-node1"),
    ("create", "Deployment", "jupiter-test", "jupiter-node-2"),
    ("create", "Service", "jupiter-test", "jupiter-node-2"),
    ("wait_ready", "jupiter-test", SELECTOR, 3),
]
CREATES = [
    ("create", "Namespace", "", "jupiter-test"),
    ("create", "Secret", "jupiter-test", "jupiter-token"),
    ("create", "ConfigMap", "jupiter-test", "jupiter-plans"),
    ("create", "NetworkPolicy", "jupiter-test", "jupiter-agents"),
    *AGENTS,
]
"""A deployment with a static mapping: no mapper, so no mapper namespace."""
MEASURED_CREATES = [
    ("create", "Namespace", "", "jupiter-test"),
    ("create", "Namespace", "", "jupiter-mapper"),
    ("create", "Secret", "jupiter-test", "jupiter-token"),
    ("create", "ConfigMap", "jupiter-test", "jupiter-plans"),
    ("create", "NetworkPolicy", "jupiter-test", "jupiter-agents"),
    *AGENTS,
]
"""A measured deployment's start: the mapper's namespace is made with the rest, its Job only after profiling."""
MAPPER_STAGE = [
    ("create", "ConfigMap", *MAPPER),
    ("create", "Job", *MAPPER),
    ("wait_complete", *MAPPER),
    ("job_log", *MAPPER),
]
UPDATE_PLANS = ("update_config_map", "jupiter-test", PLAN_CONFIGMAP)
"""Dispatch puts the mapping into the plans the agent pods read, before giving it to the agents."""
TEARDOWN = [("delete_all", "jupiter-test", SELECTOR), ("delete_namespaces", SELECTOR)]
MEASURED_TEARDOWN = [
    ("delete_all", "jupiter-test", SELECTOR),
    ("delete_all", "jupiter-mapper", SELECTOR),
    ("delete_namespaces", SELECTOR),
]


def test_deploy_creates_in_the_original_order_and_waits(
    workspace: Workspace, cluster: FakeCluster, tmp_path: Path
) -> None:
    info, _ = _start(workspace, _backend(workspace, cluster), tmp_path)
    assert cluster.calls == CREATES
    assert KubernetesHandle.waits_ready  # the deploy does not poll the agents' health from this machine
    assert info["namespaces"] == ["jupiter-test"]
    assert cluster.configs == [KubeConfig(None, "")]


def test_measured_start_makes_the_mapper_namespace_but_no_job_yet(
    workspace: Workspace, cluster: FakeCluster, tmp_path: Path
) -> None:
    info, _ = _start(workspace, _backend(workspace, cluster), tmp_path, measured=True)
    assert cluster.calls == MEASURED_CREATES
    assert info["namespaces"] == ["jupiter-test", "jupiter-mapper"]
    assert (info["timeout"], info["root"]) == (5, str(tmp_path / "deployment"))


def test_addresses_are_service_dns_names(workspace: Workspace, cluster: FakeCluster) -> None:
    addresses = _backend(workspace, cluster).addresses([("home", "home"), ("node_2", "compute")])
    assert addresses["node_2"].host == "jupiter-node-2.jupiter-test.svc"
    assert (addresses["home"].control_port, addresses["home"].data_port) == (8888, 8889)


def test_existing_namespaces_are_not_created(workspace: Workspace, tmp_path: Path) -> None:
    cluster = FakeCluster(tmp_path, existing_namespaces=("jupiter-test", "jupiter-mapper"))
    _start(workspace, _backend(workspace, cluster), tmp_path, measured=True)
    assert [c for c in cluster.calls if c[1] == "Namespace"] == []


def test_static_mapping_skips_the_mapper(workspace: Workspace, cluster: FakeCluster, tmp_path: Path) -> None:
    _start(workspace, _backend(workspace, cluster), tmp_path)
    assert not [c for c in cluster.calls if "jupiter-mapper" in c[2:]]


def test_teardown_deletes_by_label_in_every_namespace_and_is_idempotent(
    workspace: Workspace, cluster: FakeCluster, tmp_path: Path
) -> None:
    backend = _backend(workspace, cluster)
    info, plan = _start(workspace, backend, tmp_path, measured=True)
    cluster.calls.clear()
    removed = _handle(backend, info, plan, tmp_path).stop()
    assert cluster.calls == MEASURED_TEARDOWN
    assert cluster.objects == {}
    assert "Namespace/jupiter-test" in removed
    assert "jupiter-test/Deployment/jupiter-node1" in removed
    cluster.calls.clear()
    assert _handle(backend, info, plan, tmp_path).stop() == []
    assert cluster.calls == MEASURED_TEARDOWN


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
    assert "removed 10 objects created so far" in message
    assert cluster.calls == [*CREATES, *TEARDOWN]
    assert cluster.objects == {}


def test_forbidden_namespace_says_how_to_fix(workspace: Workspace, cluster: FakeCluster, tmp_path: Path) -> None:
    cluster.fail[("create", "Namespace", "", "jupiter-mapper")] = Forbidden(
        "create Namespace jupiter-mapper: forbidden (namespaces is forbidden: User cannot create resource); "
        "ask for RBAC rights or use another namespace"
    )
    with pytest.raises(KubernetesError) as caught:
        _start(workspace, _backend(workspace, cluster), tmp_path, measured=True)
    assert "create Namespace jupiter-mapper: forbidden" in str(caught.value)
    assert "use another namespace" in str(caught.value)
    # The namespace created before the refusal is removed again.
    assert cluster.calls == [*MEASURED_CREATES[:2], *MEASURED_TEARDOWN]
    assert cluster.objects == {}


def test_a_second_deployment_in_the_same_namespace_stops_before_it_creates_anything(
    workspace: Workspace, cluster: FakeCluster, tmp_path: Path
) -> None:
    backend = _backend(workspace, cluster)
    _start(workspace, backend, tmp_path)
    first = dict(cluster.objects)
    nodes = [(node.name, node.role.value) for node in workspace.nodes]
    plan = dataclasses.replace(fixed_plan(workspace, backend.addresses(nodes)), deployment="20260101-000000-bbbbbb")
    layout = DeploymentLayout(tmp_path / "second")
    layout.root.mkdir()
    layout.token.write_text("another-token")
    cluster.calls.clear()
    with pytest.raises(KubernetesError) as caught:
        backend.start(layout, plan, [name for name, _ in nodes])
    assert str(caught.value) == (
        "create Secret jupiter-token: already exists: another deployment runs in namespace jupiter-test; "
        "tear it down (`jupiter list`, `jupiter teardown --deployment ID`) or give this one its own "
        "[DEPLOY] NAMESPACE (removed 0 objects created so far)"
    )
    assert cluster.objects == first  # the running deployment keeps every object


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
    info, plan = _start(workspace, backend, tmp_path, measured=True)
    handle = _handle(backend, info, plan, tmp_path)
    lines = handle.describe()
    assert lines == [
        "namespace jupiter-test: Running: 3 (jupiter-home-abc, jupiter-node-2-abc, jupiter-node1-abc)",
        "namespace jupiter-mapper: no pods",
    ]
    assert handle.running()
    assert handle.control().get("home", "/status") == {"node": "home", "tasks": {}}
    assert cluster.calls[-1] == ("proxy", "jupiter-test", "jupiter-home", 8888, "GET", "/status")
    # One client for every call of a deployment's handle (the profilers call from several threads).
    assert len(cluster.configs) == 1


def test_an_unreachable_agent_is_named(workspace: Workspace, cluster: FakeCluster, tmp_path: Path) -> None:
    backend = _backend(workspace, cluster)
    info, plan = _start(workspace, backend, tmp_path, measured=True)
    cluster.fail[("proxy", "jupiter-test", "jupiter-node1", 8888, "POST", "/mapping")] = ClusterError(
        "POST /mapping of jupiter-test/jupiter-node1: the agent cannot be reached (no endpoints available)"
    )
    with pytest.raises(Unreachable, match=r"^agent node1: POST /mapping of jupiter-test/jupiter-node1: the agent"):
        _handle(backend, info, plan, tmp_path).control().post("node1", "/mapping", {"mapping": {}}, 60.0)


# ------------------------------------------------------------ the measured sequence


def _measured_workspace(tmp_path: Path, scheduler: str = "heft") -> Workspace:
    config = CONFIG.replace("SCHEDULER = heft", f"SCHEDULER = {scheduler}") + "BACKEND = kubernetes\n"
    return make_workspace(tmp_path, config)


@pytest.fixture
def real_cluster(cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    """The fake as the cluster every kubernetes backend of this test talks to (as `deploy` makes them)."""

    def factory(config: KubeConfig) -> FakeCluster:
        cluster.configs.append(config)
        return cluster

    monkeypatch.setattr(kubernetes, "real_cluster", factory)
    return cluster


def _phases(calls: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Calls, with each run of proxy calls to one path as one entry naming its services (sorted).

    The profilers call the agents of a phase concurrently, so their order within a run varies.
    """
    phases: list[tuple[Any, ...]] = []
    for call in calls:
        if call[0] == "proxy":
            _, _, service, _, method, path = call
            if phases and phases[-1][:3] == ("proxy", method, path):
                phases[-1] = ("proxy", method, path, tuple(sorted((*phases[-1][3], service))))
                continue
            phases.append(("proxy", method, path, (service,)))
        else:
            phases.append(call)
    return phases


ALL = ("jupiter-home", "jupiter-node-2", "jupiter-node1")
EXECUTION = ("jupiter-node-2", "jupiter-node-2", "jupiter-node1", "jupiter-node1")
"""The execution profiler asks each compute node once per task (split, then join)."""


def test_measured_deploy_profiles_then_maps_with_the_job_then_dispatches(
    tmp_path: Path, real_cluster: FakeCluster
) -> None:
    workspace = _measured_workspace(tmp_path)
    progress: list[str] = []
    deployment = deploy(resolve_spec(workspace), progress=progress.append)
    cluster = real_cluster
    assert _phases(cluster.calls) == [
        *MEASURED_CREATES[:5],
        *[c for c in AGENTS if c[0] != "wait_ready"],
        ("wait_ready", "jupiter-test", f"jupiter/deployment-id={deployment.id}", 3),
        ("proxy", "POST", "/profile/network", ALL),
        ("proxy", "GET", "/profile/resources", ALL),
        ("proxy", "POST", "/profile/execution", EXECUTION),
        *MAPPER_STAGE,
        UPDATE_PLANS,
        ("proxy", "POST", "/mapping", ALL),
    ]
    # Pods on nodes of their own profile each task side by side: both nodes' split before either's join.
    execution = [c[2] for c in cluster.calls if c[-1] == "/profile/execution"]
    assert sorted(execution[:2]) == sorted(execution[2:]) == ["jupiter-node-2", "jupiter-node1"]
    assert "  split (1/2): node1 1.0000 s, node_2 2.0000 s (" in "\n".join(progress)
    # The Job mapped the measured problem, not the default one.
    profile = json.loads((deployment.root / "profile.json").read_text())
    measured = problem_from_profile(profile)
    problem = json.loads(cluster.objects[("ConfigMap", *MAPPER)]["data"]["problem.json"])
    assert problem == problem_to_json(measured)
    assert problem["exec_times"] == [[1.0, 2.0], [3.0, 6.0]]
    expected = get_mapper("heft").schedule(measured).mapping()
    assert deployment.mapping == expected == {"split": "node1", "join": "node1"}
    assert cluster.agents.mappings == {"home": expected, "node1": expected, "node_2": expected}
    predicted = json.loads((deployment.root / "mapping.json").read_text())
    assert predicted["mapping"] == expected
    assert predicted["makespan"] == pytest.approx(4.0)
    assert "mapper: waiting for Job jupiter-mapper to complete" in progress
    assert "mapper: Job jupiter-mapper mapped 2 tasks with heft" in progress
    cluster.calls.clear()
    teardown(deployment)
    assert cluster.calls == [(c[0], c[1], f"jupiter/deployment-id={deployment.id}") for c in MEASURED_TEARDOWN[:2]] + [
        ("delete_namespaces", f"jupiter/deployment-id={deployment.id}")
    ]
    assert cluster.objects == {}


def test_heft_modified_caps_the_job_with_the_configured_limit(tmp_path: Path, real_cluster: FakeCluster) -> None:
    workspace = _measured_workspace(tmp_path, "heft_modified")
    deployment = deploy(resolve_spec(workspace))
    job = real_cluster.objects[("Job", *MAPPER)]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    # ceil(2 tasks / 2 compute nodes) = 1 task per node.
    assert command[-6:] == ["--scheduler", "heft_modified", "--max-tasks-per-node", "1", "--output", "json"]
    assert sorted(deployment.mapping.values()) == ["node1", "node_2"]
    teardown(deployment)


# ------------------------------------------------------------ dispatch updates the plans the pods read


def test_dispatch_puts_the_mapping_into_the_plans_configmap(tmp_path: Path, real_cluster: FakeCluster) -> None:
    deployment = deploy(resolve_spec(_measured_workspace(tmp_path)))
    configmap = real_cluster.objects[("ConfigMap", "jupiter-test", PLAN_CONFIGMAP)]
    # Exactly what deploy would render now, from the plan with the mapping this machine keeps.
    assert configmap["data"] == plans_data(shared_plan(Plan.load(deployment.root / "plan.json")))
    # An agent pod restarted after dispatch comes back with its tasks.
    for node in ("home", "node1", "node_2"):
        assert real_cluster.mounted_plan("jupiter-test", node).mapping == deployment.mapping
    assert real_cluster.mounted_plan("jupiter-test", "node1").tasks_on("node1") == ("split", "join")
    # Only the data changed: teardown still finds the ConfigMap by its label.
    assert configmap["metadata"]["labels"]["jupiter/deployment-id"] == deployment.id
    teardown(deployment)
    assert real_cluster.objects == {}


def test_a_refused_plan_update_fails_the_deploy_before_any_agent_gets_tasks(
    tmp_path: Path, real_cluster: FakeCluster
) -> None:
    real_cluster.fail[UPDATE_PLANS] = Forbidden(
        'update ConfigMap jupiter-test/jupiter-plans: forbidden (configmaps "jupiter-plans" is forbidden: User "u" '
        'cannot patch resource "configmaps"); ask for RBAC rights or use another namespace'
    )
    with pytest.raises(KubernetesError) as caught:
        deploy(resolve_spec(_measured_workspace(tmp_path)))
    assert str(caught.value) == (
        "cannot put the mapping into the plans the agent pods read: update ConfigMap jupiter-test/jupiter-plans: "
        'forbidden (configmaps "jupiter-plans" is forbidden: User "u" cannot patch resource "configmaps"); '
        "ask for RBAC rights or use another namespace"
    )
    assert real_cluster.agents.mappings == {}
    assert [call[0] for call in real_cluster.calls[-4:]] == [
        "update_config_map",
        "delete_all",
        "delete_all",
        "delete_namespaces",
    ]
    assert real_cluster.objects == {}


# ------------------------------------------------------------ run: submit, wait and flush through the proxy


def _proxied(service_name: str, method: str, path: str) -> tuple[Any, ...]:
    return ("proxy", "jupiter-test", service_name, 8888, method, path)


def test_run_goes_through_the_proxy_from_deploy_to_teardown(tmp_path: Path, real_cluster: FakeCluster) -> None:
    workspace = _measured_workspace(tmp_path)
    progress: list[tuple[int, int]] = []
    said: list[str] = []
    summary = run(
        resolve_spec(workspace),
        frames=2,
        on_frames=lambda done, total: progress.append((done, total)),
        progress=said.append,
    )
    selector = f"jupiter/deployment-id={summary.deployment}"
    calls = real_cluster.calls
    dispatched = calls.index(UPDATE_PLANS) + 4  # the plans, then the mapping to each of the three agents
    assert _phases(calls[:dispatched]) == [
        *MEASURED_CREATES[:5],
        *[c for c in AGENTS if c[0] != "wait_ready"],
        ("wait_ready", "jupiter-test", selector, 3),
        ("proxy", "POST", "/profile/network", ALL),
        ("proxy", "GET", "/profile/resources", ALL),
        ("proxy", "POST", "/profile/execution", EXECUTION),
        *MAPPER_STAGE,
        UPDATE_PLANS,
        ("proxy", "POST", "/mapping", ALL),
    ]
    assert calls[dispatched:] == [
        # A one-time login code of the dashboard, before the frames start.
        _proxied("jupiter-home", "POST", "/dashboard/code"),
        # What home had finished before (none: a fresh deployment), then the frames.
        _proxied("jupiter-home", "GET", "/frames/wait?count=0&timeout=0.000"),
        _proxied("jupiter-home", "POST", "/submit"),
        # The long poll waits half a second (to move the progress bar); the call may take 10 s more.
        _proxied("jupiter-home", "GET", "/frames/wait?count=2&timeout=0.500"),
        _proxied("jupiter-node1", "POST", "/flush"),
        _proxied("jupiter-node-2", "POST", "/flush"),
        _proxied("jupiter-home", "POST", "/flush"),
        # Home's statistics and outputs, which stay in its pod, come back for the summary.
        _proxied("jupiter-home", "GET", "/home/archive"),
        ("delete_all", "jupiter-test", selector),
        ("delete_all", "jupiter-mapper", selector),
        ("delete_namespaces", selector),
    ]
    # Home got both files, byte for byte, in one multipart upload.
    assert real_cluster.agents.submitted == [("a.txt", b"a\n"), ("a.txt", b"a\n")]
    assert real_cluster.agents.flushed == ["node1", "node_2", "home"]
    assert progress == [(2, 2)]
    # Pods are not reachable from here: the dashboard is behind a port-forward or the API server's proxy.
    start = said.index(next(line for line in said if line.startswith("dashboard: ")))
    assert said[start : start + 3] == [
        "dashboard: run `kubectl -n jupiter-test port-forward service/jupiter-home 8080:8888` (in another terminal), "
        "then open http://127.0.0.1:8080/dashboard/login?code=c0de",
        "       or: run `kubectl proxy --port 8001` (in another terminal), then open "
        "http://127.0.0.1:8001/api/v1/namespaces/jupiter-test/services/jupiter-home:8888/proxy/dashboard/login?code=c0de",
        "           (a one-time link, valid 10 min; `jupiter dashboard` prints a new one)",
    ]
    assert real_cluster.objects == {}
    # One client for the whole run: the deployment's handle makes it once.
    assert len(real_cluster.configs) == 1


def test_run_summary_counts_the_frames_home_finished(tmp_path: Path, real_cluster: FakeCluster) -> None:
    summary = run(resolve_spec(_measured_workspace(tmp_path)), frames=2)
    assert (summary.frames, summary.done, summary.failed, summary.errors) == (2, 2, 0, [])
    assert summary.per_home == {"home": 2}
    assert (summary.makespan_p50, summary.makespan_p95) == (1.0, 1.0)
    assert summary.task_means == {"split": ("node1", 0.5, 2)}
    # Home's files landed in the deployment's home folder, next to the profile store (kept).
    home = tmp_path / ".jupiter" / summary.deployment / "home"
    assert summary.output_dir == home / "output"
    landed = sorted(path.relative_to(home).as_posix() for path in home.rglob("*") if path.is_file())
    assert landed == [
        "events.jsonl",
        "output/f0/a.txt",
        "output/f1/a.txt",
        STORE_FILE,
        "runtime_tasks.txt",
        "summary.json",
    ]
    document = json.loads((home / "summary.json").read_text())
    assert document == summary.document
    assert (document["format"], document["backend"], document["frames"]["done"]) == ("jupiter-summary", "kubernetes", 2)
    sent = real_cluster.agents.sent
    assert {name: (home / name).read_bytes() for name in sent} == sent
    assert real_cluster.agents.archived == ["home"]


def _fetched(deployed: Deployment, real_cluster: FakeCluster, answer: Any) -> JupiterError:
    """The error of fetching home's files when home answers `/home/archive` with `answer`."""
    real_cluster.agents = lambda plan, node, method, path, *rest: answer  # type: ignore[assignment]
    with pytest.raises(JupiterError) as caught:
        deployed.handle.fetch_home_files()
    assert real_cluster.calls == [_proxied("jupiter-home", "GET", "/home/archive")]
    return caught.value


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (("../evil", b"x"), "'../evil' leaves the folder"),
        (("output/../../evil", b"x"), "'output/../../evil' leaves the folder"),
        (("/tmp/evil", b"x"), "'/tmp/evil' is an absolute path"),
        (_link("output/f0/passwd", "/etc/passwd"), "'output/f0/passwd' is a link"),
        (_link("output/f0/copy", "events.jsonl", tarfile.LNKTYPE), "'output/f0/copy' is a link"),
        (("input/a.txt", b"x"), "'input/a.txt' is not one of home's statistics files or outputs"),
        ((STORE_FILE, b"x"), f"'{STORE_FILE}' is not one of home's statistics files or outputs"),
    ],
)
def test_an_unsafe_home_archive_is_refused_whole(
    deployed: Deployment, real_cluster: FakeCluster, member: tuple[str, bytes] | tarfile.TarInfo, why: str
) -> None:
    archive = _archive(("events.jsonl", b"{}\n"), member)
    error = _fetched(deployed, real_cluster, {"home": "home", "archive": archive})
    assert str(error) == f"home home sent an unsafe archive of its folder: {why}; nothing was extracted"
    # Not even the safe member before it was written.
    assert not (deployed.home_dir / "events.jsonl").exists()
    assert not (deployed.root / "evil").exists()
    assert not (deployed.root.parent / "evil").exists()


@pytest.mark.parametrize(
    ("archive", "why"),
    [
        (base64.b64encode(b"not a tar.gz").decode(), "Not a gzipped file (b'no')"),
        (
            _truncated(_archive(("events.jsonl", b"{}\n"))),
            "Compressed file ended before the end-of-stream marker was reached",
        ),
        ("%%%", "Only base64 data is allowed"),
    ],
)
def test_a_corrupt_home_archive_is_named_in_one_line(
    deployed: Deployment, real_cluster: FakeCluster, archive: str, why: str
) -> None:
    error = _fetched(deployed, real_cluster, {"home": "home", "archive": archive})
    assert str(error) == f"home home sent a corrupt archive of its folder: {why}"
    assert not (deployed.home_dir / "events.jsonl").exists()


def test_a_home_that_sends_no_archive_says_why(deployed: Deployment, real_cluster: FakeCluster) -> None:
    error = _fetched(deployed, real_cluster, {"error": "statistics and outputs are kept by the home node"})
    assert str(error) == (
        "home home did not send its statistics and outputs: statistics and outputs are kept by the home node"
    )


def test_home_files_are_not_fetched_where_this_machine_reads_them(tmp_path: Path) -> None:
    # Local and docker: home writes into the deployment folder itself, so there is nothing to fetch.
    # No agent is known, so any call would fail.
    attachment = Attachment("d", DeploymentLayout(tmp_path / "d"), {}, "tok", {"pgid": 0})
    local = LocalHandle(attachment)
    assert local.home_files_are_local
    local.fetch_home_files()
    assert not (tmp_path / "d").exists()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An agent's event loop, running in its own thread as in an agent process."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def _home_services(root: Path, loop: asyncio.AbstractEventLoop) -> Any:
    """What home's extension uses of its agent: the plan, its node, the deployment's folders, the loop."""
    nodes = {
        name: NodeAddress(name, role, "127.0.0.1", 1, 2) for name, role in (("home", "home"), ("node1", "compute"))
    }
    plan = Plan(DEPLOYMENT_ID, "demo", "/demo", {}, (), {}, nodes, (), "home")

    def on_loop(coroutine: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=timeout)

    return SimpleNamespace(
        plan=plan, node="home", token="secret-token", deployment=DeploymentLayout(root), on_loop=on_loop
    )


def test_home_serves_its_statistics_and_outputs_as_one_archive(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    home = Home(_home_services(tmp_path / "agent", loop))
    home.writer.open()
    folder = home.layout.dir
    try:
        home.writer.files["events.jsonl"].write('{"type":"frame_submitted","frame":"f1"}\n')
        # An output as the store keeps it: a marker hard-linked to the real name (a tar link if archived as is).
        (folder / "output" / "f1").mkdir(parents=True)
        store_input(str(folder / "output" / "f1"), "f1", "join@0", "result.txt", b"done\n")
        (folder / "output" / "f1" / "elsewhere").symlink_to(tmp_path)
        # Home's copies of the inputs stay in the pod.
        for inputs in ("input", "frames/0"):
            (folder / inputs).mkdir(parents=True)
            write_atomic(str(folder / inputs), "a.txt", b"a\n")
        routes = Routes()
        home.add_routes(routes)
        client = create_app("home", "secret-token", routes).test_client()
        answer = client.get("/home/archive", headers={"X-Jupiter-Token": "secret-token"})
        assert answer.status_code == 200
        assert answer.json is not None and answer.json["home"] == "home"
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(answer.json["archive"]))) as tar:
            members = {member.name: member.isfile() for member in tar.getmembers()}
        assert members == {
            "events.jsonl": True,
            "runtime_tasks.txt": True,
            "runtime_transfer_sender.txt": True,
            "runtime_transfer_receiver.txt": True,
            "output/f1/result.txt": True,
        }
        # What the CLI makes of it.
        extract_home_archive("home", answer.json["archive"], tmp_path / "cli")
        assert (tmp_path / "cli" / "events.jsonl").read_text() == '{"type":"frame_submitted","frame":"f1"}\n'
        assert (tmp_path / "cli" / "output" / "f1" / "result.txt").read_bytes() == b"done\n"
        # The deployment token is required; other agents have no such route.
        assert client.get("/home/archive").status_code == 401
        other = create_app("node1", "secret-token", Routes()).test_client()
        assert other.get("/home/archive", headers={"X-Jupiter-Token": "secret-token"}).status_code == 404
    finally:
        home.writer.close()


@pytest.fixture
def deployed(tmp_path: Path, real_cluster: FakeCluster) -> Iterator[Deployment]:
    """A measured deployment on the fake, its calls so far forgotten."""
    deployment = deploy(resolve_spec(_measured_workspace(tmp_path)))
    real_cluster.calls.clear()
    yield deployment
    teardown(deployment)


UNREACHABLE_HOME = ClusterError(
    "POST /submit of jupiter-test/jupiter-home: the agent cannot be reached (no endpoints available for service "
    '"jupiter-home"); check its pod with `kubectl -n jupiter-test get pods`'
)


def test_submit_through_the_proxy_returns_homes_frame_ids(deployed: Deployment, real_cluster: FakeCluster) -> None:
    assert submit_data(deployed, [("x.txt", b"x"), ("y.bin", bytes(range(256)))]) == ["f0", "f1"]
    assert real_cluster.agents.submitted == [("x.txt", b"x"), ("y.bin", bytes(range(256)))]
    assert real_cluster.calls == [_proxied("jupiter-home", "POST", "/submit")]


def test_submit_to_an_unreachable_home_names_it_and_its_pod(deployed: Deployment, real_cluster: FakeCluster) -> None:
    real_cluster.fail[_proxied("jupiter-home", "POST", "/submit")] = UNREACHABLE_HOME
    with pytest.raises(DeploymentError) as caught:
        submit_data(deployed, [("x.txt", b"x")])
    assert re.fullmatch(
        re.escape(f"home home did not take the files (agent home: {UNREACHABLE_HOME}); ")
        + re.escape("none of 1 frames was confirmed; ")
        + r"send the rest again with the same command and `--retry-id [0-9a-f]{12}` "
        + re.escape("(frames home already started are not started twice)"),
        str(caught.value),
    )
    assert "\n" not in str(caught.value)


def test_files_home_refuses_are_named(
    deployed: Deployment, real_cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(real_cluster, "agents", lambda *args: {"error": "unsafe file name '../x': plain names only"})
    with pytest.raises(DeploymentError) as caught:
        submit_data(deployed, [("x.txt", b"x")])
    assert str(caught.value) == "home home refused the files: unsafe file name '../x': plain names only"


def test_a_run_whose_home_cannot_be_reached_says_so_and_tears_down(tmp_path: Path, real_cluster: FakeCluster) -> None:
    error = ClusterError(
        "GET /frames/wait?count=1&timeout=0.500 of jupiter-test/jupiter-home: cannot reach the cluster "
        "(connection refused); check the kubeconfig's server"
    )
    real_cluster.fail[_proxied("jupiter-home", "GET", "/frames/wait?count=1&timeout=0.500")] = error
    with pytest.raises(DeploymentError) as caught:
        run(resolve_spec(_measured_workspace(tmp_path)), frames=1)
    assert str(caught.value) == f"agent home: {error}"
    assert [call[0] for call in real_cluster.calls[-4:]] == ["proxy", "delete_all", "delete_all", "delete_namespaces"]
    assert real_cluster.objects == {}


def test_flush_names_the_silent_compute_nodes_and_fails_on_a_silent_home(
    deployed: Deployment, real_cluster: FakeCluster
) -> None:
    real_cluster.fail[_proxied("jupiter-node-2", "POST", "/flush")] = ClusterError(
        "POST /flush of jupiter-test/jupiter-node-2: the agent cannot be reached (no endpoints available)"
    )
    assert flush_events(deployed) == ["node_2"]
    assert real_cluster.agents.flushed == ["node1", "home"]
    real_cluster.fail[_proxied("jupiter-home", "POST", "/flush")] = ClusterError(
        "POST /flush of jupiter-test/jupiter-home: 500 Internal Server Error"
    )
    with pytest.raises(DeploymentError) as caught:
        flush_events(deployed)
    assert str(caught.value) == (
        "home home did not flush its statistics: agent home: POST /flush of jupiter-test/jupiter-home: "
        "500 Internal Server Error"
    )


def test_health_and_frame_counters_go_through_the_proxy(deployed: Deployment, real_cluster: FakeCluster) -> None:
    assert deployed.control.healthy("node1", deployed.id)
    # An agent of another deployment answering under that name is not ours.
    assert not deployed.control.healthy("node1", "20990101-000000-000000")
    real_cluster.fail[_proxied("jupiter-node1", "GET", "/health")] = ClusterError("GET /health: 503 no endpoints")
    assert not deployed.control.healthy("node1", deployed.id)
    assert wait_frames(deployed, 0, 2.0) == {"submitted": 0, "done": 0, "failed": 0, "in_flight": 0}
    assert real_cluster.calls[-1] == _proxied("jupiter-home", "GET", "/frames/wait?count=0&timeout=2.000")
    # The long poll is given more time than it waits (a round trip through the API server more).
    assert real_cluster.timeouts[-1] > 2.0


def _failing_mapper(cluster: FakeCluster, error: NotUp, log: str) -> None:
    cluster.fail[("wait_complete", *MAPPER)] = error
    cluster.logs[MAPPER] = log


def test_a_failed_mapper_job_names_the_pod_its_events_and_log_and_tears_down(
    tmp_path: Path, real_cluster: FakeCluster
) -> None:
    _failing_mapper(
        real_cluster,
        NotUp(
            "Job jupiter-mapper/jupiter-mapper failed: pod jupiter-mapper/jupiter-mapper-x7k2p failed; "
            "last events: BackoffLimitExceeded: Job has reached the specified backoff limit; "
            "see `kubectl -n jupiter-mapper describe pod jupiter-mapper-x7k2p`"
        ),
        "Traceback (most recent call last):\n  ...\nValueError: heft cannot map this problem\n",
    )
    workspace = _measured_workspace(tmp_path)
    with pytest.raises(KubernetesError) as caught:
        deploy(resolve_spec(workspace))
    assert str(caught.value) == (
        "the mapper failed: Job jupiter-mapper/jupiter-mapper failed: pod jupiter-mapper/jupiter-mapper-x7k2p "
        "failed; last events: BackoffLimitExceeded: Job has reached the specified backoff limit; "
        "see `kubectl -n jupiter-mapper describe pod jupiter-mapper-x7k2p`; last log lines: "
        "Traceback (most recent call last): |   ... | ValueError: heft cannot map this problem"
    )
    selector = next(call[2] for call in real_cluster.calls if call[0] == "wait_ready")
    assert _phases(real_cluster.calls)[-8:] == [
        ("proxy", "POST", "/profile/execution", EXECUTION),
        *MAPPER_STAGE,
        ("delete_all", "jupiter-test", selector),
        ("delete_all", "jupiter-mapper", selector),
        ("delete_namespaces", selector),
    ]
    assert real_cluster.objects == {}
    assert not (tmp_path / ".jupiter" / "current").exists()
    # No agent was given tasks.
    assert real_cluster.agents.mappings == {}


def test_a_mapper_job_that_does_not_finish_in_time_says_so_and_tears_down(
    tmp_path: Path, real_cluster: FakeCluster
) -> None:
    real_cluster.fail[("wait_complete", *MAPPER)] = NotUp(
        "Job jupiter-mapper/jupiter-mapper did not complete within 5 s: pod jupiter-mapper/jupiter-mapper-q9 "
        "did not finish; last events: FailedScheduling: 0/3 nodes are available: 3 Insufficient cpu"
    )
    with pytest.raises(KubernetesError) as caught:
        deploy(resolve_spec(_measured_workspace(tmp_path)), timeout=5)
    # Its pod printed nothing (no log to read): the message ends with the events.
    assert str(caught.value) == (
        "the mapper failed: Job jupiter-mapper/jupiter-mapper did not complete within 5 s: pod "
        "jupiter-mapper/jupiter-mapper-q9 did not finish; last events: FailedScheduling: 0/3 nodes are available: "
        "3 Insufficient cpu"
    )
    assert [call[0] for call in real_cluster.calls[-5:]] == [
        "wait_complete",
        "job_log",
        "delete_all",
        "delete_all",
        "delete_namespaces",
    ]
    assert real_cluster.objects == {}


def test_a_mapper_log_without_the_mapping_is_an_error(
    workspace: Workspace, cluster: FakeCluster, tmp_path: Path
) -> None:
    backend = _backend(workspace, cluster)
    info, plan = _start(workspace, backend, tmp_path, measured=True)
    profile = {
        "format": "jupiter-profile",
        "version": 1,
        "nodes": ["node1", "node_2"],
        "links": [],
        "execution": {"split": {"node1": {"seconds": 1.0}}, "join": {"node1": {"seconds": 1.0}}},
        "edges": [["split", "join"]],
    }
    cluster.mapper_output = "Killed\n"
    with pytest.raises(KubernetesError) as caught:
        _handle(backend, info, plan, tmp_path).map_in_cluster(
            problem_to_json(problem_from_profile(profile)), "heft", {}
        )
    assert str(caught.value) == (
        "the mapper Job jupiter-mapper/jupiter-mapper printed no mapping of every task; last log lines: Killed; "
        "see `kubectl -n jupiter-mapper logs job/jupiter-mapper`"
    )


def test_mapper_parameters_jupiter_map_cannot_take_are_reported(tmp_path: Path) -> None:
    lines: list[str] = []
    backend = KubernetesHandle(Attachment("d", DeploymentLayout(tmp_path), {}, "tok", {}), progress=lines.append)
    assert backend._options({"max_tasks_per_node": 2, "seed": 0}) == ("--max-tasks-per-node", "2")
    assert lines == []
    assert backend._options({"seed": 3}) == ()
    assert lines == ["mapper: `jupiter map` has no option for seed = 3; it uses 0"]


def test_the_mapper_log_parser_reads_what_jupiter_map_prints(tmp_path: Path) -> None:
    problem = problem_from_profile(
        {
            "format": "jupiter-profile",
            "version": 1,
            "nodes": ["n1", "n2"],
            "links": [{"src": u, "dst": v, "a": 0.0, "b": 0.0, "c": 0.5} for u, v in (("n1", "n2"), ("n2", "n1"))],
            # b runs only on n2.
            "execution": {"a": {"n1": {"seconds": 1.0}, "n2": {"seconds": 3.0}}, "b": {"n2": {"seconds": 1.0}}},
            "edges": [["a", "b"]],
        }
    )
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(problem_to_json(problem)))
    result = CliRunner().invoke(cli, ["map", "--problem", str(path), "--scheduler", "heft", "--output", "json"])
    assert result.exit_code == 0, result.output
    printed = result.output
    assert json.loads(printed)["format"] == "jupiter-map"
    # What went to stderr comes first in a pod's log, and may itself hold braces.
    log = "a warning on stderr {not json}\n" + printed
    assert parse_mapper_output(log, problem.tasks, problem.nodes) == {"a": "n1", "b": "n2"}
    assert parse_mapper_output(printed, ["a", "b", "c"], problem.nodes) is None
    assert parse_mapper_output(printed, problem.tasks, ["n1"]) is None
    assert parse_mapper_output("", problem.tasks, problem.nodes) is None
    # The table `jupiter map` prints for people is not what the backend reads.
    table = CliRunner().invoke(cli, ["map", "--problem", str(path), "--scheduler", "heft"]).output
    assert parse_mapper_output(table, problem.tasks, problem.nodes) is None
    assert (
        parse_mapper_output('{"format": "other", "mapping": {"a": "n1", "b": "n2"}}\n', problem.tasks, problem.nodes)
        is None
    )


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
    client.batch = SimpleNamespace(list_namespaced_job=None)
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


def _job(succeeded: int = 0, failed: bool = False) -> SimpleNamespace:
    conditions = [SimpleNamespace(type="Failed", status="True", reason="BackoffLimitExceeded", message="")]
    return SimpleNamespace(status=SimpleNamespace(succeeded=succeeded, conditions=conditions if failed else None))


def test_wrapper_names_the_failed_job_pod_and_its_events() -> None:
    client = _client([], ["BackoffLimitExceeded: Job has reached the specified backoff limit"])
    client._watch = lambda *args, **kwargs: iter([_job(), _job(failed=True)])  # type: ignore[method-assign]
    client.pods = lambda namespace, selector: [PodState("m-1", "ns", "Failed", False, "Error")]  # type: ignore[method-assign]
    with pytest.raises(NotUp) as caught:
        client.wait_complete("ns", "jupiter-mapper", timeout=5)
    assert str(caught.value) == (
        "Job ns/jupiter-mapper failed: pod ns/m-1 failed; last events: BackoffLimitExceeded: Job has reached the "
        "specified backoff limit; see `kubectl -n ns describe pod m-1`"
    )


def test_wrapper_job_timeout_names_its_pod() -> None:
    client = _client([], ["FailedScheduling: 0/3 nodes are available"])
    client._watch = lambda *args, **kwargs: iter([_job()])  # type: ignore[method-assign]
    client.pods = lambda namespace, selector: [PodState("m-1", "ns", "Pending", False)]  # type: ignore[method-assign]
    with pytest.raises(NotUp) as caught:
        client.wait_complete("ns", "jupiter-mapper", timeout=1)
    assert str(caught.value) == (
        "Job ns/jupiter-mapper did not complete within 1 s: pod ns/m-1 did not finish; last events: "
        "FailedScheduling: 0/3 nodes are available; see `kubectl -n ns describe pod m-1`"
    )


# ------------------------------------------ the real wrapper and client against a stand-in API server


Reply = tuple[int, str, bytes]
"""(status, content type, body) the stand-in API server answers with."""


class ApiServer(http.server.ThreadingHTTPServer):
    """Answers `routes[(method, path)]`; records (method, path, headers, body) of every request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ApiHandler)
        self.routes: dict[tuple[str, str], Reply] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []


class _ApiHandler(http.server.BaseHTTPRequestHandler):
    server: ApiServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        status, content_type, data = self.server.routes.get((self.command, self.path), (404, "text/plain", b"nope"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def api() -> Iterator[tuple[ApiServer, KubeClient]]:
    import kubernetes as k8s

    server = ApiServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    client = object.__new__(KubeClient)
    client._k8s = k8s
    client.progress = lambda _: None
    configuration = k8s.client.Configuration(
        host=f"http://127.0.0.1:{server.server_address[1]}", api_key={"authorization": "Bearer cluster-token"}
    )
    client.api = k8s.client.ApiClient(configuration)
    client.core = k8s.client.CoreV1Api(client.api)
    try:
        yield server, client
    finally:
        client.api.close()
        server.shutdown()
        server.server_close()
        thread.join()


PROXY = "/api/v1/namespaces/ns/services/jupiter-home:8888/proxy"


def _json(status: int, value: Any) -> Reply:
    return status, "application/json", json.dumps(value).encode()


def test_proxy_posts_json_with_both_tokens_and_returns_the_answer(api: tuple[ApiServer, KubeClient]) -> None:
    server, client = api
    server.routes[("POST", f"{PROXY}/mapping")] = _json(200, {"ok": True})
    server.routes[("GET", f"{PROXY}/status")] = _json(200, {"node": "home"})
    answer = client.proxy("ns", "jupiter-home", 8888, "POST", "/mapping", "deploy-token", {"mapping": {"a": "n1"}})
    assert answer == {"ok": True}
    assert client.proxy("ns", "jupiter-home", 8888, "GET", "/status", "deploy-token") == {"node": "home"}
    (post_method, post_path, headers, body), (get_method, _, get_headers, get_body) = server.requests
    assert (post_method, post_path, json.loads(body)) == ("POST", f"{PROXY}/mapping", {"mapping": {"a": "n1"}})
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Jupiter-Token"] == "deploy-token"
    assert headers["authorization"] == "Bearer cluster-token"
    assert (get_method, get_body, get_headers["X-Jupiter-Token"]) == ("GET", b"", "deploy-token")


def test_proxy_passes_an_agents_error_answer_through(api: tuple[ApiServer, KubeClient]) -> None:
    server, client = api
    server.routes[("POST", f"{PROXY}/mapping")] = _json(400, {"error": "unknown task x"})
    assert client.proxy("ns", "jupiter-home", 8888, "POST", "/mapping", "t", {}) == {"error": "unknown task x"}


def test_proxy_refusals_say_what_and_how_to_fix(api: tuple[ApiServer, KubeClient]) -> None:
    server, client = api
    server.routes[("GET", f"{PROXY}/status")] = (503, "text/plain", b"no endpoints available for service")
    forbidden = {"kind": "Status", "message": 'services "jupiter-home" is forbidden: User "u" cannot get it'}
    server.routes[("POST", f"{PROXY}/mapping")] = _json(403, forbidden)
    with pytest.raises(ClusterError) as caught:
        client.proxy("ns", "jupiter-home", 8888, "GET", "/status", "t")
    assert str(caught.value) == (
        "GET /status of ns/jupiter-home: the agent cannot be reached (no endpoints available for service); "
        "check its pod with `kubectl -n ns get pods`"
    )
    with pytest.raises(Forbidden, match=r"^POST /mapping of ns/jupiter-home: forbidden \(services \"jupiter-home\" is"):
        client.proxy("ns", "jupiter-home", 8888, "POST", "/mapping", "t", {})


def test_proxy_sends_a_raw_body_with_its_content_type_and_keeps_the_query(
    api: tuple[ApiServer, KubeClient],
) -> None:
    server, client = api
    server.routes[("POST", f"{PROXY}/submit")] = _json(200, {"frames": [{"name": "a.txt", "frame": "f0"}]})
    server.routes[("GET", f"{PROXY}/frames/wait?count=2&timeout=0.500")] = _json(200, {"done": 2, "failed": 0})
    # What `submit` sends: multipart, which the client's REST layer would rebuild from form fields.
    upload = b'--b1\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n\x00\xff\r\n--b1--\r\n'
    kind = "multipart/form-data; boundary=b1"
    answer = client.proxy("ns", "jupiter-home", 8888, "POST", "/submit", "t", upload, 60.0, kind)
    assert answer == {"frames": [{"name": "a.txt", "frame": "f0"}]}
    assert client.proxy("ns", "jupiter-home", 8888, "GET", "/frames/wait?count=2&timeout=0.500", "t", None, 10.5) == {
        "done": 2,
        "failed": 0,
    }
    (_, _, headers, body), (_, path, _, _) = server.requests
    assert (body, headers["Content-Type"], headers["X-Jupiter-Token"]) == (upload, kind, "t")
    assert headers["authorization"] == "Bearer cluster-token"
    assert path == f"{PROXY}/frames/wait?count=2&timeout=0.500"


def test_proxy_takes_only_bytes_with_a_content_type(api: tuple[ApiServer, KubeClient]) -> None:
    _, client = api
    with pytest.raises(TypeError, match=r"^POST /submit of ns/jupiter-home: a body with a content type must be bytes"):
        client.proxy("ns", "jupiter-home", 8888, "POST", "/submit", "t", {"a": 1}, 1.0, "multipart/form-data")


def test_proxy_gives_up_after_its_timeout(api: tuple[ApiServer, KubeClient]) -> None:
    server, client = api
    slow = threading.Event()
    original = _ApiHandler._answer

    asked: list[str] = []

    def stalled(handler: _ApiHandler) -> None:
        asked.append(handler.path)
        slow.wait(5)
        original(handler)

    server.RequestHandlerClass = type("Stalled", (_ApiHandler,), {"do_GET": stalled})
    try:
        with pytest.raises(ClusterError, match=r"^GET /frames/wait of ns/jupiter-home: cannot reach the cluster \("):
            client.proxy("ns", "jupiter-home", 8888, "GET", "/frames/wait", "t", None, 0.2)
    finally:
        slow.set()
    # Asked once: a late answer is not waited for again (urllib3 would retry a GET three times).
    # Counted rather than timed, so that a loaded machine cannot change the answer.
    assert asked == [f"{PROXY}/frames/wait"]


PLANS = "/api/v1/namespaces/ns/configmaps/jupiter-plans"


def test_update_config_map_patches_only_the_data(api: tuple[ApiServer, KubeClient]) -> None:
    server, client = api
    data = {"plan-home.json": '{"mapping": {"a": "n1"}}'}
    configmap = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "jupiter-plans"}, "data": data}
    server.routes[("PATCH", PLANS)] = _json(200, configmap)
    client.update_config_map("ns", "jupiter-plans", data)
    ((method, path, headers, body),) = server.requests
    assert (method, path, json.loads(body)) == ("PATCH", PLANS, {"data": data})
    assert headers["Content-Type"] == "application/strategic-merge-patch+json"
    server.routes[("PATCH", PLANS)] = _json(404, {"kind": "Status", "message": "configmaps not found"})
    with pytest.raises(NotFound, match=r"^update ConfigMap ns/jupiter-plans: not found$"):
        client.update_config_map("ns", "jupiter-plans", data)


def test_proxy_to_a_cluster_that_is_not_there(api: tuple[ApiServer, KubeClient]) -> None:
    _, client = api
    client.api.configuration.host = "http://127.0.0.1:1"
    client.api.configuration.retries = 0
    client.api.rest_client = type(client.api.rest_client)(client.api.configuration)
    with pytest.raises(ClusterError, match=r"^GET /status of ns/jupiter-home: cannot reach the cluster \("):
        client.proxy("ns", "jupiter-home", 8888, "GET", "/status", "t")


def test_pod_log_asks_for_timestamps_and_the_last_seconds(api: tuple[ApiServer, KubeClient]) -> None:
    server, client = api
    log = b"2026-12-04T00:27:00.5Z agent ready\n"
    server.routes[("GET", "/api/v1/namespaces/ns/pods/p-1/log?timestamps=true")] = (200, "text/plain", log)
    server.routes[("GET", "/api/v1/namespaces/ns/pods/p-1/log?sinceSeconds=7&timestamps=true")] = (
        200,
        "text/plain",
        b"",
    )
    assert client.pod_log("ns", "p-1") == log.decode()
    assert client.pod_log("ns", "p-1", 7) == ""
    server.routes[("GET", "/api/v1/namespaces/ns/pods/p-2/log?timestamps=true")] = _json(
        404, {"kind": "Status", "message": 'pods "p-2" not found'}
    )
    with pytest.raises(NotFound, match=r"^read the log of pod ns/p-2: not found"):
        client.pod_log("ns", "p-2")


def test_job_log_reads_the_succeeded_pod_verbatim(api: tuple[ApiServer, KubeClient]) -> None:
    server, client = api
    pods = {
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {},
        "items": [
            {
                "metadata": {"name": f"m-{i}", "namespace": "ns"},
                "spec": {"containers": [{"name": "mapper"}]},
                "status": {"phase": phase},
            }
            for i, phase in enumerate(["Failed", "Succeeded"])
        ],
    }
    server.routes[("GET", "/api/v1/namespaces/ns/pods?labelSelector=job-name%3Djupiter-mapper")] = _json(200, pods)
    # A log that looks like JSON stays text.
    server.routes[("GET", "/api/v1/namespaces/ns/pods/m-1/log")] = (200, "text/plain", b'{"a": 1}\ntask  node\n')
    assert client.job_log("ns", "jupiter-mapper") == '{"a": 1}\ntask  node\n'
    server.routes[("GET", "/api/v1/namespaces/ns/pods?labelSelector=job-name%3Djupiter-mapper")] = _json(
        200, {**pods, "items": []}
    )
    with pytest.raises(NotFound, match=r"^Job ns/jupiter-mapper has no pod to read the log of$"):
        client.job_log("ns", "jupiter-mapper")


def test_logs_are_the_agent_pods_logs_with_the_api_servers_timestamps(
    workspace: Workspace, cluster: FakeCluster, tmp_path: Path
) -> None:
    backend = _backend(workspace, cluster)
    info, plan = _start(workspace, backend, tmp_path)
    handle = _handle(backend, info, plan, tmp_path)

    def stamp(seconds_ago: float) -> str:
        moment = time.time() - seconds_ago
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1e9):09d}Z"

    first, second = stamp(20.0), stamp(10.0)
    cluster.pod_logs[("jupiter-test", "jupiter-node1-abc")] = f"{first} agent node1 ready\n{second} Traceback\n"
    cluster.calls.clear()
    lines, cursor = handle.read_log("node1", None)
    assert [line.text for line in lines] == ["agent node1 ready", "Traceback"]
    assert [line.node for line in lines] == ["node1", "node1"]
    assert cluster.calls == [("pod_log", "jupiter-test", "jupiter-node1-abc", None)]
    # Asked again: only the seconds since the last line (rounded up), and the lines already read are dropped.
    cluster.calls.clear()
    again, cursor = handle.read_log("node1", cursor)
    assert again == []
    ((_, _, _, since),) = cluster.calls
    assert 11 <= since <= 13
    # A pod that went away meanwhile has nothing to say; a refusal names the node.
    del cluster.pod_logs[("jupiter-test", "jupiter-node1-abc")]
    assert handle.read_log("node1", cursor)[0] == []
    cluster.fail[("pod_log", "jupiter-test", "jupiter-home-abc", None)] = ClusterError("pods is forbidden")
    with pytest.raises(KubernetesError, match=r"^cannot read the log of home: pods is forbidden$"):
        handle.read_log("home", None)
