"""`jupiter map`: exact output, files written, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from jupiter.cli import cli
from jupiter.model.errors import InputError
from jupiter.model.problem_files import problem_to_json
from tests.mapping.helpers import topcuoglu


@pytest.fixture
def problem_file(tmp_path: Path) -> Path:
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(problem_to_json(topcuoglu())), encoding="utf-8")
    return path


EXPECTED_HEFT = """\
task  node       start      finish
n1    P3         0.000       9.000
n2    P1        27.000      40.000
n3    P3         9.000      28.000
n4    P2        18.000      26.000
n5    P3        28.000      38.000
n6    P2        26.000      42.000
n7    P3        38.000      49.000
n8    P1        57.000      62.000
n9    P2        56.000      68.000
n10   P2        73.000      80.000

scheduler heft: predicted makespan 80.000 s

node  tasks    busy (s)    util
P1        2      18.000   22.5%
P2        4      43.000   53.8%
P3        4      49.000   61.3%
"""


def test_map_prints_mapping_makespan_and_load(problem_file: Path) -> None:
    result = CliRunner().invoke(cli, ["map", "--problem", str(problem_file), "--scheduler", "heft"])
    assert result.exit_code == 0, result.output
    assert result.output == EXPECTED_HEFT


def test_map_defaults_to_best(problem_file: Path) -> None:
    result = CliRunner().invoke(cli, ["map", "--problem", str(problem_file)])
    assert result.exit_code == 0, result.output
    makespan = float(result.output.split("scheduler best: predicted makespan ")[1].split()[0])
    assert makespan <= 80.0


def test_map_writes_files_and_gantt(problem_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    png = tmp_path / "g.png"
    args = ["--problem", str(problem_file), "--scheduler", "cpop", "--out", str(out), "--gantt", str(png)]
    result = CliRunner().invoke(cli, ["map", *args])
    assert result.exit_code == 0, result.output
    assert "scheduler cpop: predicted makespan 86.000 s" in result.output
    assert result.output.endswith(f"wrote {out / 'mapping.txt'} and {out / 'mapping.json'}\nwrote {png}\n")
    lines = (out / "mapping.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 10
    assert lines[0].split()[0] == "n1"
    doc = json.loads((out / "mapping.json").read_text(encoding="utf-8"))
    assert doc["scheduler"] == "cpop"
    assert doc["makespan"] == 86.0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_map_caps_tasks_per_node(problem_file: Path) -> None:
    result = CliRunner().invoke(
        cli, ["map", "--problem", str(problem_file), "--scheduler", "heft_modified", "--max-tasks-per-node", "4"]
    )
    assert result.exit_code == 0, result.output
    table = result.output.split("\n\n")[2].splitlines()[1:]
    assert all(int(row.split()[1]) <= 4 for row in table)


def test_map_needs_exactly_one_input(problem_file: Path) -> None:
    result = CliRunner().invoke(cli, ["map"])
    assert result.exit_code == 2
    assert "Error: give exactly one of --profile FILE or --problem FILE" in result.output
    both = CliRunner().invoke(cli, ["map", "--problem", str(problem_file), "--profile", str(problem_file)])
    assert both.exit_code == 2


def test_map_unknown_scheduler(problem_file: Path) -> None:
    result = CliRunner().invoke(cli, ["map", "--problem", str(problem_file), "--scheduler", "nope"])
    assert result.exit_code == 2
    assert "Invalid value for '--scheduler': 'nope' is not one of 'heft', 'heft_modified'" in result.output


def test_map_reports_input_errors_as_domain_errors(tmp_path: Path, problem_file: Path) -> None:
    result = CliRunner().invoke(cli, ["map", "--profile", str(problem_file)])
    assert isinstance(result.exception, InputError)
    assert str(result.exception) == f"{problem_file}: format is 'jupiter-problem' but 'jupiter-profile' was expected"
    result = CliRunner().invoke(
        cli, ["map", "--problem", str(problem_file), "--scheduler", "heft_modified", "--max-tasks-per-node", "1"]
    )
    assert isinstance(result.exception, InputError)
    assert str(result.exception) == (
        f"{problem_file}: heft_modified cannot map this problem: 10 tasks do not fit in 3 nodes"
        " holding at most 3 tasks; raise the per-node task limit"
    )


def test_map_output_json_is_the_document_alone(problem_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--problem", str(problem_file), "--scheduler", "heft", "--output", "json", "--out", str(out)]
    result = CliRunner().invoke(cli, ["map", *args])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert list(doc) == ["format", "version", "scheduler", "makespan", "mapping", "schedule", "load"]
    assert (doc["format"], doc["version"], doc["scheduler"], doc["makespan"]) == ("jupiter-map", 1, "heft", 80.0)
    assert doc["mapping"]["n1"] == "P3" and len(doc["mapping"]) == 10
    assert doc["schedule"][0] == {"task": "n1", "node": "P3", "start": 0.0, "finish": 9.0}
    assert doc["load"][0] == {"node": "P1", "tasks": 2, "busy": 18.0, "utilisation": 0.225}
    # What was written is said on stderr, so stdout stays one JSON document; mapping.json is the same document.
    assert result.stderr == f"wrote {out / 'mapping.txt'} and {out / 'mapping.json'}\n"
    assert json.loads((out / "mapping.json").read_text(encoding="utf-8")) == doc
