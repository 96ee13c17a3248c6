"""Commands around measurements: `profile` (the profilers alone) and `report` (charts of a run)."""

from __future__ import annotations

from pathlib import Path

import click

from jupiter.cli.context import CliContext, pass_context
from jupiter.cli.output import OUTPUT_OPTION, echo_json
from jupiter.model.errors import InputError
from jupiter.model.layout import DeploymentLayout
from jupiter.report import write_report, write_trace
from jupiter.service.deploy import READY_TIMEOUT
from jupiter.service.deployments import entries, find_entry
from jupiter.service.record import State
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
@OUTPUT_OPTION
@pass_context
def profile_command(ctx: CliContext, out: Path, timeout: float, output: str) -> None:
    """Start the agents, run the network, resource and execution profilers, write the profile file."""
    document = profile(ctx.spec(), out, timeout=timeout, progress=_progress)
    if output == "json":
        echo_json(document)  # the profile document itself (docs/profiling.md), as written to --out
        return
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
    """The folder of the most recent deployment of a state folder that did not fail to start."""
    folders = [
        entry.root
        for entry in entries(state_dir)
        if entry.state is not State.FAILED and DeploymentLayout(entry.root).plan.exists()
    ]
    if not folders:
        raise InputError(state_dir, None, "no deployment has run here; run `jupiter run` first or pass --deployment")
    return folders[-1]


def report_folder(state_dir: Path, wanted: str | None) -> Path:
    """The deployment folder `report` reads: `--deployment` (an id, or a folder), else the latest that ran."""
    if wanted is None:
        return latest_deployment(state_dir)
    folder = Path(wanted)
    if folder.is_dir() and DeploymentLayout(folder).plan.exists():
        return folder
    return find_entry(state_dir, wanted).root


@click.command("report")
@click.option(
    "--deployment",
    "deployment_id",
    metavar="ID",
    default=None,
    help="Deployment: its id (or the start or last part of it), or its folder "
    "(default: the latest one in [DEPLOY] STATE_DIR that ran).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for report.html and the PNGs (default: <deployment>/report).",
)
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write only a Chrome trace of the run here (open it in Perfetto or chrome://tracing).",
)
@pass_context
def report_command(ctx: CliContext, deployment_id: str | None, out: Path | None, trace_path: Path | None) -> None:
    """Turn a run's event log into report.html and PNG charts, or a timeline trace (--trace)."""
    deployment_dir = report_folder(ctx.state_dir(), deployment_id)
    if trace_path is not None:
        click.echo(f"trace written to {write_trace(deployment_dir, trace_path)}")
        return
    page = write_report(deployment_dir, out or deployment_dir / "report")
    click.echo(f"report written to {page}")
