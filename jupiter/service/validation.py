"""Loading a working folder with every check a run needs: `jupiter validate` and every command.

Parsing the three inputs is the model's (`jupiter.model.workspace`); what
needs more than reading files happens here: each task script is imported in
a child process (`jupiter.service.scriptcheck`), plug-ins named by
`[CONFIG] TRANSFER`/`PROFILER` are imported (`jupiter.service.plugin_check`),
and `[DEPLOY] BACKEND` is checked against the registered backends. Every
problem is collected, so one `jupiter validate` shows them all.
"""

from __future__ import annotations

from pathlib import Path

from jupiter.backends import backend_names
from jupiter.model.config import JupiterConfig
from jupiter.model.errors import InputError, ValidationFailed
from jupiter.model.workspace import Workspace, load_workspace
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


def load_checked(config: Path, nodes: Path, app: Path | None, scripts: bool = True) -> Workspace:
    """The working folder, parsed and checked (ValidationFailed listing every problem)."""
    workspace = load_workspace(config, nodes, app)
    errors: list[InputError] = []
    if scripts:
        dag = workspace.app.dag
        errors += check_scripts(
            workspace.app.scripts_dir, {task: workspace.app.script_path(task) for task in dag.order}
        )
    errors += check_plugins(workspace.config)
    errors += check_backend(workspace.config)
    if errors:
        raise ValidationFailed(errors)
    return workspace
