"""How each task of an app runs: its worker mode, time limit and memory limit (`scripts/config.json`).

Three optional keys of `scripts/config.json`, each either one value for the
whole app or an object of per-task values in which `"*"` stands for the
app's other tasks:

    "worker":       "auto" | "fresh" | "resident"  e.g. {"*": "auto", "local_pro": "resident"}
    "task_timeout": seconds, 0 = none              e.g. 60, or {"dft_detector0": 300}
    "task_memory":  bytes or "512M", "2G"; 0 = none

`fresh` runs every frame in a fresh copy of the imported script, as the
original did (it forked a process per invocation), so what a frame leaves in
module-level variables never reaches the next frame; `resident` keeps one
process per task for all frames, so state carries over. `auto`, the
default, is `fresh` for a task whose script visibly changes module-level
state (`jupiter.model.script_state`: such a script gives the original's
results only when run fresh) and `resident` for every other task, which
would pay a fork per frame for nothing it could see (1 to 2 ms on an idle
machine, several on a loaded one). A per-task value wins over the app's
value; time and memory limits also win over `[RUNTIME] TASK_TIMEOUT` /
`TASK_MEMORY` of `jupiter_config.ini`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jupiter.model.errors import InputError

AUTO = "auto"
FRESH = "fresh"
RESIDENT = "resident"
WORKER_MODES = (AUTO, FRESH, RESIDENT)
DEFAULT_WORKER = AUTO
"""Fresh where a script changes module-level state, resident elsewhere (module docstring)."""
APP_WIDE = "*"
"""Key of a per-task object that stands for every task not named in it."""

_SIZE = re.compile(r"^(\d+)\s*([kmgt]?)(i?b)?$", re.IGNORECASE)
_UNITS: Mapping[str, int] = MappingProxyType({"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4})


def parse_size(text: str) -> int:
    """Bytes of `1024`, `512K`, `512M`, `2G`, `2GiB` (1K = 1024); ValueError for anything else."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size; write bytes like 536870912, 512M or 2G")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def show_size(size: int) -> str:
    """A size as the shortest exact `K`/`M`/`G` text (`2G`), for messages and the docs."""
    for suffix, unit in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


@dataclass(frozen=True)
class TaskSettings:
    """The three keys, per task; a task missing from a map takes the app's value (`"*"`), then the config's."""

    worker: Mapping[str, str] = field(default_factory=dict)
    timeout: Mapping[str, float] = field(default_factory=dict)
    """Seconds; 0 = no limit."""
    memory: Mapping[str, int] = field(default_factory=dict)
    """Bytes; 0 = no limit."""

    def worker_of(self, task: str) -> str:
        """`auto`, `fresh` or `resident`, as configured (`App.workers` has what `auto` became)."""
        return self.worker.get(task, self.worker.get(APP_WIDE, DEFAULT_WORKER))

    def timeout_of(self, task: str, default: float) -> float:
        """Seconds a frame of `task` may run (0 = no limit); `default` is `[RUNTIME] TASK_TIMEOUT`."""
        return self.timeout.get(task, self.timeout.get(APP_WIDE, default))

    def memory_of(self, task: str, default: int) -> int:
        """Bytes of data `task`'s process may allocate (0 = no limit); `default` is `[RUNTIME] TASK_MEMORY`."""
        return self.memory.get(task, self.memory.get(APP_WIDE, default))


def _worker(value: object) -> str:
    if value not in WORKER_MODES:
        raise ValueError(f"expected {', '.join(repr(mode) for mode in WORKER_MODES)}, got {value!r}")
    return str(value)


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"expected seconds (a number ≥ 0, 0 = no limit), got {value!r}")
    return float(value)


def _bytes(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a size (bytes, or text like 512M or 2G; 0 = no limit), got {value!r}")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str):
        return parse_size(value)
    raise ValueError(f"expected a size (bytes, or text like 512M or 2G; 0 = no limit), got {value!r}")


_READERS: Mapping[str, Any] = MappingProxyType({"worker": _worker, "task_timeout": _seconds, "task_memory": _bytes})


def _per_task(path: Path, line: int | None, key: str, value: object, tasks: frozenset[str] | None) -> dict[str, Any]:
    read = _READERS[key]
    entries = value if isinstance(value, dict) else {APP_WIDE: value}
    parsed: dict[str, Any] = {}
    for task, raw in entries.items():
        if task != APP_WIDE and tasks is not None and task not in tasks:
            known = ", ".join(sorted(tasks)[:8])
            raise InputError(
                path,
                line,
                f"`{key}` names {task!r}, which is not a task of configuration.txt (tasks: {known}; "
                f'"{APP_WIDE}" stands for every other task)',
            )
        try:
            parsed[task] = read(raw)
        except ValueError as exc:
            where = f"`{key}`" if task == APP_WIDE and not isinstance(value, dict) else f"`{key}` of {task!r}"
            raise InputError(path, line, f"{where}: {exc}") from None
    return parsed


def parse_task_settings(
    path: Path, data: Mapping[str, Any], tasks: frozenset[str] | None, line_of: Any = lambda key: None
) -> TaskSettings:
    """The keys `worker`, `task_timeout` and `task_memory` of a parsed `config.json` (absent = defaults).

    `tasks`: the DAG's task names, to refuse per-task values for tasks it does
    not have (None when the DAG did not parse). `line_of(key)` gives a key's
    line for messages.
    """
    values: dict[str, dict[str, Any]] = {}
    for key in _READERS:
        if key in data:
            values[key] = _per_task(path, line_of(key), key, data[key], tasks)
    return TaskSettings(
        worker=values.get("worker", {}),
        timeout=values.get("task_timeout", {}),
        memory=values.get("task_memory", {}),
    )
