"""Every control-plane route, fuzzed: any JSON body or query gets a JSON answer, never a 500.

The agent is built as a deployment builds it (home, pricing, the profilers,
distributed WAVE, on a plan of the fan app), its event loop running in a
thread, and served through the real Flask app. What would take long or
reach other agents with a valid request — running the profilers, starting
task workers, a long poll — is replaced by something quick, since the
property is about what malformed requests do, not what valid ones compute.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.plan import NodeAddress, PlanPricing
from jupiter.model.workspace import Workspace
from jupiter.runtime.agent import Agent
from jupiter.runtime.control import create_app
from jupiter.runtime.extensions import home as home_module
from jupiter.runtime.extensions.probing import Probing
from jupiter.runtime.node import build_agent
from jupiter.service.plans import build_plan

pytestmark = pytest.mark.adversarial

TOKEN = "fuzz-token"
KEYS = (
    "count",
    "timeout",
    "runs",
    "skip",
    "peers",
    "sizes",
    "samples",
    "mapping",
    "speed",
    "task",
    "context",
    "errors",
    "problem",
    "network",
    "policy",
    "order",
    "controllers",
    "candidates",
    "initial",
)
"""Keys the routes read, so that the fuzzer also tries wrong values under the right names."""
ALLOWED = {200, 303, 400, 403, 404, 405, 409, 502, 504}
"""Answers a route may give a malformed request (303: the dashboard sends a browser without a session to its
login page; 403: a login code that is not one); 500 means a handler failed on it."""

names = st.sampled_from(["home", "node1", "split", "join", "upper", "nobody", "", "../x"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | names
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8) | names, children, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), values, max_size=5) | values
queries = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), st.text(max_size=12), max_size=3)


@pytest.fixture
def agent(fan_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Agent]:
    spec = resolve_spec(fan_workspace, fan_workspace.config.base_dir / "mapping.txt")
    addresses = {node.name: NodeAddress(node.name, node.role.value, "127.0.0.1", 9, 9) for node in spec.nodes}
    plan = build_plan(spec, "fuzz", {}, addresses)
    plan = dataclasses.replace(plan, pricing=PlanPricing("push"))
    built = build_agent(plan, "home", TOKEN, tmp_path / "deployment")

    async def quickly(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"links": [], "samples": []}

    async def no_workers(self: Agent, tasks: list[str]) -> None:
        return None

    monkeypatch.setattr(Probing, "network", quickly)
    monkeypatch.setattr(Probing, "execution", quickly)
    monkeypatch.setattr(Agent, "_start_tasks", no_workers)
    monkeypatch.setattr(home_module, "WAIT_LIMIT", 0.01)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    built.loop = loop

    async def start() -> None:
        built.recover()
        for extension in built.extensions:
            await extension.start()

    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield built
    finally:

        async def stop() -> None:
            for extension in built.extensions:
                await extension.stop()
            built.inbox.close()
            built.outbox.journal.close()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def _check(answer: Any, route: str) -> None:
    assert answer.status_code in ALLOWED, f"{route}: {answer.status_code} {answer.get_data(as_text=True)[:300]}"
    if answer.status_code == 303:  # a browser page without a session: sent to its login
        assert answer.headers["Location"], route
        return
    if answer.mimetype != "application/json":
        # Only the dashboard's pages answer otherwise: what a browser loads (its page, scripts, styles, events).
        assert route.startswith("/dashboard") and answer.status_code == 200, (route, answer.mimetype)
        return
    data = json.loads(answer.get_data())
    if answer.status_code != 200:
        assert isinstance(data, dict) and isinstance(data.get("error"), str), route
        assert "\n" not in data["error"] and "Traceback" not in data["error"], route


def test_every_route_answers_malformed_requests_with_json_and_never_500(agent: Agent) -> None:
    client: FlaskClient = create_app(agent.node, TOKEN, agent.routes).test_client()
    routes = sorted(agent.routes, key=lambda route: (route.path, route.method))
    # Every extension's routes are there: the fuzz below covers all of them.
    assert {route.path for route in routes} >= {
        "/status",
        "/flush",
        "/mapping",
        "/testbed/speed",
        "/submit",
        "/frames/wait",
        "/home/archive",
        "/pricing/model",
        "/profile/network",
        "/profile/execution",
        "/profile/resources",
        "/wave/assign",
        "/wave/start",
        "/wave/report",
        "/wave/result",
    }
    headers = {"X-Jupiter-Token": TOKEN}

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=bodies, query=queries, raw=st.binary(max_size=40))
    def fuzz(body: Any, query: dict[str, str], raw: bytes) -> None:
        for route in routes:
            if route.method == "GET":
                _check(client.get(route.path, query_string=query, headers=headers), route.path)
            else:
                _check(client.post(route.path, json=body, query_string=query, headers=headers), route.path)
                _check(
                    client.post(route.path, data=raw, headers={**headers, "Content-Type": "application/json"}),
                    route.path,
                )

    fuzz()


def test_the_issues_reproductions_are_400s(agent: Agent) -> None:
    client = create_app(agent.node, TOKEN, agent.routes).test_client()
    headers = {"X-Jupiter-Token": TOKEN}
    runs = client.post("/profile/execution", json={"runs": "abc"}, headers=headers)
    assert (runs.status_code, runs.json) == (400, {"error": "runs must be a whole number, got 'abc'"})
    assign = client.post("/wave/assign", json={}, headers=headers)
    assert (assign.status_code, assign.json) == (400, {"error": 'send {"task": <a task of the DAG>, "context": {...}}'})
