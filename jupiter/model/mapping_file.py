"""Mapping files: the original's `task node` form, one task per line.

Used for static mappings (`STATIC_MAPPING = 1` or `--mapping FILE`) and
written by `jupiter map`. An optional header line `task node` is skipped.
"""

from __future__ import annotations

from pathlib import Path

from jupiter.model.dag import Dag
from jupiter.model.errors import InputError
from jupiter.model.nodes import NodeList, NodeRole
from jupiter.model.textfile import significant_lines


def parse_mapping(path: Path, dag: Dag, nodes: NodeList) -> dict[str, str]:
    """Read a mapping and check it covers every task with a compute node."""
    mapping: dict[str, str] = {}
    lines = significant_lines(path, "mapping file")
    if lines[0][1].split() == ["task", "node"]:
        lines = lines[1:]
    for number, text in lines:
        fields = text.split()
        if len(fields) != 2:
            raise InputError(path, number, f"expected `task node`, got {text!r}")
        task, node = fields
        if task not in dag:
            raise InputError(path, number, f"unknown task {task!r}; it must be a task of configuration.txt")
        if task in mapping:
            raise InputError(path, number, f"task {task} is mapped twice; keep one line")
        if node not in nodes or nodes[node].role is not NodeRole.COMPUTE:
            raise InputError(path, number, f"{node!r} is not a compute node of {nodes.path}")
        mapping[task] = node
    missing = [task for task in dag.order if task not in mapping]
    if missing:
        raise InputError(path, None, f"no node for task(s) {', '.join(missing)}; add a `task node` line for each")
    return mapping


def format_mapping(mapping: dict[str, str]) -> str:
    """The `task node` text of a mapping."""
    return "".join(f"{task} {node}\n" for task, node in mapping.items())
