"""Backends decide where agents run and how they find each other.

Profiling, mapping and dispatch never depend on the backend: every backend
starts the same agent program (`python -m jupiter.runtime.node`) with the
same plan, and only chooses the addresses and the kind of process. The
interface is `jupiter.backends.base` (a launcher, and a handle on a running
deployment); backends are registered here by the name `[DEPLOY] BACKEND`
gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from jupiter.backends.base import Attachment, Backend, BackendError, Handle, NotSupported, Progress
from jupiter.backends.docker import DockerBackend
from jupiter.backends.kubernetes import KubernetesBackend
from jupiter.backends.local import LocalBackend

BACKENDS: Mapping[str, type[Backend]] = MappingProxyType(
    {backend.name: backend for backend in (LocalBackend, DockerBackend, KubernetesBackend)}
)
"""Every backend, by name."""


def backend_names() -> tuple[str, ...]:
    """The names `[DEPLOY] BACKEND` and `--backend` accept."""
    return tuple(BACKENDS)


def backend_class(name: str) -> type[Backend]:
    """The backend called `name`; BackendError listing the others when there is none."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise BackendError(f"backend {name!r} is not available; use one of: {', '.join(BACKENDS)}") from None


def attach(name: str, attachment: Attachment, progress: Progress = lambda _: None) -> Handle:
    """A handle on a deployment of backend `name`, from its record."""
    return backend_class(name).handle(attachment, progress)


__all__ = [
    "BACKENDS",
    "Attachment",
    "Backend",
    "BackendError",
    "Handle",
    "NotSupported",
    "attach",
    "backend_class",
    "backend_names",
]
