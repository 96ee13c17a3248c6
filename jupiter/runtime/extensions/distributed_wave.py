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
import logging
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jupiter.mapping import GreedyPolicy, RandomPolicy, Resources, appoint_children
from jupiter.profiling.fit import LinkFit
from jupiter.runtime.routes import HttpError, Request, Routes
from jupiter.runtime.services import AgentServices, Extension

log = logging.getLogger("jupiter.agent")

SEND_TIMEOUT = 5.0
DEFAULT_PROBE_BYTES = 1024


@dataclass
class WaveState:
    """Home's view of one distributed WAVE run."""

    tasks: list[str] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _policy(context: Mapping[str, Any], task: str) -> RandomPolicy | GreedyPolicy:
    if context["policy"] == "random":
        # One generator per controlling task: the same seed gives the same mapping
        # whatever order the assignments arrive in.
        return RandomPolicy(random.Random(f"{context.get('seed', 0)}:{task}"))
    w_net, w_cpu, w_mem = context.get("weights", (1.0, 1.0, 1.0))
    return GreedyPolicy(w_net=w_net, w_cpu=w_cpu, w_mem=w_mem)


def _resources(context: Mapping[str, Any]) -> dict[str, Resources]:
    return {n: Resources(cpu=r["cpu"], memory=r["memory"]) for n, r in context.get("resources", {}).items()}


def check_context(context: object) -> dict[str, Any]:
    """A WAVE context as `jupiter.service.wave_driver` sends it; 400 naming what is missing otherwise."""
    if not isinstance(context, dict):
        raise HttpError(400, "a WAVE context is a JSON object")
    for key, kind in (("policy", str), ("controllers", dict), ("order", list), ("candidates", list)):
        if not isinstance(context.get(key), kind):
            raise HttpError(400, f"the WAVE context needs {key} ({kind.__name__})")
    if context["policy"] not in ("random", "greedy"):
        raise HttpError(400, "policy must be random or greedy")
    return context


class DistributedWave(Extension):
    """The WAVE routes of one agent (module docstring)."""

    name = "distributed_wave"

    def __init__(self, services: AgentServices, fits: Callable[[], Mapping[str, LinkFit]]) -> None:
        self.services = services
        self.fits = fits
        """This node's latest link fits, by destination (the profilers' measurements)."""
        self.state = WaveState()

    def post(self, node: str, path: str, data: Mapping[str, Any], timeout: float = SEND_TIMEOUT) -> Any:
        """POST JSON to another agent's control plane (raises OSError/URLError on failure)."""
        address = self.services.plan.nodes[node]
        url = f"http://{address.host}:{address.control_port}{path}"
        req = urllib.request.Request(
            url,
            data=json.dumps(data).encode(),
            headers={"X-Jupiter-Token": self.services.token, "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 - http only, our own agents
            return json.loads(response.read())

    def decide(self, task: str, context: Mapping[str, Any]) -> dict[str, str]:
        """This node's appointments for the children `task` controls (its own links, given resources)."""
        controllers: Mapping[str, str] = context["controllers"]
        children = [child for child, ctrl in controllers.items() if ctrl == task]
        if not children:
            return {}
        candidates: list[str] = list(context["candidates"])
        resources = _resources(context)
        fits = self.fits()
        sizes: Mapping[str, float] = context.get("edge_sizes", {})
        out: dict[str, str] = {}
        policy = _policy(context, task)
        node = self.services.node
        for child in children:
            size = float(sizes.get(f"{task}->{child}", DEFAULT_PROBE_BYTES))
            delay = {n: fits[n].predict(size) for n in candidates if n in fits}
            if isinstance(policy, RandomPolicy) or not delay:
                # Random WAVE may stay put; greedy WAVE looks at its neighbours, so its own
                # node counts only when it has measured no link at all.
                delay[node] = 0.0
            out.update(appoint_children(task, node, [child], candidates, delay, resources, policy))
        return out

    def _forward(self, task: str, context: Mapping[str, Any]) -> None:
        """Appoint, report to home, then hand each child to its node (runs in a thread)."""
        try:
            appointed = self.decide(task, context)
        except ValueError as exc:
            self._report({}, [f"{self.services.node} could not appoint the children of {task}: {exc}"])
            return
        self._report(appointed, [])
        for child, node in appointed.items():
            self._assign(node, child, context)

    def _report(self, appointed: Mapping[str, str], errors: list[str]) -> None:
        body = {"mapping": dict(appointed), "errors": errors, "by": self.services.node}
        try:
            self.post(self.services.plan.home, "/wave/report", body)
        except (OSError, urllib.error.URLError) as exc:
            log.error("WAVE: cannot report %s to home: %s", appointed, exc)

    def _assign(self, node: str, task: str, context: Mapping[str, Any]) -> None:
        try:
            self.post(node, "/wave/assign", {"task": task, "context": dict(context)})
        except (OSError, urllib.error.URLError) as exc:
            self._report({}, [f"{node} did not accept task {task} from {self.services.node}: {exc}"])

    def _start(self, context: dict[str, Any]) -> None:
        """Home: place the root tasks and send them out (runs in a thread)."""
        roots = [task for task in context["order"] if task not in context["controllers"]]
        initial: Mapping[str, str] = context.get("initial", {})
        resources = _resources(context)
        candidates = list(context["candidates"])
        for task in roots:
            node = (
                initial.get(task)
                or appoint_children("", None, [task], candidates, {}, resources, _policy(context, task))[task]
            )
            with self.state.lock:
                self.state.mapping[task] = node
            self._assign(node, task, context)

    # ----------------------------------------------------------------- routes

    def add_routes(self, routes: Routes) -> None:
        """`/wave/assign` on every agent; `/wave/start`, `/wave/report`, `/wave/result` at home."""
        routes.post("/wave/assign", self._assign_route)
        routes.post("/wave/start", self._start_route)
        routes.post("/wave/report", self._report_route)
        routes.get("/wave/result", self._result_route)

    def _assign_route(self, request: Request) -> Any:
        data = request.json_object()
        task = data.get("task")
        if not isinstance(task, str) or task not in self.services.plan.tasks:
            raise HttpError(400, 'send {"task": <a task of the DAG>, "context": {...}}')
        context = check_context(data.get("context"))
        threading.Thread(target=self._forward, args=(task, context), name=f"wave-{task}", daemon=True).start()
        return {"ok": True}

    def _start_route(self, request: Request) -> Any:
        context = check_context(request.json_object())
        with self.state.lock:
            self.state.tasks = [str(task) for task in context["order"]]
            self.state.mapping.clear()
            self.state.errors.clear()
        threading.Thread(target=self._start, args=(context,), name="wave-start", daemon=True).start()
        return {"ok": True}

    def _report_route(self, request: Request) -> Any:
        data = request.json_object()
        mapping, errors = data.get("mapping", {}), data.get("errors", [])
        if not isinstance(mapping, dict) or not isinstance(errors, list):
            raise HttpError(400, 'send {"mapping": {task: node}, "errors": [...]}')
        with self.state.lock:
            self.state.mapping.update({str(task): str(node) for task, node in mapping.items()})
            self.state.errors.extend(str(error)[:500] for error in errors)
        return {"ok": True}

    def _result_route(self, _: Request) -> Any:
        with self.state.lock:
            missing = [task for task in self.state.tasks if task not in self.state.mapping]
            return {
                "mapping": dict(self.state.mapping),
                "missing": missing,
                "complete": not missing,
                "errors": list(self.state.errors),
            }
