"""Commands around measurements: `profile` (the profilers alone) and `report` (charts of a run)."""

from __future__ import annotations

from pathlib import Path

import click

from jupiter.cli.context import CliContext, pass_context
from jupiter.cli.output import OUTPUT_OPTION, echo_json
from jupiter.report import latest_run, write_report, write_trace
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
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write only a Chrome trace of the run here (open it in Perfetto or chrome://tracing).",
)
@pass_context
def report_command(ctx: CliContext, deployment_dir: Path | None, out: Path | None, trace_path: Path | None) -> None:
    """Turn a run's event log into report.html and PNG charts, or a timeline trace (--trace)."""
    if deployment_dir is None:
        deployment_dir = latest_run(ctx.state_dir())
    if trace_path is not None:
        click.echo(f"trace written to {write_trace(deployment_dir, trace_path)}")
        return
    page = write_report(deployment_dir, out or deployment_dir / "report")
    click.echo(f"report written to {page}")
