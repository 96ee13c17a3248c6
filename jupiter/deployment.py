"""Deployments: deploy, find, status, submit, teardown and run.

This is the service layer between the CLI and the runtime/backends. A
deployment lives in `<STATE_DIR>/<id>/` (plan, token, agents' folders,
statistics); `<STATE_DIR>/current` names the active one, so any later CLI
invocation can find it, and teardown works even if the CLI that deployed it
crashed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import gzip
import io
import json
import math
import secrets
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from jupiter.backends import Backend, docker, kubernetes, local
from jupiter.errors import InputError, JupiterError
from jupiter.mapping import select_controllers
from jupiter.model.mapping_file import parse_mapping
from jupiter.model.nodes import NodeRole
from jupiter.model.workspace import Workspace
from jupiter.planning import default_problem, map_workspace, mapper_for, schedule_profile
from jupiter.profiles import problem_from_profile, problem_to_json
from jupiter.profiling import settings as profiling_settings
from jupiter.profiling.interface import get_profiler
from jupiter.profiling.session import ProfilingError, ProfilingSession
from jupiter.runtime.plan import NodeAddress, Plan, TaskSpec

READY_TIMEOUT = 30.0
HOME_ARCHIVE_TIMEOUT = 120.0
"""Seconds to fetch a home's statistics and outputs (through the API server: they may be large)."""


def get_backend(
    name: str,
    workspace: Workspace | None = None,
    timeout: float = READY_TIMEOUT,
    progress: Callable[[str], None] = lambda _: None,
) -> Backend:
    """The backend called `name` in `[DEPLOY] BACKEND`.

    Container backends need the workspace to start a deployment (image,
    namespaces, nodes' hostnames); reaching or stopping one needs only its `info`.
    """
    if name == "local":
        spool = workspace.config.deploy.spool_dir if workspace is not None else None
        if workspace is None or spool is None:
            return local.LocalBackend()
        return local.LocalBackend(workspace.config.resolve(spool), workspace.config.path)
    if name == "docker":
        return docker.DockerBackend(workspace)
    if name == "kubernetes":
        mapper = None if workspace is None else (lambda problem: mapper_for(workspace, problem))
        return kubernetes.KubernetesBackend(workspace, timeout=timeout, progress=progress, mapper_for=mapper)
    raise DeploymentError(f"backend {name!r} is not available; use one of: local, docker, kubernetes")


def backend_of(deployment: Deployment) -> Backend:
    """The backend a deployment was started with."""
    return get_backend(deployment.backend)


class DeploymentError(JupiterError):
    """A deployment could not be started, reached or stopped."""


@dataclass(frozen=True)
class Deployment:
    """What is needed to reach a running deployment again."""

    id: str
    root: Path
    backend: str
    info: dict[str, Any]
    """What the backend needs to reach and stop the deployment (e.g. the process group)."""
    home: str
    nodes: dict[str, NodeAddress]
    created: float
    app: str
    mapping: dict[str, str] = field(default_factory=dict)
    homes: list[str] = field(default_factory=list)
    """Every home node (several only with pricing); `home` is the first."""

    def save(self) -> None:
        data = asdict(self)
        data["root"] = str(self.root)
        tmp = self.root / ".deployment.json.tmp"
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.root / "deployment.json")

    @classmethod
    def load(cls, root: Path) -> Deployment:
        data = json.loads((root / "deployment.json").read_text())
        data["root"] = Path(data["root"])
        data["nodes"] = {name: NodeAddress(**node) for name, node in data["nodes"].items()}
        return cls(**data)

    @property
    def token(self) -> str:
        return (self.root / "token").read_text().strip()

    @property
    def home_dir(self) -> Path:
        return self.root / "home"

    @property
    def all_homes(self) -> list[str]:
        return self.homes or [self.home]

    def home_dir_of(self, home: str) -> Path:
        """Folder of a home node's inputs, outputs and statistics."""
        return self.home_dir if home == self.home else self.root / home

    def url(self, node: str, path: str) -> str:
        address = self.nodes[node]
        # Container backends: agents know each other by name, this machine reaches them elsewhere.
        host = self.info.get("public_hosts", {}).get(node, address.host)
        return f"http://{host}:{address.control_port}{path}"


# ------------------------------------------------------------------ control


def _request(
    url: str, token: str | None, data: bytes | None = None, content_type: str = "", timeout: float = 10.0
) -> Any:
    headers = {"X-Jupiter-Token": token} if token else {}
    if content_type:
        headers["Content-Type"] = content_type
    if not url.startswith("http://"):
        raise DeploymentError(f"not a control-plane URL: {url}")
    method = "POST" if data is not None else "GET"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - http only
    with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 - http only
        return json.loads(response.read())


def control_get(deployment: Deployment, node: str, path: str, timeout: float = 10.0) -> Any:
    """GET a control-plane endpoint of one agent."""
    proxy = getattr(backend_of(deployment), "control", None)
    if proxy is not None:  # e.g. kubernetes: through the API server, agents are not reachable from here
        try:
            return proxy(deployment.info, node, path, deployment.token, "GET", None, timeout)
        except JupiterError as exc:
            raise DeploymentError(str(exc)) from None
    try:
        return _request(deployment.url(node, path), deployment.token, timeout=timeout)
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
        raise DeploymentError(f"agent {node} does not answer at {deployment.url(node, path)}: {exc}") from None


def healthy(deployment: Deployment, node: str) -> bool:
    """Whether an agent answers its health check (for this deployment)."""
    proxy = getattr(backend_of(deployment), "control", None)
    if proxy is not None:  # kubernetes: through the API server, which adds its own round trip
        try:
            answer = proxy(deployment.info, node, "/health", deployment.token, "GET", None, 5.0)
        except JupiterError:
            return False
        return bool(answer.get("ready")) and answer.get("deployment") == deployment.id
    try:
        answer = _request(deployment.url(node, "/health"), None, timeout=1.0)
    except (urllib.error.URLError, OSError, json.JSONDecodeError):
        return False
    return bool(answer.get("ready")) and answer.get("deployment") == deployment.id


# ------------------------------------------------------------------ deploy


def state_dir(workspace: Workspace) -> Path:
    """Folder holding this working folder's deployments."""
    return workspace.config.resolve(workspace.config.deploy.state_dir).resolve()


def choose_mapping(workspace: Workspace, mapping_file: Path | None) -> dict[str, str]:
    """The task -> node mapping to deploy: a static file, or the configured mapper."""
    config = workspace.config
    if mapping_file is None and config.static_mapping:
        if config.deploy.mapping is None:
            raise InputError(
                config.path,
                None,
                "STATIC_MAPPING = 1 needs a mapping file; set [DEPLOY] MAPPING or pass --mapping",
            )
        mapping_file = config.resolve(config.deploy.mapping)
    if mapping_file is not None:
        return parse_mapping(mapping_file, workspace.app.dag, workspace.nodes)
    return map_workspace(workspace)


def build_plan(
    workspace: Workspace, deployment_id: str, mapping: dict[str, str], addresses: dict[str, NodeAddress]
) -> Plan:
    """The plan every agent of a deployment reads."""
    app = workspace.app
    dag = app.dag
    tasks = {
        task.name: TaskSpec(
            name=task.name,
            num_inputs=task.num_inputs,
            flag=task.flag,
            children=task.children,
            parents=dag.parents(task.name),
            script=str(app.script_path(task.name).resolve()),
        )
        for task in dag
    }
    config = workspace.config
    extra: dict[str, Any] = {"pricing": pricing_extra(workspace)} if config.pricing != "nonpricing" else {}
    if config.transfer != "http":
        keys = config.ssh
        # Another transfer method copies each file into the receiver's staging folder first
        # (jupiter.runtime.staging); folders are relative to the deployment folder, which every
        # backend gives its agents at the same path.
        extra["transfer"] = {
            "user": config.username,
            "port": config.ports.ssh_svc,
            "key_file": str(config.resolve(keys.key_file)) if keys.key_file else None,
            "known_hosts": str(config.resolve(keys.known_hosts)) if keys.known_hosts else None,
            "staging": {node: f"nodes/{node}/staging" for node in addresses},
        }
    return Plan(
        deployment=deployment_id,
        app_name=app.name,
        app_path=str(app.path.resolve()),
        tasks=tasks,
        order=dag.order,
        mapping=mapping,
        nodes=addresses,
        ingress=workspace.ingress_tasks,
        home=workspace.nodes.homes[0].name,
        queue_size=config.other.task_queue_size,
        retries=config.other.ssh_retry_num,
        receiver_stats=config.receiver_stats,
        transfer=config.transfer,
        pricing=config.pricing,
        homes=tuple(node.name for node in workspace.nodes.homes),
        extra=extra,
    )


def pricing_extra(workspace: Workspace, profile: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pricing CIRCE's settings and cost model for the agents (`plan.extra["pricing"]`).

    Without a profile the model has the default execution times and no links
    (the network term is 0: nothing was measured).
    """
    config = workspace.config
    price = config.price
    problem = problem_from_profile(profile) if profile is not None else default_problem(workspace)
    return {
        "aggregate": config.price_function,
        "interval": price.interval,
        "stale": price.stale,
        "margin": price.margin,
        "weights": {
            "network": price.w_network,
            "execution": price.w_execution,
            "queue": price.w_queue,
            "cpu": price.w_cpu,
            "memory": price.w_memory,
        },
        "network": profile is not None,
        "problem": problem_to_json(problem),
    }


def find(root_dir: Path, required: bool = True) -> Deployment | None:
    """The current deployment of a state folder."""
    pointer = root_dir / "current"
    if not pointer.exists():
        if required:
            raise DeploymentError(f"no deployment is running here ({root_dir}); start one with `jupiter deploy`")
        return None
    root = root_dir / pointer.read_text().strip()
    if not (root / "deployment.json").exists():
        pointer.unlink()
        if required:
            raise DeploymentError(f"the current deployment's folder {root} is gone; nothing to do")
        return None
    return Deployment.load(root)


def deploy(
    workspace: Workspace,
    mapping_file: Path | None = None,
    timeout: float = READY_TIMEOUT,
    progress: Callable[[str], None] = lambda _: None,
    reprofile: bool = True,
    map_tasks: bool = True,
) -> Deployment:
    """Start one agent per node, wait until every agent is ready, then profile -> map -> dispatch.

    With a static mapping (`--mapping` or STATIC_MAPPING = 1) the agents
    start with it and nothing is profiled. Otherwise they start without
    tasks, the profilers measure, the configured scheduler maps from the
    measurements, and the mapping is dispatched. `reprofile` allows periodic
    network re-profiling (configured by NETWORK_INTERVAL); `map_tasks=False`
    stops after profiling (`jupiter profile`).
    """
    states = state_dir(workspace)
    existing = find(states, required=False)
    if existing is not None:
        if backend_of(existing).running(existing.info):
            raise DeploymentError(
                f"deployment {existing.id} is still running here; stop it with `jupiter teardown` first"
            )
        (states / "current").unlink()
    backend = get_backend(workspace.config.deploy.backend, workspace, timeout=timeout, progress=progress)
    started = time.time()
    measured = mapping_file is None and not workspace.config.static_mapping
    extra = profiling_settings.plan_extra(workspace, Path(), reprofile)  # checks the testbed before anything starts
    mapping = {} if measured else choose_mapping(workspace, mapping_file)
    if not measured:
        progress(
            f"mapped {len(mapping)} tasks with {_mapper_name(workspace, mapping_file)} in {time.time() - started:.2f} s"
        )
    deployment_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    root = states / deployment_id
    root.mkdir(parents=True)
    token_path = root / "token"
    token_path.touch(mode=0o600)
    token_path.write_text(secrets.token_hex(32))
    # Data sources run no tasks and feed nothing yet; they get no agent.
    running = [node for node in workspace.nodes if node.role is not NodeRole.DATASOURCE]
    addresses = backend.addresses([(node.name, node.role.value) for node in running])
    plan = build_plan(workspace, deployment_id, mapping, addresses)
    extra["store"] = profiling_settings.store_settings(workspace, root / "home")
    plan = dataclasses.replace(plan, extra={**plan.extra, **extra})
    (root / "plan.json").write_text(plan.to_json())
    info = backend.start(root, plan, [node.name for node in running])
    deployment = Deployment(
        id=deployment_id,
        root=root,
        backend=backend.name,
        info=info,
        home=plan.home,
        nodes=addresses,
        created=time.time(),
        app=workspace.app.name,
        mapping=mapping,
        homes=list(plan.all_homes),
    )
    deployment.save()
    (states / "current").write_text(deployment_id)
    try:
        if not info.get("ready"):  # backends that waited themselves (kubernetes) say so
            wait_ready(deployment, timeout, progress)
        if measured:
            progress(f"started {len(running)} agents in {time.time() - started:.2f} s")
            deployment = profile_map_dispatch(workspace, deployment, progress, map_tasks)
    except BaseException:
        teardown(deployment)
        raise
    progress(f"deployed {len(running)} agents in {time.time() - started:.2f} s")
    return deployment


def _mapper_name(workspace: Workspace, mapping_file: Path | None) -> str:
    if mapping_file is not None or workspace.config.static_mapping:
        return "a static mapping"
    return workspace.config.scheduler


def wait_ready(deployment: Deployment, timeout: float, progress: Callable[[str], None]) -> None:
    """Wait until every agent answers its health check; name the ones that do not."""
    deadline = time.time() + timeout
    waiting = set(deployment.nodes)
    while waiting and time.time() < deadline:
        waiting = {node for node in waiting if not healthy(deployment, node)}
        if waiting:
            if not backend_of(deployment).running(deployment.info):
                raise DeploymentError(f"the deployment stopped while starting; see the logs in {deployment.root}")
            time.sleep(0.05)
    if waiting:
        node = sorted(waiting)[0]
        log = deployment.root / "logs" / f"{node}.log"
        last = _last_line(log)
        raise DeploymentError(
            f"node {node} did not come up within {timeout:.0f} s; see {log}" + (f" (last line: {last})" if last else "")
        )


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""
    return ""


# ------------------------------------------------- profile, map, dispatch


def control_call(deployment: Deployment) -> Callable[[str, str, str, Any, float], Any]:
    """`call(node, method, path, body, timeout)` for the profilers, over the agents' control planes.

    Backends whose agents this machine cannot reach (kubernetes) offer a
    `control` proxy; the call goes through it, GET and POST alike.
    """
    proxy = getattr(backend_of(deployment), "control", None)

    def call(node: str, method: str, path: str, body: Any, timeout: float) -> Any:
        if proxy is not None:
            payload = body if method == "POST" else None
            try:
                return proxy(deployment.info, node, path, deployment.token, method, payload, timeout)
            except JupiterError as exc:
                raise DeploymentError(str(exc)) from None
        url = deployment.url(node, path)
        data = json.dumps(body).encode() if method == "POST" else None
        try:
            return _request(url, deployment.token, data, "application/json" if data else "", timeout=timeout)
        except urllib.error.HTTPError as exc:
            try:
                return json.loads(exc.read())
            except json.JSONDecodeError:
                raise DeploymentError(f"agent {node} refused {path}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
            raise DeploymentError(f"agent {node} does not answer at {url}: {exc}") from None

    return call


def profile_deployment(
    workspace: Workspace, deployment: Deployment, progress: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """Run the profilers on a running deployment; returns the profile document (also in profile.json)."""
    spec = profiling_settings.session_spec(workspace)
    with profiling_settings.open_deployment_store(workspace, deployment.home_dir) as store:
        # `[CONFIG] PROFILER`: DRUPE's own figures, or a plug-in's (the original's integration interface).
        try:
            profiler = get_profiler(workspace.config.profiler, store)
        except Exception as exc:  # noqa: BLE001 - user code: any failure is reported, with its type
            raise DeploymentError(f"profiler {workspace.config.profiler} failed: {type(exc).__name__}: {exc}") from None
        try:
            result = ProfilingSession(spec, control_call(deployment), store).run(progress, profiler)
        except ProfilingError as exc:
            raise DeploymentError(str(exc)) from None
    (deployment.root / "profile.json").write_text(json.dumps(result.profile, indent=2))
    return result.profile


def dispatch(deployment: Deployment, mapping: dict[str, str], pricing: dict[str, Any] | None = None) -> Deployment:
    """Give every agent its tasks (and the plan file, for agents restarted later).

    With pricing, `pricing` is the measured cost model the controllers price with.
    """
    plan = Plan.load(deployment.root / "plan.json")
    extra = dict(plan.extra)
    if pricing is not None:
        extra["pricing"] = pricing
    plan = dataclasses.replace(plan, mapping=mapping, extra=extra)
    tmp = deployment.root / ".plan.json.tmp"
    tmp.write_text(plan.to_json())
    tmp.replace(deployment.root / "plan.json")
    update_plan = getattr(backend_of(deployment), "update_plan", None)
    if update_plan is not None:  # kubernetes: agent pods read their plans from a ConfigMap, not from this folder
        try:
            update_plan(deployment.info, plan.to_json())
        except JupiterError as exc:
            raise DeploymentError(str(exc)) from None
    call = control_call(deployment)
    body: dict[str, Any] = {"mapping": mapping}
    if pricing is not None:
        body["pricing_model"] = pricing["problem"]
    for node in deployment.nodes:
        answer = call(node, "POST", "/mapping", body, 60.0)
        if "error" in answer:
            raise DeploymentError(f"agent {node} refused the mapping: {answer['error']}")
    deployment = dataclasses.replace(deployment, mapping=mapping)
    deployment.save()
    return deployment


def profile_map_dispatch(
    workspace: Workspace, deployment: Deployment, progress: Callable[[str], None], map_tasks: bool = True
) -> Deployment:
    """The original's sequence on running agents: profilers -> mapper -> dispatch, each phase timed."""
    profile = profile_deployment(workspace, deployment, progress)
    if not map_tasks:
        return deployment
    started = time.time()
    scheduler = workspace.config.scheduler
    distributed = scheduler in ("wave_random", "wave_greedy")
    mapping = wave_mapping(workspace, deployment, profile) if distributed else None
    if not distributed:  # a backend may run the mapper itself (kubernetes: as a Job on the cluster)
        mapper_job = getattr(get_backend(deployment.backend, workspace, progress=progress), "map_profile", None)
        mapping = mapper_job(deployment.info, profile) if mapper_job is not None else None
    schedule = schedule_profile(workspace, profile, mapping)
    mapping = mapping or {task: schedule.node_of(task) for task in workspace.app.dag.order}
    how = " by the agents (distributed WAVE)" if distributed else ""
    progress(
        f"mapped {len(mapping)} tasks with {scheduler}{how} in {time.time() - started:.2f} s "
        f"(predicted makespan {schedule.makespan:.3f} s)"
    )
    predicted = {
        "scheduler": scheduler,
        "makespan": schedule.makespan,
        "mapping": mapping,
        "tasks": {p.task: {"node": p.node, "start": p.start, "finish": p.finish} for p in schedule.placements.values()},
    }
    (deployment.root / "mapping.json").write_text(json.dumps(predicted, indent=2))
    started = time.time()
    pricing = pricing_extra(workspace, profile) if workspace.config.pricing != "nonpricing" else None
    deployment = dispatch(deployment, mapping, pricing)
    progress(f"dispatched {len(mapping)} tasks to {len(set(mapping.values()))} nodes in {time.time() - started:.2f} s")
    return deployment


def wave_mapping(workspace: Workspace, deployment: Deployment, profile: dict[str, Any]) -> dict[str, str]:
    """Distributed WAVE: the agents appoint the nodes; home assembles the mapping (with a timeout)."""
    problem = problem_from_profile(profile)
    config = workspace.config
    context = {
        "policy": "random" if config.scheduler == "wave_random" else "greedy",
        "seed": config.mapper.seed,
        "weights": [config.mapper.w_net, config.mapper.w_cpu, config.mapper.w_mem],
        "controllers": select_controllers(problem),
        "order": list(problem.topological_order),
        "candidates": list(problem.nodes),
        "initial": dict(workspace.app.input_nodes),
        "resources": profile.get("resources", {}),
        "edge_sizes": {f"{e.parent}->{e.child}": e.size for e in problem.edges},
    }
    call = control_call(deployment)
    call(deployment.home, "POST", "/wave/start", context, 10.0)
    timeout = config.mapper.wave_timeout
    deadline = time.time() + timeout
    while True:
        result = call(deployment.home, "GET", "/wave/result", None, 10.0)
        if result["complete"]:
            return dict(result["mapping"])
        if time.time() > deadline:
            break
        time.sleep(0.05)
    controllers = context["controllers"]
    missing = result["missing"]
    silent = sorted({result["mapping"].get(controllers.get(task, ""), deployment.home) for task in missing})
    why = "; ".join(result["errors"][:3]) or f"no answer from {', '.join(silent)}"
    raise DeploymentError(
        f"distributed WAVE did not map {', '.join(missing)} within {timeout:g} s ({why}); "
        f"see the logs in {deployment.root / 'logs'} or raise [MAPPER] WAVE_TIMEOUT"
    )


def profile(
    workspace: Workspace, out: Path, timeout: float = READY_TIMEOUT, progress: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """`jupiter profile`: start agents, run the profilers alone, write the profile file, tear down."""
    if workspace.config.static_mapping:
        workspace = dataclasses.replace(workspace, config=dataclasses.replace(workspace.config, static_mapping=False))
    deployment = deploy(workspace, timeout=timeout, progress=progress, reprofile=False, map_tasks=False)
    try:
        document: dict[str, Any] = json.loads((deployment.root / "profile.json").read_text())
    finally:
        teardown(deployment)
    out.write_text(json.dumps(document, indent=2))
    return document


# ---------------------------------------------------------- status, submit


def status(deployment: Deployment) -> dict[str, Any]:
    """Status of every agent (unreachable agents are reported, not fatal)."""
    agents: dict[str, Any] = {}
    for node in deployment.nodes:
        try:
            agents[node] = control_get(deployment, node, "/status", timeout=5.0)
        except DeploymentError as exc:
            agents[node] = {"error": str(exc)}
    describe = getattr(backend_of(deployment), "describe", None)
    return {
        "deployment": deployment.id,
        "app": deployment.app,
        "mapping": deployment.mapping,
        "agents": agents,
        "backend": describe(deployment.info) if describe is not None else [],
    }


def submit(deployment: Deployment, files: Sequence[tuple[str, bytes]], home: str | None = None) -> list[str]:
    """Send input files to a home node (default: the first); each starts one frame. Returns the frame ids."""
    home = home or deployment.home
    if home not in deployment.all_homes:
        raise InputError(
            None, None, f"{home} is not a home node of this deployment; use one of: {', '.join(deployment.all_homes)}"
        )
    frames: list[str] = []
    proxy = getattr(backend_of(deployment), "control", None)
    for start in range(0, len(files), 64):
        boundary = uuid.uuid4().hex
        body = bytearray()
        for name, data in files[start : start + 64]:
            body += (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            body += data + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        if proxy is not None:  # kubernetes: the same upload through the API server, home is not reachable from here
            multipart = f"multipart/form-data; boundary={boundary}"
            try:
                answer = proxy(deployment.info, home, "/submit", deployment.token, "POST", bytes(body), 60.0, multipart)
            except JupiterError as exc:
                raise DeploymentError(str(exc)) from None
            if "frames" not in answer:
                raise DeploymentError(f"home {home} refused the files: {answer.get('error', answer)}")
            frames += [item["frame"] for item in answer["frames"]]
            continue
        url = deployment.url(home, "/submit")
        try:
            answer = _request(
                url, deployment.token, bytes(body), f"multipart/form-data; boundary={boundary}", timeout=60.0
            )
        except urllib.error.HTTPError as exc:
            raise DeploymentError(f"home refused the files: {exc.read().decode(errors='replace')[:200]}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DeploymentError(f"home does not answer at {url}: {exc}") from None
        frames += [item["frame"] for item in answer["frames"]]
    return frames


def flush_events(deployment: Deployment) -> list[str]:
    """Make every agent send its pending statistics to home, then the homes write them out.

    Returns the compute nodes that did not answer (e.g. killed with pricing,
    whose frames went elsewhere); a home that does not answer is an error.
    """
    homes = deployment.all_homes
    silent: list[str] = []
    proxy = getattr(backend_of(deployment), "control", None)
    for node in [*(n for n in deployment.nodes if n not in homes), *homes]:
        if proxy is not None:  # kubernetes: through the API server, agents are not reachable from here
            try:
                answer = proxy(deployment.info, node, "/flush", deployment.token, "POST", None, 30.0)
                problem = f"agent {node} refused /flush: {answer['error']}" if "error" in answer else ""
            except JupiterError as exc:
                problem = str(exc)
            if problem and node in homes:
                raise DeploymentError(f"home {node} did not flush its statistics: {problem}")
            if problem:
                silent.append(node)
            continue
        try:
            _request(deployment.url(node, "/flush"), deployment.token, data=b"", timeout=30.0)
        except (urllib.error.URLError, OSError) as exc:
            if node in homes:
                raise DeploymentError(f"home {node} did not flush its statistics: {exc}") from None
            silent.append(node)
    return silent


def fetch_home_files(deployment: Deployment) -> None:
    """Copy every home's statistics, event log and outputs from its agent into the deployment folder.

    Only where this machine cannot read the agents' folders, i.e. the
    backend has a `control` proxy (kubernetes: home's folder is in its
    pod); elsewhere home writes them into the deployment folder itself.
    Call after `flush_events`, so the archive holds every event.
    """
    if getattr(backend_of(deployment), "control", None) is None:
        return
    call = control_call(deployment)
    for home in deployment.all_homes:
        answer = call(home, "GET", "/home/archive", None, HOME_ARCHIVE_TIMEOUT)
        if not isinstance(answer, dict) or not isinstance(answer.get("archive"), str):
            why = answer.get("error", answer) if isinstance(answer, dict) else answer
            raise DeploymentError(f"home {home} did not send its statistics and outputs: {why}")
        if answer.get("home") != home:
            raise DeploymentError(f"asked home {home} for its statistics and outputs, {answer.get('home')} answered")
        extract_home_archive(home, answer["archive"], deployment.home_dir_of(home))


def extract_home_archive(home: str, archive: str, folder: Path) -> None:
    """Extract a home's `/home/archive` (base64 of a tar.gz) into `folder`; nothing at all if a member is unsafe.

    Only regular files and folders named relative to `folder`, and only
    home's statistics files and its `output/` tree: the local home folder
    also holds the profile store, which an archive must not replace.
    """
    try:
        data = gzip.decompress(base64.b64decode(archive, validate=True))
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            members = tar.getmembers()
    except (binascii.Error, EOFError, OSError, tarfile.TarError, zlib.error) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise DeploymentError(f"home {home} sent a corrupt archive of its folder: {why}") from None
    for member in members:
        problem = _unsafe_member(member)
        if problem:
            raise DeploymentError(
                f"home {home} sent an unsafe archive of its folder: {member.name!r} {problem}; nothing was extracted"
            )
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            tar.extractall(folder, members=tar.getmembers(), filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise DeploymentError(f"cannot write home {home}'s statistics and outputs into {folder}: {exc}") from None


def _unsafe_member(member: tarfile.TarInfo) -> str:
    """Why a member of a home's archive must not be extracted; empty when it may."""
    path = PurePosixPath(member.name)
    if path.is_absolute():
        return "is an absolute path"
    if ".." in path.parts:
        return "leaves the folder"
    if member.issym() or member.islnk():
        return "is a link"
    if not (member.isfile() or member.isdir()):
        return "is not a file or folder"
    # What home's agent sends: jupiter.runtime.control.is_statistics_file, and output/.
    parts = path.parts
    statistics = (
        len(parts) == 1
        and member.isfile()
        and (parts[0] == "events.jsonl" or (parts[0].startswith("runtime_") and parts[0].endswith(".txt")))
    )
    output = bool(parts) and parts[0] == "output" and (len(parts) > 1 or member.isdir())
    if not (statistics or output):
        return "is not one of home's statistics files or outputs"
    return ""


def wait_frames(deployment: Deployment, count: int, timeout: float, home: str | None = None) -> dict[str, Any]:
    """Wait (at a home, without polling) until `count` of its frames finished, or `timeout` seconds."""
    proxy = getattr(backend_of(deployment), "control", None)
    if proxy is not None:  # kubernetes: the long poll through the API server, given more time than it waits
        node = home or deployment.home
        path = f"/frames/wait?count={count}&timeout={timeout:.3f}"
        try:
            counts: dict[str, Any] = proxy(deployment.info, node, path, deployment.token, "GET", None, timeout + 10)
        except JupiterError as exc:
            raise DeploymentError(str(exc)) from None
        if "error" in counts:
            raise DeploymentError(f"home {node} did not count its frames: {counts['error']}")
        return counts
    url = deployment.url(home or deployment.home, f"/frames/wait?count={count}&timeout={timeout:.3f}")
    try:
        answer: dict[str, Any] = _request(url, deployment.token, timeout=timeout + 10)
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
        raise DeploymentError(f"home does not answer at {url}: {exc}") from None
    return answer


def home_frames(deployment: Deployment) -> dict[str, Any]:
    """Home's frame counters."""
    answer: dict[str, Any] = control_get(deployment, deployment.home, "/status")["frames"]
    return answer


# ----------------------------------------------------------------- teardown


def teardown(deployment: Deployment) -> list[str]:
    """Stop everything the deployment started; returns what was stopped."""
    stopped = backend_of(deployment).stop(deployment.info)
    pointer = deployment.root.parent / "current"
    if pointer.exists() and pointer.read_text().strip() == deployment.id:
        pointer.unlink()
    return stopped


# ---------------------------------------------------------------------- run


@dataclass(frozen=True)
class RunSummary:
    """What `jupiter run` reports."""

    deployment: str
    frames: int
    done: int
    failed: int
    seconds: float
    throughput: float
    makespan_p50: float
    makespan_p95: float
    task_means: dict[str, tuple[str, float, int]]
    """task -> (node(s) it ran on, mean execution seconds, runs)."""
    errors: list[str]
    output_dir: Path
    per_home: dict[str, int] = field(default_factory=dict)
    """Frames done per home node."""
    restarted: int = 0
    """Frames started again because a node died (pricing)."""


def collect_inputs(workspace: Workspace, inputs: Path | None, frames: int | None) -> list[tuple[str, bytes]]:
    """The files to submit: sample_input/ (or a folder), repeated to `frames` frames."""
    if inputs is not None:
        if not inputs.is_dir():
            raise InputError(inputs, None, "inputs folder not found")
        paths = sorted(p for p in inputs.iterdir() if p.is_file() and not p.name.startswith("."))
        if not paths:
            raise InputError(inputs, None, "inputs folder is empty; put one file per frame in it")
    else:
        paths = list(workspace.app.sample_inputs)
    files = [(path.name, path.read_bytes()) for path in paths]
    count = frames if frames is not None else len(files)
    return [files[i % len(files)] for i in range(count)]


def _plan_order(deployment: Deployment) -> tuple[str, ...]:
    return Plan.load(deployment.root / "plan.json").order


def summarize(deployment: Deployment, started: float) -> RunSummary:
    """Summary of a run from home's event log."""
    makespans: list[float] = []
    durations: dict[str, list[float]] = {}
    where: dict[str, set[str]] = {}
    errors: list[str] = []
    submitted = done = failed = restarted = 0
    per_home: dict[str, int] = {}
    last = started
    for home in deployment.all_homes:
        events_path = deployment.home_dir_of(home) / "events.jsonl"
        for line in events_path.read_text().splitlines() if events_path.exists() else []:
            event = json.loads(line)
            kind = event.get("type")
            if kind == "frame_submitted":
                submitted += 1
            elif kind == "frame_done":
                done += 1
                per_home[home] = per_home.get(home, 0) + 1
                makespans.append(event["makespan"])
                last = max(last, event["time"])
            elif kind == "frame_failed":
                failed += 1
                errors.append(f"frame {event['frame']} ({event['input']}): {event['error'].strip().splitlines()[-1]}")
            elif kind == "frame_restarted":
                restarted += 1
            elif kind == "task" and event.get("ok"):
                durations.setdefault(event["task"], []).append(event["finish"] - event["execute"])
                where.setdefault(event["task"], set()).add(event["node"])
    seconds = max(last - started, 1e-9)
    makespans.sort()

    def pct(fraction: float) -> float:
        if not makespans:
            return math.nan
        return makespans[min(len(makespans) - 1, round(fraction * (len(makespans) - 1)))]

    return RunSummary(
        deployment=deployment.id,
        frames=submitted,
        done=done,
        failed=failed,
        seconds=seconds,
        throughput=done / seconds,
        makespan_p50=pct(0.5),
        makespan_p95=pct(0.95),
        task_means={
            task: (",".join(sorted(where[task])), sum(durations[task]) / len(durations[task]), len(durations[task]))
            for task in _plan_order(deployment)
            if task in durations
        },
        errors=errors,
        output_dir=deployment.home_dir / "output",
        per_home=per_home,
        restarted=restarted,
    )


def run(
    workspace: Workspace,
    inputs: Path | None = None,
    frames: int | None = None,
    timeout: float = 600.0,
    mapping_file: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
    on_frames: Callable[[int, int], None] = lambda done, total: None,
    keep: bool = False,
) -> RunSummary:
    """Deploy, submit every input, wait for all frames, summarise, tear down."""
    files = collect_inputs(workspace, inputs, frames)
    # Periodic re-profiling would compete with the frames being measured: never during `run`.
    deployment = deploy(workspace, mapping_file=mapping_file, progress=progress, reprofile=False)
    try:
        started = time.time()
        # Several homes (pricing): each injects its share of the frames and gets those back.
        homes = deployment.all_homes
        shares = {home: files[index :: len(homes)] for index, home in enumerate(homes)}
        for home, share in shares.items():
            if share:
                submit(deployment, share, home)
        deadline = started + timeout
        finished = 0
        while True:
            # Wake at least twice a second to move the progress bar.
            finished = 0
            for home, share in shares.items():
                wait = min(0.5 / len(homes), max(0.0, deadline - time.time()))
                counts = wait_frames(deployment, len(share), wait, home)
                finished += counts["done"] + counts["failed"]
            on_frames(finished, len(files))
            if finished >= len(files):
                break
            if time.time() > deadline:
                raise DeploymentError(
                    f"{len(files) - finished} of {len(files)} frames did not finish within {timeout:.0f} s; "
                    f"see the logs in {deployment.root / 'logs'}"
                )
        flush_events(deployment)
        fetch_home_files(deployment)
        summary = summarize(deployment, started)
    finally:
        if not keep:
            teardown(deployment)
    return summary


def set_speed(deployment: Deployment, node: str, speed: float) -> float:
    """Change a node's emulated speed factor while the deployment runs (testbed emulation)."""
    if node not in deployment.nodes:
        raise InputError(
            None, None, f"node {node} is not in this deployment; use one of: {', '.join(deployment.nodes)}"
        )
    call = control_call(deployment)
    answer = call(node, "POST", "/testbed/speed", {"speed": speed}, 10.0)
    if "speed" not in answer:
        raise DeploymentError(f"agent {node} refused the speed {speed}: {answer.get('error', answer)}")
    return float(answer["speed"])


def kill_node(deployment: Deployment, node: str) -> int:
    """Fault injection on the local backend: kill a node's agent and keep it down; returns its pid."""
    backend = backend_of(deployment)
    if not isinstance(backend, local.LocalBackend):
        raise InputError(None, None, f"killing a node is a fault injection of the local backend, not of {backend.name}")
    if node not in deployment.nodes:
        raise InputError(
            None, None, f"node {node} is not in this deployment; use one of: {', '.join(deployment.nodes)}"
        )
    return backend.kill_node(deployment.root, node)


def remove(deployment: Deployment) -> None:
    """Delete a stopped deployment's folder."""
    shutil.rmtree(deployment.root, ignore_errors=True)
