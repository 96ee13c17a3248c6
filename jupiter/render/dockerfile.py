"""The Dockerfile of an app's agent image, rendered from `dockerfiles/agent.Dockerfile.j2`."""

from __future__ import annotations

import json

from jupiter.render._jinja import render
from jupiter.render.spec import APP_DIR, ORIGINAL_SCRIPTS_DIR, STATE_DIR, ImageSpec

DOCKERFILE_TEMPLATE = "dockerfiles/agent.Dockerfile.j2"


def render_dockerfile(spec: ImageSpec) -> str:
    """The Dockerfile text of one agent image (its build context is laid out by `jupiter build`)."""
    return render(
        DOCKERFILE_TEMPLATE,
        app=spec.app,
        jupiter_version=spec.jupiter_version,
        # FROM takes a bare reference; refuse anything that could smuggle in a second instruction.
        base_image=_reference(spec.base_image),
        scp=spec.scp,
        ssh_port=spec.ssh_port,
        uid=spec.uid,
        ports=[int(port) for port in spec.ports],
        app_dir=APP_DIR,
        original_scripts_dir=ORIGINAL_SCRIPTS_DIR,
        state_dir=STATE_DIR,
    )


def _reference(image: str) -> str:
    if not image or any(ch.isspace() for ch in image) or not image.isprintable():
        raise ValueError(f"not an image reference: {json.dumps(image)}")
    return image
