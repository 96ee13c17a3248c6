"""An application folder (`app_specific_files/<app>/`) and its files.

Besides `configuration.txt` (see `jupiter.model.dag`), an app holds
`scripts/<task>.py` (one per DAG task), and optionally `scripts/config.json`
(`taskname_map`, `exec_profiler`), `app_config.ini` (extra ports),
`name_convert.txt`, `input_node.txt` (WAVE's initial placement),
`sample_input/` and `requirements.txt`. Each file is checked on its own and
every problem is collected, so one `jupiter validate` shows them all.

What the original accepted loads here too: the `input` row of
`name_convert.txt` (the app's output and input names, `App.io_names`),
`taskname_map` entries for tasks the DAG does not have (ignored, with a
warning in `App.warnings`), and helper entries with arguments
(`"dftslave00": ["dftslave", false, 0, 0, 3]`, `TaskEntry.args`).

Helpers (`App.helpers`): the original's non-DAG part of an app, long-lived
processes started beside the DAG's tasks. One is declared by a `false` entry
of `taskname_map`, by a self-loop line of `configuration.txt`
(`dftslave00 1 False dftslave00`), or both; it runs `scripts/<script>.py`
(with Python) or `scripts/<script>.sh` (with `sh`) and its arguments.

`scripts/config.json` may also say how each task runs (`worker`,
`task_timeout`, `task_memory`: `jupiter.model.task_settings`), and every
DAG script is scanned for module-level state a frame may leave behind
(`jupiter.model.script_state`), which `App.warnings` reports. A file of
`sample_input/` that is a symbolic link must point inside the app folder.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from jupiter.model.dag import Dag, parse_dag
from jupiter.model.errors import InputError, ValidationFailed
from jupiter.model.script_state import effective_worker, script_findings, state_warnings
from jupiter.model.task_settings import TaskSettings, parse_task_settings
from jupiter.model.textfile import read_text, significant_lines

T = TypeVar("T")


@dataclass(frozen=True)
class TaskEntry:
    """One `taskname_map` entry of `scripts/config.json`."""

    name: str
    script: str
    """Script (module) name in `scripts/`, without `.py`."""
    in_dag: bool
    """False for the original's non-DAG helper tasks."""
    args: tuple[str, ...] = ()
    """Arguments after `[script, in_dag]` (a helper's command line, e.g. `0 0 3`), as text."""


@dataclass(frozen=True)
class ScriptsConfig:
    """`scripts/config.json`; absent file = every DAG task runs `scripts/<task>.py`."""

    taskname_map: Mapping[str, TaskEntry] = field(default_factory=dict)
    exec_profiler: Mapping[str, bool] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    """`file[:line]: message` for entries accepted but ignored."""
    settings: TaskSettings = field(default_factory=TaskSettings)
    """How each task runs: worker mode, time and memory limits (`jupiter.model.task_settings`)."""

    def script_of(self, task: str) -> str:
        """Script name that implements a DAG task."""
        entry = self.taskname_map.get(task)
        return entry.script if entry is not None else task

    def profiled(self, task: str) -> bool:
        """Whether the execution profiler runs this task (default: yes)."""
        return self.exec_profiler.get(task, True)


@dataclass(frozen=True)
class Helper:
    """A long-lived helper process of the app (module docstring), started on the home node."""

    name: str
    script: Path
    """The script file, inside the app's `scripts/` (`.py` runs with Python, anything else with `sh`)."""
    args: tuple[str, ...] = ()

    @property
    def python(self) -> bool:
        """Whether the script runs with Python (else with `sh`)."""
        return self.script.suffix == ".py"


@dataclass(frozen=True)
class AppPorts:
    """`app_config.ini`: extra ports the app's tasks listen on, by name."""

    docker: Mapping[str, int] = field(default_factory=dict)
    svc: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class App:
    """A loaded and validated application folder."""

    path: Path
    dag: Dag
    scripts: ScriptsConfig
    ports: AppPorts
    name_convert: Mapping[str, tuple[str, str]]
    """task -> (output name, input name), for runtime statistics."""
    input_nodes: Mapping[str, str]
    """Root task -> node, WAVE's initial placement (`input_node.txt`)."""
    input_nodes_line: Mapping[str, int]
    sample_inputs: tuple[Path, ...]
    requirements: Path | None

    io_names: tuple[str, str] | None = None
    """(output name, input name) of the app as a whole: the `input` row of `name_convert.txt`."""
    warnings: tuple[str, ...] = ()
    """`file[:line]: message` for what the app's files say that is accepted but ignored."""
    helpers: Mapping[str, Helper] = field(default_factory=dict)
    """The app's helper processes, by name (module docstring)."""
    workers: Mapping[str, str] = field(default_factory=dict)
    """task -> `fresh` or `resident`: its `worker` setting, `auto` resolved by the script's module-level state."""

    @property
    def name(self) -> str:
        """The app's folder name."""
        return self.path.name

    @property
    def scripts_dir(self) -> Path:
        """Folder of the task scripts."""
        return self.path / "scripts"

    def script_path(self, task: str) -> Path:
        """Path of the script that implements a task."""
        return self.scripts_dir / f"{self.scripts.script_of(task)}.py"


def _key_line(text: str, key: str) -> int | None:
    """Line of `"key":` inside `taskname_map` of a JSON text (json.loads keeps no positions)."""
    start = text.find('"taskname_map"')
    match = re.compile(re.escape(json.dumps(key)) + r"\s*:").search(text, max(start, 0))
    return text.count("\n", 0, match.start()) + 1 if match else None


def _top_key_line(text: str, key: str) -> int | None:
    """Line of a top-level `"key":` of a JSON text."""
    match = re.compile(re.escape(json.dumps(key)) + r"\s*:").search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _argument(value: object) -> str | None:
    """A helper argument as text; None for what a command line cannot hold (lists, objects, true/false)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value)


def parse_scripts_config(path: Path, dag: Dag | None) -> ScriptsConfig:
    """Parse `scripts/config.json`, checking names against the DAG when known.

    An entry that says `true` (a DAG task) for a task the DAG does not have is
    dropped with a warning, as the original ignored it; entries may carry a
    helper's arguments after `[script, in_dag]`.
    """
    text = read_text(path, "scripts config")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InputError(path, 1, "expected a JSON object with `taskname_map` and `exec_profiler`")
    entries: dict[str, TaskEntry] = {}
    warnings: list[str] = []
    names = data.get("taskname_map", {})
    if not isinstance(names, dict):
        raise InputError(path, None, "`taskname_map` must be an object of task: [script, is_dag_task]")
    for task, value in names.items():
        if (
            not isinstance(value, list)
            or len(value) < 2
            or not isinstance(value[0], str)
            or not isinstance(value[1], bool)
        ):
            raise InputError(path, None, f'taskname_map[{task!r}] must be ["script", true|false], got {value!r}')
        args = tuple(_argument(arg) for arg in value[2:])
        if None in args:
            raise InputError(
                path,
                _key_line(text, task),
                f"taskname_map[{task!r}]: a helper's arguments after [script, true|false] must be strings "
                f"or numbers, got {value[2:]!r}",
            )
        kept = tuple(arg for arg in args if arg is not None)
        entries[task] = TaskEntry(name=task, script=value[0], in_dag=value[1], args=kept)
    profiler = data.get("exec_profiler", {})
    if not isinstance(profiler, dict) or not all(isinstance(v, bool) for v in profiler.values()):
        raise InputError(path, None, "`exec_profiler` must be an object of task: true|false")
    if dag is not None:
        for task, entry in list(entries.items()):
            if entry.in_dag and task not in dag and task not in dag.helpers:
                line = _key_line(text, task)
                where = f"{path}:{line}" if line is not None else str(path)
                warnings.append(
                    f"{where}: taskname_map names {task!r} as a DAG task but configuration.txt has no such "
                    "task; the entry is ignored (fix the name, set its flag to false, or delete it)"
                )
                del entries[task]
    settings = parse_task_settings(
        path, data, frozenset(dag.tasks) if dag is not None else None, lambda key: _top_key_line(text, key)
    )
    return ScriptsConfig(
        taskname_map=entries, exec_profiler=dict(profiler), warnings=tuple(warnings), settings=settings
    )


def parse_app_ports(path: Path) -> AppPorts:
    """Parse `app_config.ini` (`[DOCKER_PORT]` and `[SVC_PORT]`, both may be empty)."""
    text = read_text(path, "app config")
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str.upper  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        lineno = getattr(exc, "lineno", None)
        raise InputError(path, lineno, f"cannot parse: {exc.message}") from None
    sections: dict[str, dict[str, int]] = {}
    for section in ("DOCKER_PORT", "SVC_PORT"):
        sections[section] = {}
        if not parser.has_section(section):
            continue
        for key, value in parser.items(section):
            if not value.strip().isdigit() or not 1 <= int(value) <= 65535:
                raise InputError(
                    path, None, f"[{section}] {key}: expected a port number from 1 to 65535, got {value!r}"
                )
            sections[section][key] = int(value)
    if set(sections["DOCKER_PORT"]) != set(sections["SVC_PORT"]):
        odd = sorted(set(sections["DOCKER_PORT"]) ^ set(sections["SVC_PORT"]))
        raise InputError(path, None, f"port(s) {', '.join(odd)} must appear in both [DOCKER_PORT] and [SVC_PORT]")
    return AppPorts(docker=sections["DOCKER_PORT"], svc=sections["SVC_PORT"])


def _header_table(path: Path, what: str, width: int, header: str) -> list[tuple[int, list[str]]]:
    rows: list[tuple[int, list[str]]] = []
    lines = significant_lines(path, what)
    if lines[0][1].split() == header.split():
        lines = lines[1:]
    for number, text in lines:
        fields = text.split()
        if len(fields) != width:
            raise InputError(path, number, f"expected `{header}`, got {text!r}")
        rows.append((number, fields))
    return rows


@dataclass(frozen=True)
class NameConvert:
    """`name_convert.txt`: the names runtime statistics give files, per task and for the app."""

    tasks: Mapping[str, tuple[str, str]]
    """task -> (output name, input name)."""
    io_names: tuple[str, str] | None
    """The `input` row: (the app's output name, the app's input name)."""


_IO_ROW = "input"
"""First column of the row naming the app's own output and input (the docs' `input output_app_name input_app_name`)."""


def frame_name(input_file: str, io_names: tuple[str, str]) -> str:
    """The name the original's runtime statistics give a frame: its input file's prefix and the app's input name.

    The original named every row of `runtime_tasks.txt` after the app input
    it came from: the file's name up to the first `_` (else up to the first
    `.`), cut where the app's input name starts, followed by that name, so
    `1botnet.ipsum` of an app whose `input` row names `botnet` is `1botnet`.
    """
    _output, input_name = io_names
    stem = input_file.split("_", 1)[0] if "_" in input_file else input_file.split(".", 1)[0]
    return stem.split(input_name)[0] + input_name


def parse_name_convert(path: Path, dag: Dag | None) -> NameConvert:
    """Parse `name_convert.txt`: `task output_name input_name` per line, plus the app's `input` row.

    The original read every row into one table in which `input` stood for the
    app itself (its frames' input name and its final output name); generated
    apps put that row last, hand-written ones first. A first line that is the
    docs' template, `input output_app_name input_app_name`, is a header.
    """
    table: dict[str, tuple[str, str]] = {}
    io_names: tuple[str, str] | None = None
    io_line = 0
    for number, (task, out, inp) in _header_table(path, "name_convert file", 3, "input output_app_name input_app_name"):
        if task == _IO_ROW:
            if io_names is not None:
                raise InputError(path, number, f"a second `input` row (the first is on line {io_line}); keep one")
            io_names, io_line = (out, inp), number
            # A DAG task may itself be called `input`; the row then names it too, as in the original.
            if dag is None or task not in dag:
                continue
        elif dag is not None and task not in dag:
            raise InputError(path, number, f"unknown task {task!r}; it must be a task of configuration.txt")
        table[task] = (out, inp)
    return NameConvert(tasks=table, io_names=io_names)


def parse_input_nodes(path: Path, dag: Dag | None) -> tuple[dict[str, str], dict[str, int]]:
    """Parse `input_node.txt`: `task node` per line after the header."""
    nodes: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, (task, node) in _header_table(path, "input_node file", 2, "task node"):
        if dag is not None and task not in dag:
            raise InputError(path, number, f"unknown task {task!r}; it must be a task of configuration.txt")
        nodes[task] = node
        lines[task] = number
    return nodes, lines


def outside_app(app: Path, sample: Path) -> Path | None:
    """Where a file of the app really is, when that is outside the app folder (a symbolic link out), else None.

    Such a file would be read and sent to the deployment's nodes as if it
    were the app's, whatever it points to (`~/.ssh/id_rsa`).
    """
    target = sample.resolve()
    return None if target.is_relative_to(app.resolve()) else target


def _helper_script(app: Path, script: str) -> Path | str:
    """The file a helper runs (`scripts/<script>.py`, else `.sh`), or what to create instead."""
    scripts = app / "scripts"
    base = scripts / script
    if not base.resolve().is_relative_to(scripts.resolve()):
        return f"its script {script!r} is outside scripts/; name a script inside the app's scripts/ folder"
    candidates = (
        [base] if base.suffix in (".py", ".sh") else [base.with_name(base.name + ext) for ext in (".py", ".sh")]
    )
    for candidate in candidates:
        if candidate.is_file() and candidate.resolve().is_relative_to(scripts.resolve()):
            return candidate
    tried = " or ".join(str(candidate.relative_to(app)) for candidate in candidates)
    return f"create {tried} (inside scripts/)"


def _helpers(path: Path, dag: Dag, scripts: ScriptsConfig) -> tuple[dict[str, Helper], list[InputError]]:
    """The app's helpers, from self-loop lines of configuration.txt and `false` entries of taskname_map."""
    config_json = path / "scripts" / "config.json"
    text = config_json.read_text(errors="replace") if config_json.is_file() else ""
    declared: dict[str, tuple[Path | None, int | None]] = {name: (dag.path, line) for name, line in dag.helpers.items()}
    errors: list[InputError] = []
    for name, entry in scripts.taskname_map.items():
        if entry.in_dag:
            if name in dag.helpers:
                errors.append(
                    InputError(
                        config_json,
                        _key_line(text, name),
                        f"taskname_map marks {name!r} true (a DAG task), but configuration.txt:{dag.helpers[name]} "
                        "declares it a helper; set it to false",
                    )
                )
            continue
        if name in dag:
            errors.append(
                InputError(
                    config_json,
                    _key_line(text, name),
                    f"taskname_map marks {name!r} false (a helper), but configuration.txt:{dag[name].line} has a DAG "
                    f"line for it; set it to true, or make that line `{name} 1 False {name}`",
                )
            )
            continue
        declared.setdefault(name, (config_json, _key_line(text, name)))
    helpers: dict[str, Helper] = {}
    for name, (declared_in, declared_on) in declared.items():
        declaration = scripts.taskname_map.get(name)
        script = _helper_script(path, declaration.script if declaration is not None else name)
        if isinstance(script, str):
            # Named where the script is named: config.json's entry, else the self-loop line.
            where, line = (
                (config_json, _key_line(text, name)) if declaration is not None else (declared_in, declared_on)
            )
            errors.append(InputError(where, line, f"helper {name} has no script; {script}"))
            continue
        helpers[name] = Helper(name=name, script=script, args=declaration.args if declaration is not None else ())
    return helpers, errors


ORIGINAL_SCRIPTS_DIR = "/centralized_scheduler"
"""Where the original's images kept an app's scripts; only the container images have it here too."""


def _container_paths(app: Path, scripts: Sequence[Path]) -> list[str]:
    """Warnings for scripts that name the original's container folder, which the local backend has not."""
    warnings = []
    for script in scripts:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if ORIGINAL_SCRIPTS_DIR + "/" in script.read_text(encoding="utf-8"):
                warnings.append(
                    f"{script.relative_to(app)} reads {ORIGINAL_SCRIPTS_DIR}/..., which exists only in the "
                    "container images (docker, kubernetes); to run on every backend, open the file relative to "
                    "the script: os.path.join(os.path.dirname(os.path.abspath(__file__)), NAME)"
                )
    return warnings


def _collect(errors: list[InputError], parse: Callable[[], T]) -> T | None:
    try:
        return parse()
    except InputError as exc:
        errors.append(exc)
        return None


def load_app(path: Path) -> App:
    """Load an app folder; raises ValidationFailed listing every problem found."""
    if not path.is_dir():
        raise ValidationFailed([InputError(path, None, "app folder not found; pass --app or set [DEPLOY] APP")])
    errors: list[InputError] = []
    dag = _collect(errors, lambda: parse_dag(path / "configuration.txt"))

    scripts_config = ScriptsConfig()
    config_json = path / "scripts" / "config.json"
    if config_json.exists():
        scripts_config = _collect(errors, lambda: parse_scripts_config(config_json, dag)) or scripts_config

    ports = AppPorts()
    if (path / "app_config.ini").exists():
        ports = _collect(errors, lambda: parse_app_ports(path / "app_config.ini")) or ports

    name_convert = NameConvert(tasks={}, io_names=None)
    if (path / "name_convert.txt").exists():
        name_convert = _collect(errors, lambda: parse_name_convert(path / "name_convert.txt", dag)) or name_convert

    input_nodes: dict[str, str] = {}
    input_lines: dict[str, int] = {}
    if (path / "input_node.txt").exists():
        parsed = _collect(errors, lambda: parse_input_nodes(path / "input_node.txt", dag))
        if parsed is not None:
            input_nodes, input_lines = parsed

    sample_dir = path / "sample_input"
    samples: tuple[Path, ...] = ()
    if not sample_dir.is_dir():
        errors.append(
            InputError(
                sample_dir,
                None,
                "no sample_input/ folder; add at least one input file (one file = one frame)",
            )
        )
    else:
        samples = tuple(sorted(p for p in sample_dir.iterdir() if p.is_file() and not p.name.startswith(".")))
        for sample in samples:
            target = outside_app(path, sample)
            if target is not None:
                errors.append(
                    InputError(
                        sample,
                        None,
                        f"is a symbolic link to {target}, outside the app folder; copy the file into sample_input/ "
                        "(Jupiter sends sample inputs to the deployment's nodes)",
                    )
                )
        if not samples:
            errors.append(
                InputError(
                    sample_dir,
                    None,
                    "sample_input/ is empty; add at least one input file (one file = one frame)",
                )
            )

    if dag is not None:
        for task in dag:
            script = path / "scripts" / f"{scripts_config.script_of(task.name)}.py"
            if not script.is_file():
                errors.append(
                    InputError(
                        dag.path,
                        task.line,
                        f"task {task.name} has no script; create {script.relative_to(path)} "
                        "with `def task(filename, pathin, pathout)`",
                    )
                )
    helpers: dict[str, Helper] = {}
    workers: dict[str, str] = {}
    warnings = list(scripts_config.warnings)
    if dag is not None:
        helpers, helper_errors = _helpers(path, dag, scripts_config)
        errors += helper_errors
        scanned: dict[tuple[Path, str], list[str]] = {}
        for task in dag:
            script = path / "scripts" / f"{scripts_config.script_of(task.name)}.py"
            configured = scripts_config.settings.worker_of(task.name)
            findings = script_findings(script) if script.is_file() else []
            workers[task.name] = effective_worker(configured, findings)
            if (script, configured) not in scanned:  # one script may serve several tasks: warn once
                scanned[(script, configured)] = state_warnings(script, findings, configured)
        warnings += [warning for found in scanned.values() for warning in found]
    if errors or dag is None:
        raise ValidationFailed(errors)
    requirements = path / "requirements.txt"
    return App(
        path=path,
        dag=dag,
        scripts=scripts_config,
        ports=ports,
        name_convert=name_convert.tasks,
        input_nodes=input_nodes,
        input_nodes_line=input_lines,
        sample_inputs=samples,
        requirements=requirements if requirements.is_file() else None,
        io_names=name_convert.io_names,
        warnings=(
            *warnings,
            *_container_paths(path, sorted({path / "scripts" / f"{scripts_config.script_of(t.name)}.py" for t in dag})),
        ),
        helpers=helpers,
        workers=workers,
    )
