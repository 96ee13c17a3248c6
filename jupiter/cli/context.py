"""The context object every command receives from the `jupiter` group, and the options commands share."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from jupiter.model.config import parse_config
from jupiter.model.deployment_spec import DeploymentSpec, resolve_spec, state_dir
from jupiter.model.workspace import Workspace
from jupiter.service.deployments import choose
from jupiter.service.record import Deployment
from jupiter.service.validation import Checked, check

Command = TypeVar("Command", bound=click.Command)


def with_settings(workspace: Workspace, **changes: Any) -> Workspace:
    """The workspace with some `[DEPLOY]` keys overridden by options (None = keep the file's value)."""
    config = workspace.config
    deploy = config.deploy
    backend = changes.pop("backend", None) or deploy.backend
    containers = dataclasses.replace(
        deploy.containers, **{key: value for key, value in changes.items() if value is not None}
    )
    deploy = dataclasses.replace(deploy, containers=containers, backend=backend)
    return dataclasses.replace(workspace, config=dataclasses.replace(config, deploy=deploy))


@dataclass
class CliContext:
    """Options of the `jupiter` group, shared by every command."""

    config_path: Path
    nodes_path: Path
    app_path: Path | None
    """`--app` or a command's APP: a folder, or the name of one in `app_specific_files/`."""
    verbose: int
    backend: str | None = None
    """`--backend` of `deploy`/`run`: overrides `[DEPLOY] BACKEND`."""

    def checked(self, scripts: bool = True) -> Checked:
        """Load and check the working folder the options point to, with the app's environment."""
        checked = check(self.config_path, self.nodes_path, self.app_path, scripts=scripts)
        if self.backend:
            return dataclasses.replace(checked, workspace=with_settings(checked.workspace, backend=self.backend))
        return checked

    def workspace(self, scripts: bool = True) -> Workspace:
        """Load and check the working folder the options point to."""
        return self.checked(scripts).workspace

    def spec(self, mapping_file: Path | None = None, scripts: bool = True) -> DeploymentSpec:
        """The deployment spec of the working folder, resolved once."""
        return resolve_spec(self.workspace(scripts=scripts), mapping_file)

    def state_dir(self) -> Path:
        return state_dir(parse_config(self.config_path))

    def deployment(self, wanted: str | None = None, running: bool = True) -> Deployment:
        """The deployment a command acts on: `--deployment ID`, else the only or latest running one.

        DeploymentError when there is none. When several run and none was
        named, a note on stderr says which one was taken and how to choose.
        """
        choice = choose(self.state_dir(), wanted, running=running)
        if choice.others:
            click.echo(
                f"note: {len(choice.others) + 1} deployments are running here; acting on the latest, "
                f"{choice.deployment.id} ({choice.deployment.record.app}); choose another with --deployment ID "
                "(`jupiter list` shows them)",
                err=True,
            )
        return choice.deployment


pass_context = click.make_pass_decorator(CliContext)

DEPLOYMENT_OPTION = click.option(
    "--deployment",
    "deployment_id",
    metavar="ID",
    default=None,
    envvar="JUPITER_DEPLOYMENT",
    show_envvar=True,
    help="Deployment to act on: its id, the start of it or its last part (default: the only or latest running one).",
)


def app_argument(command: Command) -> Command:
    """Give a command an optional APP argument and an `--app` option, as `jupiter run APP` or `run --app APP`.

    Either names the app folder (a path, or an app's name in
    `app_specific_files/`) and wins over the group's `--app` and `[DEPLOY] APP`.
    """
    original = command.callback
    assert original is not None
    command.params.append(click.Argument(["app"], required=False, metavar="[APP]"))
    command.params.append(
        click.Option(
            ["--app", "app_option"],
            metavar="APP",
            default=None,
            help="App folder or name (the same as APP; default: [DEPLOY] APP of the config file).",
        )
    )

    @functools.wraps(original)
    def callback(*args: Any, app: str | None = None, app_option: str | None = None, **kwargs: Any) -> Any:
        if app is not None and app_option is not None and app != app_option:
            raise click.UsageError(f"two apps given: {app!r} and --app {app_option!r}; name one")
        chosen = app if app is not None else app_option
        if chosen is not None:
            current = click.get_current_context().find_object(CliContext)
            assert current is not None
            current.app_path = Path(chosen)
        return original(*args, **kwargs)

    command.callback = callback
    return command


def progress_to_stderr(message: str) -> None:
    """Progress lines of long commands (deploy, run, profile) go to stderr, so stdout stays the result."""
    click.echo(message, err=True)
