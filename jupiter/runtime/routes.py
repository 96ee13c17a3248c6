"""The control plane's route table, independent of the web framework.

The agent and each of its extensions add their HTTP routes here
(`routes.get("/status", handler)`); `jupiter.runtime.control` serves the
table with Flask. A handler gets a :class:`Request` (query arguments, the
JSON body, uploaded files, cookies) and returns JSON-able data — or a
:class:`Reply` for anything else (a page, a file, a redirect, a stream of
server-sent events) — or raises :class:`HttpError` with a status and a
one-line reason — a malformed body is a 400 with the reason, never a
traceback. Handlers run in the server's
threads: they reach the agent's state through its event loop (the
`on_loop` the agent gives them), never directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class HttpError(Exception):
    """An answer other than 200: `status` and a one-line `reason` (sent as `{"error": reason}`)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def bad_request(reason: str) -> HttpError:
    return HttpError(400, reason)


@dataclass(frozen=True)
class Upload:
    """One uploaded file, streamed to disk as it arrived (never held in memory)."""

    name: str
    """The file name the client gave (unchecked: the handler decides whether it is safe)."""
    path: str
    """Where it is now: a temporary file in the route's upload folder, which the handler moves or deletes."""
    size: int


@dataclass(frozen=True)
class Request:
    """What a handler sees of an HTTP request."""

    args: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    """The JSON body (None when there is none)."""
    files: Sequence[Upload] = ()
    """Uploaded files (`multipart/form-data`, field `file`), in order."""
    form: Mapping[str, str] = field(default_factory=dict)
    """The other fields of a `multipart/form-data` body."""
    cookies: Mapping[str, str] = field(default_factory=dict)
    token: str = ""
    """The `X-Jupiter-Token` header ('' without one), for routes that check it themselves."""

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object ({} when empty); 400 otherwise."""
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise bad_request("expected a JSON object")
        return self.body

    def integer(self, key: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        """A whole-number field of the body or the query (400 with the reason when it is not one)."""
        value = self._value(key, default)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request(f"{key} must be a whole number, got {value!r}"[:200])
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise bad_request(f"{key} must be at least {minimum}{upper}, got {value}")
        return value

    def number(self, key: str, default: float, minimum: float = 0.0, maximum: float | None = None) -> float:
        """A number field of the body or the query (400 with the reason when it is not one)."""
        value = self._value(key, default)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise bad_request(f"{key} must be a number, got {value!r}"[:200]) from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise bad_request(f"{key} must be a number, got {value!r}"[:200])
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum:g}" if maximum is not None else ""
            raise bad_request(f"{key} must be at least {minimum:g}{upper}, got {value:g}")
        return float(value)

    def names(self, key: str, default: Sequence[str] | None = None) -> list[str] | None:
        """A list of names (strings) of the body; None when absent and no default."""
        value = self.json_object().get(key, default)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise bad_request(f"{key} must be a list of names")
        return list(value)

    def _value(self, key: str, default: Any) -> Any:
        if isinstance(self.body, dict) and key in self.body:
            return self.body[key]
        return self.args.get(key, default)


@dataclass(frozen=True)
class Reply:
    """An answer that is not JSON: a page, a file, a redirect, or a stream (an iterable of chunks, sent as made)."""

    body: bytes | Iterable[bytes] = b""
    content_type: str = "text/plain; charset=utf-8"
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra headers (`Location`, `Set-Cookie`, `Cache-Control`, ...)."""


Handler = Callable[[Request], Any]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    auth: bool = True
    """Whether the deployment token is needed (every route but `/health`)."""
    uploads: Callable[[], str] | None = None
    """A folder uploaded files are streamed into (only routes that take uploads)."""
    max_bytes: int | None = None
    """The largest body the route reads (None: no limit beyond the server's)."""


class Routes:
    """The control plane's routes, as the agent and its extensions added them."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Route] = {}

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        auth: bool = True,
        uploads: Callable[[], str] | None = None,
        max_bytes: int | None = None,
    ) -> None:
        key = (method.upper(), path)
        if key in self._routes:
            raise ValueError(f"two handlers for {method} {path}")
        self._routes[key] = Route(method.upper(), path, handler, auth, uploads, max_bytes)

    def get(self, path: str, handler: Handler, auth: bool = True) -> None:
        self.add("GET", path, handler, auth)

    def post(
        self,
        path: str,
        handler: Handler,
        auth: bool = True,
        uploads: Callable[[], str] | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.add("POST", path, handler, auth, uploads, max_bytes)

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes.values())

    def find(self, method: str, path: str) -> Route | None:
        return self._routes.get((method.upper(), path))
