"""The container path for real: build the app image offline, run the app on the docker backend, tear down.

Needs a Docker engine and the offline base image; `scripts/setup-docker`
(called by `scripts/test`) provides both. Without them these tests FAIL:
a missing engine in CI must not pass as a skip.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupiter import deployment as service
from jupiter.backends.docker import LABEL_DEPLOYMENT, LABEL_NODE, BuildResult, build_image
from jupiter.backends.docker_client import DockerEngine, EngineError
from jupiter.cli import main
from jupiter.model.workspace import Workspace, load_workspace
from jupiter.resources import data_dir
from jupiter.tools.traffic import expected_report

pytestmark = pytest.mark.docker

BASE_IMAGE = os.environ.get("JUPITER_BASE_IMAGE", "jupiter-base:bookworm")
APP = "network_monitoring_app"


@pytest.fixture(scope="module")
def engine() -> DockerEngine:
    try:
        engine = DockerEngine()
    except EngineError as exc:
        pytest.fail(f"the docker tier needs a Docker engine: {exc}")
    if not engine.has_image(BASE_IMAGE):
        pytest.fail(f"base image {BASE_IMAGE} is missing; build it with scripts/setup-docker")
    return engine


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("docker-work")
    shutil.copytree(data_dir() / "app_specific_files" / APP, root / "app_specific_files" / APP)
    shutil.copy(data_dir() / "nodes.txt", root / "nodes.txt")
    text = (data_dir() / "jupiter_config.ini").read_text()
    text = text.replace("BACKEND = local", f"BACKEND = docker\nBASE_IMAGE = {BASE_IMAGE}\nIMAGE_TAG = test")
    (root / "jupiter_config.ini").write_text(text)
    return root


@pytest.fixture(scope="module")
def workspace(work: Path) -> Workspace:
    return load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None)


@pytest.fixture(scope="module")
def image(engine: DockerEngine, workspace: Workspace) -> BuildResult:
    lines: list[str] = []
    result = build_image(workspace, progress=lines.append, engine=engine)
    assert any(line.startswith("Step 1/") for line in lines), "the build's progress was not streamed"
    return result


@pytest.fixture
def in_work(work: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(work)
    yield work
    main(["teardown"])


def _leftovers(engine: DockerEngine, deployment: str) -> list[str]:
    label = f"{LABEL_DEPLOYMENT}={deployment}"
    networks = engine.client.networks.list(filters={"label": label})
    return [c.name for c in engine.containers(label)] + [str(n.name) for n in networks]


def test_image_is_tagged_and_runs_as_a_non_root_user(engine: DockerEngine, image: BuildResult) -> None:
    assert image.image == "jupiter-network-monitoring-app:test"
    config = engine.client.images.get(image.image).attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["python3", "-m", "jupiter.runtime.node"]


def test_run_on_docker_gives_the_reference_outputs_and_leaves_nothing(
    engine: DockerEngine, image: BuildResult, workspace: Workspace
) -> None:
    summary = service.run(workspace)
    samples = workspace.app.sample_inputs
    assert (summary.frames, summary.done, summary.failed) == (len(samples), len(samples), 0)
    inputs = {}
    for line in (summary.output_dir.parent / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "frame_submitted":
            inputs[event["frame"]] = event["input"]
    assert sorted(inputs.values()) == sorted(path.name for path in samples)
    for frame, name in inputs.items():
        sample = workspace.app.path / "sample_input" / name
        report = summary.output_dir / frame / f"{sample.stem}_report.txt"
        assert report.read_text() == expected_report(sample)
    assert _leftovers(engine, summary.deployment) == []


def test_deploy_status_submit_teardown_through_the_cli(
    engine: DockerEngine, image: BuildResult, in_work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", "--timeout", "120"]) == 0
    deployment = service.find(in_work / ".jupiter")
    assert deployment is not None and deployment.backend == "docker"
    assert len(engine.containers(f"{LABEL_DEPLOYMENT}={deployment.id}")) == 5
    sample = in_work / "app_specific_files" / APP / "sample_input" / "scan.ipsum"
    assert main(["submit", str(sample)]) == 0
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"deployment {deployment.id}" in out
    assert "node1" in out
    assert main(["teardown"]) == 0
    assert _leftovers(engine, deployment.id) == []
    assert main(["teardown"]) == 0
    assert "nothing to tear down" in capsys.readouterr().out
    # Agents' output is kept where the local backend keeps its logs.
    assert (deployment.root / "logs" / "home.log").read_text()


def test_testbed_speeds_become_cpu_limits(engine: DockerEngine, image: BuildResult, work: Path, tmp_path: Path) -> None:
    shutil.copytree(work / "app_specific_files", tmp_path / "app_specific_files")
    shutil.copy(work / "nodes.txt", tmp_path / "nodes.txt")
    shutil.copy(data_dir() / "testbed.ini", tmp_path / "testbed.ini")
    config = (work / "jupiter_config.ini").read_text().replace("TESTBED =", "TESTBED = testbed.ini")
    (tmp_path / "jupiter_config.ini").write_text(config.replace("STATIC_MAPPING = 0", "STATIC_MAPPING = 1"))
    (tmp_path / "mapping.txt").write_text(
        "".join(
            f"{task} node1\n"
            for task in load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None).app.dag.order
        )
    )
    workspace = load_workspace(tmp_path / "jupiter_config.ini", tmp_path / "nodes.txt", None)
    deployment = service.deploy(workspace, mapping_file=tmp_path / "mapping.txt", timeout=120)
    try:
        limits = {
            state.labels[LABEL_NODE]: engine.client.containers.get(state.name).attrs["HostConfig"]["NanoCpus"]
            for state in engine.containers(f"{LABEL_DEPLOYMENT}={deployment.id}")
        }
        plan = json.loads((deployment.root / "plans" / "plan-node2.json").read_text())
    finally:
        service.teardown(deployment)
    # testbed.ini: node1 full speed (no limit), node2-4 at 0.25 -> a quarter of a core each.
    assert limits["node1"] == 0 and limits["home"] == 0
    assert limits["node2"] == limits["node3"] == limits["node4"] == 250_000_000
    # Inside the containers the speeds are not applied a second time; the links still are.
    assert plan["extra"]["testbed"]["speeds"] == {}
    assert plan["extra"]["testbed"]["uplinks"] or plan["extra"]["testbed"]["links"]
    assert _leftovers(engine, deployment.id) == []
