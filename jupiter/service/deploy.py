"""Starting a deployment, waiting for its agents, and stopping it.

`deploy` takes a resolved spec (`jupiter.model.deployment_spec`): it makes
the deployment folder and its token, asks the backend for addresses,
writes the plan, starts one agent per node, waits until every agent answers
its health check, then — unless the mapping is static — runs the original's
sequence profile -> map -> dispatch (`jupiter.service.pipeline`). Anything
that fails after the agents started tears the deployment down.

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
from pathlib import Path

from jupiter.backends import backend_class
from jupiter.backends.base import Attachment, BackendError, Progress
from jupiter.backends.control import Unreachable
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.layout import DeploymentLayout
from jupiter.service.app_env import prepare
from jupiter.service.pipeline import profile_map_dispatch
from jupiter.service.planning import static_or_default_mapping
from jupiter.service.plans import build_plan
from jupiter.service.record import Deployment, DeploymentError, DeploymentRecord, find, forget_current, make_current

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
    """
    with private_files(spec.umask):
        return _deploy(spec, timeout, progress, reprofile, map_tasks)


def _deploy(spec: DeploymentSpec, timeout: float, progress: Progress, reprofile: bool, map_tasks: bool) -> Deployment:
    states = spec.state_dir
    existing = find(states, required=False)
    if existing is not None:
        if existing.handle.running():
            raise DeploymentError(
                f"deployment {existing.id} is still running here; stop it with `jupiter teardown` first"
            )
        forget_current(states, existing.id)
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
    deployment = Deployment(record, handle, progress)
    make_current(states, deployment_id)
    try:
        if not handle.waits_ready:
            wait_ready(deployment, timeout)
        if measured:
            progress(f"started {len(running)} agents in {time.time() - started:.2f} s")
            deployment = profile_map_dispatch(spec, deployment, progress, map_tasks)
    except BaseException:
        teardown(deployment)
        raise
    progress(f"deployed {len(running)} agents in {time.time() - started:.2f} s")
    return deployment


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
    forget_current(deployment.root.parent, deployment.id)
    return stopped
