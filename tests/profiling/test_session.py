"""A profiling session gathers the agents' answers into the store and the profile file `jupiter map` reads."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from jupiter.mapping import get_mapper
from jupiter.model.errors import InputError
from jupiter.model.links import parse_link_list
from jupiter.model.problem_files import problem_from_profile
from jupiter.profiling.interface import DrupeProfiler
from jupiter.profiling.plugins import get_profiler
from jupiter.profiling.session import ProfilingError, ProfilingSession, SessionSpec
from jupiter.store import SqliteStore

SPEC = SessionSpec(
    agents=["home", "n1", "n2"],
    compute=["n1", "n2"],
    order=["split", "join"],
    edges=[("split", "join")],
    sizes=[1000, 100_000],
    samples=1,
)


class FakeAgents:
    """Answers like agents would: n2 is twice as slow, links cost 1 s per MB plus 10 ms."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, node: str, method: str, path: str, body: Mapping[str, Any] | None, timeout: float) -> Any:
        self.calls.append((node, method, path))
        if path == "/profile/network":
            assert body is not None
            peers = body["peers"] or [n for n in SPEC.agents if n != node]
            links = [{"src": node, "dst": p, "a": 0.0, "b": 1e-6, "c": 0.01, "points": 2, "time": 1.0} for p in peers]
            samples = [[node, p, s, 0.01 + s * 1e-6] for p in peers for s in body["sizes"]]
            return {"links": links, "samples": samples}
        if path == "/profile/resources":
            return {"cpu": 10.0, "memory": 50.0, "samples": 3, "time": 1.0}
        if path == "/profile/execution":
            assert body is not None
            self.bodies.append(dict(body))
            slow = 2.0 if node == "n2" else 1.0
            every = {
                "split": {"seconds": 1.0 * slow, "output_bytes": {"join": 2_000_000}, "runs": 2},
                "join": {"seconds": 0.5 * slow, "output_bytes": {"home": 10}, "runs": 1 if slow > 1 else 2},
            }
            return {"tasks": {task: every[task] for task in body["tasks"]}}
        raise AssertionError(path)


def test_the_profile_feeds_the_mapper(tmp_path: Path) -> None:
    agents = FakeAgents()
    with SqliteStore(tmp_path / "p.sqlite") as store:
        result = ProfilingSession(SPEC, agents, store).run()
        assert len(store.network_samples()) == 6 * 2
    profile = result.profile
    assert profile["nodes"] == ["n1", "n2"]
    assert {(link["src"], link["dst"]) for link in profile["links"]} == {("n1", "n2"), ("n2", "n1")}
    assert profile["execution"]["split"]["n2"]["seconds"] == 2.0
    assert set(result.durations) == {"network", "resources", "execution"}
    # Execution profiling asks the compute nodes one after the other, a task at a time in DAG order, never home.
    assert [c[0] for c in agents.calls if c[2] == "/profile/execution"] == ["n1", "n2", "n1", "n2"]
    assert [(body["tasks"], body["fresh"]) for body in agents.bodies] == [
        (["split"], True),
        (["split"], True),
        (["join"], False),
        (["join"], False),
    ]
    assert "budget" not in agents.bodies[0]  # no budget: as many runs as asked
    problem = problem_from_profile(profile)
    assert problem.edge_size("split", "join") == 2_000_000
    schedule = get_mapper("heft").schedule(problem)
    # Moving 2 MB costs 2 s, more than running join on the slower node: HEFT keeps both on n1.
    assert schedule.mapping() == {"split": "n1", "join": "n1"}
    assert schedule.makespan == pytest.approx(1.5)


def test_a_link_list_limits_the_probes(tmp_path: Path) -> None:
    spec = SessionSpec(**{**SPEC.__dict__, "links": [("n1", "n2")]})
    agents = FakeAgents()
    with SqliteStore(tmp_path / "p.sqlite") as store:
        links = ProfilingSession(spec, agents, store).network()
    assert [(link["src"], link["dst"]) for link in links] == [("n1", "n2")]
    assert [c[0] for c in agents.calls] == ["n1"]


def test_agents_probe_their_links_one_at_a_time(tmp_path: Path) -> None:
    # Probes side by side on one machine take the CPU from each other (see the session's docstring).
    agents = FakeAgents()
    lock = threading.Lock()
    running: list[str] = []
    overlaps: list[list[str]] = []

    def call(node: str, method: str, path: str, body: Mapping[str, Any] | None, timeout: float) -> Any:
        with lock:
            running.append(node)
            if len(running) > 1:
                overlaps.append(list(running))
        time.sleep(0.02)
        with lock:
            running.remove(node)
        return agents(node, method, path, body, timeout)

    with SqliteStore(tmp_path / "p.sqlite") as store:
        links = ProfilingSession(SPEC, call, store).network()
    assert len(links) == 6
    assert [c[0] for c in agents.calls] == ["home", "n1", "n2"]
    assert overlaps == []


def test_an_agent_error_names_the_node(tmp_path: Path) -> None:
    def call(node: str, method: str, path: str, body: Any, timeout: float) -> Any:
        return {"error": "boom"}

    with SqliteStore(tmp_path / "p.sqlite") as store, pytest.raises(ProfilingError, match="on home failed: boom"):
        ProfilingSession(SPEC, call, store).network()


def test_link_list_file(tmp_path: Path) -> None:
    path = tmp_path / "link_list.txt"
    path.write_text("SOURCE(TAG) DESTINATION(TAG)\nn1 n2\n\nn2 n1\n")
    assert parse_link_list(path, ["n1", "n2"]) == [("n1", "n2"), ("n2", "n1")]
    path.write_text("n1 n9\n")
    with pytest.raises(InputError, match=r"link_list.txt:1: node 'n9' has no agent"):
        parse_link_list(path, ["n1", "n2"])
    path.write_text("n1\n")
    with pytest.raises(InputError, match="expected `source destination`"):
        parse_link_list(path, ["n1", "n2"])


class OtherMonitor:
    """A user's monitoring tool plugged in through the integration interface."""

    def __init__(self, store: object) -> None:
        self.store = store

    def get_network_data(self) -> dict[tuple[str, str], Any]:
        from jupiter.mapping import LinkCost

        return {("n1", "n2"): LinkCost(0.0, 0.0, 9.0), ("n2", "n1"): LinkCost(0.0, 0.0, 9.0)}

    def get_resource_data(self) -> dict[str, Any]:
        return {}


def test_another_profiler_plugs_in_by_import_path(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "p.sqlite") as store:
        assert isinstance(get_profiler("drupe", store), DrupeProfiler)
        plugged = get_profiler("tests.profiling.test_session:OtherMonitor", store)
        result = ProfilingSession(SPEC, FakeAgents(), store).run(profiler=plugged)
        with pytest.raises(KeyError, match="no profiler called 'nope'"):
            get_profiler("nope", store)
    assert {link["c"] for link in result.profile["links"]} == {9.0}


def _overlapping(agents: FakeAgents) -> tuple[Any, list[list[str]]]:
    """A call that records which execution requests were in flight together."""
    lock = threading.Lock()
    running: list[str] = []
    overlaps: list[list[str]] = []

    def call(node: str, method: str, path: str, body: Mapping[str, Any] | None, timeout: float) -> Any:
        with lock:
            running.append(node)
            if len(running) > 1:
                overlaps.append(sorted(running))
        time.sleep(0.05)
        with lock:
            running.remove(node)
        return agents(node, method, path, body, timeout)

    return call, overlaps


@pytest.mark.parametrize("parallel", [False, True])
def test_nodes_profile_a_task_side_by_side_only_where_they_are_machines_of_their_own(
    tmp_path: Path, parallel: bool
) -> None:
    spec = SessionSpec(**{**SPEC.__dict__, "parallel": parallel, "exec_budget": 5.0})
    agents = FakeAgents()
    call, overlaps = _overlapping(agents)
    lines: list[str] = []
    with SqliteStore(tmp_path / "p.sqlite") as store:
        out = ProfilingSession(spec, call, store).execution(lines.append)
        assert set(store.get_execution_data()) == {"split", "join"}
    assert out["n2"]["join"]["seconds"] == 1.0
    assert overlaps == ([["n1", "n2"], ["n1", "n2"]] if parallel else [])
    assert all(body["budget"] == 5.0 for body in agents.bodies)
    # One progress line per task, in DAG order, naming what the budget cut short.
    assert [line.split(":")[0] for line in lines] == ["  split (1/2)", "  join (2/2)"]
    assert lines[0].startswith("  split (1/2): n1 1.0000 s, n2 2.0000 s (")
    assert lines[1].endswith("; over its 5 s budget: runs 1 on n2 instead of 2)")
