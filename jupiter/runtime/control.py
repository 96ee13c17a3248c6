"""The control plane: a small Flask app on every agent.

`GET /health` answers as soon as the agent serves (readiness); `GET /status`
returns the agent's counters; home also takes `POST /submit` (input files).
Everything but `/health` needs the deployment token in `X-Jupiter-Token`.
Handlers run in the server's threads, so they ask the agent's event loop for
anything they read or change rather than touching its state directly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any

from flask import Flask, abort, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

from jupiter.runtime.profiler import register_routes as register_profiling_routes
from jupiter.runtime.protocol import safe_name, token_ok

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from jupiter.runtime.agent import Agent

CALL_TIMEOUT = 30.0


def create_app(agent: Agent, loop: asyncio.AbstractEventLoop) -> Flask:
    """The Flask app of one agent."""
    app = Flask(f"jupiter-{agent.node}")

    def on_loop(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=CALL_TIMEOUT)

    def require_token() -> None:
        if not token_ok(agent.token, request.headers.get("X-Jupiter-Token")):
            abort(401, description="missing or wrong deployment token")

    @app.get("/health")
    def health() -> ResponseReturnValue:
        return jsonify({"node": agent.node, "deployment": agent.plan.deployment, "ready": True})

    @app.get("/status")
    def status() -> ResponseReturnValue:
        require_token()

        async def snapshot() -> dict[str, Any]:
            return agent.status()

        return jsonify(on_loop(snapshot()))

    @app.post("/flush")
    def flush() -> ResponseReturnValue:
        require_token()
        on_loop(agent.flush_now())
        return jsonify({"ok": True})

    @app.get("/frames/wait")
    def wait_frames() -> ResponseReturnValue:
        require_token()
        wait = getattr(agent, "wait_finished", None)
        if wait is None:
            abort(404, description="frames are counted by the home node")
        try:
            count = int(request.args.get("count", "0"))
            timeout = min(float(request.args.get("timeout", "10")), CALL_TIMEOUT - 5)
        except ValueError:
            abort(400, description="count and timeout must be numbers")
        return jsonify(on_loop(wait(count, timeout)))

    @app.post("/submit")
    def submit() -> ResponseReturnValue:
        require_token()
        submit_file = getattr(agent, "submit", None)
        if submit_file is None:
            abort(404, description="submit files to the home node")
        frames = []
        for upload in request.files.getlist("file"):
            name = upload.filename or ""
            if not safe_name(name):
                abort(400, description=f"unsafe file name {name!r}: plain names only")
            frames.append({"name": name, "frame": on_loop(submit_file(name, upload.read()))})
        return jsonify({"frames": frames})

    @app.post("/testbed/speed")
    def set_speed() -> ResponseReturnValue:
        require_token()
        data = request.get_json(silent=True) or {}
        speed = data.get("speed")
        if isinstance(speed, bool) or not isinstance(speed, int | float):
            return jsonify({"error": 'send {"speed": factor} with 0 < factor <= 1'}), 400

        async def change() -> str | None:
            try:
                agent.emulation.set_speed(float(speed))
            except ValueError as exc:
                return str(exc)
            return None

        problem = on_loop(change())
        if problem:
            return jsonify({"error": problem}), 400
        return jsonify({"node": agent.node, "speed": agent.emulation.speed})

    register_profiling_routes(app, agent, loop)  # /profile/*, /mapping, /wave/*
    return app


def start_control_plane(agent: Agent, loop: asyncio.AbstractEventLoop) -> BaseWSGIServer:
    """Serve the control plane in a background thread; call `.shutdown()` to stop it."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(agent.address.host, agent.address.control_port, create_app(agent, loop), threaded=True)
    threading.Thread(target=server.serve_forever, name="control-plane", daemon=True).start()
    return server
