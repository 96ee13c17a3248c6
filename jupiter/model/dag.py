"""`configuration.txt`: the application's DAG.

Format (the original's): the first line is N, the number of DAG lines; each
of the N lines is `task NUM_INPUTS FLAG child1 child2 ...`. NUM_INPUTS is how
many files of one frame the task waits for (at least one per parent; an
entry task gets the frame's files from home — usually one, several for a
multi-file frame). FLAG `true` sends every output of the task to every
child; `false` sends the i-th output to the i-th listed child. A child named
`home` (legacy: `scheduler`, `datasink*`) sends the output home as a final
result.

A line whose only child is the task itself, `dftslave00 1 False dftslave00`,
is how the original's READMEs declare a *helper*: a long-lived process of
the app's non-DAG part, not a task of the DAG (`Dag.helpers`; see
`jupiter.model.app` for its script and arguments).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from jupiter.model.errors import InputError
from jupiter.model.textfile import significant_lines

HOME = "home"
"""The canonical name of the sink that sends outputs home."""

_HOME_ALIAS = re.compile(r"^(home\d*|scheduler|datasink\w*)$")
_TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_home_alias(name: str) -> bool:
    """Whether a child name means "send to home" (`home`, `scheduler`, `datasink*`)."""
    return bool(_HOME_ALIAS.match(name))


@dataclass(frozen=True)
class Task:
    """One line of `configuration.txt`."""

    name: str
    num_inputs: int
    flag: bool
    """True: the single output goes to every child; False: i-th output to i-th child."""
    children: tuple[str, ...]
    """Children in file order; home sinks are spelled `home`."""
    line: int = 0

    @property
    def sends_home(self) -> bool:
        """Whether some output of this task is a final output."""
        return HOME in self.children

    @property
    def task_children(self) -> tuple[str, ...]:
        """Children that are tasks (home sinks left out)."""
        return tuple(child for child in self.children if child != HOME)


@dataclass(frozen=True)
class HelperLine:
    """A line that names only itself as a child: a helper declaration, not a DAG task."""

    name: str
    line: int


@dataclass(frozen=True)
class Dag:
    """A validated application DAG."""

    tasks: Mapping[str, Task]
    graph: nx.DiGraph
    order: tuple[str, ...]
    """Tasks in a topological order (stable: file order breaks ties)."""
    path: Path | None = None
    helpers: Mapping[str, int] = field(default_factory=dict)
    """Helpers declared by self-loop lines (`name 1 False name`): name -> line."""

    def __iter__(self) -> Iterator[Task]:
        return (self.tasks[name] for name in self.order)

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, name: str) -> Task:
        return self.tasks[name]

    def __contains__(self, name: object) -> bool:
        return name in self.tasks

    def parents(self, name: str) -> tuple[str, ...]:
        """Parent tasks of a task, in topological order."""
        preds = set(self.graph.predecessors(name))
        return tuple(task for task in self.order if task in preds)

    def children(self, name: str) -> tuple[str, ...]:
        """Child tasks (not home) of a task, in file order."""
        return self.tasks[name].task_children

    @property
    def entry_tasks(self) -> tuple[str, ...]:
        """Tasks without parents: home feeds them each input file."""
        return tuple(name for name in self.order if self.graph.in_degree(name) == 0)

    @property
    def exit_tasks(self) -> tuple[str, ...]:
        """Tasks whose outputs go home."""
        return tuple(name for name in self.order if self.tasks[name].sends_home)

    @property
    def edges(self) -> tuple[tuple[str, str], ...]:
        """Task-to-task edges, parents in topological order."""
        return tuple((parent, child) for parent in self.order for child in self.children(parent))

    def depth(self) -> int:
        """Number of tasks on the longest path from an entry to an exit task."""
        return int(nx.dag_longest_path_length(self.graph)) + 1


def _parse_task(path: Path, number: int, text: str) -> Task | HelperLine:
    fields = text.split()
    if len(fields) < 3:
        raise InputError(path, number, f"expected `task NUM_INPUTS FLAG child...`, got {text!r}")
    name, num_raw, flag_raw, *children = fields
    if not _TASK_NAME.match(name):
        raise InputError(
            path,
            number,
            f"task name {name!r} must be a Python identifier (letters, digits, '_'), "
            "because it names scripts/<task>.py",
        )
    if is_home_alias(name):
        raise InputError(path, number, f"{name!r} names home, not a task; rename the task")
    try:
        num_inputs = int(num_raw)
    except ValueError:
        raise InputError(path, number, f"NUM_INPUTS of {name} must be a whole number, got {num_raw!r}") from None
    if num_inputs < 1:
        raise InputError(path, number, f"NUM_INPUTS of {name} must be at least 1, got {num_inputs}")
    if flag_raw.lower() not in ("true", "false"):
        raise InputError(path, number, f"FLAG of {name} must be `true` or `false`, got {flag_raw!r}")
    flag = flag_raw.lower() == "true"
    if not children:
        raise InputError(path, number, f"{name} lists no children; list `home` to send its outputs home")
    canonical = tuple(HOME if is_home_alias(child) else child for child in children)
    if canonical == (name,):
        return HelperLine(name, number)
    seen: set[str] = set()
    for child in canonical:
        if child in seen:
            why = (
                "with FLAG false the i-th output goes to the i-th child, so list each child once"
                if not flag
                else "list each child once"
            )
            raise InputError(path, number, f"{name} lists child {child!r} twice; {why}")
        seen.add(child)
    if name in canonical:
        raise InputError(
            path,
            number,
            f"{name} lists itself among other children; a DAG cannot loop (a line `{name} 1 False {name}` "
            "with no other child declares a helper process)",
        )
    return Task(name=name, num_inputs=num_inputs, flag=flag, children=canonical, line=number)


def parse_dag(path: Path) -> Dag:
    """Parse and validate `configuration.txt`; raises InputError naming file:line."""
    lines = significant_lines(path, "DAG file")
    count_line, count_text = lines[0]
    try:
        count = int(count_text)
    except ValueError:
        raise InputError(path, count_line, f"first line must be the number of DAG lines, got {count_text!r}") from None
    body = lines[1:]
    if count != len(body):
        raise InputError(
            path,
            count_line,
            f"says {count} DAG lines but {len(body)} follow; set the first line to {len(body)}",
        )
    if count == 0:
        raise InputError(path, count_line, "the DAG has no tasks; add `task NUM_INPUTS FLAG child...` lines")
    tasks: dict[str, Task] = {}
    helpers: dict[str, int] = {}
    for number, text in body:
        task = _parse_task(path, number, text)
        if task.name in helpers or (isinstance(task, HelperLine) and task.name in tasks):
            first = helpers.get(task.name) or tasks[task.name].line
            raise InputError(
                path, number, f"{task.name} is already declared on line {first}; give each task or helper one line"
            )
        if isinstance(task, HelperLine):
            helpers[task.name] = task.line
            continue
        if task.name in tasks:
            raise InputError(
                path,
                number,
                f"task {task.name} is already defined on line {tasks[task.name].line}; give each task one line",
            )
        tasks[task.name] = task

    graph = nx.DiGraph()
    graph.add_nodes_from(tasks)
    for task in tasks.values():
        for child in task.task_children:
            if child in helpers:
                raise InputError(
                    path,
                    task.line,
                    f"child {child!r} of {task.name} is a helper (line {helpers[child]}), not a DAG task; "
                    "helpers are reached over the network, not sent files",
                )
            if child not in tasks:
                raise InputError(
                    path,
                    task.line,
                    f"child {child!r} of {task.name} has no line of its own; add "
                    f"`{child} NUM_INPUTS FLAG children...` or fix the name",
                )
            graph.add_edge(task.name, child)

    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        cycle = []
    if cycle:
        names = [edge[0] for edge in cycle] + [cycle[0][0]]
        first = min(tasks[name].line for name in names)
        raise InputError(path, first, f"cycle {' -> '.join(names)}; a DAG cannot loop, remove one of these edges")

    position = {name: index for index, name in enumerate(tasks)}
    order = tuple(nx.lexicographical_topological_sort(graph, key=position.__getitem__))
    for name in order:
        task = tasks[name]
        parents = sorted(graph.predecessors(name), key=position.__getitem__)
        # A task waits for NUM_INPUTS files of a frame: at least one per parent. More is the
        # original's multi-file frame (an entry task fed several files per frame, or a parent
        # with FLAG true returning several outputs, each sent to every child).
        if parents and task.num_inputs < len(parents):
            raise InputError(
                path,
                task.line,
                f"{name} waits for {task.num_inputs} inputs but it has {len(parents)} parents "
                f"({', '.join(parents)}): it would start before every parent delivered; "
                f"set NUM_INPUTS to at least {len(parents)}",
            )
    if not any(task.sends_home for task in tasks.values()):
        raise InputError(path, None, "no task sends its output home; list `home` as a child of the exit task(s)")
    return Dag(tasks=tasks, graph=graph, order=order, path=path, helpers=helpers)
