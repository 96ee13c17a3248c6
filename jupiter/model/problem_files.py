"""Profiles and problem files -> :class:`jupiter.mapping.Problem`, at the boundary.

Two JSON files feed the mapper (both documented in ``docs/mapping.md``):

* a **profile file**, what the profilers write: nodes, one quadratic fit per
  link, CPU/memory use per node, per task and node the execution seconds and
  the bytes sent to each child, plus the DAG edges;
* a **problem file**, which is directly the mapping problem (tasks, nodes,
  execution matrix, edge sizes, links) for benchmarks and hand-made cases.

Units are converted here, once: profile output sizes are per node, and an
edge's size is their mean over the nodes that reported one. JSON has no
infinity, so ``null`` (or a missing entry) means "cannot run there". Every
problem is reported as an :class:`~jupiter.model.errors.InputError` naming the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jupiter.mapping import Edge, LinkCost, Problem, Resources
from jupiter.model.errors import InputError

PROFILE_FORMAT = "jupiter-profile"
PROBLEM_FORMAT = "jupiter-problem"


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, None, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"not valid JSON: {exc.msg}") from None


def _obj(path: Path, value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(path, None, f"{what} must be a JSON object")
    return value


def _list(path: Path, value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise InputError(path, None, f"{what} must be a JSON list")
    return value


def _num(path: Path, value: Any, what: str, *, allow_null: bool = False) -> float:
    if value is None and allow_null:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(path, None, f"{what} must be a number, not {json.dumps(value)}")
    return float(value)


def _check_format(path: Path, data: dict[str, Any], expected: str) -> None:
    fmt = data.get("format", expected)
    if fmt != expected:
        raise InputError(path, None, f"format is {fmt!r} but {expected!r} was expected")


def _links(path: Path, raw: Any) -> dict[tuple[str, str], LinkCost]:
    links: dict[tuple[str, str], LinkCost] = {}
    for i, item in enumerate(_list(path, raw, "links")):
        entry = _obj(path, item, f"links[{i}]")
        src, dst = entry.get("src"), entry.get("dst")
        if not isinstance(src, str) or not isinstance(dst, str):
            raise InputError(path, None, f"links[{i}] needs string fields src and dst")
        coef = [_num(path, entry.get(k, 0.0), f"links[{i}].{k}") for k in ("a", "b", "c")]
        links[(src, dst)] = LinkCost(*coef)
    return links


def _resources(path: Path, raw: Any) -> dict[str, Resources]:
    out: dict[str, Resources] = {}
    for node, item in _obj(path, raw or {}, "resources").items():
        entry = _obj(path, item, f"resources.{node}")
        out[node] = Resources(
            cpu=_num(path, entry.get("cpu", 0.0), f"resources.{node}.cpu"),
            memory=_num(path, entry.get("memory", 0.0), f"resources.{node}.memory"),
        )
    return out


def _limits(path: Path, raw: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for node, value in _obj(path, raw or {}, "max_tasks_per_node").items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(path, None, f"max_tasks_per_node.{node} must be an integer")
        out[node] = value
    return out


def _build(path: Path, **fields: Any) -> Problem:
    try:
        return Problem(**fields)
    except ValueError as exc:
        raise InputError(path, None, str(exc)) from None


def problem_from_profile(data: Mapping[str, Any], path: Path | str = "<profile>") -> Problem:
    """Build a problem from a parsed profile document."""
    path = Path(path)
    doc = _obj(path, data, "the profile")
    _check_format(path, doc, PROFILE_FORMAT)
    nodes = _list(path, doc.get("nodes"), "nodes")
    execution = _obj(path, doc.get("execution"), "execution")
    tasks = list(execution)
    edges_raw = _list(path, doc.get("edges", []), "edges")
    edges: list[Edge] = []
    for i, item in enumerate(edges_raw):
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise InputError(path, None, f"edges[{i}] must be a [task, child] pair of names")
        parent, child = item
        for name in (parent, child):
            if name not in execution:
                raise InputError(path, None, f"edges[{i}] names task {name!r}, which has no execution profile")
        sizes = []
        for node, prof in _obj(path, execution[parent], f"execution.{parent}").items():
            out_bytes = _obj(
                path, _obj(path, prof, f"execution.{parent}.{node}").get("output_bytes", {}), "output_bytes"
            )
            if child in out_bytes:
                sizes.append(_num(path, out_bytes[child], f"execution.{parent}.{node}.output_bytes.{child}"))
        edges.append(Edge(parent, child, sum(sizes) / len(sizes) if sizes else 0.0))
    exec_times = []
    for task in tasks:
        per_node = _obj(path, execution[task], f"execution.{task}")
        unknown = [n for n in per_node if n not in nodes]
        if unknown:
            raise InputError(path, None, f"execution.{task} names unknown node {unknown[0]!r}")
        row = []
        for node in nodes:
            prof = per_node.get(node)
            if prof is None:
                row.append(math.inf)
                continue
            entry = _obj(path, prof, f"execution.{task}.{node}")
            row.append(_num(path, entry.get("seconds"), f"execution.{task}.{node}.seconds", allow_null=True))
        exec_times.append(row)
    return _build(
        path,
        tasks=tasks,
        nodes=nodes,
        exec_times=exec_times,
        edges=edges,
        links=_links(path, doc.get("links", [])),
        max_tasks_per_node=_limits(path, doc.get("max_tasks_per_node")),
        resources=_resources(path, doc.get("resources")),
    )


def problem_from_json(data: Mapping[str, Any], path: Path | str = "<problem>") -> Problem:
    """Build a problem from a parsed problem document."""
    path = Path(path)
    doc = _obj(path, data, "the problem")
    _check_format(path, doc, PROBLEM_FORMAT)
    rows = _list(path, doc.get("exec_times"), "exec_times")
    exec_times = [
        [
            _num(path, x, f"exec_times[{i}][{j}]", allow_null=True)
            for j, x in enumerate(_list(path, row, f"exec_times[{i}]"))
        ]
        for i, row in enumerate(rows)
    ]
    edges = []
    for i, item in enumerate(_list(path, doc.get("edges", []), "edges")):
        entry = _obj(path, item, f"edges[{i}]")
        parent, child = entry.get("parent"), entry.get("child")
        if not isinstance(parent, str) or not isinstance(child, str):
            raise InputError(path, None, f"edges[{i}] needs string fields parent and child")
        edges.append(Edge(parent, child, _num(path, entry.get("bytes", 0.0), f"edges[{i}].bytes")))
    return _build(
        path,
        tasks=_list(path, doc.get("tasks"), "tasks"),
        nodes=_list(path, doc.get("nodes"), "nodes"),
        exec_times=exec_times,
        edges=edges,
        links=_links(path, doc.get("links", [])),
        max_tasks_per_node=_limits(path, doc.get("max_tasks_per_node")),
        resources=_resources(path, doc.get("resources")),
    )


def load_profile(path: Path | str) -> Problem:
    """Read a profile file into a problem (InputError on any problem, naming the file)."""
    path = Path(path)
    return problem_from_profile(_read_json(path), path)


def load_problem(path: Path | str) -> Problem:
    """Read a problem file into a problem (InputError on any problem, naming the file)."""
    path = Path(path)
    return problem_from_json(_read_json(path), path)


def problem_to_json(problem: Problem) -> dict[str, Any]:
    """The problem-file document of ``problem`` (inverse of :func:`problem_from_json`)."""
    return {
        "format": PROBLEM_FORMAT,
        "version": 1,
        "tasks": list(problem.tasks),
        "nodes": list(problem.nodes),
        "exec_times": [[x if math.isfinite(x) else None for x in row] for row in problem.exec_times],
        "edges": [{"parent": e.parent, "child": e.child, "bytes": e.size} for e in problem.edges],
        "links": [{"src": u, "dst": v, "a": lk.a, "b": lk.b, "c": lk.c} for (u, v), lk in problem.links.items()],
        "max_tasks_per_node": dict(problem.max_tasks_per_node),
        "resources": {n: {"cpu": r.cpu, "memory": r.memory} for n, r in problem.resources.items()},
    }
