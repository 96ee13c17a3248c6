"""`jupiter list` and `jupiter prune`: the deployments of this working folder, and removing finished ones."""

from __future__ import annotations

import click

from jupiter.cli.context import CliContext, pass_context
from jupiter.cli.output import echo_json
from jupiter.model.outputs import LIST_FORMAT, VERSION
from jupiter.service.deployments import Listed, listing, prune


def human_size(size: int) -> str:
    """Bytes as a person reads them (`0 B`, `12.3 KB`, `325.1 MB`; 1 KB = 1000 B)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_age(seconds: float) -> str:
    """An age as a person reads it: `42 s`, `5 min`, `3 h`, `2 d`."""
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{int(seconds // length)} {unit}"
    return f"{int(seconds)} s"


def as_json(row: Listed) -> dict[str, object]:
    """One deployment of `jupiter list --output json` (documented in docs/cli.md)."""
    entry = row.entry
    return {
        "id": entry.id,
        "state": row.status,
        "backend": entry.backend if entry.record is not None else None,
        "app": entry.app if entry.record is not None else None,
        "created": entry.created,
        "age_seconds": round(row.age, 3),
        "size_bytes": row.size,
        "folder": str(entry.root),
        **({"note": row.note} if row.note else {}),
    }


@click.command("list")
@click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or JSON for scripts.",
)
@pass_context
def list_command(ctx: CliContext, output: str) -> None:
    """List the deployments of this folder: state, backend, app, age and size, oldest first."""
    state_dir = ctx.state_dir()
    rows = listing(state_dir)
    if output == "json":
        echo_json(
            {
                "format": LIST_FORMAT,
                "version": VERSION,
                "state_dir": str(state_dir),
                "deployments": [as_json(row) for row in rows],
            }
        )
        return
    if not rows:
        click.echo(f"no deployments in {state_dir}; start one with `jupiter run APP` or `jupiter deploy APP`")
        return
    width = max(len(row.entry.app) for row in rows)
    app = max(3, width)
    click.echo(f"{'id':<22}  {'state':<8}  {'backend':<10}  {'app':<{app}}  {'age':>7}  {'size':>9}")
    for row in rows:
        entry = row.entry
        click.echo(
            f"{entry.id:<22}  {row.status:<8}  {entry.backend:<10}  {entry.app:<{app}}  "
            f"{human_age(row.age):>7}  {human_size(row.size):>9}"
        )
    for row in rows:
        if row.note:
            click.echo(f"{row.entry.id}: {row.note}", err=True)


@click.command("prune")
@pass_context
def prune_command(ctx: CliContext) -> None:
    """Remove the folders (and spools) of deployments that are over; never one that is running."""
    result = prune(ctx.state_dir())
    for deployment, size in result.removed:
        click.echo(f"removed {deployment} ({human_size(size)})")
    for deployment, why in result.kept:
        click.echo(f"kept {deployment}: {why}")
    if result.removed:
        noun = "deployment" if len(result.removed) == 1 else "deployments"
        click.echo(f"removed {len(result.removed)} {noun}, freed {human_size(result.freed)}")
    else:
        click.echo("nothing to prune")
