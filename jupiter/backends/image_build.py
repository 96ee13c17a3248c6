"""`jupiter build`: the app's agent image, built offline with the Docker engine.

`build_image` lays out an offline build context (the rendered Dockerfile,
the app folder, Jupiter's own wheel and every third-party wheel, fetched on
this machine with `pip download` for Python 3.11) and builds it with the
engine, so a machine whose containers cannot reach PyPI still builds.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jupiter
from jupiter.backends.docker_client import DockerEngine
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.errors import JupiterError
from jupiter.render.dockerfile import render_dockerfile
from jupiter.render.spec import image_spec

LABEL_APP = "jupiter.app"
PYTHON_VERSION = "3.11"
"""Python of the images (bookworm's and python:3.11-slim's); wheels are fetched for it."""
# Reproducible wheel timestamps, so an unchanged Jupiter keeps its image layer cached.
_SOURCE_DATE_EPOCH = "315532800"


class BuildError(JupiterError):
    """An image could not be built or pushed."""


def image_requirements(spec: DeploymentSpec) -> list[str]:
    """What the image installs from wheels: Jupiter's runtime dependencies, then the app's requirements."""
    # From the source tree's pyproject.toml, the same tree the wheel is built from (installed metadata may lag).
    with (source_tree() / "pyproject.toml").open("rb") as handle:
        requirements = list(tomllib.load(handle)["project"]["dependencies"])
    app_requirements = spec.app.requirements
    if app_requirements is not None:
        for raw in app_requirements.read_text().splitlines():
            requirement = raw.split("#", 1)[0].strip()
            if requirement:
                requirements.append(requirement)
    return requirements


def source_tree() -> Path:
    """Jupiter's source checkout (where `pyproject.toml` is), to build its wheel from."""
    root = Path(jupiter.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise BuildError(
            f"jupiter build needs Jupiter's source tree to make its wheel, and {root} is not one; "
            "run it from a checkout installed with `pip install -e .`"
        )
    return root


def _pip(args: list[str], what: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(  # noqa: S603 - argument list, our own interpreter
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=900,
    )
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-3:]
        raise BuildError(f"{what} failed: {' / '.join(tail)}")


def _platforms() -> list[str]:
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    # Newest first; pip accepts wheels of every older manylinux too.
    return [f"manylinux_2_34_{machine}", f"manylinux2014_{machine}", f"linux_{machine}"]


def prepare_context(spec: DeploymentSpec, context: Path, progress: Callable[[str], None] = lambda _: None) -> None:
    """Lay out an offline build context in `context` (an empty folder)."""
    (context / "Dockerfile").write_text(render_dockerfile(image_spec(spec)))
    requirements = image_requirements(spec)
    (context / "requirements.txt").write_text("\n".join(requirements) + "\n")
    shutil.copytree(spec.app.path, context / "app", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    deps = context / "wheels" / "deps"
    deps.mkdir(parents=True)
    progress(f"fetching {len(requirements)} requirements' wheels for Python {PYTHON_VERSION} (pip download)")
    platform_args = [arg for tag in _platforms() for arg in ("--platform", tag)]
    _pip(
        [
            "download",
            "--quiet",
            "--dest",
            str(deps),
            "--only-binary=:all:",
            "--python-version",
            PYTHON_VERSION,
            "--implementation",
            "cp",
            *platform_args,
            "-r",
            str(context / "requirements.txt"),
        ],
        "pip download of the image's requirements",
    )
    progress("building Jupiter's wheel (pip wheel --no-deps)")
    env = {**os.environ, "SOURCE_DATE_EPOCH": _SOURCE_DATE_EPOCH}
    _pip(
        ["wheel", "--quiet", "--no-deps", "--wheel-dir", str(context / "wheels" / "jupiter"), str(source_tree())],
        "pip wheel of Jupiter",
        env=env,
    )


@dataclass(frozen=True)
class BuildResult:
    """An image `jupiter build` made."""

    image: str
    image_id: str
    size: int
    """Bytes."""
    seconds: float


def build_image(
    spec: DeploymentSpec,
    progress: Callable[[str], None] = lambda _: None,
    push: bool = False,
    engine: DockerEngine | None = None,
    no_cache: bool = False,
) -> BuildResult:
    """Build (and optionally push) the app's agent image."""
    image = image_spec(spec)
    engine = engine or DockerEngine()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jupiter-build-") as tmp:
        context = Path(tmp)
        prepare_context(spec, context, progress)
        progress(f"building {image.image} from {image.base_image}")
        image_id = engine.build(context, image.image, progress, labels={LABEL_APP: image.app}, no_cache=no_cache)
    seconds = time.monotonic() - started
    if push:
        if "/" not in image.image.split(":", 1)[0]:
            raise BuildError(f"cannot push {image.image}: set [DEPLOY] REGISTRY (or --registry) to a registry first")
        progress(f"pushing {image.image}")
        engine.push(image.image, progress)
    return BuildResult(image.image, image_id, engine.image_size(image.image), seconds)
