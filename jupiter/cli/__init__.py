"""The `jupiter` command line.

A thin layer: the click group builds a small context object, each command
parses its options and calls library code, and domain errors become one-line
messages with exit codes here at the top (2 for usage and input errors).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from jupiter import __version__
from jupiter.cli.container_cmds import add_backend_option, build_command, render_command
from jupiter.cli.context import CliContext, app_argument
from jupiter.cli.deployment_cmds import list_command, prune_command
from jupiter.cli.init_cmd import init_command
from jupiter.cli.map_cmd import map_command
from jupiter.cli.profile_cmds import profile_command, report_command
from jupiter.cli.runtime_cmds import (
    agent_command,
    deploy_command,
    kill_command,
    run_command,
    speed_command,
    status_command,
    submit_command,
    teardown_command,
)
from jupiter.cli.signals import Terminated
from jupiter.cli.validate_cmd import validate_command
from jupiter.cli.watch_cmds import dashboard_command, logs_command
from jupiter.model.errors import JupiterError, ValidationFailed


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "JUPITER"})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default="jupiter_config.ini",
    envvar="JUPITER_CONFIG",
    show_default=True,
    show_envvar=True,
    help="Settings file (the original's jupiter_config.ini format).",
)
@click.option(
    "--nodes",
    "nodes_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default="nodes.txt",
    envvar="JUPITER_NODES",
    show_default=True,
    show_envvar=True,
    help="Node list, one `<name> <hostname>` per line.",
)
@click.option(
    "--app",
    "app_path",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="APP",
    default=None,
    envvar="JUPITER_APP",
    show_envvar=True,
    help="App folder, or the name of one in app_specific_files/ (default: [DEPLOY] APP of the config file); "
    "commands that take an app also take it as their APP argument.",
)
@click.option("-v", "--verbose", count=True, help="More output; repeat for more.")
@click.version_option(__version__, prog_name="jupiter")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, nodes_path: Path, app_path: Path | None, verbose: int) -> None:
    """Jupiter: profile nodes, map a DAG of Python tasks onto them, stream files through it."""
    ctx.obj = CliContext(config_path=config_path, nodes_path=nodes_path, app_path=app_path, verbose=verbose)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        code = cli.main(args=argv, prog_name="jupiter", standalone_mode=False)
    except ValidationFailed as exc:
        for error in exc.errors:
            click.echo(f"error: {error}", err=True)
        return exc.exit_code
    except JupiterError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except Terminated as exc:
        click.echo(f"stopped by {exc.name}; the deployment was torn down", err=True)
        return exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted; the deployment was torn down", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    # A command ending with click.exceptions.Exit(n) returns n in this mode.
    return code if isinstance(code, int) else 0


# Commands that work on an app take it as an argument too: `jupiter run APP`, `jupiter validate APP`, ...
for command in (
    validate_command,
    map_command,
    profile_command,
    deploy_command,
    run_command,
    render_command,
    build_command,
):
    app_argument(command)
add_backend_option(deploy_command)
add_backend_option(run_command)
for command in (
    init_command,
    validate_command,
    map_command,
    profile_command,
    report_command,
    deploy_command,
    status_command,
    submit_command,
    teardown_command,
    run_command,
    list_command,
    prune_command,
    agent_command,
    speed_command,
    kill_command,
    render_command,
    build_command,
):
    cli.add_command(command)
for command in (logs_command, dashboard_command):
    cli.add_command(command)

if __name__ == "__main__":
    sys.exit(main())
