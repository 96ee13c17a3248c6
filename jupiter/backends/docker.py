"""The docker backend: one container per node, on a private network of this machine's engine.

`DockerBackend` runs the same image (built by `jupiter build`,
`jupiter.backends.image_build`) the kubernetes backend would: one
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
import math
import os
import time
from collections.abc import Callable
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
    agent_line_time,
    engine_line_time,
)
from jupiter.backends.control import DirectTransport
from jupiter.backends.docker_client import DockerEngine, EngineError, Mount
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.errors import JupiterError
from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import NodeAddress, Plan
from jupiter.render.spec import AGENT_UID, agent_ports, container_plan, image_spec
from jupiter.runtime.shaping import Rules, egress_commands, kernel_bandwidth_testbed, shaped_nodes, write_atomically

LABEL_DEPLOYMENT = "jupiter.deployment-id"
LABEL_NODE = "jupiter.node"
LABEL_APP = "jupiter.app"
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
    """A docker deployment could not be done."""


def container_name(deployment: str, node: str) -> str:
    """Name of a node's container."""
    return f"jupiter-{deployment}-{node}"


def testbed_cpus(plan: Plan) -> dict[str, float]:
    """CPU limits (cores) from the plan's testbed speed factors: speed times one core."""
    testbed = plan.testbed
    if testbed is None:
        return {}
    return {node: testbed.speed(node) for node in plan.nodes if testbed.speed(node) != 1.0}


def without_speeds(plan: Plan) -> Plan:
    """The plan with the testbed's speed factors removed (CPU limits emulate them instead)."""
    if plan.testbed is None:
        return plan
    return dataclasses.replace(plan, testbed=dataclasses.replace(plan.testbed, speeds={}))


def tc_shaped_nodes(plan: Plan, nodes: list[str]) -> list[str]:
    """Nodes whose links `tc` shapes: those with a bandwidth-limited link to another running node."""
    return shaped_nodes(plan.testbed, nodes) if plan.testbed is not None else []


def agents_plan(plan: Plan, kernel_bandwidth: bool) -> Plan:
    """The plan the agents in containers get: no speeds (CPU limits), and no bandwidths when `tc` shapes them."""
    plan = without_speeds(plan)
    if plan.testbed is None or not kernel_bandwidth:
        return plan
    return dataclasses.replace(plan, testbed=kernel_bandwidth_testbed(plan.testbed))


def shaping_rules(plan: Plan, node: str, addresses: dict[str, str]) -> Rules:
    """A node's tc rules, from the plan's testbed and its peers' container addresses."""
    assert plan.testbed is not None, "only a testbed's links are shaped"
    commands = egress_commands(plan.testbed, node, {peer: ip for peer, ip in addresses.items() if peer != node})
    return Rules(node=node, commands=tuple(tuple(command) for command in commands))


class DockerHandle(Handle):
    """A deployment's containers, found again by their deployment label."""

    backend = "docker"
    profiles_side_by_side = True
    """Each container runs within its own CPU limit (from the testbed's speeds or `[DEPLOY] CPUS`); on a
    machine with fewer cores than containers, `[PROFILING] EXEC_PARALLEL = no` measures one at a time."""

    def __init__(
        self,
        attachment: Attachment,
        progress: Progress = lambda _: None,
        engine_factory: Callable[[], DockerEngine] = DockerEngine,
    ) -> None:
        super().__init__(attachment, progress)
        self.engine_factory = engine_factory

    def transport(self) -> DirectTransport:
        """Containers' addresses on the bridge network: agents know each other by name, this machine does not."""
        public = self.info.get("public_hosts", {})
        return DirectTransport(
            {
                name: (str(public.get(name, address.host)), address.control_port)
                for name, address in self.attachment.nodes.items()
            }
        )

    def browser_access(self, node: str) -> list[BrowserAccess]:
        """The container's address on the bridge network, which this machine reaches directly (Linux)."""
        address = self.attachment.nodes[node]
        host = self.info.get("public_hosts", {}).get(node, address.host)
        return [BrowserAccess(f"http://{host}:{address.control_port}")]

    def read_log(self, node: str, cursor: LogCursor) -> tuple[list[LogLine], LogCursor]:
        """The container's output through the engine, with the engine's timestamps.

        The cursor is the timestamp of the last line read (the engine keeps
        nanoseconds, so no line is read twice). A container that is gone
        (after teardown) has its output in `logs/<node>.log`, read as the
        local backend's.
        """
        if isinstance(cursor, tuple):
            return super().read_log(node, cursor)  # reading the saved file already
        engine = self.engine_factory()
        name = self.info.get("containers", {}).get(node) or container_name(self.info["deployment_id"], node)
        if not engine.exists(name):
            return super().read_log(node, None)
        last = float(cursor) if cursor is not None else 0.0
        lines: list[LogLine] = []
        for raw in engine.log_lines(name, since=last or None):
            stamp, text = engine_line_time(raw)
            if math.isnan(stamp):  # no engine timestamp: the agent's own, or the previous line's
                stamp = agent_line_time(text, lines[-1].time if lines else last)
            if stamp <= last:
                continue
            lines.append(LogLine(stamp, node, text))
        return lines, (lines[-1].time if lines else cursor)

    def _label(self) -> str:
        return f"{LABEL_DEPLOYMENT}={self.info['deployment_id']}"

    def running(self) -> bool:
        states = self.engine_factory().containers(self._label())
        return any(state.status in ("running", "restarting", "created") for state in states)

    def stop(self) -> list[str]:
        engine = self.engine_factory()
        label = self._label()
        logs = Path(self.info["root"]) / "logs"
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

    def describe(self) -> list[str]:
        """Containers of the deployment and their states (for `jupiter status`)."""
        states = self.engine_factory().containers(self._label())
        lines = [f"container {s.name}: {s.status}" for s in sorted(states, key=lambda s: s.name)]
        if self.info.get("shaped"):
            lines.append(f"links' bandwidth shaped with tc on: {', '.join(self.info['shaped'])}")
        return lines


class DockerBackend(Backend):
    """Agents as containers of the app's image on a private network of this machine's engine."""

    name = "docker"
    handle = DockerHandle

    def __init__(
        self,
        spec: DeploymentSpec,
        progress: Progress = lambda _: None,
        timeout: float = 30.0,
        engine_factory: Callable[[], DockerEngine] = DockerEngine,
    ) -> None:
        super().__init__(spec, progress, timeout)
        self.engine_factory = engine_factory

    def addresses(self, nodes: list[tuple[str, str]]) -> dict[str, NodeAddress]:
        control, data = agent_ports(self.spec.ports)
        # Peers find each other by node name (a network alias); ports are the same in every container.
        return {name: NodeAddress(name, role, name, data, control) for name, role in nodes}

    def start(self, layout: DeploymentLayout, plan: Plan, nodes: list[str]) -> dict[str, Any]:
        spec = self.spec
        image = image_spec(spec)
        engine = self.engine_factory()
        if not engine.has_image(image.image):
            raise DockerError(f"image {image.image} not found; build it with `jupiter build`")
        root = layout.root
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
        plans = layout.plans
        plans.mkdir(exist_ok=True)
        limits = testbed_cpus(plan)
        shaped = tc_shaped_nodes(plan, nodes)
        in_containers = agents_plan(plan, kernel_bandwidth=bool(shaped))
        for node in nodes:
            (plans / f"plan-{node}.json").write_text(container_plan(in_containers, node).to_json())
        shaping = layout.shaping
        if shaped:
            shaping.mkdir(exist_ok=True)  # before _container_user, which hands the folder to the agents' user
            info["shaped"] = shaped
        user = _container_user(root)
        token = layout.token.read_text().strip()
        cpus = {**limits, **spec.containers.cpus}
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
                    image=image.image,
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
                    log_files=(self.spec.runtime.log_file_size, self.spec.runtime.max_log),
                )
            info["public_hosts"] = {node: engine.address(container_name(deployment, node), network) for node in nodes}
            for node in shaped:
                rules = shaping_rules(plan, node, info["public_hosts"])
                write_atomically(shaping / f"{node}.rules.json", rules.to_json())
            _wait_shaped(engine, deployment, shaping, shaped)
        except BaseException:
            attachment = Attachment(deployment, layout, plan.nodes, token, info)
            DockerHandle(attachment, engine_factory=self.engine_factory).stop()
            raise
        return info


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
