"""A fixed deployment to render: a small app with extra ports, three nodes, fixed id, token and mapping."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jupiter.model.deployment_spec import DeploymentSpec, resolve_spec
from jupiter.model.plan import NodeAddress, Plan, TaskSpec
from jupiter.model.workspace import Workspace, load_workspace
from jupiter.render.spec import ClusterSpec, cluster_addresses, cluster_spec

CONFIG = textwrap.dedent(
    """\
    [CONFIG]
    SCHEDULER = heft
    TRANSFER = http

    [PORT]
    FLASK_DOCKER = 8888

    [DEPLOY]
    APP = app_specific_files/demo
    REGISTRY = registry.example.org:5000/team
    IMAGE_TAG = v1
    BASE_IMAGE = jupiter-base:bookworm
    NAMESPACE = jupiter-test
    MAPPER_NAMESPACE = jupiter-mapper
    CPU_REQUEST = 250m
    MEMORY_REQUEST = 256Mi
    CPUS = node1:0.5
    """
)
NODES = "home kube-master\nnode1 kube-worker-1\nnode_2 kube-worker-2\n"
DAG = "2\nsplit 1 true join\njoin 1 true home\n"
SCRIPT = "def task(filename, pathin, pathout):\n    return []\n"
APP_PORTS = "[DOCKER_PORT]\nstream = 9000\n\n[SVC_PORT]\nstream = 9100\n"
DEPLOYMENT_ID = "20250101-000000-abcdef"
TOKEN = 'tok"en: with\nyaml-hostile: chars #'


def make_workspace(root: Path, config: str = CONFIG) -> Workspace:
    app = root / "app_specific_files" / "demo"
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "configuration.txt").write_text(DAG)
    (app / "app_config.ini").write_text(APP_PORTS)
    (app / "sample_input" / "a.txt").write_text("a\n")
    for task in ("split", "join"):
        (app / "scripts" / f"{task}.py").write_text(SCRIPT)
    (root / "jupiter_config.ini").write_text(config)
    (root / "nodes.txt").write_text(NODES)
    return load_workspace(root / "jupiter_config.ini", root / "nodes.txt", None)


def make_spec(root: Path, config: str = CONFIG) -> DeploymentSpec:
    return resolve_spec(make_workspace(root, config))


def fixed_plan(workspace: Workspace, addresses: dict[str, NodeAddress]) -> Plan:
    """A plan with only the fields this test controls (defaults for the rest)."""
    app = str(workspace.app.path)
    return Plan(
        deployment=DEPLOYMENT_ID,
        app_name="demo",
        app_path=app,
        tasks={
            "split": TaskSpec("split", 1, True, ("join",), (), f"{app}/scripts/split.py"),
            "join": TaskSpec("join", 1, True, ("home",), ("split",), f"{app}/scripts/join.py"),
        },
        order=("split", "join"),
        mapping={"split": "node1", "join": "node_2"},
        nodes=addresses,
        ingress=("split",),
        home="home",
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return make_workspace(tmp_path)


@pytest.fixture
def deployment_spec(workspace: Workspace) -> DeploymentSpec:
    return resolve_spec(workspace)


@pytest.fixture
def spec(workspace: Workspace, deployment_spec: DeploymentSpec) -> ClusterSpec:
    addresses = cluster_addresses(deployment_spec)
    return cluster_spec(deployment_spec, fixed_plan(workspace, addresses), TOKEN, '{"format": "jupiter-problem"}')
