"""Home's live dashboard: a small page, its files, a login by one-time code, and a stream of server-sent events.

Only home nodes have it; the composition root (`jupiter.runtime.node`)
hands it every event home records (`observe`) and home's frame counters.
What it shows is kept by `jupiter.runtime.dashboard_state`, in bounded
windows.

Routes:

* `POST /dashboard/code` (deployment token): a one-time login code, valid
  `CODE_SECONDS`; `jupiter deploy`, `run` and `dashboard` print the link;
* `GET /dashboard/login?code=...`: spends the code, sets a session cookie
  (HttpOnly, SameSite=Strict, no explicit Path, so it also works under the
  Kubernetes API server's proxy path) and redirects to the page;
* `GET /dashboard/` and its static files (`jupiter/data/dashboard/`, uPlot
  vendored: nothing is fetched from elsewhere);
* `GET /dashboard/events` (session cookie or token): `text/event-stream`,
  a `snapshot` event, then an `update` every `TICK_SECONDS` with what came
  since (`DashboardState.delta`); `GET /dashboard/snapshot` is the same
  snapshot as one JSON answer.

Costs on the data plane: one append per recorded event (on the loop), one
sample per second, and per connected browser one state read per second on
the loop and its JSON encoding in that browser's thread. At most
`MAX_CLIENTS` browsers stream at once (each holds a control-plane thread).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterator, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from importlib import resources
from typing import Any

from jupiter.model.events import Event
from jupiter.runtime.dashboard_state import Cursor, DashboardState
from jupiter.runtime.protocol import token_ok
from jupiter.runtime.routes import HttpError, Reply, Request, Routes
from jupiter.runtime.services import AgentServices, Extension

TICK_SECONDS = 1.0
"""How often the counters are sampled and connected browsers get an update."""
CODE_SECONDS = 600.0
"""How long a login code stays valid."""
SESSION_SECONDS = 12 * 3600.0
"""How long a browser stays logged in."""
MAX_CODES = 16
MAX_SESSIONS = 32
MAX_CLIENTS = 8
"""Browsers streaming at once (a ninth is refused with 503 until one leaves)."""
FILES: Mapping[str, tuple[str, str]] = {
    "/dashboard/": ("index.html", "text/html; charset=utf-8"),
    "/dashboard/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/dashboard/style.css": ("style.css", "text/css; charset=utf-8"),
    "/dashboard/vendor/uPlot.iife.min.js": ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "/dashboard/vendor/uPlot.min.css": ("vendor/uPlot.min.css", "text/css; charset=utf-8"),
}
"""Route -> (file in jupiter/data/dashboard/, content type)."""
LOGIN_PAGE = b"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Jupiter dashboard</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>Jupiter dashboard</h1><p>This browser is not logged in to this deployment's dashboard.</p>
<p>Run <code>jupiter dashboard</code> where you deployed: it prints a one-time link that logs you in.</p>
</body></html>"""


def _sse(kind: str, data: Any) -> bytes:
    """One server-sent event (its data on one line: JSON never holds a raw newline)."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Dashboard(Extension):
    """Home's live dashboard (module docstring)."""

    name = "dashboard"

    def __init__(self, services: AgentServices, counts: Callable[[], Mapping[str, Any]]) -> None:
        self.services = services
        self.state = DashboardState(lambda: services.plan, counts, services.node)
        # Per deployment and home: cookies ignore ports, and two homes on one host each have a dashboard.
        self.cookie = f"jupiter_{services.plan.deployment}_{services.node}"
        self.lock = threading.Lock()
        self.codes: dict[str, float] = {}
        """code -> when it expires (monotonic)."""
        self.sessions: OrderedDict[str, float] = OrderedDict()
        """session -> when it expires (monotonic), oldest first."""
        self.clients = 0
        self.closed = threading.Event()
        self.files: dict[str, bytes] = {}

    # ------------------------------------------------------------- lifecycle

    def observe(self, event: Event) -> None:
        """An event home recorded (wired by the node; on the loop)."""
        self.state.observe(event)

    async def start(self) -> None:
        folder = resources.files("jupiter") / "data" / "dashboard"
        self.files = {route: (folder / name).read_bytes() for route, (name, _) in FILES.items()}

    def loops(self) -> list[Coroutine[Any, Any, Any]]:
        return [self._tick()]

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self.state.tick()

    async def stop(self) -> None:
        self.closed.set()  # ends every stream at its next tick

    # ----------------------------------------------------------------- login

    def _code_route(self, _: Request) -> Any:
        code = secrets.token_urlsafe(18)
        now = time.monotonic()
        with self.lock:
            self.codes = {c: t for c, t in self.codes.items() if t > now}
            while len(self.codes) >= MAX_CODES:
                self.codes.pop(min(self.codes, key=self.codes.__getitem__))
            self.codes[code] = now + CODE_SECONDS
        return {"code": code, "expires": CODE_SECONDS}

    def _login_route(self, request: Request) -> Any:
        code = request.args.get("code", "")
        now = time.monotonic()
        with self.lock:
            match = next((c for c in self.codes if secrets.compare_digest(c, code)), None)
            valid = match is not None and self.codes.pop(match) > now
            if valid:
                session = secrets.token_urlsafe(32)
                self.sessions[session] = now + SESSION_SECONDS
                while len(self.sessions) > MAX_SESSIONS:
                    self.sessions.popitem(last=False)
        if not valid:
            raise HttpError(
                403, "this login link was used already or has expired; `jupiter dashboard` prints a new one"
            )
        cookie = f"{self.cookie}={session}; HttpOnly; SameSite=Strict; Max-Age={int(SESSION_SECONDS)}"
        # Relative, so that the redirect also works under a proxy's path prefix.
        return Reply(b"", status=303, headers={"Location": "./", "Set-Cookie": cookie, "Cache-Control": "no-store"})

    def _allowed(self, request: Request) -> bool:
        """A browser logged in (its session cookie), or a client with the deployment token."""
        if request.token:
            return token_ok(self.services.token, request.token)
        session = request.cookies.get(self.cookie, "")
        now = time.monotonic()
        with self.lock:
            match = next((s for s in self.sessions if secrets.compare_digest(s, session)), None)
            return match is not None and self.sessions[match] > now

    # ----------------------------------------------------------------- pages

    def _file_route(self, path: str) -> Callable[[Request], Any]:
        content_type = FILES[path][1]

        def serve(request: Request) -> Any:
            if path == "/dashboard/" and not self._allowed(request):
                return Reply(LOGIN_PAGE, "text/html; charset=utf-8", status=401)
            return Reply(self.files[path], content_type, headers={"Cache-Control": "no-cache"})

        return serve

    def _snapshot_route(self, request: Request) -> Any:
        if not self._allowed(request):
            raise HttpError(401, "log in with the link `jupiter dashboard` prints, or send the deployment token")
        return self._read(self.state.snapshot, Cursor())

    def _read(self, view: Callable[[Cursor], dict[str, Any]], cursor: Cursor) -> dict[str, Any]:
        async def call() -> dict[str, Any]:
            return view(cursor)

        result: dict[str, Any] = self.services.on_loop(call(), 10.0)
        return result

    def _events_route(self, request: Request) -> Any:
        if not self._allowed(request):
            raise HttpError(401, "log in with the link `jupiter dashboard` prints, or send the deployment token")
        if self.clients >= MAX_CLIENTS:
            raise HttpError(503, f"{MAX_CLIENTS} browsers watch this dashboard already; close one")
        return Reply(
            self._stream(),
            "text/event-stream; charset=utf-8",
            headers={"Cache-Control": "no-store"},
        )

    def _stream(self) -> Iterator[bytes]:
        """The events of one browser: a snapshot, then an update per tick, until it leaves or home stops."""
        cursor = Cursor()
        # Counted from the first chunk: a stream the server never started never ran its `finally` either.
        with self.lock:
            self.clients += 1
        try:
            yield b"retry: 2000\n\n"
            yield _sse("snapshot", self._read(self.state.snapshot, cursor))
            while not self.closed.wait(TICK_SECONDS):
                yield _sse("update", self._read(self.state.delta, cursor))
        except (RuntimeError, FutureTimeout):
            return  # the agent is stopping: its loop no longer answers
        finally:
            with self.lock:
                self.clients -= 1

    def add_routes(self, routes: Routes) -> None:
        routes.post("/dashboard/code", self._code_route)
        routes.get("/dashboard/login", self._login_route, auth=False)
        routes.get(
            "/dashboard",
            lambda _: Reply(b"", status=303, headers={"Location": "dashboard/"}),
            auth=False,
        )
        for path in FILES:
            routes.get(path, self._file_route(path), auth=False)
        routes.get("/dashboard/snapshot", self._snapshot_route, auth=False)
        routes.get("/dashboard/events", self._events_route, auth=False)

    def status(self) -> Mapping[str, Any]:
        return {"dashboard": {"clients": self.clients}}
