"""Commands of the container path: `jupiter render`, `jupiter build`, and `--backend` for deploy/run."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import click

from jupiter.backends import backend_names
from jupiter.backends.image_build import build_image
from jupiter.cli.context import CliContext, pass_context, with_settings
from jupiter.cli.runtime_cmds import MAPPING_OPTION
from jupiter.model.deployment_spec import resolve_spec
from jupiter.service.preview import rendered_files


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
    files = rendered_files(ctx.spec(mapping_file, scripts=False))
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
    workspace = with_settings(
        ctx.workspace(), registry=registry.rstrip("/") if registry else None, image_tag=image_tag, base_image=base_image
    )
    verbose = ctx.verbose

    def progress(line: str) -> None:
        # Build steps always show; the commands' own output only with -v.
        if verbose or line.startswith(("Step ", "fetching", "building", "pushing", "Successfully")):
            click.echo(line, err=True)

    result = build_image(resolve_spec(workspace), progress=progress, push=push, no_cache=no_cache)
    click.echo(f"built {result.image} ({result.size / 1e6:.0f} MB) in {result.seconds:.1f} s")


def add_backend_option(command: click.Command) -> click.Command:
    """Give a command (deploy, run) a `--backend` option that overrides `[DEPLOY] BACKEND`."""
    original = command.callback
    assert original is not None
    command.params.append(
        click.Option(
            ["--backend"],
            type=click.Choice(backend_names()),
            default=None,
            help="Where agents run (default: [DEPLOY] BACKEND).",
        )
    )

    @functools.wraps(original)
    def callback(*args: Any, backend: str | None = None, **kwargs: Any) -> Any:
        if backend is not None:
            current = click.get_current_context().find_object(CliContext)
            assert current is not None
            current.backend = backend
        return original(*args, **kwargs)

    command.callback = callback
    return command
