"""Loading a working folder with every check a run needs: `jupiter validate` and every command.

Parsing the three inputs is the model's (`jupiter.model.workspace`); what
needs more than reading files happens here: each task script is imported in
a child process (`jupiter.service.scriptcheck`), plug-ins named by
`[CONFIG] TRANSFER`/`PROFILER` are imported (`jupiter.service.plugin_check`),
and `[DEPLOY] BACKEND` is checked against the registered backends. Every
problem is collected, so one `jupiter validate` shows them all. An app with
a `requirements.txt` has it installed first (`jupiter.service.app_env`,
cached), and its scripts are imported with those packages, as the local
backend's workers will run them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jupiter.backends import backend_names
from jupiter.model.config import JupiterConfig
from jupiter.model.deployment_spec import env_dir, wheels_dir
from jupiter.model.errors import InputError, ValidationFailed
from jupiter.model.workspace import Workspace, load_workspace
from jupiter.service.app_env import AppEnvironment, prepare
from jupiter.service.plugin_check import check_plugins
from jupiter.service.scriptcheck import check_scripts


def check_backend(config: JupiterConfig) -> list[InputError]:
    """`[DEPLOY] BACKEND` names a registered backend."""
    name = config.deploy.backend
    if name in backend_names():
        return []
    return [
        InputError(
            config.path,
            config.line_of("DEPLOY", "BACKEND"),
            f"BACKEND: backend {name!r} is not available; use one of: {', '.join(backend_names())}",
        )
    ]


def app_environment(workspace: Workspace) -> AppEnvironment | None:
    """The app's installed requirements (built once, then reused), None when it has none; InputError from pip."""
    return prepare(workspace.app, env_dir(workspace.config), wheels_dir(workspace.config))


@dataclass(frozen=True)
class Checked:
    """A checked working folder and the app's environment its scripts were imported with."""

    workspace: Workspace
    environment: AppEnvironment | None = None
    """The app's installed requirements (None: it has none, or the scripts were not checked)."""


def load_checked(config: Path, nodes: Path, app: Path | None, scripts: bool = True) -> Workspace:
    """The working folder, parsed and checked (ValidationFailed listing every problem)."""
    return check(config, nodes, app, scripts).workspace


def check(config: Path, nodes: Path, app: Path | None, scripts: bool = True) -> Checked:
    """`load_checked`, with the app's environment (`jupiter validate` says what it holds)."""
    workspace = load_workspace(config, nodes, app)
    errors: list[InputError] = []
    environment = None
    if scripts:
        dag = workspace.app.dag
        try:
            environment = app_environment(workspace)
        except InputError as exc:
            errors.append(exc)  # without the packages every import would fail too: the scripts wait for a fix
        else:
            errors += check_scripts(
                workspace.app.scripts_dir,
                {task: workspace.app.script_path(task) for task in dag.order},
                python_path=environment.path if environment is not None else None,
            )
    errors += check_plugins(workspace.config)
    errors += check_backend(workspace.config)
    if errors:
        raise ValidationFailed(errors)
    return Checked(workspace, environment)
