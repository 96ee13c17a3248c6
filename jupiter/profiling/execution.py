"""The execution profiler: every DAG task on sample data, chained along the DAG.

Each node runs every task a few times, in topological order, and each task
gets the outputs its parents produced on the same node, so its inputs are
realistic (a task reading a parent's summary sees a real summary, not the
raw input). What is recorded per task: the run time (sub-second, as
measured by the task's worker, testbed dilation included) and the bytes sent
to each child, which become the DAG's edge sizes. The work is bounded per
task and node: at most `runs` measured runs, and no new run once the task's
time `budget` is spent (`ExecutionChain`).

Tasks that `config.json` excludes from profiling (`exec_profiler: false`)
are not run; their children get the sample input as a stand-in, and the
profile records them with 0 seconds so that they do not steer the mapping.

How a task is run is passed in (`Runner`), so the agent can use its
resident workers and tests can use a plain function.
"""

from __future__ import annotations

import math
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


@dataclass
class _Done:
    """What one task left for its children on one node: per run, the (child, output path) routes."""

    runs: list[list[tuple[str, str]]]


class ExecutionChain:
    """One node's execution profile, built task by task in DAG order.

    Task `t`'s run `r` gets, from each parent, what that parent routed to it
    in its run `r` (or in its last run, when the parent's time budget allowed
    fewer), and an entry task gets the files of sample frame `(r - 1) mod
    len(samples)` (`samples` are frames, `jupiter.model.inputs.group_frames`).
    Run 0 is a warm-up whose time is not kept (the runtime's workers are
    resident, so a task's first call — imports, caches — is not what it
    costs), unless it is the only run: a task whose first call already used
    up its `budget` (seconds on this node) is measured by that call alone.
    After the warm-up, runs go on until `runs` are measured or the budget is
    spent. A task's seconds are the median of its measured runs.

    The chain keeps what each task produced, so a caller may profile one task
    per call (the session does, to show progress and bound each call).
    """

    def __init__(
        self,
        tasks: Sequence[TaskShape],
        samples: Sequence[Sequence[Path]],
        workdir: Path,
        runs: int = 1,
        skip: frozenset[str] = frozenset(),
        budget: float = math.inf,
    ) -> None:
        if not samples or not all(samples):
            raise ValueError("the execution profiler needs at least one sample input file")
        self.shapes = {task.name: task for task in tasks}
        self.order = [task.name for task in tasks]
        self.samples = list(samples)
        self.workdir = workdir
        self.runs = max(1, runs)
        self.skip = skip
        self.budget = budget
        self.done: dict[str, _Done] = {}
        self.results: dict[str, dict[str, Any]] = {}

    def _inputs(self, task: TaskShape, run: int, pathin: Path) -> list[str]:
        """Copy the task's inputs of run `run` into `pathin`; returns their names."""
        names: list[str] = []
        for parent in task.parents or ("",):
            sources: list[str] = []
            done = self.done.get(parent)
            if done is not None and done.runs:
                routed = done.runs[min(run, len(done.runs) - 1)]
                sources = [path for child, path in routed if child == task.name]
            if not sources:
                # An entry task, or a parent that was not run: the sample frame's files stand in.
                sources = [str(path) for path in self.samples[max(run - 1, 0) % len(self.samples)]]
            for source in sources:
                name = os.path.basename(source)
                if name in names:
                    name = f"{parent}_{name}"
                shutil.copyfile(source, pathin / name)
                names.append(name)
        return names

    async def profile(self, name: str, runner: Runner) -> dict[str, Any]:
        """Profile one task (its parents first); returns {seconds, output_bytes, runs} (also kept in `results`)."""
        task = self.shapes[name]
        missing = [p for p in task.parents if p not in self.results]
        if missing:
            raise ValueError(f"{name} needs its parents profiled first on this node: {', '.join(missing)}")
        if name in self.skip:
            self.done[name] = _Done([])
            record: dict[str, Any] = {"seconds": 0.0, "output_bytes": {}, "runs": 0, "profiled": False}
            self.results[name] = record
            return record
        seconds: list[float] = []
        sizes: dict[str, list[int]] = {}
        done = _Done([])
        spent = 0.0
        warm_up: tuple[float, dict[str, int]] | None = None
        run = 0
        while len(seconds) < self.runs and (run == 0 or spent < self.budget):
            base = self.workdir / f"run{run}" / name
            pathin, pathout = base / "in", base / "out"
            shutil.rmtree(base, ignore_errors=True)
            pathin.mkdir(parents=True)
            pathout.mkdir(parents=True)
            names = self._inputs(task, run, pathin)
            answer = await runner(name, names, task.num_inputs == 1, str(pathin), str(pathout))
            if not answer.get("ok"):
                error = str(answer.get("error", "failed")).strip().splitlines()
                raise TaskFailed(f"{name} failed on its sample input: {error[-1] if error else 'failed'}")
            routes = _routes(task, list(answer["outputs"]))
            took = float(answer["finish"]) - float(answer["execute"])
            spent += took
            done.runs.append([(child, path) for child, path in routes if child != HOME])
            routed = {child: os.path.getsize(path) for child, path in routes}
            if run == 0:
                warm_up = (took, routed)
            else:
                seconds.append(took)
                for child, size in routed.items():
                    sizes.setdefault(child, []).append(size)
            run += 1
        if not seconds and warm_up is not None:
            # The budget went on the first call: it is the only measurement there is.
            seconds = [warm_up[0]]
            sizes = {child: [size] for child, size in warm_up[1].items()}
        self.done[name] = done
        record = {
            "seconds": statistics.median(seconds),
            "output_bytes": {child: round(statistics.mean(v)) for child, v in sizes.items()},
            "runs": len(seconds),
        }
        self.results[name] = record
        return record


async def profile_chain(
    tasks: Sequence[TaskShape],
    samples: Sequence[Sequence[Path]],
    runner: Runner,
    workdir: Path,
    runs: int = 1,
    skip: frozenset[str] = frozenset(),
    budget: float = math.inf,
) -> dict[str, dict[str, Any]]:
    """Profile every task (in topological order, `ExecutionChain`); returns task -> {seconds, output_bytes, runs}."""
    chain = ExecutionChain(tasks, samples, workdir, runs=runs, skip=skip, budget=budget)
    for task in tasks:
        await chain.profile(task.name, runner)
    return chain.results


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
