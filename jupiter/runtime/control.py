"""The control plane: the agent's route table (`jupiter.runtime.routes`) served with Flask.

`GET /health` answers as soon as the agent serves (readiness); every other
route needs the deployment token in `X-Jupiter-Token`, but those a handler
guards itself (the dashboard's, whose browser sends a session cookie). A
handler's `HttpError` becomes its status with `{"error": reason}` (JSON, so
the Kubernetes API server's proxy passes the reason through); a body that
is not JSON where JSON is expected is a 400; a `Reply` is sent as it is,
its body streamed when it is an iterable. Handlers run in the server's
threads and reach the agent through its event loop.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

from jupiter.runtime.protocol import token_ok
from jupiter.runtime.routes import HttpError, Reply, Request, Route, Routes

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue


def _request() -> Request:
    body: Any = None
    if request.mimetype == "application/json" or (request.data and not request.files):
        body = request.get_json(silent=True)
        if body is None and request.data:
            raise HttpError(400, "the body is not JSON")
    files = [(upload.filename or "", upload.read()) for upload in request.files.getlist("file")]
    return Request(
        args=dict(request.args),
        body=body,
        files=files,
        cookies=dict(request.cookies),
        token=request.headers.get("X-Jupiter-Token", ""),
    )


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

    def view(route: Route) -> Any:
        def handle() -> ResponseReturnValue:
            if route.auth and not token_ok(token, request.headers.get("X-Jupiter-Token")):
                return jsonify({"error": "missing or wrong deployment token"}), 401
            try:
                answer = route.handler(_request())
            except HttpError as exc:
                return jsonify({"error": exc.reason}), exc.status
            if isinstance(answer, Reply):
                return _reply(answer)
            return jsonify(answer)

        handle.__name__ = f"{route.method.lower()}_{route.path.strip('/').replace('/', '_') or 'root'}"
        return handle

    for route in routes:
        # The endpoint names the method and the whole path: `/dashboard` and `/dashboard/` are two routes.
        app.add_url_rule(route.path, f"{route.method} {route.path}", view_func=view(route), methods=[route.method])
    return app


def start_control_plane(name: str, token: str, routes: Routes, host: str, port: int) -> BaseWSGIServer:
    """Serve the control plane in a background thread; call `.shutdown()` to stop it."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, create_app(name, token, routes), threaded=True)
    threading.Thread(target=server.serve_forever, name="control-plane", daemon=True).start()
    return server
