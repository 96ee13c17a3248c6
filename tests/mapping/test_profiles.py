"""Profile and problem files load into the same Problem; bad files give one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from jupiter.mapping import Edge, LinkCost, Resources
from jupiter.model.errors import InputError
from jupiter.model.problem_files import load_problem, load_profile, problem_from_json, problem_to_json

PROFILE: dict[str, Any] = {
    "format": "jupiter-profile",
    "version": 1,
    "nodes": ["n0", "n1", "datasource"],
    "links": [
        {"src": "n0", "dst": "n1", "a": 0.0, "b": 0.001, "c": 0.5},
        {"src": "n1", "dst": "n0", "a": 0.0, "b": 0.001, "c": 0.5},
    ],
    "resources": {"n0": {"cpu": 10.0, "memory": 20.0}},
    "execution": {
        "split": {
            "n0": {"seconds": 2.0, "output_bytes": {"join": 1000}},
            "n1": {"seconds": 3.0, "output_bytes": {"join": 3000}},
        },
        "join": {"n0": {"seconds": 1.0}, "n1": {"seconds": 1.5}, "datasource": {"seconds": None}},
    },
    "edges": [["split", "join"]],
}


def write(tmp_path: Path, doc: object, name: str = "f.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_profile_loads_with_units_converted(tmp_path: Path) -> None:
    p = load_profile(write(tmp_path, PROFILE))
    assert p.tasks == ("split", "join")
    assert p.nodes == ("n0", "n1", "datasource")
    assert p.exec_times == ((2.0, 3.0, math.inf), (1.0, 1.5, math.inf))
    assert p.edges == (Edge("split", "join", 2000.0),)  # mean over the nodes that reported it
    assert p.links[("n0", "n1")] == LinkCost(0.0, 0.001, 0.5)
    assert p.transfer_time(2000.0, "n0", "n1") == pytest.approx(2.5)
    assert p.transfer_time(1.0, "n0", "datasource") == math.inf
    assert p.resources == {"n0": Resources(10.0, 20.0)}


def test_problem_file_round_trip(tmp_path: Path) -> None:
    p = load_profile(write(tmp_path, PROFILE))
    doc = problem_to_json(p)
    assert doc["exec_times"][0] == [2.0, 3.0, None]
    again = load_problem(write(tmp_path, doc, "problem.json"))
    assert problem_to_json(again) == doc
    assert problem_from_json(json.loads(json.dumps(doc))).edges == p.edges


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other"), "format is 'other' but 'jupiter-profile' was expected"),
        (lambda d: d.update(edges=[["split", "ghost"]]), "edges[0] names task 'ghost', which has no execution profile"),
        (lambda d: d.update(edges=[["split"]]), "edges[0] must be a [task, child] pair of names"),
        (lambda d: d["execution"]["join"].update(n9={"seconds": 1}), "execution.join names unknown node 'n9'"),
        (
            lambda d: d["execution"]["join"]["n0"].update(seconds="x"),
            'execution.join.n0.seconds must be a number, not "x"',
        ),
        (
            lambda d: d["execution"]["join"]["n0"].update(seconds=-1),
            "execution time of task 'join' on node 'n0' is -1.0",
        ),
        (lambda d: d["links"].append({"src": "n0"}), "links[2] needs string fields src and dst"),
        (lambda d: d.update(edges=[["split", "join"], ["join", "split"]]), "the task graph has a cycle"),
    ],
)
def test_profile_errors_are_one_line(tmp_path: Path, mutate: Any, message: str) -> None:
    doc = json.loads(json.dumps(PROFILE))
    mutate(doc)
    path = write(tmp_path, doc)
    with pytest.raises(InputError) as info:
        load_profile(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "nodes": [\n  oops\n}', encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_problem(path)
    assert str(info.value) == f"{path}:3: not valid JSON: Expecting value"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the file"):
        load_profile(tmp_path / "nope.json")
