"""Commands of the container path: `jupiter render`, `jupiter build`, and `--backend` for deploy/run."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import click

from jupiter import deployment as service
from jupiter.backends.docker import build_image
from jupiter.cli.context import CliContext, pass_context
from jupiter.cli.runtime_cmds import MAPPING_OPTION
from jupiter.model.config import BACKENDS
from jupiter.model.workspace import Workspace
from jupiter.planning import default_problem
from jupiter.profiles import problem_to_json
from jupiter.render import cluster_spec, image_spec, render_dockerfile, render_manifests
from jupiter.render.spec import cluster_addresses, roles_running

RENDER_ID = "rendered"
"""Deployment id shown by `jupiter render` (a real deploy makes a new one)."""
RENDER_TOKEN = "<generated at deploy time>"  # noqa: S105 - a placeholder, never a real token


def _with_settings(workspace: Workspace, **changes: Any) -> Workspace:
    """The workspace with some `[DEPLOY]` keys overridden (None = keep the file's value)."""
    config = workspace.config
    deploy = config.deploy
    containers = dataclasses.replace(
        deploy.containers, **{key: value for key, value in changes.items() if value is not None and key != "backend"}
    )
    backend = changes.get("backend") or deploy.backend
    deploy = dataclasses.replace(deploy, containers=containers, backend=backend)
    return dataclasses.replace(workspace, config=dataclasses.replace(config, deploy=deploy))


def rendered_files(workspace: Workspace, mapping_file: Path | None) -> list[tuple[str, str]]:
    """(file name, text) of the Dockerfile and every manifest a deployment of this workspace would use."""
    mapping = service.choose_mapping(workspace, mapping_file)
    addresses = cluster_addresses(roles_running(workspace), workspace.config.deploy.containers, workspace.config)
    plan = service.build_plan(workspace, RENDER_ID, mapping, addresses)
    problem = None
    if mapping_file is None and not workspace.config.static_mapping:
        problem = json.dumps(problem_to_json(default_problem(workspace)), sort_keys=True)
    files = [("Dockerfile", render_dockerfile(image_spec(workspace)))]
    for number, stage in enumerate(render_manifests(cluster_spec(workspace, plan, RENDER_TOKEN, problem)), start=1):
        for obj in stage.objects:
            name = f"{number:02d}-{stage.name}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
            files.append((name, _yaml(obj)))
    return files


def _yaml(obj: dict[str, Any]) -> str:
    import yaml  # noqa: PLC0415 - only when rendering

    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


@click.command("render")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write one file per Dockerfile and manifest into this folder instead of printing them.",
)
@MAPPING_OPTION
@pass_context
def render_command(ctx: CliContext, out_dir: Path | None, mapping_file: Path | None) -> None:
    """Print the Dockerfile and every Kubernetes manifest a deployment would use; touches nothing."""
    files = rendered_files(ctx.workspace(scripts=False), mapping_file)
    if out_dir is None:
        for name, text in files:
            click.echo(f"--- # {name}" if name != "Dockerfile" else f"# ---- {name}")
            click.echo(text, nl=False)
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files:
        (out_dir / name).write_text(text)
    click.echo(f"wrote {len(files)} files to {out_dir}")


@click.command("build")
@click.option("--push", is_flag=True, help="Push the image to its registry after building it.")
@click.option("--registry", default=None, help="Registry prefix of the image (default: [DEPLOY] REGISTRY).")
@click.option(
    "--tag", "image_tag", default=None, help="Image tag (default: [DEPLOY] IMAGE_TAG, else Jupiter's version)."
)
@click.option("--base-image", default=None, help="Image to start from (default: [DEPLOY] BASE_IMAGE).")
@click.option("--no-cache", is_flag=True, help="Rebuild every layer.")
@pass_context
def build_command(
    ctx: CliContext, push: bool, registry: str | None, image_tag: str | None, base_image: str | None, no_cache: bool
) -> None:
    """Build the app's agent image with the Docker engine (offline: wheels travel in the context)."""
    workspace = _with_settings(
        ctx.workspace(), registry=registry.rstrip("/") if registry else None, image_tag=image_tag, base_image=base_image
    )
    verbose = ctx.verbose

    def progress(line: str) -> None:
        # Build steps always show; the commands' own output only with -v.
        if verbose or line.startswith(("Step ", "fetching", "building", "pushing", "Successfully")):
            click.echo(line, err=True)

    result = build_image(workspace, progress=progress, push=push, no_cache=no_cache)
    click.echo(f"built {result.image} ({result.size / 1e6:.0f} MB) in {result.seconds:.1f} s")


def add_backend_option(command: click.Command) -> click.Command:
    """Give a command (deploy, run) a `--backend` option that overrides `[DEPLOY] BACKEND`."""
    original = command.callback
    assert original is not None
    command.params.append(
        click.Option(
            ["--backend"],
            type=click.Choice(BACKENDS),
            default=None,
            help="Where agents run (default: [DEPLOY] BACKEND).",
        )
    )

    @functools.wraps(original)
    def callback(*args: Any, backend: str | None = None, **kwargs: Any) -> Any:
        if backend is not None:
            click_ctx = click.get_current_context()
            current = click_ctx.find_object(CliContext)
            assert current is not None
            click_ctx.obj = _BackendContext(**dataclasses.asdict(current), backend=backend)
        return original(*args, **kwargs)

    command.callback = callback
    return command


@dataclasses.dataclass
class _BackendContext(CliContext):
    """The group's context with `[DEPLOY] BACKEND` overridden by `--backend`."""

    backend: str = "local"

    def workspace(self, scripts: bool = True) -> Workspace:
        return _with_settings(super().workspace(scripts=scripts), backend=self.backend)
