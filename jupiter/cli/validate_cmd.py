"""`jupiter validate`: check a working folder and its app, touching nothing."""

from __future__ import annotations

from typing import Any

import click

from jupiter.cli.context import CliContext, pass_context
from jupiter.cli.output import OUTPUT_OPTION, echo_json
from jupiter.model.errors import InputError, JupiterError, ValidationFailed
from jupiter.model.outputs import VALIDATE_FORMAT, VERSION
from jupiter.model.workspace import Workspace
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


def warnings_of(workspace: Workspace) -> list[str]:
    return [*workspace.config.warnings, *workspace.nodes.warnings, *workspace.app.warnings]


def document(workspace: Workspace) -> dict[str, Any]:
    """`validate --output json` of a valid working folder (schema in docs/events.md)."""
    config, nodes, app = workspace.config, workspace.nodes, workspace.app
    dag = app.dag
    return {
        "format": VALIDATE_FORMAT,
        "version": VERSION,
        "ok": True,
        "app": app.name,
        "config": {
            "path": str(config.path),
            "scheduler": str(config.scheduler),
            "pricing": str(config.pricing),
            "backend": config.deploy.backend,
        },
        "nodes": {
            "path": str(nodes.path),
            "home": [node.name for node in nodes.homes],
            "compute": [node.name for node in nodes.compute],
            "datasource": [node.name for node in nodes.datasources],
        },
        "dag": {
            "path": str(dag.path),
            "tasks": list(dag.order),
            "edges": [list(edge) for edge in dag.edges],
            "depth": dag.depth(),
            "entry": list(dag.entry_tasks),
            "exit": list(dag.exit_tasks),
        },
        "scripts": str(app.scripts_dir),
        "inputs": [str(path) for path in app.sample_inputs],
        "warnings": warnings_of(workspace),
        "errors": [],
    }


def _error(error: JupiterError) -> dict[str, Any]:
    if isinstance(error, InputError):
        return {
            "file": str(error.path) if error.path else None,
            "line": error.line,
            "message": error.message,
            "text": str(error),
        }
    return {"file": None, "line": None, "message": str(error), "text": str(error)}


@click.command("validate")
@OUTPUT_OPTION
@pass_context
def validate_command(ctx: CliContext, output: str) -> None:
    """Check jupiter_config.ini, nodes.txt, the app's DAG, scripts and inputs."""
    if output == "json":
        try:
            workspace = ctx.workspace()
        except ValidationFailed as exc:
            errors = [_error(error) for error in exc.errors]
        except JupiterError as exc:
            errors = [_error(exc)]
        else:
            echo_json(document(workspace))
            return
        echo_json({"format": VALIDATE_FORMAT, "version": VERSION, "ok": False, "warnings": [], "errors": errors})
        raise click.exceptions.Exit(2)
    checked = ctx.checked()
    workspace = checked.workspace
    for warning in warnings_of(workspace):
        click.echo(f"warning: {warning}", err=True)
    for line in summary(checked):
        click.echo(line)
    click.echo(f"ok: {workspace.app.name} is ready to run")
