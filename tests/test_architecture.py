"""The package's shape: every module in an import-linter layer, no import cycle, backends by registry."""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp
import networkx as nx

from jupiter.backends import BACKENDS, backend_names
from jupiter.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def _contracts() -> list[dict[str, object]]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        contracts: list[dict[str, object]] = tomllib.load(handle)["tool"]["importlinter"]["contracts"]
    return contracts


def test_every_module_of_the_package_is_in_a_layer() -> None:
    (layers,) = [c for c in _contracts() if c["type"] == "layers" and "containers" not in c]
    layered = {name.strip() for layer in layers["layers"] for name in str(layer).split("|")}  # type: ignore[attr-defined]
    graph = grimp.build_graph("jupiter")
    packages = {".".join(module.split(".")[:2]) for module in graph.modules if module.count(".") >= 1}
    assert packages - layered == set(), "give these packages a layer in pyproject.toml's import-linter contract"


def test_every_runtime_module_is_in_the_runtime_layering() -> None:
    (layers,) = [c for c in _contracts() if c.get("containers") == ["jupiter.runtime"]]
    layered = {f"jupiter.runtime.{name.strip()}" for layer in layers["layers"] for name in str(layer).split("|")}  # type: ignore[attr-defined]
    graph = grimp.build_graph("jupiter")
    modules = {".".join(module.split(".")[:3]) for module in graph.modules if module.startswith("jupiter.runtime.")}
    assert modules - layered == set()


def test_no_import_cycle() -> None:
    graph = grimp.build_graph("jupiter")
    edges = nx.DiGraph(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.startswith("jupiter")
    )
    assert [cycle for cycle in nx.simple_cycles(edges) if len(cycle) > 1] == []


def test_backends_are_chosen_from_the_registry() -> None:
    assert backend_names() == ("local", "docker", "kubernetes")
    assert all(BACKENDS[name].name == name and BACKENDS[name].handle.backend == name for name in BACKENDS)
    for command in ("deploy", "run"):
        option = next(param for param in cli.commands[command].params if param.name == "backend")
        assert list(option.type.choices) == list(backend_names())  # type: ignore[attr-defined]
