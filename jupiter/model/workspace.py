"""A working folder: `jupiter_config.ini` + `nodes.txt` + an app, checked together.

Each file is parsed on its own first; then the rules that span files are
checked (several homes need a pricing scheme, `HOME_CHILD` and
`input_node.txt` must name real tasks and compute nodes). Every problem found
is collected so the user fixes them in one go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from jupiter.model.app import App, load_app
from jupiter.model.config import JupiterConfig, parse_config
from jupiter.model.errors import InputError, ValidationFailed
from jupiter.model.inputs import files_per_frame, group_frames
from jupiter.model.nodes import NodeList, NodeRole, parse_nodes

T = TypeVar("T")


@dataclass(frozen=True)
class Workspace:
    """Validated inputs of one deployment."""

    config: JupiterConfig
    nodes: NodeList
    app: App

    @property
    def ingress_tasks(self) -> tuple[str, ...]:
        """Tasks home feeds each input file to: HOME_CHILD, else the DAG's entry tasks."""
        return self.config.deploy.home_child or self.app.dag.entry_tasks


def resolve_app_path(config: JupiterConfig, app: Path | None) -> Path:
    """The app folder: an explicit path wins over `[DEPLOY] APP`."""
    if app is not None:
        return app
    if config.deploy.app is None:
        raise ValidationFailed(
            [
                InputError(
                    config.path,
                    None,
                    "no app given; pass --app DIR or set `APP = app_specific_files/<app>` in [DEPLOY]",
                )
            ]
        )
    return config.resolve(config.deploy.app)


def _cross_check(config: JupiterConfig, nodes: NodeList, app: App) -> list[InputError]:
    errors: list[InputError] = []
    homes = nodes.homes
    if len(homes) > 1 and config.pricing == "nonpricing":
        errors.append(
            InputError(
                nodes.path,
                homes[1].line,
                f"{len(homes)} home nodes need a pricing scheme; set PRICING = 1 (push) or 2 "
                "(event) in [CONFIG], or keep one home node",
            )
        )
    entry = set(app.dag.entry_tasks)
    for task in config.deploy.home_child:
        if task not in app.dag:
            errors.append(
                InputError(config.path, None, f"HOME_CHILD names {task!r}, which is not a task of {app.name}")
            )
        elif task not in entry:
            errors.append(
                InputError(
                    config.path,
                    None,
                    f"HOME_CHILD names {task!r}, which has parents; home feeds only entry tasks "
                    f"({', '.join(app.dag.entry_tasks)})",
                )
            )
    per_frame = files_per_frame(app.dag, config.deploy.home_child or app.dag.entry_tasks)
    try:
        group_frames(list(app.sample_inputs), per_frame)
    except ValueError as exc:
        errors.append(InputError(app.path / "sample_input", None, f"{exc} (an entry task waits for {per_frame})"))
    for task, node in app.input_nodes.items():
        if node not in nodes or nodes[node].role is not NodeRole.COMPUTE:
            errors.append(
                InputError(
                    app.path / "input_node.txt",
                    app.input_nodes_line.get(task),
                    f"{task} is placed on {node!r}, which is not a compute node of {nodes.path}",
                )
            )
    return errors


def _collect(errors: list[InputError], parse: Callable[[], T]) -> T | None:
    try:
        return parse()
    except InputError as exc:
        errors.append(exc)
    except ValidationFailed as exc:
        errors.extend(exc.errors)
    return None


def load_workspace(config_path: Path, nodes_path: Path, app_path: Path | None) -> Workspace:
    """Parse and cross-check the three inputs; raises ValidationFailed listing every problem.

    Parsing only: importing the task scripts and plug-ins, and checking the
    backend's name against the registry, are `jupiter.service.validation`'s.
    """
    errors: list[InputError] = []
    config = _collect(errors, lambda: parse_config(config_path))
    nodes = _collect(errors, lambda: parse_nodes(nodes_path))
    app = None
    if config is not None:
        app = _collect(errors, lambda: load_app(resolve_app_path(config, app_path)))
    elif app_path is not None:
        app = _collect(errors, lambda: load_app(app_path))
    if config is not None and nodes is not None and app is not None:
        errors.extend(_cross_check(config, nodes, app))
    if errors or config is None or nodes is None or app is None:
        raise ValidationFailed(errors)
    return Workspace(config=config, nodes=nodes, app=app)
