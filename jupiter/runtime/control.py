"""The control plane: a small Flask app on every agent.

`GET /health` answers as soon as the agent serves (readiness); `GET /status`
returns the agent's counters; home also takes `POST /submit` (input files)
and serves `GET /home/archive` (its statistics, event log and outputs, for a
CLI that cannot read home's folder, e.g. on Kubernetes).
Everything but `/health` needs the deployment token in `X-Jupiter-Token`.
Handlers run in the server's threads, so they ask the agent's event loop for
anything they read or change rather than touching its state directly.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import stat
import tarfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from flask import Flask, abort, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

from jupiter.runtime.profiler import register_routes as register_profiling_routes
from jupiter.runtime.protocol import safe_name, token_ok

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from jupiter.runtime.agent import Agent

CALL_TIMEOUT = 30.0
STORE_BOOKKEEPING = (".slot@", ".tmp-")
"""Prefixes of the store's marker and temporary files (`jupiter.runtime.store`): not outputs."""


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
        submit_files = getattr(agent, "submit_many", None)
        if submit_files is None:
            abort(404, description="submit files to the home node")
        files = []
        for upload in request.files.getlist("file"):
            name = upload.filename or ""
            if not safe_name(name):
                abort(400, description=f"unsafe file name {name!r}: plain names only")
            files.append((name, upload.read()))
        # One call into the event loop for the whole upload: frames start in order, none half-way.
        ids = on_loop(submit_files(files))
        return jsonify(
            {"frames": [{"name": name, "frame": frame} for (name, _), frame in zip(files, ids, strict=True)]}
        )

    @app.get("/home/archive")
    def home_archive() -> ResponseReturnValue:
        require_token()
        folder = getattr(agent, "home_dir", None)
        if folder is None or getattr(agent, "submit", None) is None:
            # JSON, so the Kubernetes API server's proxy passes the reason through.
            return jsonify({"error": "statistics and outputs are kept by the home node"}), 404

        async def snapshot() -> dict[str, int]:
            # Home writes its statistics on the loop, a whole line per write: sizes taken
            # here, after the flush, end on a line, however much is written meanwhile.
            await agent.flush_now()
            return statistics_sizes(Path(folder))

        archive = pack_home_folder(Path(folder), on_loop(snapshot()))  # in this thread: the loop keeps running
        return jsonify({"home": agent.node, "archive": base64.b64encode(archive).decode("ascii")})

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


def is_statistics_file(name: str) -> bool:
    """Whether a file of home's folder is one of its statistics files (`events.jsonl`, `runtime_*.txt`)."""
    return name == "events.jsonl" or (name.startswith("runtime_") and name.endswith(".txt"))


def statistics_sizes(folder: Path) -> dict[str, int]:
    """Size of each statistics file in home's folder, by name."""
    sizes: dict[str, int] = {}
    if not folder.is_dir():  # home has not opened its files yet
        return sizes
    with os.scandir(folder) as entries:
        for entry in entries:
            if is_statistics_file(entry.name) and entry.is_file(follow_symlinks=False):
                sizes[entry.name] = entry.stat(follow_symlinks=False).st_size
    return sizes


def pack_home_folder(folder: Path, sizes: Mapping[str, int]) -> bytes:
    """A tar.gz of home's statistics files (their first `sizes[name]` bytes) and its `output/` tree.

    Only regular files, as regular members with relative names: an output
    and its store marker are hard links of one file, which `TarFile.add`
    would archive as a link. The store's markers and temporaries are left
    out, and so are `input/` and `frames/` (home's copies of the inputs).
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, size in sorted(sizes.items()):
            with (folder / name).open("rb") as handle:
                _add_file(archive, name, handle, size)
        for top, dirs, files in os.walk(folder / "output"):  # a missing output/ yields nothing
            dirs.sort()
            relative = Path(top).relative_to(folder).as_posix()
            for name in sorted(files):
                path = Path(top, name)
                if name.startswith(STORE_BOOKKEEPING) or not stat.S_ISREG(path.lstat().st_mode):
                    continue  # bookkeeping, or a symlink or other non-file
                with path.open("rb") as handle:
                    _add_file(archive, f"{relative}/{name}", handle, os.fstat(handle.fileno()).st_size)
    return buffer.getvalue()


def _add_file(archive: tarfile.TarFile, name: str, handle: IO[bytes], size: int) -> None:
    member = tarfile.TarInfo(name)
    member.size = size
    member.mode = 0o644
    member.mtime = int(os.fstat(handle.fileno()).st_mtime)
    archive.addfile(member, handle)


def start_control_plane(agent: Agent, loop: asyncio.AbstractEventLoop) -> BaseWSGIServer:
    """Serve the control plane in a background thread; call `.shutdown()` to stop it."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(agent.address.host, agent.address.control_port, create_app(agent, loop), threaded=True)
    threading.Thread(target=server.serve_forever, name="control-plane", daemon=True).start()
    return server
