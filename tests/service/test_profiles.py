"""Profiles measured before: the cache key, `--profile FILE` checks, and what a deployment reuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jupiter.backends import BACKENDS
from jupiter.model.deployment_spec import DeploymentSpec, resolve_spec
from jupiter.model.errors import InputError
from jupiter.model.workspace import load_workspace
from jupiter.service.pipeline import session_spec
from jupiter.service.profiles import cache_path, cached, from_file, profile_key, profile_to_reuse, remember
from tests.conftest import Workdir

EDGES = [["split", "left"], ["split", "right"], ["left", "join"], ["right", "join"]]


def _spec(workdir: Workdir) -> DeploymentSpec:
    return resolve_spec(load_workspace(workdir.root / "jupiter_config.ini", workdir.root / "nodes.txt", None))


def _profile(
    tasks: tuple[str, ...] = ("split", "left", "right", "join"), nodes: tuple[str, ...] = ("node1", "node2")
) -> Any:
    return {
        "format": "jupiter-profile",
        "version": 1,
        "nodes": list(nodes),
        "links": [],
        "resources": {},
        "execution": {task: {node: {"seconds": 0.5} for node in nodes} for task in tasks},
        "edges": [edge for edge in EDGES if set(edge) <= set(tasks)],
    }


def test_the_key_changes_with_what_the_measurements_depend_on(workdir: Workdir) -> None:
    first = profile_key(_spec(workdir))
    assert profile_key(_spec(workdir)) == first
    (workdir.app / "scripts" / "__pycache__").mkdir()
    (workdir.app / "scripts" / "__pycache__" / "left.cpython-311.pyc").write_bytes(b"bytecode")
    assert profile_key(_spec(workdir)) == first  # what Python caches is not the app
    changes: list[Callable[[], object]] = [
        lambda: workdir.write_app("scripts/left.py", "def task(filename, pathin, pathout):\n    return []\n"),
        lambda: workdir.write_app("sample_input/2.txt", "another input\n"),
        lambda: workdir.write("nodes.txt", "home localhost\nnode1 localhost\nnode2 localhost\nnode3 localhost\n"),
        lambda: workdir.write(
            "jupiter_config.ini", (workdir.root / "jupiter_config.ini").read_text() + "[PROFILING]\nEXEC_RUNS = 3\n"
        ),
    ]
    keys = {first}
    for change in changes:
        change()
        keys.add(profile_key(_spec(workdir)))
    assert len(keys) == 1 + len(changes)


def test_a_profile_is_kept_and_found_again_by_the_same_key_only(workdir: Workdir) -> None:
    spec = _spec(workdir)
    assert cached(spec) is None
    path = remember(spec, _profile(), "20260101-000000-aaaaaa")
    assert path == cache_path(spec)
    assert path.parent == workdir.root / ".jupiter" / "profiles"
    found = cached(spec)
    assert found is not None and found.document == _profile()
    assert found.source.startswith("the profile deployment 20260101-000000-aaaaaa measured 0 s ago (cached in ")
    assert profile_to_reuse(spec) == found
    assert profile_to_reuse(spec.with_profile(fresh=True)) is None  # --reprofile
    workdir.write_app("scripts/left.py", "def task(filename, pathin, pathout):\n    return []\n")
    assert cached(_spec(workdir)) is None
    path.write_text("{not json")
    assert cached(spec) is None  # a damaged entry means measuring again


def test_caching_off_measures_every_time(workdir: Workdir) -> None:
    workdir.write("jupiter_config.ini", (workdir.root / "jupiter_config.ini").read_text() + "[PROFILING]\nCACHE = 0\n")
    spec = _spec(workdir)
    remember(spec, _profile(), "20260101-000000-aaaaaa")
    assert profile_to_reuse(spec) is None


def test_a_profile_file_must_be_of_the_app_and_the_nodes(workdir: Workdir, tmp_path: Path) -> None:
    spec = _spec(workdir)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_profile()))
    reused = profile_to_reuse(spec.with_profile(good))
    assert reused is not None and reused.source == f"the profile in {good}"
    other_app = tmp_path / "other.json"
    other_app.write_text(json.dumps(_profile(("split", "left"))))
    with pytest.raises(InputError) as wrong_tasks:
        from_file(spec, other_app)
    assert str(wrong_tasks.value) == (
        f"{other_app}: is not a profile of demo: tasks missing join, right, not in the app none; "
        "measure it again (`jupiter profile demo`), or run without --profile"
    )
    other_nodes = tmp_path / "nodes.json"
    other_nodes.write_text(json.dumps(_profile(nodes=("node1", "node7"))))
    with pytest.raises(InputError) as wrong_nodes:
        from_file(spec, other_nodes)
    assert str(wrong_nodes.value) == (
        f"{other_nodes}: was measured on nodes node1, node7, but {workdir.root / 'nodes.txt'} has the compute nodes "
        "node1, node2; "
        "measure it again (`jupiter profile demo`), or run without --profile"
    )
    with pytest.raises(InputError, match="profile file not found; write one with `jupiter profile`"):
        from_file(spec, tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="is not a profile file"):
        from_file(spec, tmp_path / "bad.json")


@pytest.mark.parametrize(
    ("setting", "side_by_side", "parallel"),
    [("auto", False, False), ("auto", True, True), ("yes", False, True), ("no", True, False)],
)
def test_nodes_profile_side_by_side_where_the_backend_says_unless_the_config_decides(
    workdir: Workdir, setting: str, side_by_side: bool, parallel: bool
) -> None:
    workdir.write(
        "jupiter_config.ini",
        (workdir.root / "jupiter_config.ini").read_text()
        + f"[PROFILING]\nEXEC_PARALLEL = {setting}\nEXEC_BUDGET = 4\n",
    )
    session = session_spec(_spec(workdir), side_by_side)
    assert (session.parallel, session.exec_budget) == (parallel, 4.0)


def test_the_backends_declare_whether_their_nodes_may_profile_side_by_side() -> None:
    assert [BACKENDS[name].handle.profiles_side_by_side for name in ("local", "docker", "kubernetes")] == [
        False,
        True,
        True,
    ]
