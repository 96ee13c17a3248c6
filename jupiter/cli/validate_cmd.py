"""`jupiter validate`: check a working folder and its app, touching nothing."""

from __future__ import annotations

import click

from jupiter.cli.context import CliContext, pass_context
from jupiter.service.app_env import AppEnvironment
from jupiter.service.validation import Checked


def summary(checked: Checked) -> list[str]:
    """One line per thing checked, for the user to see what was validated."""
    workspace = checked.workspace
    config, nodes, app = workspace.config, workspace.nodes, workspace.app
    dag = app.dag
    extra = []
    environment: AppEnvironment | None = checked.environment
    if environment is not None:
        extra.append(f"packages {environment.describe()}")
    if app.helpers:
        names = ", ".join(f"{helper.name} ({helper.script.name})" for helper in app.helpers.values())
        extra.append(f"helpers  {len(app.helpers)} long-lived on the home node: {names}")
    lines = [
        f"config   {config.path}: scheduler {config.scheduler}, pricing {config.pricing}, "
        f"backend {config.deploy.backend}",
        f"nodes    {nodes.path}: {len(nodes.homes)} home, {len(nodes.compute)} compute, "
        f"{len(nodes.datasources)} datasource",
        f"dag      {dag.path}: {len(dag)} tasks, {len(dag.edges)} edges, depth {dag.depth()}, "
        f"entry {', '.join(dag.entry_tasks)}, exit {', '.join(dag.exit_tasks)}",
        f"scripts  {app.scripts_dir}: {len(dag)} scripts import and define task(filename, pathin, pathout)",
        f"inputs   {app.path / 'sample_input'}: {len(app.sample_inputs)} sample input files",
        *extra,
    ]
    if app.io_names is not None:
        output, input_name = app.io_names
        lines.append(
            f"names    {app.path / 'name_convert.txt'}: runtime statistics name frames after the input "
            f"{input_name!r} (the app's output: {output!r})"
        )
    return lines


@click.command("validate")
@pass_context
def validate_command(ctx: CliContext) -> None:
    """Check jupiter_config.ini, nodes.txt, the app's DAG, scripts and inputs."""
    checked = ctx.checked()
    workspace = checked.workspace
    for warning in (*workspace.config.warnings, *workspace.nodes.warnings, *workspace.app.warnings):
        click.echo(f"warning: {warning}", err=True)
    for line in summary(checked):
        click.echo(line)
    click.echo(f"ok: {workspace.app.name} is ready to run")
