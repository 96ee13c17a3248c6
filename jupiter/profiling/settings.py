"""From a workspace to what the profilers need: the session, the agents' plan entries, the store.

Agents never read the user's files: the testbed, the network profiler's
settings and where the store is travel in the plan's `extra` mapping,
already parsed and checked here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupiter.model.nodes import NodeRole
from jupiter.model.workspace import Workspace
from jupiter.profiling.session import SessionSpec, parse_link_list
from jupiter.store import ProfileStore, open_store
from jupiter.testbed import Testbed, parse_testbed

STORE_FILE = "profiles.sqlite"


def agent_nodes(workspace: Workspace) -> list[str]:
    """Nodes that get an agent: every node but the data sources."""
    return [node.name for node in workspace.nodes if node.role is not NodeRole.DATASOURCE]


def load_testbed(workspace: Workspace) -> Testbed | None:
    """The configured testbed file, checked against nodes.txt (None when there is none)."""
    settings = workspace.config.profiling
    if settings.testbed is None:
        return None
    return parse_testbed(workspace.config.resolve(settings.testbed), tuple(node.name for node in workspace.nodes))


def link_list(workspace: Workspace) -> list[tuple[str, str]] | None:
    """The configured link list, or None for a full mesh."""
    settings = workspace.config.profiling
    if settings.links is None:
        return None
    return parse_link_list(workspace.config.resolve(settings.links), agent_nodes(workspace))


def session_spec(workspace: Workspace) -> SessionSpec:
    """What a profiling session of this workspace measures."""
    settings = workspace.config.profiling
    dag = workspace.app.dag
    return SessionSpec(
        agents=agent_nodes(workspace),
        compute=[node.name for node in workspace.nodes.compute],
        order=dag.order,
        edges=dag.edges,
        skip=frozenset(task for task in dag.order if not workspace.app.scripts.profiled(task)),
        sizes=settings.network_sizes,
        samples=settings.network_samples,
        exec_runs=settings.exec_runs,
        links=link_list(workspace),
        timeout=settings.timeout,
    )


def store_settings(workspace: Workspace, home_dir: Path) -> dict[str, Any]:
    """Where the deployment's profile store is: a SQLite file in home's folder, or MongoDB."""
    settings = workspace.config.profiling
    if settings.store == "mongodb":
        return {"kind": "mongodb", "url": settings.mongo_url, "database": "jupiter"}
    return {"kind": "sqlite", "path": str(home_dir / STORE_FILE)}


def open_deployment_store(workspace: Workspace, home_dir: Path) -> ProfileStore:
    """Open the store of a deployment whose home folder is `home_dir`."""
    return open_store(store_settings(workspace, home_dir))


def plan_extra(workspace: Workspace, home_dir: Path, reprofile: bool) -> dict[str, Any]:
    """The plan's `extra` entries for the agents: testbed, profiler settings, store."""
    settings = workspace.config.profiling
    testbed = load_testbed(workspace)
    links = link_list(workspace)
    extra: dict[str, Any] = {
        "profiling": {
            "sizes": list(settings.network_sizes),
            "samples": settings.network_samples,
            "interval": settings.network_interval if reprofile else 0.0,
            "links": [list(link) for link in links] if links is not None else None,
        },
        "store": store_settings(workspace, home_dir),
    }
    if testbed is not None:
        extra["testbed"] = testbed.to_json()
    return extra
