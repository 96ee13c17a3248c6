"""`jupiter render`: what a deployment would use, as files, touching nothing.

The Dockerfile of the app's image and every Kubernetes manifest of a
deployment of this working folder, stage by stage, with a fixed id and a
placeholder token. A measured deployment shows the mapper Job on the
default-cost problem (the real one runs after profiling).
"""

from __future__ import annotations

import json
from typing import Any

from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.problem_files import problem_to_json
from jupiter.render import cluster_spec, image_spec, render_access, render_dockerfile, render_manifests
from jupiter.render.spec import cluster_addresses
from jupiter.service.planning import default_problem, static_or_default_mapping
from jupiter.service.plans import build_plan

RENDER_ID = "rendered"
"""Deployment id shown by `jupiter render` (a real deploy makes a new one)."""
RENDER_TOKEN = "<generated at deploy time>"  # noqa: S105 - a placeholder, never a real token


def rendered_files(spec: DeploymentSpec) -> list[tuple[str, str]]:
    """(file name, text) of the Dockerfile and every manifest a deployment of `spec` would use."""
    mapping = static_or_default_mapping(spec)
    plan = build_plan(spec, RENDER_ID, mapping, cluster_addresses(spec))
    problem = json.dumps(problem_to_json(default_problem(spec)), sort_keys=True) if spec.mapping.measured else None
    files = [("Dockerfile", render_dockerfile(image_spec(spec)))]
    cluster = cluster_spec(spec, plan, RENDER_TOKEN, problem)
    # The access objects first (00-): an administrator applies them before the first deploy.
    for obj in render_access(cluster):
        files.append((f"00-access-{_file_name(obj)}", _yaml(obj)))
    for number, stage in enumerate(render_manifests(cluster), start=1):
        for obj in stage.objects:
            files.append((f"{number:02d}-{stage.name}-{_file_name(obj)}", _yaml(obj)))
    return files


def _file_name(obj: dict[str, Any]) -> str:
    namespace = obj["metadata"].get("namespace")
    where = f"{namespace}-" if namespace and obj["kind"] in ("Role", "RoleBinding") else ""
    return f"{obj['kind'].lower()}-{where}{obj['metadata']['name']}.yaml"


def _yaml(obj: dict[str, Any]) -> str:
    import yaml  # noqa: PLC0415 - only when rendering

    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when it is there: much faster
    text: str = yaml.dump(obj, Dumper=dumper, sort_keys=False, default_flow_style=False)
    return text
