"""One client for the agents' control planes, whatever the way to reach them.

A *transport* carries one request to one agent and returns the agent's
JSON answer — its error answers (`{"error": ...}` with a 4xx or 5xx status)
included, since they say what is wrong — or raises :class:`Unreachable`.
`DirectTransport` is plain HTTP to each agent's address (local and docker
backends); the kubernetes backend's transport goes through the API server's
service proxy. :class:`ControlClient` is built once per deployment on the
transport its backend chose, so no caller has a branch per backend.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias

from jupiter.model.errors import JupiterError


class Unreachable(JupiterError):
    """An agent's control plane could not be reached, or did not answer with JSON."""


@dataclass(frozen=True)
class Stream:
    """A request body produced in chunks (an upload read from files as it is sent), with its length."""

    chunks: Iterable[bytes]
    length: int

    def read_all(self) -> bytes:
        """The whole body (for a transport that cannot stream it)."""
        return b"".join(self.chunks)


Body: TypeAlias = bytes | Stream | None
"""A request body: bytes, a stream of chunks, or none."""


class Transport(Protocol):
    """Carries one control-plane request to one agent."""

    def request(
        self, node: str, method: str, path: str, body: Body, content_type: str, token: str, timeout: float
    ) -> Any:
        """The agent's JSON answer (error answers included); Unreachable naming the node otherwise."""
        ...


class DirectTransport:
    """HTTP straight to each agent's control port."""

    def __init__(self, hosts: Mapping[str, tuple[str, int]]) -> None:
        self.hosts = dict(hosts)

    def url(self, node: str, path: str) -> str:
        host, port = self.hosts[node]
        return f"http://{host}:{port}{path}"

    def request(
        self, node: str, method: str, path: str, body: Body, content_type: str, token: str, timeout: float
    ) -> Any:
        url = self.url(node, path)
        headers = {"X-Jupiter-Token": token} if token else {}
        if content_type:
            headers["Content-Type"] = content_type
        data: bytes | Iterable[bytes] | None
        if isinstance(body, Stream):
            headers["Content-Length"] = str(body.length)
            data = body.chunks
        else:
            data = body
        req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - http only
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 - http only
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                return json.loads(exc.read())
            except json.JSONDecodeError:
                raise Unreachable(f"agent {node} refused {path}: HTTP {exc.code}") from None
        except http.client.HTTPException as exc:
            # Something else answers on the port (another program took it): not an agent's control plane.
            raise Unreachable(
                f"agent {node} does not answer at {url}: what answers there is not HTTP "
                f"({type(exc).__name__}: {str(exc)[:80]}); is another program on port {self.hosts[node][1]}?"
            ) from None
        except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
            why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise Unreachable(f"agent {node} does not answer at {url}: {why}") from None


CHUNK = 1024 * 1024


def _quoted(name: str) -> str:
    """A file name as a multipart header parameter (RFC 7578): `"` and `\\` escaped, no line breaks."""
    if any(char in name for char in "\r\n\0"):
        raise ValueError(f"a file name cannot hold line breaks: {name!r}")
    return name.replace("\\", "\\\\").replace('"', '\\"')


def multipart(files: Sequence[tuple[str, Path | bytes]], fields: Mapping[str, str] | None = None) -> tuple[Stream, str]:
    """A `multipart/form-data` body of text fields then files (read in chunks as it is sent), and its content type.

    File names are quoted as RFC 7578 asks, so a crafted name cannot inject
    another name or a header.
    """
    boundary = uuid.uuid4().hex
    pieces: list[bytes | Path] = []
    for name, value in (fields or {}).items():
        pieces.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, content in files:
        pieces.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{_quoted(name)}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
        )
        pieces.append(content)
        pieces.append(b"\r\n")
    pieces.append(f"--{boundary}--\r\n".encode())
    length = sum(piece.stat().st_size if isinstance(piece, Path) else len(piece) for piece in pieces)

    def chunks() -> Iterator[bytes]:
        for piece in pieces:
            if isinstance(piece, bytes):
                yield piece
                continue
            with piece.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    yield chunk

    return Stream(chunks(), length), f"multipart/form-data; boundary={boundary}"


class ControlClient:
    """Requests to a deployment's agents (module docstring)."""

    def __init__(self, transport: Transport, token: str) -> None:
        self.transport = transport
        self.token = token

    def call(self, node: str, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        """One request with a JSON body (POST) or none (GET); the agent's answer, error answers included."""
        data = json.dumps(body).encode() if method == "POST" else None
        return self.transport.request(
            node, method, path, data, "application/json" if data is not None else "", self.token, timeout
        )

    def get(self, node: str, path: str, timeout: float = 10.0) -> Any:
        return self.call(node, "GET", path, None, timeout)

    def post(self, node: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        return self.call(node, "POST", path, {} if body is None else body, timeout)

    def upload(
        self,
        node: str,
        path: str,
        files: Sequence[tuple[str, Path | bytes]],
        fields: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> Any:
        """POST files as `multipart/form-data` (home's `/submit`); files on disk are read as they are sent."""
        body, content_type = multipart(files, fields)
        return self.transport.request(node, "POST", path, body, content_type, self.token, timeout)

    def healthy(self, node: str, deployment: str, timeout: float = 1.0) -> bool:
        """Whether an agent answers its health check, for this deployment."""
        try:
            answer = self.transport.request(node, "GET", "/health", None, "", "", timeout)
        except Unreachable:
            return False
        return isinstance(answer, dict) and bool(answer.get("ready")) and answer.get("deployment") == deployment
