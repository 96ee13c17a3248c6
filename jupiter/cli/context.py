"""The context object every command receives from the `jupiter` group."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from jupiter.model.config import parse_config
from jupiter.model.deployment_spec import DeploymentSpec, resolve_spec, state_dir
from jupiter.model.workspace import Workspace
from jupiter.service.record import Deployment, find
from jupiter.service.validation import Checked, check


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

    def deployment(self) -> Deployment:
        """The running deployment of this working folder (DeploymentError when there is none)."""
        deployment = find(self.state_dir())
        assert deployment is not None
        return deployment


pass_context = click.make_pass_decorator(CliContext)
