"""The docker backend and `jupiter build`: the app's agent image, and one container per node.

`build_image` lays out an offline build context (the rendered Dockerfile,
the app folder, Jupiter's own wheel and every third-party wheel, fetched on
this machine with `pip download` for Python 3.11) and builds it with the
engine, so a machine whose containers cannot reach PyPI still builds.

`DockerBackend` runs the same image the kubernetes backend would: one
container per node on a private network created for the deployment, each
reachable by its peers under its node name, all labelled with the deployment
id (teardown removes by label). Each agent's plan says it listens on
0.0.0.0 inside its container; this machine's CLI reaches the agents at their
addresses on the bridge network (`info["public_hosts"]`). The deployment
folder is mounted into every container at the same path, so home's outputs,
statistics and profile store land where the local backend puts them.

Heterogeneity: a node's speed factor from the testbed file becomes its CPU
limit (speed times one core, so a single-threaded task on a 0.25 node runs four
times slower), unless `[DEPLOY] CPUS` sets one explicitly; the agents in
containers then run at full speed inside that limit (their plan's testbed
keeps the links but not the speeds, so nothing is slowed twice).

Links: each container has an interface of its own, so the kernel shapes
bandwidth. A node with a bandwidth-limited link gets the NET_ADMIN capability
and starts through `jupiter.runtime.shaping`, which applies the `tc` (HTB)
rules this backend writes once every container has an address, drops to the
agent's user and only then runs the agent; the backend waits until every
shaped node reported, and a refusal stops the deploy with tc's answer.
Latency is not shaped by `tc` (no netem is assumed), so the agents keep
emulating it: their testbed has every bandwidth unlimited
(`kernel_bandwidth_testbed`), and bandwidth is not applied twice. Nodes with
nothing to shape run as before: no capability, no qdisc.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jupiter
from jupiter.backends.docker_client import DockerEngine, EngineError, Mount
from jupiter.errors import JupiterError
from jupiter.model.workspace import Workspace
from jupiter.render.dockerfile import render_dockerfile
from jupiter.render.spec import AGENT_UID, agent_ports, container_plan, image_spec
from jupiter.runtime.plan import NodeAddress, Plan
from jupiter.runtime.shaping import Rules, egress_commands, kernel_bandwidth_testbed, shaped_nodes, write_atomically
from jupiter.testbed import Testbed

LABEL_DEPLOYMENT = "jupiter.deployment-id"
LABEL_NODE = "jupiter.node"
LABEL_APP = "jupiter.app"
PYTHON_VERSION = "3.11"
"""Python of the images (bookworm's and python:3.11-slim's); wheels are fetched for it."""
# Reproducible wheel timestamps, so an unchanged Jupiter keeps its image layer cached.
_SOURCE_DATE_EPOCH = "315532800"
AGENT_COMMAND = ["python3", "-m", "jupiter.runtime.node"]
"""The image's entry point (dockerfiles/agent.Dockerfile.j2)."""
SPOOL = "/jupiter-spool"
"""Memory file system in each container for the files in transit (see `jupiter.backends.local`):
the deployment folder is bind-mounted from the host's disk, where creating and deleting a few
files per hop is slow on some file systems. It lives as long as the container, restarts included."""
SHAPER_COMMAND = ["python3", "-m", "jupiter.runtime.shaping"]
"""Entry point of a shaped node's container: applies its tc rules, then becomes the agent."""
SHAPING_TIMEOUT = 60.0
"""Seconds every shaped node has to report its tc rules applied (it takes well under one)."""


class DockerError(JupiterError):
    """A docker deployment or image build could not be done."""


# ---------------------------------------------------------------------------- build


def image_requirements(workspace: Workspace) -> list[str]:
    """What the image installs from wheels: Jupiter's runtime dependencies, then the app's requirements."""
    # From the source tree's pyproject.toml, the same tree the wheel is built from (installed metadata may lag).
    with (source_tree() / "pyproject.toml").open("rb") as handle:
        requirements = list(tomllib.load(handle)["project"]["dependencies"])
    app_requirements = workspace.app.requirements
    if app_requirements is not None:
        for raw in app_requirements.read_text().splitlines():
            requirement = raw.split("#", 1)[0].strip()
            if requirement:
                requirements.append(requirement)
    return requirements


def source_tree() -> Path:
    """Jupiter's source checkout (where `pyproject.toml` is), to build its wheel from."""
    root = Path(jupiter.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise DockerError(
            f"jupiter build needs Jupiter's source tree to make its wheel, and {root} is not one; "
            "run it from a checkout installed with `pip install -e .`"
        )
    return root


def _pip(args: list[str], what: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(  # noqa: S603 - argument list, our own interpreter
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=900,
    )
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-3:]
        raise DockerError(f"{what} failed: {' / '.join(tail)}")


def _platforms() -> list[str]:
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    # Newest first; pip accepts wheels of every older manylinux too.
    return [f"manylinux_2_34_{machine}", f"manylinux2014_{machine}", f"linux_{machine}"]


def prepare_context(workspace: Workspace, context: Path, progress: Callable[[str], None] = lambda _: None) -> None:
    """Lay out an offline build context in `context` (an empty folder)."""
    spec = image_spec(workspace)
    (context / "Dockerfile").write_text(render_dockerfile(spec))
    requirements = image_requirements(workspace)
    (context / "requirements.txt").write_text("\n".join(requirements) + "\n")
    shutil.copytree(workspace.app.path, context / "app", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    deps = context / "wheels" / "deps"
    deps.mkdir(parents=True)
    progress(f"fetching {len(requirements)} requirements' wheels for Python {PYTHON_VERSION} (pip download)")
    platform_args = [arg for tag in _platforms() for arg in ("--platform", tag)]
    _pip(
        [
            "download",
            "--quiet",
            "--dest",
            str(deps),
            "--only-binary=:all:",
            "--python-version",
            PYTHON_VERSION,
            "--implementation",
            "cp",
            *platform_args,
            "-r",
            str(context / "requirements.txt"),
        ],
        "pip download of the image's requirements",
    )
    progress("building Jupiter's wheel (pip wheel --no-deps)")
    env = {**os.environ, "SOURCE_DATE_EPOCH": _SOURCE_DATE_EPOCH}
    _pip(
        ["wheel", "--quiet", "--no-deps", "--wheel-dir", str(context / "wheels" / "jupiter"), str(source_tree())],
        "pip wheel of Jupiter",
        env=env,
    )


@dataclass(frozen=True)
class BuildResult:
    """An image `jupiter build` made."""

    image: str
    image_id: str
    size: int
    """Bytes."""
    seconds: float


def build_image(
    workspace: Workspace,
    progress: Callable[[str], None] = lambda _: None,
    push: bool = False,
    engine: DockerEngine | None = None,
    no_cache: bool = False,
) -> BuildResult:
    """Build (and optionally push) the app's agent image."""
    spec = image_spec(workspace)
    engine = engine or DockerEngine()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jupiter-build-") as tmp:
        context = Path(tmp)
        prepare_context(workspace, context, progress)
        progress(f"building {spec.image} from {spec.base_image}")
        image_id = engine.build(context, spec.image, progress, labels={LABEL_APP: spec.app}, no_cache=no_cache)
    seconds = time.monotonic() - started
    if push:
        if "/" not in spec.image.split(":", 1)[0]:
            raise DockerError(f"cannot push {spec.image}: set [DEPLOY] REGISTRY (or --registry) to a registry first")
        progress(f"pushing {spec.image}")
        engine.push(spec.image, progress)
    return BuildResult(spec.image, image_id, engine.image_size(spec.image), seconds)


# -------------------------------------------------------------------------- backend


def container_name(deployment: str, node: str) -> str:
    """Name of a node's container."""
    return f"jupiter-{deployment}-{node}"


def testbed_cpus(plan: Plan) -> dict[str, float]:
    """CPU limits (cores) from the plan's testbed speed factors: speed times one core."""
    raw = plan.extra.get("testbed")
    if not raw:
        return {}
    testbed = Testbed.from_json(raw)
    return {node: testbed.speed(node) for node in plan.nodes if testbed.speed(node) != 1.0}


def without_speeds(plan: Plan) -> Plan:
    """The plan with the testbed's speed factors removed (CPU limits emulate them instead)."""
    raw = plan.extra.get("testbed")
    if not raw:
        return plan
    return dataclasses.replace(plan, extra={**plan.extra, "testbed": {**raw, "speeds": {}}})


def tc_shaped_nodes(plan: Plan, nodes: list[str]) -> list[str]:
    """Nodes whose links `tc` shapes: those with a bandwidth-limited link to another running node."""
    raw = plan.extra.get("testbed")
    return shaped_nodes(Testbed.from_json(raw), nodes) if raw else []


def agents_plan(plan: Plan, kernel_bandwidth: bool) -> Plan:
    """The plan the agents in containers get: no speeds (CPU limits), and no bandwidths when `tc` shapes them."""
    plan = without_speeds(plan)
    raw = plan.extra.get("testbed")
    if not raw or not kernel_bandwidth:
        return plan
    return dataclasses.replace(plan, extra={**plan.extra, "testbed": kernel_bandwidth_testbed(raw)})


def shaping_rules(plan: Plan, node: str, addresses: dict[str, str]) -> Rules:
    """A node's tc rules, from the plan's testbed and its peers' container addresses."""
    testbed = Testbed.from_json(plan.extra["testbed"])
    commands = egress_commands(testbed, node, {peer: ip for peer, ip in addresses.items() if peer != node})
    return Rules(node=node, commands=tuple(tuple(command) for command in commands))


class DockerBackend:
    """Agents as containers of the app's image on a private network of this machine's engine."""

    name = "docker"

    def __init__(
        self,
        workspace: Workspace | None = None,
        engine_factory: Callable[[], DockerEngine] = DockerEngine,
    ) -> None:
        """`workspace` is needed to start a deployment, not to reach or stop one."""
        self.workspace = workspace
        self.engine_factory = engine_factory

    def _workspace(self) -> Workspace:
        if self.workspace is None:
            raise DockerError("internal: the docker backend was made without a workspace")
        return self.workspace

    def addresses(self, nodes: list[tuple[str, str]]) -> dict[str, NodeAddress]:
        control, data = agent_ports(self._workspace().config)
        # Peers find each other by node name (a network alias); ports are the same in every container.
        return {name: NodeAddress(name, role, name, data, control) for name, role in nodes}

    def start(self, root: Path, plan: Plan, nodes: list[str]) -> dict[str, Any]:
        workspace = self._workspace()
        spec = image_spec(workspace)
        engine = self.engine_factory()
        if not engine.has_image(spec.image):
            raise DockerError(f"image {spec.image} not found; build it with `jupiter build`")
        deployment = plan.deployment
        network = f"jupiter-{deployment}"
        labels = {LABEL_DEPLOYMENT: deployment, LABEL_APP: plan.app_name}
        info: dict[str, Any] = {
            "deployment_id": deployment,
            "root": str(root),
            "network": network,
            "containers": {node: container_name(deployment, node) for node in nodes},
            "public_hosts": {},
        }
        plans = root / "plans"
        plans.mkdir(exist_ok=True)
        limits = testbed_cpus(plan)
        shaped = tc_shaped_nodes(plan, nodes)
        in_containers = agents_plan(plan, kernel_bandwidth=bool(shaped))
        for node in nodes:
            (plans / f"plan-{node}.json").write_text(container_plan(in_containers, node).to_json())
        shaping = root / "shaping"
        if shaped:
            shaping.mkdir(exist_ok=True)  # before _container_user, which hands the folder to the agents' user
            info["shaped"] = shaped
        user = _container_user(root)
        token = (root / "token").read_text().strip()
        cpus = {**limits, **workspace.config.deploy.containers.cpus}
        try:
            engine.create_network(network, labels)
            for node in nodes:
                command = [
                    *("--plan", str(plans / f"plan-{node}.json")),
                    *("--node", node, "--root", str(root), "--spool", SPOOL),
                ]
                runs_as = user
                if node in shaped:
                    # Root with NET_ADMIN only until the rules are applied; the agent then runs as `user`.
                    shaper = [
                        *("--rules", str(shaping / f"{node}.rules.json")),
                        *("--status", str(shaping / f"{node}.status.json")),
                        *("--user", user or f"{AGENT_UID}:{AGENT_UID}"),
                    ]
                    command, runs_as = [*shaper, "--", *AGENT_COMMAND, *command], "0:0"
                engine.run(
                    name=container_name(deployment, node),
                    image=spec.image,
                    network=network,
                    alias=node,
                    labels={**labels, LABEL_NODE: node},
                    environment={"JUPITER_TOKEN": token},
                    # Same path inside: every absolute path of the plan (stores, outputs) holds there too.
                    mounts=[Mount(root, str(root))],
                    cpus=cpus.get(node),
                    entrypoint=SHAPER_COMMAND if node in shaped else None,
                    cap_add=["NET_ADMIN"] if node in shaped else None,
                    no_new_privileges=node in shaped,
                    # Sticky and open to all: the agent's user may differ from the shaper's (root).
                    tmpfs={SPOOL: "mode=1777"},
                    command=command,
                    user=runs_as,
                )
            info["public_hosts"] = {node: engine.address(container_name(deployment, node), network) for node in nodes}
            for node in shaped:
                rules = shaping_rules(plan, node, info["public_hosts"])
                write_atomically(shaping / f"{node}.rules.json", rules.to_json())
            _wait_shaped(engine, deployment, shaping, shaped)
        except BaseException:
            self.stop(info)
            raise
        return info

    def running(self, info: dict[str, Any]) -> bool:
        states = self.engine_factory().containers(f"{LABEL_DEPLOYMENT}={info['deployment_id']}")
        return any(state.status in ("running", "restarting", "created") for state in states)

    def stop(self, info: dict[str, Any]) -> list[str]:
        engine = self.engine_factory()
        label = f"{LABEL_DEPLOYMENT}={info['deployment_id']}"
        logs = Path(info["root"]) / "logs"
        for state in engine.containers(label):
            # Keep each agent's output where the local backend keeps its logs.
            node = state.labels.get(LABEL_NODE, state.name)
            # A log is a courtesy: removing the containers below must happen even without it.
            with contextlib.suppress(EngineError, OSError):
                logs.mkdir(exist_ok=True)
                (logs / f"{node}.log").write_bytes(engine.logs(state.name))
        removed = [f"container {name}" for name in engine.remove_containers(label)]
        removed += [f"network {name}" for name in engine.remove_networks(label)]
        return removed

    def describe(self, info: dict[str, Any]) -> list[str]:
        """Containers of the deployment and their states (for `jupiter status`)."""
        states = self.engine_factory().containers(f"{LABEL_DEPLOYMENT}={info['deployment_id']}")
        lines = [f"container {s.name}: {s.status}" for s in sorted(states, key=lambda s: s.name)]
        if info.get("shaped"):
            lines.append(f"links' bandwidth shaped with tc on: {', '.join(info['shaped'])}")
        return lines


def _wait_shaped(engine: DockerEngine, deployment: str, shaping: Path, nodes: list[str]) -> None:
    """Wait until every shaped node reported its tc rules applied; DockerError with tc's answer otherwise."""
    deadline = time.monotonic() + SHAPING_TIMEOUT
    waiting = list(nodes)
    while waiting:
        node = waiting[0]
        status = shaping / f"{node}.status.json"
        if status.exists():
            report = json.loads(status.read_text())
            if not report["ok"]:
                error = str(report["error"])  # tc's refusals name the node, tc's answer and the fix
                raise DockerError(error if error.startswith(f"{node}: ") else f"{node}: {error}")
            waiting.pop(0)
            continue
        name = container_name(deployment, node)
        state = engine.state(name)
        late = time.monotonic() > deadline
        if late or state in ("restarting", "exited", "dead"):
            output = engine.logs(name).decode(errors="replace")
            lines = output.strip().splitlines()
            last = f" (last line: {lines[-1].strip()})" if lines else ""
            why = f"within {SHAPING_TIMEOUT:.0f} s" if late else f"and is {state}"
            fix = (
                "the image predates link shaping: rebuild it with `jupiter build`"
                if "jupiter.runtime.shaping" in output
                else f"see `docker logs {name}`"
            )
            raise DockerError(f"node {node} did not report its link shaping {why}{last}; {fix}")
        time.sleep(0.05)


def _container_user(root: Path) -> str | None:
    """User agents run as: the caller's uid (so files stay theirs), or the image's user under root."""
    uid = os.getuid()
    if uid != 0:
        return f"{uid}:{os.getgid()}"
    # As root, hand the deployment folder to the image's non-root user instead of running as root.
    for path in [root, *root.rglob("*")]:
        if path.name != "token":
            os.chown(path, AGENT_UID, AGENT_UID)
    return None
