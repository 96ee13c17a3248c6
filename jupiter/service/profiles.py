"""Profiles kept for later: `--profile FILE`, and the cache that lets a second `run` skip measuring.

Measuring takes as long as the tasks do: the original's anomaly app, whose
tasks sleep 10-15 s, spent 2297 s profiling before its first frame. What is
measured depends only on the app, the nodes and how they are run, so a
deployment may map from a profile measured before:

* `--profile FILE` (deploy, run): a profile file (`jupiter profile`'s, or a
  deployment's `profile.json`), checked against the app (its tasks and DAG
  edges) and `nodes.txt` (its compute nodes);
* the cache (`[PROFILING] CACHE = 1`, the default): every profile measured is
  kept in `<STATE_DIR>/profiles/`, under a key made of everything the
  measurements depend on — the app folder's content, the nodes, the testbed,
  the backend and its CPU settings, the profiling settings and Jupiter's
  version — and a later deployment with the same key maps from it at once.
  `--reprofile` measures again (and keeps the new profile).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupiter import __version__
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.errors import InputError
from jupiter.model.problem_files import problem_from_profile

CACHE_FOLDER = "profiles"
"""Folder of the cached profiles, in STATE_DIR (never a deployment folder: `prune` leaves it)."""
CACHE_FORMAT = "jupiter-cached-profile"


@dataclass(frozen=True)
class Reused:
    """A profile a deployment maps from instead of measuring, and where it comes from (for the user)."""

    document: dict[str, Any]
    source: str


def _add(digest: Any, label: str, data: bytes) -> None:
    # Length-prefixed, so that no two different inputs hash alike.
    digest.update(label.encode() + b"\0" + len(data).to_bytes(8, "big") + data)


def profile_key(spec: DeploymentSpec) -> str:
    """The cache key: a hash of everything the measurements depend on (module docstring)."""
    digest = hashlib.sha256()
    app = spec.app.path
    for path in sorted(app.rglob("*")):
        relative = path.relative_to(app)
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts) or not path.is_file():
            continue
        _add(digest, f"app:{relative.as_posix()}", path.read_bytes())
    for node in spec.nodes:
        _add(digest, "node", f"{node.name} {node.role.value} {node.hostname}".encode())
    settings = spec.profiling
    described = {
        "jupiter": __version__,
        "backend": spec.backend,
        "testbed": spec.testbed.to_json() if spec.testbed is not None else None,
        "cpus": dict(spec.containers.cpus),
        "image": [spec.containers.registry, spec.containers.image_tag, spec.containers.base_image],
        "sizes": list(settings.sizes),
        "samples": settings.samples,
        "links": [list(link) for link in settings.links] if settings.links is not None else None,
        "exec_runs": settings.exec_runs,
        "exec_budget": settings.exec_budget,
        "profiler": settings.profiler,
    }
    _add(digest, "settings", json.dumps(described, sort_keys=True).encode())
    return digest.hexdigest()


def cache_path(spec: DeploymentSpec) -> Path:
    """Where the profile of this spec's key is kept."""
    return spec.state_dir / CACHE_FOLDER / f"{spec.app.name}-{profile_key(spec)[:20]}.json"


def remember(spec: DeploymentSpec, document: dict[str, Any], deployment: str) -> Path:
    """Keep a profile measured by `deployment` for later deployments with the same key (atomically)."""
    path = cache_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"format": CACHE_FORMAT, "deployment": deployment, "created": time.time(), "profile": document}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entry, indent=2))
    tmp.replace(path)
    return path


def _age(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{int(seconds // length)} {unit}"
    return f"{int(seconds)} s"


def cached(spec: DeploymentSpec) -> Reused | None:
    """The cached profile of this spec's key, if there is a readable one."""
    path = cache_path(spec)
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # none yet, or a damaged entry: measure (and write a good one)
    if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT or not isinstance(entry.get("profile"), dict):
        return None
    age = _age(max(0.0, time.time() - float(entry.get("created", 0.0))))
    source = f"the profile deployment {entry.get('deployment', '?')} measured {age} ago (cached in {path.parent})"
    return Reused(entry["profile"], source)


def check_profile(document: dict[str, Any], spec: DeploymentSpec, where: Path) -> None:
    """A profile must be of this app (its tasks and edges) and of these compute nodes."""
    problem = problem_from_profile(document, str(where))
    app = spec.app
    fix = f"measure it again (`jupiter profile {app.name}`), or run without --profile"
    tasks, measured = set(app.dag.order), set(problem.tasks)
    if tasks != measured:
        missing = ", ".join(sorted(tasks - measured)) or "none"
        extra = ", ".join(sorted(measured - tasks)) or "none"
        raise InputError(
            where, None, f"is not a profile of {app.name}: tasks missing {missing}, not in the app {extra}; {fix}"
        )
    if {(edge.parent, edge.child) for edge in problem.edges} != set(app.dag.edges):
        raise InputError(where, None, f"has other DAG edges than {app.name}'s configuration.txt; {fix}")
    compute, nodes = set(spec.compute), set(problem.nodes)
    if compute != nodes:
        raise InputError(
            where,
            None,
            f"was measured on nodes {', '.join(sorted(nodes))}, but {spec.nodes.path} has the compute nodes "
            f"{', '.join(sorted(compute))}; {fix}",
        )


def from_file(spec: DeploymentSpec, path: Path) -> Reused:
    """The profile of `--profile FILE`, checked against the app and the nodes."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, None, "profile file not found; write one with `jupiter profile`") from None
    except (OSError, ValueError) as exc:
        raise InputError(path, None, f"is not a profile file ({exc}); write one with `jupiter profile`") from None
    if not isinstance(document, dict):
        raise InputError(path, None, "is not a profile file (not a JSON object); write one with `jupiter profile`")
    check_profile(document, spec, path)
    return Reused(document, f"the profile in {path}")


def profile_to_reuse(spec: DeploymentSpec) -> Reused | None:
    """The profile a deployment maps from without measuring: `--profile FILE`, else the cache; None = measure."""
    settings = spec.profiling
    if settings.reuse is not None:
        return from_file(spec, settings.reuse)
    if settings.cache and not settings.fresh:
        return cached(spec)
    return None
