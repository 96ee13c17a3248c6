"""The control plane: the agent's route table (`jupiter.runtime.routes`) served with Flask.

`GET /health` answers as soon as the agent serves (readiness); every other
route needs the deployment token in `X-Jupiter-Token`. A handler's
`HttpError` becomes its status with `{"error": reason}` (JSON, so the
Kubernetes API server's proxy passes the reason through); a body that is
not JSON where JSON is expected is a 400. Handlers run in the server's
threads and reach the agent through its event loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from typing import IO, TYPE_CHECKING, Any

from flask import Flask, jsonify, request
from flask.wrappers import Request as FlaskRequest
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.serving import BaseWSGIServer, make_server

from jupiter.runtime.protocol import token_ok
from jupiter.runtime.routes import HttpError, Request, Route, Routes, Upload

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

UPLOADS = "jupiter.uploads"
"""WSGI environ key naming the folder a route's uploads are streamed into."""


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
    return Request(args=dict(request.args), body=body, files=files, form=form)


def create_app(name: str, token: str, routes: Routes) -> Flask:
    """The Flask app serving `routes` for the agent of node `name`."""
    app = Flask(f"jupiter-{name}")
    app.request_class = StreamingRequest

    def view(route: Route) -> Any:
        def handle() -> ResponseReturnValue:
            if route.auth and not token_ok(token, request.headers.get("X-Jupiter-Token")):
                return jsonify({"error": "missing or wrong deployment token"}), 401
            parsed: Request | None = None
            try:
                parsed = _request(route)
                answer = route.handler(parsed)
            except HttpError as exc:
                return jsonify({"error": exc.reason}), exc.status
            except RequestEntityTooLarge:
                return jsonify({"error": f"the request is over the limit of {route.max_bytes} bytes"}), 413
            finally:
                # Uploads the handler did not move (it refused them, or failed) go.
                for upload in parsed.files if parsed is not None else ():
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(upload.path)
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
