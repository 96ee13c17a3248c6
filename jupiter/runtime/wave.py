"""Distributed WAVE: the agents compute the mapping themselves, as in the original.

1. The deployment asks home to start (`POST /wave/start`) with the
   controllers of every task (chosen by the mapping package's routine), the
   policy (random or greedy with its weights), the root tasks' nodes from
   `input_node.txt` and the resource figures the profilers gathered.
2. Home places each root task (on its `input_node.txt` node, else by the
   policy) and sends it to that node (`POST /wave/assign`).
3. A node that receives a task appoints the node of every child that task
   controls, with `jupiter.mapping.appoint_children`, using only its own
   link profile (the fits it measured) and the resource figures it was given;
   it reports the appointments to home (`POST /wave/report`) and sends each
   child to its node, which goes on in the same way.
4. Home assembles the mapping; the deployment polls `GET /wave/result` until
   every task has a node, or gives up after a timeout naming what is missing.

Node-to-node messages are sent from a background thread so that a handler
never waits for another agent's answer (chains of assignments cannot
deadlock the control planes).
"""

from __future__ import annotations

import json
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, jsonify

from jupiter.mapping import GreedyPolicy, RandomPolicy, Resources, appoint_children
from jupiter.runtime.agent import log

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from jupiter.runtime.agent import Agent

SEND_TIMEOUT = 5.0
DEFAULT_PROBE_BYTES = 1024


@dataclass
class WaveState:
    """Home's view of one distributed WAVE run."""

    tasks: list[str] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def post(agent: Agent, node: str, path: str, data: Mapping[str, Any], timeout: float = SEND_TIMEOUT) -> Any:
    """POST JSON to another agent's control plane (raises OSError/URLError on failure)."""
    address = agent.plan.nodes[node]
    url = f"http://{address.host}:{address.control_port}{path}"
    req = urllib.request.Request(
        url,
        data=json.dumps(data).encode(),
        headers={"X-Jupiter-Token": agent.token, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())


def _policy(context: Mapping[str, Any], task: str) -> RandomPolicy | GreedyPolicy:
    if context["policy"] == "random":
        # One generator per controlling task: the same seed gives the same mapping
        # whatever order the assignments arrive in.
        return RandomPolicy(random.Random(f"{context.get('seed', 0)}:{task}"))
    w_net, w_cpu, w_mem = context.get("weights", (1.0, 1.0, 1.0))
    return GreedyPolicy(w_net=w_net, w_cpu=w_cpu, w_mem=w_mem)


def decide(agent: Agent, task: str, context: Mapping[str, Any]) -> dict[str, str]:
    """This node's appointments for the children `task` controls (its own links, given resources)."""
    controllers: Mapping[str, str] = context["controllers"]
    children = [child for child, ctrl in controllers.items() if ctrl == task]
    if not children:
        return {}
    candidates: list[str] = list(context["candidates"])
    resources = {n: Resources(cpu=r["cpu"], memory=r["memory"]) for n, r in context.get("resources", {}).items()}
    fits = getattr(getattr(agent, "profiler", None), "fits", {})
    sizes: Mapping[str, float] = context.get("edge_sizes", {})
    out: dict[str, str] = {}
    policy = _policy(context, task)
    for child in children:
        size = float(sizes.get(f"{task}->{child}", DEFAULT_PROBE_BYTES))
        delay = {n: fits[n].predict(size) for n in candidates if n in fits}
        if isinstance(policy, RandomPolicy) or not delay:
            # Random WAVE may stay put; greedy WAVE looks at its neighbours, so its own
            # node counts only when it has measured no link at all.
            delay[agent.node] = 0.0
        out.update(appoint_children(task, agent.node, [child], candidates, delay, resources, policy))
    return out


def _forward(agent: Agent, task: str, context: Mapping[str, Any]) -> None:
    """Appoint, report to home, then hand each child to its node (runs in a thread)."""
    try:
        appointed = decide(agent, task, context)
    except ValueError as exc:
        appointed = {}
        _report(agent, {}, [f"{agent.node} could not appoint the children of {task}: {exc}"])
        return
    _report(agent, appointed, [])
    for child, node in appointed.items():
        _assign(agent, node, child, context)


def _report(agent: Agent, appointed: Mapping[str, str], errors: list[str]) -> None:
    try:
        post(agent, agent.plan.home, "/wave/report", {"mapping": dict(appointed), "errors": errors, "by": agent.node})
    except (OSError, urllib.error.URLError) as exc:
        log.error("WAVE: cannot report %s to home: %s", appointed, exc)


def _assign(agent: Agent, node: str, task: str, context: Mapping[str, Any]) -> None:
    try:
        post(agent, node, "/wave/assign", {"task": task, "context": dict(context)})
    except (OSError, urllib.error.URLError) as exc:
        _report(agent, {}, [f"{node} did not accept task {task} from {agent.node}: {exc}"])


def start(agent: Agent, state: WaveState, context: dict[str, Any]) -> None:
    """Home: place the root tasks and send them out (runs in a thread)."""
    roots = [task for task in context["order"] if task not in context["controllers"]]
    initial: Mapping[str, str] = context.get("initial", {})
    resources = {n: Resources(cpu=r["cpu"], memory=r["memory"]) for n, r in context.get("resources", {}).items()}
    for task in roots:
        node = (
            initial.get(task)
            or appoint_children("", None, [task], list(context["candidates"]), {}, resources, _policy(context, task))[
                task
            ]
        )
        with state.lock:
            state.mapping[task] = node
        _assign(agent, node, task, context)


def register_routes(app: Flask, agent: Agent, body: Callable[[], dict[str, Any]]) -> None:
    """WAVE routes: `/wave/assign` on every agent; `/wave/start`, `/wave/report`, `/wave/result` at home."""
    state = WaveState()

    @app.post("/wave/assign")
    def assign() -> ResponseReturnValue:
        data = body()
        task, context = str(data["task"]), data["context"]
        threading.Thread(target=_forward, args=(agent, task, context), name=f"wave-{task}", daemon=True).start()
        return jsonify({"ok": True})

    @app.post("/wave/start")
    def wave_start() -> ResponseReturnValue:
        context = body()
        with state.lock:
            state.tasks = list(context["order"])
            state.mapping.clear()
            state.errors.clear()
        threading.Thread(target=start, args=(agent, state, context), name="wave-start", daemon=True).start()
        return jsonify({"ok": True})

    @app.post("/wave/report")
    def report() -> ResponseReturnValue:
        data = body()
        with state.lock:
            state.mapping.update(data.get("mapping", {}))
            state.errors.extend(data.get("errors", []))
        return jsonify({"ok": True})

    @app.get("/wave/result")
    def result() -> ResponseReturnValue:
        body()
        with state.lock:
            missing = [task for task in state.tasks if task not in state.mapping]
            return jsonify(
                {"mapping": dict(state.mapping), "missing": missing, "complete": not missing, "errors": state.errors}
            )
