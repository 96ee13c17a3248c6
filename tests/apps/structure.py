"""The structural rules of configuration.txt, checked independently of the package's parser."""

from __future__ import annotations

from tests.apps.executor import HOME, Line


def structure_problems(lines: list[Line]) -> list[str]:
    """Every broken rule of a DAG given as configuration.txt lines; empty when valid."""
    problems: list[str] = []
    names = [line.task for line in lines]
    if len(set(names)) != len(names):
        problems.append("a task has two lines")
    parents: dict[str, set[str]] = {name: set() for name in names}
    for line in lines:
        if not line.children:
            problems.append(f"{line.task} lists no children")
        if len(set(line.children)) != len(line.children):
            problems.append(f"{line.task} lists a child twice")
        for child in line.children:
            if child == HOME:
                continue
            if child not in parents:
                problems.append(f"{line.task} lists {child}, which has no line")
            else:
                parents[child].add(line.task)
    for line in lines:
        expected = max(1, len(parents[line.task]))
        if line.num_inputs != expected:
            problems.append(f"{line.task}: NUM_INPUTS {line.num_inputs}, parents {len(parents[line.task])}")
    # Acyclic: Kahn's algorithm must consume every task.
    waiting = {name: len(parents[name]) for name in names}
    ready = [name for name, count in waiting.items() if count == 0]
    by_name = {line.task: line for line in lines}
    consumed = 0
    while ready:
        name = ready.pop()
        consumed += 1
        for child in by_name[name].children:
            if child in waiting:
                waiting[child] -= 1
                if waiting[child] == 0:
                    ready.append(child)
    if consumed != len(names):
        problems.append("the DAG has a cycle")
    # Connected: one weakly connected component.
    neighbours: dict[str, set[str]] = {name: set(parents[name]) for name in names}
    for line in lines:
        neighbours[line.task] |= {child for child in line.children if child in neighbours}
    seen = {names[0]} if names else set()
    stack = list(seen)
    while stack:
        for other in neighbours[stack.pop()] - seen:
            seen.add(other)
            stack.append(other)
    if len(seen) != len(names):
        problems.append(f"the DAG is not connected ({len(seen)} of {len(names)} tasks reachable)")
    if not any(HOME in line.children for line in lines):
        problems.append("no task sends to home")
    return problems
