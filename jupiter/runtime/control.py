"""The control plane: the agent's route table (`jupiter.runtime.routes`) served with Flask, bounded.

`GET /health` answers as soon as the agent serves (readiness); every other
route needs the deployment token in `X-Jupiter-Token`, but those a handler
guards itself (the dashboard's, whose browser sends a session cookie).
Every answer is JSON (the Kubernetes API server's proxy passes the reason
through) except a handler's `Reply`, which is sent as it is, its body
streamed when it is an iterable (the dashboard's events): a handler's
`HttpError` becomes its status with `{"error": reason}`; a body that is not
JSON where JSON is expected is a 400; an unknown path or method is a 404 or
405; a handler that fails unexpectedly is a 500 with a one-line reason, its
traceback in the agent's log; a handler that waits too long for the agent's
event loop is a 504.

Serving is bounded, so that clients that connect and say nothing cannot
wear the agent down (`[LIMITS] CONTROL_*`, `jupiter.model.config.ControlLimits`):
waitress reads requests on one event loop, so an idle connection costs a
socket and no thread; `threads` handler threads run requests; at most
`connections` connections are open at once (the rest wait in the listen
queue); a connection that sends nothing for `idle_timeout` seconds, with no
request running, is closed; and a request with a body is refused before
the body is read unless its token is right, so unauthenticated clients can
make the agent buffer nothing but headers (`max_body` bounds the others).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import resource
import socket
import tempfile
import threading
import time
from typing import IO, TYPE_CHECKING, Any, ClassVar

from flask import Flask, Response, jsonify, request
from flask.wrappers import Request as FlaskRequest
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.utilities import Error as WaitressError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from jupiter.model.config import ControlLimits
from jupiter.runtime.logs import clean, untrusted
from jupiter.runtime.protocol import token_ok
from jupiter.runtime.routes import HttpError, Reply, Request, Route, Routes, Upload

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

UPLOADS = "jupiter.uploads"
"""WSGI environ key naming the folder a route's uploads are streamed into."""

log = logging.getLogger("jupiter.control")

TOKEN_HEADER = "X-Jupiter-Token"  # noqa: S105 - a header's name, not a secret
UNAUTHENTICATED = "missing or wrong deployment token"
FD_SHARE = 4
"""At most 1/FD_SHARE of the process's file descriptors go to control-plane connections (the data plane,
task workers and files need the rest)."""
STOP_SECONDS = 5.0
DRAIN_SECONDS = 1
"""Seconds requests still running at shutdown get to end (the supervisor allows an agent 5 s to stop)."""
MAX_HEADERS = 64 * 1024
"""Largest request line and headers, in bytes."""


class StreamingRequest(FlaskRequest):
    """A request whose uploaded files go straight to a file in the route's upload folder, in chunks.

    Werkzeug's default keeps small files in memory and spools big ones to
    the system's temporary folder; a handler would then copy them again.
    """

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        folder = self.environ.get(UPLOADS)
        if folder is None:
            raise HttpError(400, "this route takes no files")
        # Kept (delete=False): the handler moves it where it belongs; the view deletes what it leaves.
        return tempfile.NamedTemporaryFile(dir=folder, prefix=".upload-", delete=False)


def _request(route: Route) -> Request:
    body: Any = None
    if route.uploads is not None:
        folder = route.uploads()
        os.makedirs(folder, exist_ok=True)
        request.environ[UPLOADS] = folder
    if route.max_bytes is not None:
        request.max_content_length = route.max_bytes
    if request.mimetype == "application/json" or (request.data and not request.files):
        body = request.get_json(silent=True)
        if body is None and request.data:
            raise HttpError(400, "the body is not JSON")
    files = []
    for upload in request.files.getlist("file"):
        stream = upload.stream
        stream.flush()
        path = str(stream.name)
        files.append(Upload(upload.filename or "", path, os.path.getsize(path)))
        stream.close()
    form = {key: value for key, value in request.form.items()}
    return Request(
        args=dict(request.args),
        body=body,
        files=files,
        form=form,
        cookies=dict(request.cookies),
        token=request.headers.get(TOKEN_HEADER, ""),
    )


def one_line(text: str, limit: int = 300) -> str:
    """A reason as one short line (an exception's text may span several)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _reply(answer: Reply) -> Response:
    response = Response(answer.body, status=answer.status, content_type=answer.content_type)
    for key, value in answer.headers.items():
        response.headers[key] = value
    if not isinstance(answer.body, bytes):
        # A stream: each chunk goes out as it is made, never buffered or re-encoded on the way.
        response.direct_passthrough = True
        response.headers["X-Accel-Buffering"] = "no"
    return response


def create_app(name: str, token: str, routes: Routes) -> Flask:
    """The Flask app serving `routes` for the agent of node `name`."""
    app = Flask(f"jupiter-{name}")
    app.request_class = StreamingRequest

    def view(route: Route) -> Any:
        def handle() -> ResponseReturnValue:
            if route.auth and not token_ok(token, request.headers.get(TOKEN_HEADER)):
                return jsonify({"error": UNAUTHENTICATED}), 401
            parsed: Request | None = None
            try:
                parsed = _request(route)
                answer = route.handler(parsed)
            except HttpError as exc:
                return jsonify({"error": one_line(exc.reason)}), exc.status
            except RequestEntityTooLarge:
                return jsonify({"error": f"the request is over the limit of {route.max_bytes} bytes"}), 413
            except (TimeoutError, concurrent.futures.TimeoutError):
                return jsonify({"error": f"{name} did not answer {route.path} in time; try again"}), 504
            except Exception as exc:  # any handler failure is answered, not a Flask error page
                log.exception("%s %s failed", route.method, route.path)
                reason = f"{name} failed on {route.method} {route.path}: {type(exc).__name__}: {exc}"
                return jsonify({"error": one_line(reason) + " (traceback in the agent's log)"}), 500
            finally:
                # Uploads the handler did not move (it refused them, or failed) go.
                for upload in parsed.files if parsed is not None else ():
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(upload.path)
            if isinstance(answer, Reply):
                return _reply(answer)
            return jsonify(answer)

        handle.__name__ = f"{route.method.lower()}_{route.path.strip('/').replace('/', '_') or 'root'}"
        return handle

    for route in routes:
        # The endpoint names the method and the whole path: `/dashboard` and `/dashboard/` are two routes.
        app.add_url_rule(route.path, f"{route.method} {route.path}", view_func=view(route), methods=[route.method])

    def http_error(exc: HTTPException) -> ResponseReturnValue:
        # Unknown paths and methods, malformed requests: JSON like every other answer.
        # The path is the client's text: quoted and clipped, as in a log.
        reason = f"{exc.code} {exc.name}: {clean(request.method, 10)} {untrusted(request.path, 100)}"
        response = Response(json.dumps({"error": reason}), status=exc.code or 500, mimetype="application/json")
        for key, value in exc.get_headers():
            if key.lower() != "content-type":  # e.g. a 405's Allow
                response.headers[key] = value
        return response

    app.register_error_handler(HTTPException, http_error)
    return app


class _Refusal(WaitressError):
    """An answer waitress gives before the app sees the request, in the app's JSON form."""

    def __init__(self, code: int, reason: str, body: str) -> None:
        super().__init__(body)
        self.code = code
        self.reason = reason

    # waitress writes the body it returns as bytes (its stubs say str).
    def to_response(self, ident: str | None = None) -> tuple[str, list[tuple[str, str]], bytes]:  # type: ignore[override]
        return (
            f"{self.code} {self.reason}",
            [("Content-Type", "application/json")],
            json.dumps({"error": self.body}).encode(),
        )


class _TokenFirstParser(HTTPRequestParser):
    """Refuses a request whose body would follow unless its token is right, before reading the body."""

    token: ClassVar[str] = ""

    def received(self, data: bytes) -> int:
        consumed: int = super().received(data)
        if self.headers_finished and not self.completed and self.error is None:
            # Headers read, a body announced: waitress would buffer it (to memory, then a
            # temporary file) before the app could check anything.
            if not token_ok(self.token, self.headers.get(TOKEN_HEADER.upper().replace("-", "_"))):
                self.error = _Refusal(401, "Unauthorized", UNAUTHENTICATED)
                self.completed = True
        elif self.error is not None and not isinstance(self.error, _Refusal):
            # waitress's own refusals (headers or body too large, bad chunking) in JSON too.
            reason = _LIMIT_REASONS.get(self.error.code)
            body = reason.format(limit=self.adj.max_request_body_size) if reason else one_line(self.error.body)
            self.error = _Refusal(self.error.code, self.error.reason, body)
        return consumed


_LIMIT_REASONS = {
    413: "the request body is larger than [LIMITS] CONTROL_MAX_BODY ({limit} bytes)",
    431: f"the request headers are larger than {MAX_HEADERS // 1024} KB",
}


def connection_limit(configured: int) -> int:
    """The configured connection bound, at most 1/FD_SHARE of this process's file descriptor limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, soft // FD_SHARE))


class ControlServer:
    """The control plane of one agent, served in a background thread (module docstring)."""

    def __init__(self, app: Flask, token: str, host: str, port: int, limits: ControlLimits) -> None:
        listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((host, port))
        except OSError:
            listener.close()
            raise
        self.limits = limits
        self.connections = connection_limit(limits.connections)
        parser = type("TokenFirstParser", (_TokenFirstParser,), {"token": token})
        channel = type("Channel", (HTTPChannel,), {"parser_class": parser})
        self._map: dict[int, Any] = {}
        self._server = TcpWSGIServer(
            app,
            map=self._map,
            _sock=listener,
            bind_socket=False,
            threads=limits.threads,
            connection_limit=self.connections,
            asyncore_loop_timeout=1,  # the serving loop wakes at least once a second
            asyncore_use_poll=True,  # select() cannot watch descriptors above 1024
            max_request_body_size=limits.max_body,
            max_request_header_size=MAX_HEADERS,
            expose_tracebacks=False,
            ident="jupiter",
            clear_untrusted_proxy_headers=True,
        )
        self._server.channel_class = channel
        # waitress reads these two as whole seconds; set them after it did, so that a
        # fraction of a second stays one (idle connections are looked for on every loop wake-up).
        adjustments: Any = self._server.adj
        adjustments.channel_timeout = limits.idle_timeout
        adjustments.cleanup_interval = min(limits.idle_timeout / 4, 30.0)
        self.port: int = listener.getsockname()[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="control-plane", daemon=True)

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        # waitress's own loop runs until its map is empty, i.e. until its trigger is closed too,
        # while a handler thread may still pull it: this one stops when told, the trigger left open.
        while not self._stopping.is_set():
            wasyncore.loop(timeout=1.0, map=self._map, use_poll=True, count=1)

    def shutdown(self) -> None:
        """Close the listener and every connection; give requests still running a moment to end.

        Call it from another thread than the agent's event loop: a request
        still running may be waiting for that loop (`Agent.on_loop`).
        """
        trigger: Any = self._server.trigger  # (waitress's stubs give it the wrong type)
        trigger.pull_trigger(self._close_connections)
        self._thread.join(STOP_SECONDS)
        dispatcher = self._server.task_dispatcher
        dispatcher.shutdown(cancel_pending=True, timeout=DRAIN_SECONDS)
        if not dispatcher.threads:
            trigger.close()
        # else: a request still runs (e.g. a long poll); its thread is a daemon, and the trigger it
        # will pull when it ends stays open for it.

    def _close_connections(self) -> None:
        # Runs in the serving thread (through waitress's trigger): nothing else touches the map then.
        for dispatcher in list(self._map.values()):
            if dispatcher is self._server:
                wasyncore.dispatcher.close(dispatcher)  # the listener only (the server's close() closes the trigger)
            elif dispatcher is not self._server.trigger:
                dispatcher.close()
        self._stopping.set()


class _Sparse(logging.Filter):
    """Lets each message of waitress's through at most once per `interval` seconds.

    Clients that open and close connections around the bound would
    otherwise make waitress log "reached the connection limit" and
    "dropped below the connection limit" as fast as they can.
    """

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = str(record.msg)
        if now - self._last.get(key, -self.interval) < self.interval:
            return False
        self._last[key] = now
        return True


def start_control_plane(
    name: str, token: str, routes: Routes, host: str, port: int, limits: ControlLimits | None = None
) -> ControlServer:
    """Serve the control plane in a background thread; call `.shutdown()` to stop it."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    waitress_log = logging.getLogger("waitress")
    if not any(isinstance(existing, _Sparse) for existing in waitress_log.filters):
        waitress_log.addFilter(_Sparse())
    return ControlServer(create_app(name, token, routes), token, host, port, limits or ControlLimits()).start()
