"""The execution profiler: every DAG task on sample data, chained along the DAG.

Each node runs every task once per sample input, in topological order, and
each task gets the outputs its parents just produced on the same node, so
its inputs are realistic (a task reading a parent's summary sees a real
summary, not the raw input). What is recorded per task: the run time
(sub-second, as measured by the task's worker, testbed dilation included)
and the bytes sent to each child, which become the DAG's edge sizes.

Tasks that `config.json` excludes from profiling (`exec_profiler: false`)
are not run; their children get the sample input as a stand-in, and the
profile records them with 0 seconds so that they do not steer the mapping.

How a task is run is passed in (`Runner`), so the agent can use its
resident workers and tests can use a plain function.
"""

from __future__ import annotations

import os
import shutil
import statistics
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOME = "home"

Runner = Callable[[str, list[str], bool, str, str], Awaitable[dict[str, Any]]]
"""runner(task, input names, single, pathin, pathout) -> the worker's answer (ok, outputs, execute, finish, error)."""


@dataclass(frozen=True)
class TaskShape:
    """What the profiler needs of a DAG task."""

    name: str
    num_inputs: int
    flag: bool
    children: tuple[str, ...]
    parents: tuple[str, ...]


class TaskFailed(Exception):
    """A task raised while being profiled; the message has the traceback's last line."""


def _routes(shape: TaskShape, outputs: Sequence[str]) -> list[tuple[str, str]]:
    """(child, output path) pairs as the runtime would route them (FLAG true: every output to every child)."""
    if shape.flag:
        if not outputs:
            raise TaskFailed(f"{shape.name} has FLAG true but returned no output")
        return [(child, output) for child in shape.children for output in outputs]
    if len(outputs) != len(shape.children):
        raise TaskFailed(f"{shape.name} has FLAG false and {len(shape.children)} children but returned {len(outputs)}")
    return list(zip(shape.children, outputs, strict=True))


async def profile_chain(
    tasks: Sequence[TaskShape],
    samples: Sequence[Sequence[Path]],
    runner: Runner,
    workdir: Path,
    runs: int = 1,
    skip: frozenset[str] = frozenset(),
) -> dict[str, dict[str, Any]]:
    """Profile every task over `runs` chained runs; returns task -> {seconds, output_bytes, runs}.

    `tasks` must be in topological order; `samples` are frames (their files,
    `jupiter.model.inputs.group_frames`). Run `r` starts from sample frame
    `r mod len(samples)`, after one warm-up run that is not counted; a
    task's seconds are the median over the runs.
    """
    if not samples or not all(samples):
        raise ValueError("the execution profiler needs at least one sample input file")
    shapes = {task.name: task for task in tasks}
    seconds: dict[str, list[float]] = {task.name: [] for task in tasks}
    sizes: dict[str, dict[str, list[int]]] = {task.name: {} for task in tasks}
    # Run 0 is a warm-up whose times are not kept: the runtime's workers are
    # resident, so a task's first call (imports, caches) is not what it costs.
    for run in range(max(1, runs) + 1):
        sample = samples[max(run - 1, 0) % len(samples)]
        warm_up = run == 0
        routed: dict[str, list[tuple[str, str]]] = {}
        """child -> (parent, output path) delivered to it in this run."""
        for task in tasks:
            base = workdir / f"run{run}" / task.name
            pathin, pathout = base / "in", base / "out"
            shutil.rmtree(base, ignore_errors=True)
            pathin.mkdir(parents=True)
            pathout.mkdir(parents=True)
            names: list[str] = []
            sources: list[tuple[str, str]] = []
            arrived = routed.get(task.name, [])
            for parent in task.parents or ("",):
                mine = [(parent, path) for source, path in arrived if source == parent]
                # An entry task, or a parent that was not run: the sample frame's files stand in.
                sources += mine or [(parent, str(path)) for path in sample]
            for parent, source in sources:
                name = os.path.basename(source)
                if name in names:
                    name = f"{parent}_{name}"
                shutil.copyfile(source, pathin / name)
                names.append(name)
            if task.name in skip:
                continue
            answer = await runner(task.name, names, task.num_inputs == 1, str(pathin), str(pathout))
            if not answer.get("ok"):
                error = str(answer.get("error", "failed")).strip().splitlines()
                raise TaskFailed(f"{task.name} failed on its sample input: {error[-1] if error else 'failed'}")
            routes = _routes(shapes[task.name], list(answer["outputs"]))
            if not warm_up:
                seconds[task.name].append(float(answer["finish"]) - float(answer["execute"]))
            for child, path in routes:
                if not warm_up:
                    sizes[task.name].setdefault(child, []).append(os.path.getsize(path))
                if child != HOME:
                    routed.setdefault(child, []).append((task.name, path))
    result: dict[str, dict[str, Any]] = {}
    for task in tasks:
        if task.name in skip:
            result[task.name] = {"seconds": 0.0, "output_bytes": {}, "runs": 0, "profiled": False}
            continue
        result[task.name] = {
            "seconds": statistics.median(seconds[task.name]),
            "output_bytes": {child: round(statistics.mean(v)) for child, v in sizes[task.name].items()},
            "runs": len(seconds[task.name]),
        }
    return result


def shapes_from_plan(tasks: Mapping[str, Any], order: Sequence[str]) -> list[TaskShape]:
    """TaskShapes from a plan's task specs (anything with the TaskSpec fields), in `order`."""
    return [
        TaskShape(
            name=name,
            num_inputs=int(tasks[name].num_inputs),
            flag=bool(tasks[name].flag),
            children=tuple(tasks[name].children),
            parents=tuple(tasks[name].parents),
        )
        for name in order
    ]
