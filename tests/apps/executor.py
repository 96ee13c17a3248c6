"""A tiny in-process executor for app folders, independent of Jupiter's runtime.

It reads only `configuration.txt` and `scripts/` (`<task>.py` and the helper
modules those import from their folder), runs the tasks of one frame in
topological order, routes each task's outputs by its FLAG and hands a task
its inputs once NUM_INPUTS of them are there, so the example apps can be
checked without agents, processes or the package's own parsers.
"""

from __future__ import annotations

import importlib.util
import itertools
import random
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

HOME = "home"
_LOADED = itertools.count()


@dataclass(frozen=True)
class Line:
    """One DAG line of configuration.txt."""

    task: str
    num_inputs: int
    flag: bool
    children: tuple[str, ...]


def read_configuration(app: Path) -> list[Line]:
    """The DAG lines of `app/configuration.txt`, checked against its count line."""
    raw = [line.split() for line in (app / "configuration.txt").read_text().splitlines() if line.strip()]
    count = int(raw[0][0])
    assert len(raw) == count + 1, f"count line says {count}, {len(raw) - 1} lines follow"
    lines = []
    for fields in raw[1:]:
        assert len(fields) >= 4, fields
        assert fields[2] in ("true", "false"), fields
        lines.append(Line(fields[0], int(fields[1]), fields[2] == "true", tuple(fields[3:])))
    return lines


def topological_order(lines: list[Line]) -> list[str]:
    """Task names, parents first (Kahn); fails on a cycle or an unknown child."""
    names = {line.task for line in lines}
    indegree = dict.fromkeys(names, 0)
    for line in lines:
        for child in line.children:
            if child != HOME:
                assert child in names, f"{line.task} lists {child}, which has no line"
                indegree[child] += 1
    by_name = {line.task: line for line in lines}
    ready = sorted(name for name, degree in indegree.items() if degree == 0)
    order: list[str] = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for child in by_name[name].children:
            if child != HOME:
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
    assert len(order) == len(names), "the DAG has a cycle"
    return order


def load_script(path: Path) -> ModuleType:
    """Import a task script from its file, under a module name unique to its path.

    As in Jupiter's worker, the script's folder is on sys.path while it is
    imported, so that it can import helper modules that sit next to it.
    """
    spec = importlib.util.spec_from_file_location(f"_app_test_{next(_LOADED)}_{path.stem}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    # Leave no __pycache__ in the app folders (they ship inside the package).
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
        sys.dont_write_bytecode = writes
    return module


InputOrder = Callable[[list[str]], list[str]]


def shuffled(seed: int) -> InputOrder:
    """An input order that shuffles a task's input names (seeded)."""
    rng = random.Random(seed)

    def order(names: list[str]) -> list[str]:
        names = list(names)
        rng.shuffle(names)
        return names

    return order


class Executor:
    """Runs frames of one app; scripts are imported once and reused across frames."""

    def __init__(self, app: Path) -> None:
        self.app = app
        self.lines = {line.task: line for line in read_configuration(app)}
        self.order = topological_order(list(self.lines.values()))
        self.modules: dict[str, Any] = {name: load_script(app / "scripts" / f"{name}.py") for name in self.order}

    def run(self, frame: Path, workdir: Path, order: InputOrder = sorted) -> list[Path]:
        """Run the whole DAG on the input file `frame`; returns the outputs sent home."""
        inbox: dict[str, list[Path]] = {name: [] for name in self.order}
        entries = [name for name in self.order if self.lines[name].num_inputs == 1 and not self._has_parent(name)]
        for name in entries:
            inbox[name].append(frame)
        home: list[Path] = []
        for name in self.order:
            line = self.lines[name]
            received = inbox[name]
            assert len(received) == line.num_inputs, f"{name} waits for {line.num_inputs} inputs, got {len(received)}"
            pathin = workdir / name / "in"
            pathout = workdir / name / "out"
            pathin.mkdir(parents=True)
            pathout.mkdir(parents=True)
            for path in received:
                assert not (pathin / path.name).exists(), f"two inputs of {name} are named {path.name}"
                shutil.copyfile(path, pathin / path.name)
            names = order([path.name for path in received])
            argument: str | list[str] = names[0] if line.num_inputs == 1 else names
            outputs = [Path(pathout, output) for output in self.modules[name].task(argument, str(pathin), str(pathout))]
            for output in outputs:
                assert output.is_file(), f"{name} returned {output}, which is not a file"
            if line.flag:
                assert len(outputs) == 1, f"{name} has FLAG true and must return one output, got {len(outputs)}"
                routed = [(child, outputs[0]) for child in line.children]
            else:
                assert len(outputs) == len(line.children), (
                    f"{name} has FLAG false and {len(line.children)} children, returned {len(outputs)} outputs"
                )
                routed = list(zip(line.children, outputs, strict=True))
            for child, output in routed:
                (home if child == HOME else inbox[child]).append(output)
        return home

    def _has_parent(self, name: str) -> bool:
        return any(name in line.children for line in self.lines.values())
