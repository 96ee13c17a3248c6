"""Rendered Dockerfiles and manifests: whole-object golden comparisons and the Kubernetes schema.

Regenerate the golden files after an intended change with
`JUPITER_UPDATE_GOLDEN=1 pytest tests/containers/test_render.py` and review the diff.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from jupiter.model.deployment_spec import DeploymentSpec, resolve_spec
from jupiter.model.errors import InputError
from jupiter.model.plan import Plan
from jupiter.model.workspace import load_workspace
from jupiter.render import render_access, render_dockerfile, render_manifests
from jupiter.render.manifests import deployment_selector, render_mapper
from jupiter.render.spec import BIND_ALL, ClusterSpec, cluster_addresses, cluster_spec, container_plan, image_spec
from jupiter.service.plans import build_plan
from tests.containers.conftest import CONFIG, DEPLOYMENT_ID, TOKEN, make_spec, make_workspace

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("JUPITER_UPDATE_GOLDEN") == "1"
# Oldest and newest Kubernetes versions we support (kubernetes-validate's range).
K8S_VERSIONS = ("1.25.0", "1.37.0")


def _golden_text(name: str, text: str) -> str:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing; create it with JUPITER_UPDATE_GOLDEN=1"
    return path.read_text()


def _objects(spec: ClusterSpec) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{stage.name}-{obj['kind'].lower()}-{obj['metadata'].get('namespace', '')}-{obj['metadata']['name']}", obj)
        for stage in render_manifests(spec)
        for obj in stage.objects
    ]


def test_dockerfile_matches_golden(deployment_spec: DeploymentSpec) -> None:
    text = render_dockerfile(image_spec(deployment_spec))
    assert text == _golden_text("Dockerfile", text)


def test_scp_dockerfile_has_key_only_ssh(tmp_path: Path) -> None:
    text = render_dockerfile(image_spec(make_spec(tmp_path, CONFIG.replace("TRANSFER = http", "TRANSFER = scp"))))
    assert text == _golden_text("Dockerfile.scp", text)
    assert "PasswordAuthentication no" in text
    assert "openssh-server" in text


def test_http_image_has_no_ssh_server_and_no_password(deployment_spec: DeploymentSpec) -> None:
    text = render_dockerfile(image_spec(deployment_spec))
    assert "ssh" not in text.lower()
    assert "passwd" not in text and "chpasswd" not in text
    assert "USER 10001:10001" in text


def test_manifests_match_golden(spec: ClusterSpec) -> None:
    objects = _objects(spec)
    for name, obj in objects:
        golden = yaml.safe_load(_golden_text(f"manifests/{name}.yaml", yaml.safe_dump(obj, sort_keys=True)))
        assert obj == golden, f"{name} differs from its golden file"
    expected = {f"{name}.yaml" for name, _ in objects}
    assert {p.name for p in (GOLDEN / "manifests").iterdir()} == expected


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_against_the_schema(spec: ClusterSpec, version: str) -> None:
    for name, obj in _objects(spec):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} is not a valid {obj['kind']} for Kubernetes {version}: {exc.message}")


def test_stages_follow_the_original_order(spec: ClusterSpec) -> None:
    # The agents profile first, the mapper Job maps from that; CIRCE is the mapping dispatched to the agents.
    stages = render_manifests(spec)
    assert [(s.name, s.wait) for s in stages] == [("setup", "none"), ("agents", "ready"), ("mapper", "complete")]
    assert [o["kind"] for o in stages[0].objects] == ["Namespace", "Namespace", "Secret", "ConfigMap", "NetworkPolicy"]
    assert [o["kind"] for o in stages[1].objects] == ["Deployment", "Service"] * 3
    assert [o["kind"] for o in stages[2].objects] == ["ConfigMap", "Job"]


def test_only_stable_api_groups_and_every_object_labelled(spec: ClusterSpec) -> None:
    for name, obj in _objects(spec):
        assert obj["apiVersion"] in ("v1", "apps/v1", "batch/v1", "networking.k8s.io/v1"), name
        labels = obj["metadata"]["labels"]
        assert labels["jupiter/deployment-id"] == spec.deployment_id, name
        assert {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by"} <= set(labels)
    assert deployment_selector(spec.deployment_id) == f"jupiter/deployment-id={spec.deployment_id}"


def test_token_survives_yaml_escaping(spec: ClusterSpec) -> None:
    secret = next(obj for _, obj in _objects(spec) if obj["kind"] == "Secret")
    assert secret["stringData"] == {"token": TOKEN}


def test_every_agent_reads_one_plan_listens_everywhere_and_finds_peers_by_dns(spec: ClusterSpec) -> None:
    plans = next(obj for _, obj in _objects(spec) if obj["kind"] == "ConfigMap" and "plan.json" in obj["data"])
    assert list(plans["data"]) == ["plan.json"]
    plan = Plan.from_json(plans["data"]["plan.json"])
    assert plan.nodes["node1"].host == "jupiter-node1.jupiter-test.svc"
    assert plan.nodes["node_2"].host == "jupiter-node-2.jupiter-test.svc"
    assert plan.tasks["split"].script == "/app/scripts/split.py"
    assert plan.app_path == "/app"
    for _, obj in _objects(spec):
        if obj["kind"] == "Deployment":
            args = obj["spec"]["template"]["spec"]["containers"][0]["args"]
            assert args[:2] == ["--plan", "/etc/jupiter/plan.json"]
            assert args[-2:] == ["--bind", BIND_ALL]


def _pods(spec: ClusterSpec) -> list[tuple[str, dict[str, Any]]]:
    objects = [*_objects(spec), *(("mapper", obj) for obj in render_mapper(spec).objects)]
    return [(name, obj["spec"]["template"]["spec"]) for name, obj in objects if obj["kind"] in ("Deployment", "Job")]


def test_pods_meet_the_restricted_pod_security_level(spec: ClusterSpec) -> None:
    # What the `restricted` Pod Security Standard checks: non-root, no escalation, no capabilities, seccomp.
    for name, pod in _pods(spec):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            }, name


def test_a_memory_limit_is_rendered_only_when_set(spec: ClusterSpec) -> None:
    def limits(cluster: ClusterSpec) -> dict[str, dict[str, str]]:
        return {
            obj["metadata"]["name"]: obj["spec"]["template"]["spec"]["containers"][0]["resources"].get("limits", {})
            for _, obj in _objects(cluster)
            if obj["kind"] == "Deployment"
        }

    assert limits(spec) == {"jupiter-home": {}, "jupiter-node1": {"cpu": "0.5"}, "jupiter-node-2": {}}
    agents = tuple(dataclasses.replace(agent, memory="2Gi") for agent in spec.agents)
    limited = limits(dataclasses.replace(spec, agents=agents))
    assert limited == {
        "jupiter-home": {"memory": "2Gi"},
        "jupiter-node1": {"cpu": "0.5", "memory": "2Gi"},
        "jupiter-node-2": {"memory": "2Gi"},
    }


def test_only_the_deployments_pods_reach_the_data_and_app_ports(spec: ClusterSpec) -> None:
    (policy,) = [obj for _, obj in _objects(spec) if obj["kind"] == "NetworkPolicy"]
    own = {"matchLabels": {"jupiter/deployment-id": spec.deployment_id}}
    assert policy["spec"]["podSelector"] == own
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    peers, control = policy["spec"]["ingress"]
    assert peers == {
        "from": [{"podSelector": own}],
        "ports": [{"port": spec.data_port, "protocol": "TCP"}, {"port": 9000, "protocol": "TCP"}],
    }
    # The API server's proxy (the CLI) and the kubelet's probes reach the control port; the token guards it.
    assert control == {"ports": [{"port": spec.control_port, "protocol": "TCP"}]}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_the_access_objects_grant_what_the_cli_does_and_validate(spec: ClusterSpec, version: str) -> None:
    objects = render_access(spec)
    assert [(o["kind"], o["metadata"]["namespace"]) for o in objects] == [
        ("Role", "jupiter-test"),
        ("RoleBinding", "jupiter-test"),
        ("Role", "jupiter-mapper"),
        ("RoleBinding", "jupiter-mapper"),
    ]
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)
        name = f"access-{obj['kind'].lower()}-{obj['metadata']['namespace']}-{obj['metadata']['name']}"
        golden = yaml.safe_load(_golden_text(f"access/{name}.yaml", yaml.safe_dump(obj, sort_keys=True)))
        assert obj == golden
    role, binding = objects[:2]
    granted = {
        (group, resource) for rule in role["rules"] for group in rule["apiGroups"] for resource in rule["resources"]
    }
    # Every kind the backend creates, and the proxy the CLI talks to the agents through.
    created = {(obj["apiVersion"].rpartition("/")[0], obj["kind"].lower() + "s") for _, obj in _objects(spec)}
    assert {(group, kind.replace("networkpolicys", "networkpolicies")) for group, kind in created} - {
        ("", "namespaces")
    } <= granted
    assert ("", "services/proxy") in granted
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "jupiter-users"}]


def test_what_a_configmap_cannot_hold_is_refused_with_its_size(spec: ClusterSpec) -> None:
    with pytest.raises(InputError) as caught:
        render_manifests(dataclasses.replace(spec, plan="x" * (1024 * 1024 + 1)))
    assert str(caught.value) == (
        "the deployment's plan is 1.00 MiB, more than the 1 MiB a Kubernetes ConfigMap holds; "
        "split the app or the node list into several deployments"
    )
    with pytest.raises(InputError, match=r"^the mapping problem of the mapper Job is 2\.00 MiB, .*STATIC_MAPPING = 1"):
        render_mapper(dataclasses.replace(spec, problem="x" * (2 * 1024 * 1024)))


def test_static_mapping_renders_no_mapper_job(spec: ClusterSpec) -> None:
    stages = render_manifests(dataclasses.replace(spec, problem=None))
    assert [s.name for s in stages] == ["setup", "agents"]
    assert [o["metadata"]["name"] for o in stages[0].objects if o["kind"] == "Namespace"] == ["jupiter-test"]


def test_a_measured_deployment_starts_without_the_job_but_with_its_namespace(spec: ClusterSpec) -> None:
    measured = dataclasses.replace(spec, problem=None, measured=True)
    stages = render_manifests(measured)
    assert [s.name for s in stages] == ["setup", "agents"]
    assert [o["metadata"]["name"] for o in stages[0].objects if o["kind"] == "Namespace"] == [
        "jupiter-test",
        "jupiter-mapper",
    ]
    # After profiling, the mapper stage is the same objects as with the problem from the start.
    later = dataclasses.replace(measured, problem=spec.problem)
    assert render_mapper(later) == render_manifests(spec)[2]
    with pytest.raises(ValueError, match="needs a mapping problem"):
        render_mapper(measured)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_mapper_options_extend_the_jobs_command(spec: ClusterSpec, version: str) -> None:
    options = ("--max-tasks-per-node", "2")
    stage = render_mapper(dataclasses.replace(spec, scheduler="heft_modified", mapper_options=options))
    job = stage.objects[1]
    kubernetes_validate.validate(job, version, strict=True)
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command == [
        "jupiter",
        "map",
        "--problem",
        "/etc/jupiter/problem.json",
        "--scheduler",
        "heft_modified",
        "--max-tasks-per-node",
        "2",
        "--output",
        "json",
    ]


def test_container_plan_keeps_the_rest(spec: ClusterSpec) -> None:
    plan = Plan.from_json(spec.plan)
    again = container_plan(plan)
    assert json.loads(again.to_json()) == json.loads(plan.to_json())


def test_testbed_speeds_map_to_cpu_limits_and_leave_the_containers() -> None:
    from jupiter.backends.docker import testbed_cpus, without_speeds
    from jupiter.model.plan import NodeAddress, Plan, StoreSpec
    from jupiter.model.testbed import Testbed

    nodes = {name: NodeAddress(name, "compute", name, 1, 2) for name in ("home", "fast", "slow")}
    testbed = Testbed(speeds={"fast": 1.0, "slow": 0.5}, links={("fast", "slow"): (1e6, 0.01)}, path="t.ini")
    store = StoreSpec(path="/s.sqlite")
    plan = Plan("d", "a", "/a", {}, (), {}, nodes, (), "home", testbed=testbed, store=store)
    assert testbed_cpus(plan) == {"slow": 0.5}
    stripped = without_speeds(plan)
    assert stripped.testbed is not None
    assert stripped.testbed.speeds == {}
    assert stripped.testbed.links == testbed.links
    assert stripped.store == store
    bare = Plan("d", "a", "/a", {}, (), {}, nodes, (), "home")
    assert testbed_cpus(bare) == {} and without_speeds(bare) is bare


def _rendered_bytes(tmp_path: Path, nodes: int) -> int:
    root = tmp_path / f"n{nodes}"
    root.mkdir()
    make_workspace(root)
    (root / "nodes.txt").write_text("home kube-master\n" + "".join(f"node{i} kube-{i}\n" for i in range(nodes)))
    (root / "mapping.txt").write_text("split node0\njoin node1\n")
    config = CONFIG.replace("[DEPLOY]\n", "[DEPLOY]\nMAPPING = mapping.txt\n").replace(
        "[CONFIG]\n", "[CONFIG]\nSTATIC_MAPPING = 1\n"
    )
    (root / "jupiter_config.ini").write_text(config.replace("CPUS = node1:0.5\n", ""))
    deployment_spec = resolve_spec(load_workspace(root / "jupiter_config.ini", root / "nodes.txt", None))
    addresses = cluster_addresses(deployment_spec)
    plan = build_plan(deployment_spec, DEPLOYMENT_ID, {"split": "node0", "join": "node1"}, addresses)
    cluster = cluster_spec(deployment_spec, plan, TOKEN, None)
    return sum(len(yaml.safe_dump(obj)) for stage in render_manifests(cluster) for obj in stage.objects)


def test_what_is_rendered_grows_linearly_with_the_nodes(tmp_path: Path) -> None:
    # One plan for every agent: twice the nodes, about twice the objects (a plan per node was quadratic).
    # How long rendering takes is measured by bench/containers/render_bench.py.
    small, large = _rendered_bytes(tmp_path, 40), _rendered_bytes(tmp_path, 80)
    assert large < 2.1 * small


def test_an_agent_told_to_bind_listens_everywhere_and_its_peers_keep_its_name(spec: ClusterSpec) -> None:
    from jupiter.runtime.node import listening_on

    shared = Plan.from_json(spec.plan)
    mine = listening_on(shared, "node1", BIND_ALL)
    assert mine.nodes["node1"].host == BIND_ALL
    assert mine.nodes["node_2"] == shared.nodes["node_2"]
    assert shared.nodes["node1"].host == "jupiter-node1.jupiter-test.svc"  # the shared plan is unchanged
