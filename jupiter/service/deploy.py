"""Starting a deployment, waiting for its agents, and stopping it.

`deploy` takes a resolved spec (`jupiter.model.deployment_spec`): it makes
the deployment folder and its token, asks the backend for addresses,
writes the plan, starts one agent per node, waits until every agent answers
its health check, checks that another transfer method (`TRANSFER = scp`)
reaches every node, then — unless the mapping is static — runs the
original's sequence profile -> map -> dispatch (`jupiter.service.pipeline`).
Anything that fails after the agents started tears the deployment down.

Everything a deployment writes is private by default: the CLI makes the
deployment folder and its files under `[DEPLOY] UMASK` (077: folders 0700,
files 0600), the local backend's supervisor and agents inherit it, and every
agent sets it again from the plan (containers start with their own).
Where the backend runs tasks on this machine, the app's requirements are
installed first (`jupiter.service.app_env`) and the plan names the folder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jupiter.backends import backend_class
from jupiter.backends.base import Attachment, Backend, BackendError, Progress
from jupiter.backends.control import Unreachable
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.layout import DeploymentLayout
from jupiter.service.app_env import AppEnvironment, prepare
from jupiter.service.deployments import forget_legacy
from jupiter.service.pipeline import profile_map_dispatch
from jupiter.service.planning import static_or_default_mapping
from jupiter.service.plans import build_plan
from jupiter.service.record import Deployment, DeploymentError, DeploymentRecord, State, write_state

READY_TIMEOUT = 30.0


def new_id() -> str:
    """A deployment id: its start time and a random part (`20261203-230424-1a2b3c`)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


@contextlib.contextmanager
def private_files(umask: int) -> Iterator[None]:
    """Create files under `umask` (`[DEPLOY] UMASK`) for the duration, then restore the caller's."""
    previous = os.umask(umask)
    try:
        yield
    finally:
        os.umask(previous)


def deploy(
    spec: DeploymentSpec,
    timeout: float = READY_TIMEOUT,
    progress: Progress = lambda _: None,
    reprofile: bool = True,
    map_tasks: bool = True,
) -> Deployment:
    """Start one agent per node, wait until every agent is ready, then profile -> map -> dispatch.

    With a static mapping the agents start with it and nothing is profiled.
    Otherwise they start without tasks, the profilers measure, the
    configured scheduler maps from the measurements, and the mapping is
    dispatched. `reprofile` allows periodic network re-profiling (configured
    by NETWORK_INTERVAL); `map_tasks=False` stops after profiling (`jupiter profile`).
    Other deployments of the same folder may be running: each has its own id,
    folder, ports (or containers, or objects) and token.
    """
    with private_files(spec.umask):
        return _deploy(spec, timeout, progress, reprofile, map_tasks)


def _deploy(spec: DeploymentSpec, timeout: float, progress: Progress, reprofile: bool, map_tasks: bool) -> Deployment:
    states = spec.state_dir
    launcher = backend_class(spec.backend)(spec, progress, timeout)
    environment = None
    if launcher.tasks_use_app_environment:
        environment = prepare(spec.app, spec.env_dir, spec.wheels)
        if environment is not None:
            progress(f"app environment {environment.describe()}")
    started = time.time()
    measured = spec.mapping.measured
    mapping = {} if measured else static_or_default_mapping(spec)
    if not measured:
        progress(f"mapped {len(mapping)} tasks with a static mapping in {time.time() - started:.2f} s")
    deployment_id = new_id()
    layout = DeploymentLayout(states / deployment_id)
    layout.root.mkdir(parents=True)
    layout.root.chmod(0o777 & ~spec.umask)  # whatever mode an older STATE_DIR has
    write_state(layout.root, State.STARTING)
    try:
        deployment = _start(spec, launcher, layout, deployment_id, mapping, reprofile, progress, environment)
    except BaseException:
        write_state(layout.root, State.FAILED)
        raise
    try:
        if not deployment.handle.waits_ready:
            wait_ready(deployment, timeout)
        if spec.transfer.method != "http":
            check_transfers(deployment, spec.transfer.method, timeout)
        if measured:
            progress(f"started {len(spec.agents)} agents in {time.time() - started:.2f} s")
            deployment = profile_map_dispatch(spec, deployment, progress, map_tasks)
    except BaseException:
        try:
            teardown(deployment)
        finally:
            write_state(layout.root, State.FAILED)
        raise
    write_state(layout.root, State.RUNNING)
    progress(f"deployed {len(spec.agents)} agents in {time.time() - started:.2f} s")
    return deployment


def _start(
    spec: DeploymentSpec,
    launcher: Backend,
    layout: DeploymentLayout,
    deployment_id: str,
    mapping: dict[str, str],
    reprofile: bool,
    progress: Progress,
    environment: AppEnvironment | None,
) -> Deployment:
    """Write the token, the plan and the record, and start the agents (not yet ready)."""
    token = secrets.token_hex(32)
    descriptor = os.open(layout.token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as secret:
        secret.write(token)
    running = spec.agents
    addresses = launcher.addresses(spec.roles())
    plan = build_plan(
        spec,
        deployment_id,
        mapping,
        addresses,
        layout,
        reprofile,
        app_env=environment.path if environment is not None else None,
    )
    plan.save(layout.plan)
    info = launcher.start(layout, plan, list(running))
    record = DeploymentRecord(
        id=deployment_id,
        root=layout.root,
        backend=launcher.name,
        info=info,
        home=plan.home,
        nodes=dict(addresses),
        created=time.time(),
        app=spec.app.name,
        mapping=dict(mapping),
        homes=list(plan.all_homes),
    )
    record.save()
    handle = launcher.attach(Attachment(deployment_id, layout, addresses, token, info))
    return Deployment(record, handle, progress)


def wait_ready(deployment: Deployment, timeout: float) -> None:
    """Wait until every agent answers its health check; name the ones that do not."""
    deadline = time.time() + timeout
    waiting = set(deployment.nodes)
    control = deployment.control
    while waiting and time.time() < deadline:
        waiting = {node for node in waiting if not control.healthy(node, deployment.id)}
        if waiting:
            if not deployment.handle.running():
                raise DeploymentError(
                    f"the deployment stopped while starting; see the logs in {deployment.layout.logs}"
                )
            time.sleep(0.05)
    if waiting:
        node = min(waiting, key=lambda name: (_promise(_last_line(deployment.layout.log(name))), name))
        log = deployment.layout.log(node)
        last = _last_line(log)
        raise DeploymentError(
            f"node {node} did not come up within {timeout:.0f} s; see {log}" + (f" (last line: {last})" if last else "")
        )


def _promise(last: str) -> int:
    """How likely an agent that is not up yet is to come up: 0 it said something else (an error), 1 nothing yet,
    2 it said it is ready. The node named first is the likely culprit, not a slow one on a busy machine."""
    if not last:
        return 1
    return 2 if " ready:" in last else 0


TRANSFER_CHECK_TIMEOUT = 60.0
"""Seconds every agent has to copy its probe to every peer (one attempt each, side by side)."""


def check_transfers(deployment: Deployment, method: str, timeout: float = TRANSFER_CHECK_TIMEOUT) -> None:
    """Every agent copies a probe to every other node with the transfer method, once; DeploymentError if one fails.

    The error names a pair of nodes that failed, the method's answer and the
    fix. Without the check, a missing SSH server would show only after every
    retry of every file.
    """
    failed: list[tuple[str, str, str]] = []
    control = deployment.control
    with ThreadPoolExecutor(max_workers=max(1, len(deployment.nodes))) as pool:
        answers = {
            node: pool.submit(control.post, node, "/transfer/check", {"timeout": timeout}, timeout + 10)
            for node in deployment.nodes
        }
        for node, future in answers.items():
            try:
                answer = future.result()
            except Unreachable as exc:
                raise DeploymentError(str(exc)) from None
            if "error" in answer:
                raise DeploymentError(f"agent {node} could not check TRANSFER = {method}: {answer['error']}")
            failed += [(node, peer, why) for peer, why in sorted(answer["unreachable"].items())]
    if not failed:
        return
    node, peer, why = failed[0]
    more = f" (and {len(failed) - 1} more pairs of nodes)" if len(failed) > 1 else ""
    fix = (
        "start an SSH server on every node that accepts [AUTH] KEY_FILE for [AUTH] USERNAME on [PORT] SSH_SVC "
        "(docs/profiling.md), or set TRANSFER = http"
        if method == "scp"
        else f"fix the plug-in {method}, or set TRANSFER = http"
    )
    raise DeploymentError(f"TRANSFER = {method}: {node} cannot copy files to {peer}: {why}{more}; {fix}")


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""
    return ""


def teardown(deployment: Deployment) -> list[str]:
    """Stop everything the deployment started; returns what was stopped."""
    try:
        stopped = deployment.handle.stop()
    except (BackendError, Unreachable) as exc:
        raise DeploymentError(f"cannot stop deployment {deployment.id}: {exc}") from None
    write_state(deployment.root, State.STOPPED)
    forget_legacy(deployment.root.parent, deployment.id)
    return stopped
