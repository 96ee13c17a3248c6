"""Commands around measurements: `profile` (the profilers alone) and `report` (charts of a run)."""

from __future__ import annotations

from pathlib import Path

import click

from jupiter.cli.context import CliContext, pass_context
from jupiter.model.errors import InputError
from jupiter.model.layout import DeploymentLayout
from jupiter.report import write_report
from jupiter.service.deploy import READY_TIMEOUT
from jupiter.service.run import profile


def _progress(message: str) -> None:
    click.echo(message, err=True)


@click.command("profile")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("profile.json"),
    show_default=True,
    help="Profile file to write (read by `jupiter map --profile`).",
)
@click.option("--timeout", type=float, default=READY_TIMEOUT, show_default=True, help="Agent start timeout (s).")
@pass_context
def profile_command(ctx: CliContext, out: Path, timeout: float) -> None:
    """Start the agents, run the network, resource and execution profilers, write the profile file."""
    document = profile(ctx.spec(), out, timeout=timeout, progress=_progress)
    tasks = document["execution"]
    click.echo(
        f"profiled {len(document['nodes'])} compute nodes, {len(document['links'])} links, {len(tasks)} tasks; "
        f"wrote {out}"
    )
    click.echo(f"{'task':<22} " + " ".join(f"{node:>10}" for node in document["nodes"]))
    for task, per_node in tasks.items():
        cells = " ".join(
            f"{per_node[node]['seconds']:>10.4f}" if node in per_node else f"{'-':>10}" for node in document["nodes"]
        )
        click.echo(f"{task:<22} {cells}")
    click.echo(f"map it with `jupiter map --profile {out}`")


def latest_deployment(state_dir: Path) -> Path:
    """The most recent deployment folder of a state folder."""
    folders = sorted(p for p in state_dir.glob("*") if DeploymentLayout(p).plan.exists()) if state_dir.is_dir() else []
    if not folders:
        raise InputError(state_dir, None, "no deployment has run here; run `jupiter run` first or pass --deployment")
    return folders[-1]


@click.command("report")
@click.option(
    "--deployment",
    "deployment_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Deployment folder (default: the latest one in [DEPLOY] STATE_DIR).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for report.html and the PNGs (default: <deployment>/report).",
)
@pass_context
def report_command(ctx: CliContext, deployment_dir: Path | None, out: Path | None) -> None:
    """Turn a run's event log into report.html and PNG charts (Gantt, DAG, makespans, predicted vs measured)."""
    if deployment_dir is None:
        deployment_dir = latest_deployment(ctx.state_dir())
    page = write_report(deployment_dir, out or deployment_dir / "report")
    click.echo(f"report written to {page}")
