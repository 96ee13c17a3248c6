"""The control plane: the agent's route table (`jupiter.runtime.routes`) served with Flask.

`GET /health` answers as soon as the agent serves (readiness); every other
route needs the deployment token in `X-Jupiter-Token`. A handler's
`HttpError` becomes its status with `{"error": reason}` (JSON, so the
Kubernetes API server's proxy passes the reason through); a body that is
not JSON where JSON is expected is a 400. Handlers run in the server's
threads and reach the agent through its event loop.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from flask import Flask, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

from jupiter.runtime.protocol import token_ok
from jupiter.runtime.routes import HttpError, Request, Route, Routes

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue


def _request() -> Request:
    body: Any = None
    if request.mimetype == "application/json" or (request.data and not request.files):
        body = request.get_json(silent=True)
        if body is None and request.data:
            raise HttpError(400, "the body is not JSON")
    files = [(upload.filename or "", upload.read()) for upload in request.files.getlist("file")]
    return Request(args=dict(request.args), body=body, files=files)


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
            return jsonify(answer)

        handle.__name__ = f"{route.method.lower()}_{route.path.strip('/').replace('/', '_') or 'root'}"
        return handle

    for route in routes:
        app.add_url_rule(route.path, view_func=view(route), methods=[route.method])
    return app


def start_control_plane(name: str, token: str, routes: Routes, host: str, port: int) -> BaseWSGIServer:
    """Serve the control plane in a background thread; call `.shutdown()` to stop it."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, create_app(name, token, routes), threaded=True)
    threading.Thread(target=server.serve_forever, name="control-plane", daemon=True).start()
    return server
