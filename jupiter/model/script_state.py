"""Finding module-level state that a task script changes from inside its functions.

A task's frames run either in one resident process (what a frame leaves in
a module-level variable is there for the next frame) or each in a fresh copy
of the imported script (it is lost after every frame, as in the original);
see `jupiter.model.task_settings`. Either way a script that changes
module-level state behaves differently from one frame to the next or from
what its author may expect, so `jupiter validate` names what it can see, and a task left at `worker:
auto` runs fresh when it finds something (`effective_worker`):

* a module-level name bound to a dict, list or set literal (or comprehension)
  or to a call (`defaultdict(int)`, `Counter()`, `dict()`, ...) that a
  function changes in place: item assignment or deletion, an augmented
  assignment of an item or attribute, or a call of a mutating method
  (`append`, `update`, `setdefault`, `add`, ...);
* a `global` statement in a function that rebinds the name.

The scan reads the source only (nothing is imported) and misses what it
cannot see (state in other modules, class attributes, objects passed around);
a script it cannot parse is left to the import check.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jupiter.model.task_settings import AUTO, FRESH, RESIDENT

MUTATORS = frozenset(
    {
        "append",
        "appendleft",
        "extend",
        "extendleft",
        "insert",
        "pop",
        "popleft",
        "popitem",
        "remove",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
        "sort",
        "reverse",
        "rotate",
        "difference_update",
        "intersection_update",
        "symmetric_difference_update",
        "__setitem__",
        "__delitem__",
    }
)
"""Methods of the built-in containers (and `collections`') that change the object in place."""

_CONTAINERS = (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp, ast.Call)


@dataclass(frozen=True)
class Finding:
    """One module-level name a function changes."""

    name: str
    defined: int
    """Line of the module-level binding (of the `global` statement when the module binds none)."""
    function: str
    line: int
    """Line of the change."""
    how: str
    """`is changed in place` or `is rebound through \\`global\\``."""


def _module_bindings(tree: ast.Module, containers_only: bool = True) -> dict[str, int]:
    """Module-level names bound to a container literal or a call (or to anything): name -> line."""
    names: dict[str, int] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if value is not None and (isinstance(value, _CONTAINERS) or not containers_only):
            for target in targets:
                if isinstance(target, ast.Name):
                    names.setdefault(target.id, node.lineno)
    return names


def _local_names(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names a function binds itself (parameters and assignments), which hide module-level ones."""
    arguments = function.args
    names = {arg.arg for arg in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)}
    names |= {arg.arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None}
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _root(node: ast.expr) -> str | None:
    """The name at the root of `a[...]`, `a.b`, `a.b[...]`."""
    while isinstance(node, ast.Subscript | ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _changes(function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[tuple[str, int]]:
    """(name, line) of every in-place change of a name inside a function."""
    for node in ast.walk(function):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for target in targets:
                if isinstance(target, ast.Subscript | ast.Attribute):
                    name = _root(target)
                    if name is not None:
                        yield name, node.lineno
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
            name = _root(node.func.value)
            if name is not None:
                yield name, node.lineno


def find_state(source: str) -> list[Finding]:
    """Module-level state the functions of `source` change (module docstring); SyntaxError if it does not parse."""
    tree = ast.parse(source)
    containers = _module_bindings(tree)
    bindings = _module_bindings(tree, containers_only=False)
    findings: dict[str, Finding] = {}
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    for function in functions:
        declared: set[str] = set()
        for node in ast.walk(function):
            if isinstance(node, ast.Global):
                declared |= set(node.names)
                for name in node.names:
                    defined = bindings.get(name, node.lineno)
                    findings.setdefault(
                        name, Finding(name, defined, function.name, node.lineno, "is rebound through `global`")
                    )
        hidden = _local_names(function) - declared
        for name, line in _changes(function):
            if name in containers and name not in hidden:
                findings.setdefault(name, Finding(name, containers[name], function.name, line, "is changed in place"))
    return sorted(findings.values(), key=lambda finding: (finding.defined, finding.name))


def effective_worker(configured: str, findings: list[Finding]) -> str:
    """What a task's `worker` setting means for its script: `auto` is fresh where state is changed, else resident."""
    if configured != AUTO:
        return configured
    return FRESH if findings else RESIDENT


def script_findings(script: Path) -> list[Finding]:
    """The findings of a script file; none for one that cannot be read or parsed (the import check reports it)."""
    try:
        return find_state(script.read_text(errors="replace"))
    except (SyntaxError, ValueError, OSError):
        return []


def state_warnings(script: Path, findings: list[Finding], configured: str) -> list[str]:
    """`file:line: message` for each finding of a task script, worded for the task's worker setting."""
    if configured == RESIDENT:
        effect = (
            'it runs in a resident worker, so what one frame leaves there the next frame sees; set "worker": '
            '"fresh" in scripts/config.json to start every frame from the imported script, as the original did'
        )
    elif configured == FRESH:
        effect = (
            "every frame runs in a fresh copy of the imported script (as in the original), so changes are lost "
            'after each frame; set "worker": "resident" in scripts/config.json if they should carry over'
        )
    else:
        effect = (
            "the task therefore runs every frame in a fresh copy of the imported script, as the original did, so "
            'changes are lost after each frame; set "worker": "resident" in scripts/config.json if they should carry '
            "over"
        )
    return [
        f"{script}:{finding.line}: module-level `{finding.name}` {finding.how} in {finding.function}() "
        f"(line {finding.defined}); {effect}"
        for finding in findings
    ]
