"""Home's live dashboard without processes: its bounded windows, its login, and its event stream (Flask test client)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from flask.testing import FlaskClient

from jupiter.model.events import FrameFailed, ResourceProfile, TaskRun, Transfer
from jupiter.model.plan import NodeAddress, Plan, TaskSpec
from jupiter.runtime import dashboard_state
from jupiter.runtime.control import create_app
from jupiter.runtime.dashboard_state import Cursor, DashboardState
from jupiter.runtime.extensions import dashboard as dashboard_module
from jupiter.runtime.extensions.dashboard import Dashboard
from jupiter.runtime.routes import Routes

TOKEN = "t" * 64


def _plan() -> Plan:
    tasks = {
        "split": TaskSpec("split", 1, True, ("join",), (), "split.py"),
        "join": TaskSpec("join", 1, True, ("home",), ("split",), "join.py"),
    }
    nodes = {
        name: NodeAddress(name, role, "127.0.0.1", 1, 2)
        for name, role in (("home", "home"), ("n1", "compute"), ("n2", "compute"))
    }
    return Plan(
        "dep1", "demo", "/demo", tasks, ("split", "join"), {"split": "n1", "join": "n2"}, nodes, ("split",), "home"
    )


def _run(frame: str, task: str = "split", node: str = "n1", at: float = 100.0, ok: bool = True) -> TaskRun:
    return TaskRun(task, frame, node, ("a",), at, at, at + 0.01, at + 0.05, ok, None if ok else "boom", "home")


COUNTS = {"submitted": 3, "done": 2, "failed": 0, "in_flight": 1, "throughput": 0.5}


def _state() -> DashboardState:
    return DashboardState(_plan, lambda: COUNTS, "home")


def test_windows_are_bounded_and_a_client_gets_only_what_is_new(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard_state, "BARS", 5)
    state = _state()
    state.bars = type(state.bars)(maxlen=5)
    cursor = Cursor()
    first = state.snapshot(cursor)
    assert [task["name"] for task in first["tasks"]] == ["split", "join"]
    assert [(n["name"], n["colour"]) for n in first["nodes"]] == [
        ("home", "#d9d9d9"),
        ("n1", "#8dd3c7"),
        ("n2", "#ffffb3"),
    ]
    assert first["bars"] == [] and first["mapping"] == {"split": "n1", "join": "n2"}
    for index in range(8):
        state.observe(_run(f"f{index:06d}-abcdef", at=100.0 + index))
    # Only the last five runs are kept; the client had none, it gets those five.
    update = state.delta(cursor)
    assert [bar[4] for bar in update["bars"]] == [f"f{i:06d}-abcdef" for i in range(3, 8)]
    assert update["bars"][0] == ["n1", "split", 103.01, 103.05, "f000003-abcdef", True, 0.01]
    assert state.delta(cursor)["bars"] == []
    state.observe(_run("f000009-abcdef", task="join", node="n2"))
    assert [bar[1] for bar in state.delta(cursor)["bars"]] == ["join"]
    assert update["placements"] == {"split": {"n1": 8}}
    # A client that connects later starts from what is kept.
    assert len(state.snapshot(Cursor())["bars"]) == 5


def test_links_become_bytes_per_second_and_reports_become_points() -> None:
    state = _state()
    cursor = Cursor()
    state.snapshot(cursor)
    state.last_tick = 10.0
    for sent in (1000, 3000):
        state.observe(Transfer("sender", "n1", "/o", 10.5, "f000001-abcdef", "home", "n2", sent, 0.01, "join"))
    # A hand-over on one node moves nothing between nodes.
    state.observe(Transfer("sender", "n1", "/o", 10.6, "f000001-abcdef", "home", "n1", 0, 0.0, "join"))
    state.observe(ResourceProfile("n1", 10.7, 50.0, 20.0, 3, process_cpu=12.5, process_memory=64 * 1024 * 1024))
    state.observe(FrameFailed("f000002-abcdef", "b", 10.8, "Traceback\nValueError: boom"))
    state.tick(now=12.0)  # two seconds since the last tick
    update = state.delta(cursor)
    assert update["links"] == {"n1>n2": [[12.0, 2000.0]]}
    assert update["frames"] == [[12.0, 3, 2, 0, 1, 0.5]]
    assert update["resources"] == {"n1": [[10.7, 12.5, 64.0, 50.0, 20.0]]}
    assert update["failures"] == [[10.8, "f000002-abcdef", "ValueError: boom"]]  # the reason: the last line
    state.tick(now=13.0)
    # A link that went quiet drops to 0 instead of keeping its last rate.
    assert state.delta(cursor)["links"] == {"n1>n2": [[13.0, 0.0]]}


def test_recent_placements_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard_state, "RECENT_FRAMES", 3)
    state = _state()
    for index in range(5):
        state.observe(_run(f"f{index:06d}-abcdef"))
    state.observe(_run("f000009-abcdef", ok=False))
    recent = state.delta(Cursor())["recent"]
    assert [frame for frame, _ in recent] == ["f000002-abcdef", "f000003-abcdef", "f000004-abcdef"]


# ------------------------------------------------------------------ the extension over HTTP


def _on_loop(coroutine: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
    return asyncio.run(coroutine)


@pytest.fixture
def dashboard() -> Dashboard:
    services: Any = SimpleNamespace(plan=_plan(), node="home", token=TOKEN, on_loop=_on_loop)
    extension = Dashboard(services, counts=lambda: COUNTS)
    asyncio.run(extension.start())
    return extension


@pytest.fixture
def client(dashboard: Dashboard) -> FlaskClient:
    routes = Routes()
    dashboard.add_routes(routes)
    return create_app("home", TOKEN, routes).test_client()


def _code(client: FlaskClient) -> str:
    answer = client.post("/dashboard/code", json={}, headers={"X-Jupiter-Token": TOKEN})
    assert answer.status_code == 200
    assert answer.json is not None and answer.json["expires"] == dashboard_module.CODE_SECONDS
    return str(answer.json["code"])


def test_a_login_code_works_once_and_sets_a_session_cookie(client: FlaskClient) -> None:
    assert client.post("/dashboard/code", json={}).status_code == 401  # the token is needed for a code
    code = _code(client)
    login = client.get(f"/dashboard/login?code={code}")
    assert login.status_code == 303
    assert login.headers["Location"] == "./"
    cookie = login.headers["Set-Cookie"]
    assert cookie.startswith("jupiter_dep1_home=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path" not in cookie  # the default path works under a proxy's prefix too
    page = client.get("/dashboard/")
    assert page.status_code == 200 and b'<script src="app.js">' in page.data
    snapshot = client.get("/dashboard/snapshot")
    assert snapshot.status_code == 200 and snapshot.json is not None and snapshot.json["deployment"] == "dep1"
    again = client.get(f"/dashboard/login?code={code}")
    assert again.status_code == 403
    assert again.json == {
        "error": "this login link was used already or has expired; `jupiter dashboard` prints a new one"
    }


def test_without_a_session_the_page_says_how_to_log_in_and_the_data_is_refused(client: FlaskClient) -> None:
    page = client.get("/dashboard/")
    assert page.status_code == 401 and b"<code>jupiter dashboard</code>" in page.data
    for path in ("/dashboard/events", "/dashboard/snapshot"):
        refused = client.get(path)
        assert refused.status_code == 401
        assert refused.json is not None and "log in with the link" in refused.json["error"]
    client.set_cookie("jupiter_dep1_home", "made-up")
    assert client.get("/dashboard/snapshot").status_code == 401
    assert client.get("/dashboard/snapshot", headers={"X-Jupiter-Token": "wrong"}).status_code == 401
    assert client.get("/dashboard/snapshot", headers={"X-Jupiter-Token": TOKEN}).status_code == 200
    # The static files hold nothing secret (and the page needs them before it can stream).
    script = client.get("/dashboard/vendor/uPlot.iife.min.js")
    assert script.status_code == 200 and script.content_type.startswith("text/javascript")
    assert client.get("/dashboard").headers["Location"] == "dashboard/"


def test_the_event_stream_starts_with_a_snapshot_then_updates(dashboard: Dashboard, client: FlaskClient) -> None:
    dashboard.observe(_run("f000001-abcdef"))
    response = client.get("/dashboard/events", headers={"X-Jupiter-Token": TOKEN}, buffered=False)
    assert response.status_code == 200
    assert response.content_type == "text/event-stream; charset=utf-8"
    chunks: Iterator[bytes] = iter(response.response)  # type: ignore[arg-type]  # a stream: bytes chunks
    assert next(chunks) == b"retry: 2000\n\n"
    kind, data = next(chunks).decode().split("\n")[:2]
    assert kind == "event: snapshot"
    snapshot = json.loads(data.removeprefix("data: "))
    assert [bar[4] for bar in snapshot["bars"]] == ["f000001-abcdef"]
    assert dashboard.clients == 1
    dashboard.observe(_run("f000002-abcdef"))
    kind, data = next(chunks).decode().split("\n")[:2]
    assert kind == "event: update"
    assert [bar[4] for bar in json.loads(data.removeprefix("data: "))["bars"]] == ["f000002-abcdef"]
    response.close()
    assert dashboard.clients == 0


def test_too_many_browsers_are_refused(dashboard: Dashboard, client: FlaskClient) -> None:
    dashboard.clients = dashboard_module.MAX_CLIENTS
    refused = client.get("/dashboard/events", headers={"X-Jupiter-Token": TOKEN})
    assert refused.status_code == 503
    assert refused.json == {"error": "8 browsers watch this dashboard already; close one"}
