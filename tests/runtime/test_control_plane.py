"""The control plane under clients that do not play by the rules: idle, slow, oversized, unauthenticated.

Each test starts the real server (`jupiter.runtime.control`) in this process
on a free port, with small limits so that they are reached quickly. Waits
use generous deadlines, never a measured duration.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from jupiter.model.config import ControlLimits
from jupiter.runtime.control import ControlServer, connection_limit, start_control_plane
from jupiter.runtime.routes import HttpError, Request, Routes

pytestmark = pytest.mark.adversarial

TOKEN = "control-token"
DEADLINE = 30.0
"""Seconds any wait may take on a loaded machine before the test fails."""


def _routes() -> Routes:
    routes = Routes()
    routes.get("/health", lambda _: {"ready": True}, auth=False)
    routes.post("/echo", lambda request: request.json_object())

    def teapot(_: Request) -> Any:
        raise HttpError(418, "short and stout\nsecond line")

    def fails(_: Request) -> Any:
        raise KeyError("a bug")

    routes.get("/teapot", teapot)
    routes.post("/bug", fails)
    return routes


@contextlib.contextmanager
def serving(limits: ControlLimits) -> Iterator[ControlServer]:
    server = start_control_plane("node1", TOKEN, _routes(), "127.0.0.1", 0, limits)
    try:
        yield server
    finally:
        server.shutdown()


def call(server: ControlServer, path: str, body: bytes | None = None, token: str = TOKEN) -> tuple[int, Any]:
    headers = {"X-Jupiter-Token": token, "Content-Type": "application/json"}
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=DEADLINE) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _idle(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        sockets.append(sock)
    return sockets


def _closed_by_server(sock: socket.socket) -> bool:
    """Wait (up to DEADLINE) for the server to close an idle connection."""
    sock.settimeout(DEADLINE)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_idle_connections_hold_no_thread_and_a_real_request_still_answers() -> None:
    limits = ControlLimits(connections=50, threads=4, idle_timeout=1.0, max_body=1024)
    with serving(limits) as server:
        assert call(server, "/health") == (200, {"ready": True})
        threads = threading.active_count()
        idle = _idle(server.port, 200)
        try:
            # 200 clients that say nothing: four times the connection bound. No thread is spent on
            # any of them; the bound's excess waits in the listen queue until idle ones time out.
            status = call(server, "/echo", b'{"still": "answers"}')
            assert threading.active_count() <= threads
        finally:
            for sock in idle:
                sock.close()
    assert status == (200, {"still": "answers"})


def test_an_idle_connection_is_closed_after_the_idle_timeout() -> None:
    with serving(ControlLimits(connections=10, threads=2, idle_timeout=0.5, max_body=1024)) as server:
        (silent,) = _idle(server.port, 1)
        assert _closed_by_server(silent)
        # A client that sends half a request and stops is closed the same way.
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        assert _closed_by_server(slow)
        silent.close()
        slow.close()


def test_a_long_request_is_not_cut_by_the_idle_timeout() -> None:
    started, release = threading.Event(), threading.Event()

    def wait(_: Request) -> Any:
        started.set()
        return {"waited": release.wait(DEADLINE)}

    routes = Routes()
    routes.get("/wait", wait)
    server = start_control_plane("node1", TOKEN, routes, "127.0.0.1", 0, ControlLimits(4, 2, 0.3, 1024))
    try:
        answers: list[tuple[int, Any]] = []
        caller = threading.Thread(target=lambda: answers.append(call(server, "/wait")))
        caller.start()
        assert started.wait(DEADLINE)
        # An idle connection opened now is closed once the idle timeout has passed (and the
        # server has looked for idle connections): the running request's must not be.
        (idle,) = _idle(server.port, 1)
        assert _closed_by_server(idle)
        idle.close()
        release.set()
        caller.join(DEADLINE)
    finally:
        server.shutdown()
    assert answers == [(200, {"waited": True})]


def test_an_unauthenticated_body_is_refused_before_it_is_read() -> None:
    with serving(ControlLimits(connections=10, threads=2, idle_timeout=5.0, max_body=10**9)) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        # Announce 500 MB and send none of it: the answer comes from the headers alone.
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        sock.sendall(b"Content-Length: 500000000\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 Unauthorized")
    assert json.loads(body) == {"error": "missing or wrong deployment token"}


def test_wrong_tokens_are_refused_with_or_without_a_body() -> None:
    with serving(ControlLimits()) as server:
        assert call(server, "/echo", b"{}", token="wrong") == (401, {"error": "missing or wrong deployment token"})
        assert call(server, "/teapot", token="") == (401, {"error": "missing or wrong deployment token"})


def test_an_authenticated_body_over_the_limit_is_refused_as_json() -> None:
    with serving(ControlLimits(connections=10, threads=2, idle_timeout=5.0, max_body=1000)) as server:
        status, answer = call(server, "/echo", b'{"x": "' + b"a" * 2000 + b'"}')
    assert status == 413
    assert answer == {"error": "the request body is larger than [LIMITS] CONTROL_MAX_BODY (1000 bytes)"}


def test_every_answer_is_json_with_a_one_line_reason(caplog: pytest.LogCaptureFixture) -> None:
    with serving(ControlLimits()) as server, caplog.at_level(logging.ERROR, "jupiter.control"):
        assert call(server, "/nowhere") == (404, {"error": "404 Not Found: GET '/nowhere'"})
        assert call(server, "/health", b"{}") == (405, {"error": "405 Method Not Allowed: POST '/health'"})
        assert call(server, "/teapot") == (418, {"error": "short and stout second line"})
        assert call(server, "/echo", b"not json") == (400, {"error": "the body is not JSON"})
        status, answer = call(server, "/bug", b"{}")
    assert status == 500
    assert answer == {"error": "node1 failed on POST /bug: KeyError: 'a bug' (traceback in the agent's log)"}
    (record,) = caplog.records
    assert record.getMessage() == "POST /bug failed"
    assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_a_forged_path_cannot_break_the_answer_or_the_log() -> None:
    with serving(ControlLimits()) as server:
        status, answer = call(server, "/x%0AINFO%20forged")
    assert status == 404
    assert answer == {"error": "404 Not Found: GET '/x\\x0aINFO forged'"}


def test_shutdown_closes_every_connection_and_frees_the_port() -> None:
    server = start_control_plane("node1", TOKEN, _routes(), "127.0.0.1", 0, ControlLimits())
    idle = _idle(server.port, 3)
    server.shutdown()
    assert all(_closed_by_server(sock) for sock in idle)
    for sock in idle:
        sock.close()
    again = start_control_plane("node1", TOKEN, _routes(), "127.0.0.1", server.port, ControlLimits())
    again.shutdown()


def test_the_connection_bound_leaves_file_descriptors_for_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda _: (256, 4096))
    assert connection_limit(100) == 64
    assert connection_limit(10) == 10
    monkeypatch.setattr(resource, "getrlimit", lambda _: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert connection_limit(100) == 100


def _raw(server: ControlServer, request: bytes) -> tuple[bytes, Any]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], json.loads(body)


def test_malformed_http_and_chunked_bodies_without_a_token_get_json_refusals() -> None:
    with serving(ControlLimits()) as server:
        status, answer = _raw(server, b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
        assert status == b"HTTP/1.1 400 Bad Request"
        assert isinstance(answer["error"], str) and "\n" not in answer["error"]
        chunked = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        status, answer = _raw(server, chunked)
        assert status == b"HTTP/1.1 401 Unauthorized"
        assert answer == {"error": "missing or wrong deployment token"}


def test_waitress_says_the_same_thing_at_most_once_a_minute() -> None:
    from jupiter.runtime.control import _Sparse

    sparse = _Sparse(interval=60.0)

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("waitress", logging.WARNING, __file__, 1, message, (), None)

    limit = "total open connections reached the connection limit, no longer accepting new connections"
    assert [sparse.filter(record(limit)) for _ in range(3)] == [True, False, False]
    assert sparse.filter(record("another message"))
