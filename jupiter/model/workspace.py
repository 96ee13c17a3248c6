"""A working folder: `jupiter_config.ini` + `nodes.txt` + an app, checked together.

Each file is parsed on its own first; then the rules that span files are
checked (several homes need a pricing scheme, `HOME_CHILD` and
`input_node.txt` must name real tasks and compute nodes). Every problem found
is collected so the user fixes them in one go.
"""

from __future__ import annotations

import contextlib
import difflib
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


APPS_FOLDER = "app_specific_files"
"""Where a working folder keeps its apps, beside its config file (the original's layout)."""


def app_names(folder: Path) -> list[str]:
    """The apps in a folder: its subfolders with a `configuration.txt`, sorted."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / "configuration.txt").is_file())


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when it is inside it."""
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd().resolve())) or "."
    return str(path)


def _unknown_app(wanted: str, folders: list[Path], where: Path | None, line: int | None, fix: str) -> InputError:
    """The error for an app that is not there: the apps found (in the first of `folders` that has some), the closest."""
    search = next((folder for folder in folders if app_names(folder)), folders[-1])
    names = app_names(search)
    shown = _shown(search).rstrip("/") + "/"
    if not names:
        found = f"there are no apps in {shown} (an app is a folder with a configuration.txt)"
    else:
        found = f"apps in {shown}: {', '.join(names)}"
        close = difflib.get_close_matches(Path(wanted).name, names, n=1, cutoff=0.5)
        if close:
            found += f"; did you mean {close[0]!r}?"
    return InputError(where, line, f"no app {wanted!r}; {found}{fix}")


def resolve_app_path(config: JupiterConfig | None, app: Path | None) -> Path:
    """The app folder: an explicit one (a path, or a name in `app_specific_files/`) wins over `[DEPLOY] APP`.

    A bare name is looked up beside the config file (`app_specific_files/<name>`,
    as the original kept its apps), then in the current folder. A folder that
    is not there is an InputError listing the apps found and the closest name.
    """
    base = config.base_dir if config is not None else Path.cwd()
    if app is not None:
        candidates = [app]
        if len(app.parts) == 1 and not app.is_absolute():
            candidates += [base / APPS_FOLDER / app, Path.cwd() / APPS_FOLDER / app]
        for candidate in candidates:
            if candidate.is_dir():
                return candidate
        folders = [app.parent] if len(app.parts) > 1 else []
        raise ValidationFailed([_unknown_app(str(app), [*folders, base / APPS_FOLDER], None, None, "")])
    assert config is not None
    if config.deploy.app is None:
        names = app_names(base / APPS_FOLDER)
        found = f" (apps here: {', '.join(names)})" if names else ""
        raise ValidationFailed(
            [
                InputError(
                    config.path,
                    None,
                    f"no app given; name one, e.g. `jupiter run APP`{found}, "
                    "or set `APP = app_specific_files/<app>` in [DEPLOY]",
                )
            ]
        )
    path = config.resolve(config.deploy.app)
    if path.is_dir():
        return path
    line = config.line_of("DEPLOY", "APP")
    folders = [path.parent, base / APPS_FOLDER]
    raise ValidationFailed(
        [_unknown_app(str(config.deploy.app), folders, config.path, line, "; fix APP in [DEPLOY] or name an app")]
    )


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
    if config is not None or app_path is not None:
        app = _collect(errors, lambda: load_app(resolve_app_path(config, app_path)))
    if config is not None and nodes is not None and app is not None:
        errors.extend(_cross_check(config, nodes, app))
    if errors or config is None or nodes is None or app is None:
        raise ValidationFailed(errors)
    return Workspace(config=config, nodes=nodes, app=app)
