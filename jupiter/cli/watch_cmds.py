"""Commands to watch a deployment: `logs` (every agent's log) and `dashboard` (a login link to the live page)."""

from __future__ import annotations

import time

import click

from jupiter.cli.context import DEPLOYMENT_OPTION, CliContext, pass_context
from jupiter.service import logs as logging_
from jupiter.service.dashboard import dashboard_links


@click.command("logs")
@click.argument("nodes", nargs=-1)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("--since", default=None, help="Only lines from then on: a duration back (30s, 10m, 2h) or a time.")
@DEPLOYMENT_OPTION
@pass_context
def logs_command(
    ctx: CliContext, nodes: tuple[str, ...], follow: bool, since: str | None, deployment_id: str | None
) -> None:
    """Print the agents' logs (of NODES, default all), interleaved by time, on any backend."""
    start = logging_.parse_since(since, time.time()) if since is not None else None
    deployment, running = logging_.deployment_for_logs(ctx.state_dir(), deployment_id)
    names = logging_.check_nodes(deployment, nodes)
    if not running:
        click.echo(f"deployment {deployment.id} is not running; its saved logs:", err=True)
    width = max(len(name) for name in names)
    reader = logging_.LogReader(deployment, names)
    try:
        for line in logging_.log_lines(reader, start, follow):
            click.echo(logging_.format_line(line, width))
    except KeyboardInterrupt:
        return  # following ends here; the deployment keeps running


@click.command("dashboard")
@click.option("--home", default=None, help="Home node whose dashboard to open (default: the first).")
@DEPLOYMENT_OPTION
@pass_context
def dashboard_command(ctx: CliContext, home: str | None, deployment_id: str | None) -> None:
    """Print a one-time login link to a running deployment's live dashboard."""
    deployment = ctx.deployment(deployment_id)
    if home is not None and home not in deployment.homes:
        raise click.BadParameter(f"{home} is not a home node; use one of: {', '.join(deployment.homes)}")
    for line in dashboard_links(deployment, home):
        click.echo(line)
