"""Builders of Dockerfiles and Kubernetes manifests: pure functions from typed specs to text and dicts.

Nothing here talks to an engine or a cluster (kubespawner's `objects.py`
style): `jupiter.backends.docker` and `jupiter.backends.kubernetes` send what
these functions return, `jupiter render` prints it, and the tests compare it
whole against golden files and the Kubernetes schema. The templates are
Jinja files in `dockerfiles/` and `templates/` beside this module (linked
from the top of the repository), rendered with `StrictUndefined` and every
value escaped through JSON, which is valid YAML.
"""

from jupiter.render.dockerfile import render_dockerfile
from jupiter.render.manifests import Stage, render_access, render_manifests, render_mapper
from jupiter.render.spec import (
    ClusterSpec,
    ImageSpec,
    cluster_spec,
    container_plan,
    image_name,
    image_spec,
)

__all__ = [
    "ClusterSpec",
    "ImageSpec",
    "Stage",
    "cluster_spec",
    "container_plan",
    "image_name",
    "image_spec",
    "render_access",
    "render_dockerfile",
    "render_manifests",
    "render_mapper",
]
