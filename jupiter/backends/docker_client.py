"""The one module that talks to a Docker engine (the Docker SDK, `docker` package).

`DockerEngine` offers what `jupiter build` and the docker backend need and
nothing else: build and push images (streaming progress), create a labelled
network, run labelled containers, read their addresses and logs, and remove
everything carrying a label. Errors become `EngineError`s that say what to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupiter.model.errors import JupiterError


class EngineError(JupiterError):
    """The Docker engine is missing, refused a call, or a build failed."""


@dataclass(frozen=True)
class Mount:
    """A host folder mounted into a container."""

    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerState:
    """One container of a deployment."""

    name: str
    status: str
    """created, running, restarting, exited, ..."""
    labels: dict[str, str]


class DockerEngine:
    """A connection to the engine named by `DOCKER_HOST` (default: the local socket)."""

    def __init__(self) -> None:
        try:
            import docker  # noqa: PLC0415 - imported only when the engine is used
            import docker.errors  # noqa: PLC0415
        except ImportError:
            raise EngineError(
                "containers need the `docker` package: pip install 'jupiter-orchestrator[containers]'"
            ) from None
        self._docker = docker
        try:
            self.client = docker.from_env(timeout=120)
            self.client.ping()
        except docker.errors.DockerException as exc:
            raise EngineError(
                f"no Docker engine answers ({exc}); start one (e.g. scripts/setup-docker) or set DOCKER_HOST"
            ) from None

    @contextlib.contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        errors = self._docker.errors
        try:
            yield
        except errors.ImageNotFound:
            raise EngineError(f"{what}: image not found; build it with `jupiter build`") from None
        except errors.APIError as exc:
            raise EngineError(f"{what}: {exc.explanation or exc}") from None
        except errors.DockerException as exc:
            raise EngineError(f"{what}: {exc}") from None

    # ------------------------------------------------------------------ images

    def build(
        self, context: Path, tag: str, progress: Callable[[str], None], labels: dict[str, str], no_cache: bool = False
    ) -> str:
        """Build `context/Dockerfile` as `tag`, streaming the build's output; returns the image id."""
        image_id = ""
        with self._calling(f"build {tag}"):
            for chunk in self.client.api.build(
                path=str(context),
                tag=tag,
                rm=True,
                forcerm=True,
                decode=True,
                pull=False,
                labels=labels,
                nocache=no_cache,
            ):
                if "error" in chunk:
                    detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                    raise EngineError(f"building {tag} failed: {detail.strip()}")
                line = str(chunk.get("stream", "")).rstrip()
                if line:
                    progress(line)
                aux = chunk.get("aux")
                if isinstance(aux, dict) and "ID" in aux:
                    image_id = str(aux["ID"])
        return image_id or self.image_id(tag)

    def push(self, reference: str, progress: Callable[[str], None]) -> None:
        """Push an image to its registry, streaming progress."""
        repository, _, tag = reference.rpartition(":")
        with self._calling(f"push {reference}"):
            for chunk in self.client.api.push(repository, tag=tag, stream=True, decode=True):
                if "error" in chunk:
                    raise EngineError(f"pushing {reference} failed: {chunk['error']}; check `docker login`")
                status = chunk.get("status")
                if status and "progress" not in chunk:
                    progress(f"{chunk.get('id', '')} {status}".strip())

    def image_id(self, reference: str) -> str:
        """Id of a local image; EngineError when absent."""
        with self._calling(f"inspect image {reference}"):
            return str(self.client.images.get(reference).id)

    def image_size(self, reference: str) -> int:
        """Size in bytes of a local image."""
        with self._calling(f"inspect image {reference}"):
            return int(self.client.images.get(reference).attrs["Size"])

    def has_image(self, reference: str) -> bool:
        """Whether a local image of that reference exists."""
        try:
            self.image_id(reference)
        except EngineError:
            return False
        return True

    # -------------------------------------------------------------- containers

    def create_network(self, name: str, labels: dict[str, str]) -> None:
        """A private bridge network."""
        with self._calling(f"create network {name}"):
            self.client.networks.create(name, driver="bridge", labels=labels, check_duplicate=True)

    def run(
        self,
        name: str,
        image: str,
        command: list[str],
        network: str,
        alias: str,
        labels: dict[str, str],
        environment: dict[str, str],
        mounts: list[Mount],
        cpus: float | None = None,
        user: str | None = None,
        entrypoint: list[str] | None = None,
        cap_add: list[str] | None = None,
        no_new_privileges: bool = False,
        tmpfs: dict[str, str] | None = None,
        log_files: tuple[int, int] | None = None,
    ) -> None:
        """Start a detached container on `network`, reachable there as `alias`; restarted if it fails.

        `entrypoint` replaces the image's; `cap_add` adds Linux capabilities
        (e.g. NET_ADMIN); `no_new_privileges` keeps its processes from gaining
        any (setuid binaries) once they have dropped them; `tmpfs` mounts
        memory file systems (path -> mount options); `log_files` = (bytes,
        files): the engine keeps the container's output in at most that many
        files of that size (`[OTHER] LOG_FILE_SIZE`, `MAX_LOG`).
        """
        types = self._docker.types
        with self._calling(f"start container {name}"):
            container = self.client.containers.create(
                image,
                command=command,
                name=name,
                hostname=alias,
                labels=labels,
                environment=environment,
                mounts=[types.Mount(m.target, str(m.source), type="bind", read_only=m.read_only) for m in mounts],
                nano_cpus=round(cpus * 1e9) if cpus else None,
                user=user,
                entrypoint=entrypoint,
                cap_add=cap_add,
                security_opt=["no-new-privileges"] if no_new_privileges else None,
                tmpfs=tmpfs,
                log_config=(
                    types.LogConfig(
                        type="json-file",
                        config={"max-size": f"{max(1, log_files[0] // 1024)}k", "max-file": str(log_files[1])},
                    )
                    if log_files is not None
                    else None
                ),
                network=network,
                networking_config={network: self.client.api.create_endpoint_config(aliases=[alias])},
                restart_policy={"Name": "on-failure", "MaximumRetryCount": 5},
                detach=True,
            )
            container.start()

    def address(self, name: str, network: str) -> str:
        """IP address of a container on a network (reachable from this host on Linux)."""
        with self._calling(f"inspect container {name}"):
            container = self.client.containers.get(name)
            return str(container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"])

    def containers(self, label: str) -> list[ContainerState]:
        """Containers (running or not) carrying `label` (`key=value`)."""
        with self._calling(f"list containers {label}"):
            found = self.client.containers.list(all=True, filters={"label": label})
            return [ContainerState(str(c.name), str(c.status), dict(c.labels)) for c in found]

    def state(self, name: str) -> str:
        """Status of one container (created, running, restarting, exited, ...)."""
        with self._calling(f"inspect container {name}"):
            return str(self.client.containers.get(name).status)

    def logs(self, name: str) -> bytes:
        """Everything a container wrote to stdout and stderr."""
        with self._calling(f"read logs of {name}"):
            return bytes(self.client.containers.get(name).logs(stdout=True, stderr=True))

    def exists(self, name: str) -> bool:
        """Whether a container of that name exists (running or not)."""
        try:
            self.state(name)
        except EngineError:
            return False
        return True

    def log_lines(self, name: str, since: float | None = None) -> list[str]:
        """A container's output lines, each starting with the engine's RFC 3339 timestamp and a space.

        `since`: only lines written from then on (epoch seconds; the engine
        has them to the nanosecond, so the caller drops the ones it has).
        """
        with self._calling(f"read logs of {name}"):
            container = self.client.containers.get(name)
            data = container.logs(stdout=True, stderr=True, timestamps=True, since=since if since else None)
        return bytes(data).decode("utf-8", errors="replace").splitlines()

    def remove_containers(self, label: str) -> list[str]:
        """Stop and remove every container carrying `label`; returns their names."""
        removed = []
        errors = self._docker.errors
        with self._calling(f"remove containers {label}"):
            for container in self.client.containers.list(all=True, filters={"label": label}):
                with contextlib.suppress(errors.NotFound):
                    container.remove(force=True)
                removed.append(str(container.name))
        return removed

    def remove_networks(self, label: str) -> list[str]:
        """Remove every network carrying `label`; returns their names."""
        removed = []
        errors = self._docker.errors
        with self._calling(f"remove networks {label}"):
            for network in self.client.networks.list(filters={"label": label}):
                with contextlib.suppress(errors.NotFound):
                    network.remove()
                removed.append(str(network.name))
        return removed

    def info(self) -> dict[str, Any]:
        """The engine's `docker info`."""
        with self._calling("read engine info"):
            return dict(self.client.info())
