"""`jupiter init DIR`: scaffold a working folder from the package's defaults."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from jupiter.model.bundled import data_dir, example_apps
from jupiter.model.errors import InputError


def scaffold(target: Path, apps: tuple[str, ...], force: bool) -> list[Path]:
    """Copy the default config, node list, testbed example and example apps into `target`.

    Nothing is written unless every target path is free (or `force`), so a
    refused init leaves the folder as it was.
    """
    available = example_apps()
    unknown = [name for name in apps if name not in available]
    if unknown:
        raise InputError(None, None, f"no example app {unknown[0]!r}; choose from: {', '.join(available)}")
    chosen = apps or tuple(available)
    plan: list[tuple[Path, Path]] = [
        (data_dir() / "jupiter_config.ini", target / "jupiter_config.ini"),
        (data_dir() / "nodes.txt", target / "nodes.txt"),
        (data_dir() / "testbed.ini", target / "testbed.ini"),
    ]
    plan += [(available[name], target / "app_specific_files" / name) for name in chosen]
    if target.exists() and not target.is_dir():
        raise InputError(target, None, "exists and is not a folder; choose another path")
    taken = [dest for _, dest in plan if dest.exists()]
    if taken and not force:
        raise InputError(taken[0], None, "already exists; pass --force to overwrite it")
    for source, dest in plan:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copyfile(source, dest)
    return [dest for _, dest in plan]


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.option(
    "--app",
    "apps",
    multiple=True,
    help="Example app to copy (repeatable; default: all of them).",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init_command(directory: Path, apps: tuple[str, ...], force: bool) -> None:
    """Create a working folder: jupiter_config.ini, nodes.txt, testbed.ini and example apps."""
    created = scaffold(directory, apps, force)
    for path in created:
        click.echo(f"created {path}")
    where = "" if directory == Path() else f"cd {directory} && "
    click.echo(f"next: {where}jupiter validate")
