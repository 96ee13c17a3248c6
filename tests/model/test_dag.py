"""`configuration.txt`: the original's DAGs parse into a typed, ordered DAG."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jupiter.model.dag import HOME, is_home_alias, parse_dag

ANOMALY = textwrap.dedent(
    """\
    14
    local_pro 1 false aggregate0 aggregate1 aggregate2
    aggregate0 1 true simple_detector0 astute_detector0
    aggregate1 1 true simple_detector1 astute_detector1
    aggregate2 1 true simple_detector2 astute_detector2
    simple_detector0 1 true fusion_center0
    simple_detector1 1 true fusion_center1
    simple_detector2 1 true fusion_center2
    astute_detector0 1 true fusion_center0
    astute_detector1 1 true fusion_center1
    astute_detector2 1 true fusion_center2
    fusion_center0 2 true global_fusion
    fusion_center1 2 true global_fusion
    fusion_center2 2 true global_fusion
    global_fusion 3 true scheduler
    """
)


def _dag(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "configuration.txt"
    path.write_text(text)
    return path


def test_original_anomaly_dag(tmp_path: Path) -> None:
    dag = parse_dag(_dag(tmp_path, ANOMALY))
    assert len(dag) == 14
    assert dag.entry_tasks == ("local_pro",)
    assert dag.exit_tasks == ("global_fusion",)
    assert dag["global_fusion"].children == (HOME,)
    assert dag["local_pro"].flag is False
    assert dag.children("local_pro") == ("aggregate0", "aggregate1", "aggregate2")
    assert dag.parents("fusion_center1") == ("simple_detector1", "astute_detector1")
    assert dag.parents("global_fusion") == ("fusion_center0", "fusion_center1", "fusion_center2")
    assert dag.depth() == 5
    assert len(dag.edges) == 18
    position = {name: i for i, name in enumerate(dag.order)}
    for parent, child in dag.edges:
        assert position[parent] < position[child]
    assert dag.order[:4] == ("local_pro", "aggregate0", "aggregate1", "aggregate2")


def test_several_entries_and_exits(tmp_path: Path) -> None:
    dag = parse_dag(_dag(tmp_path, "3\na 1 true c\nb 1 true c home\nc 2 true datasink1\n"))
    assert dag.entry_tasks == ("a", "b")
    assert dag.exit_tasks == ("b", "c")
    assert dag["c"].children == (HOME,)
    assert dag["b"].task_children == ("c",)


def test_order_is_stable_and_comments_allowed(tmp_path: Path) -> None:
    text = "# a comment\n3\n\nz 1 true y x\ny 1 true home\nx 1 true home\n"
    assert parse_dag(_dag(tmp_path, text)).order == ("z", "y", "x")


def test_flag_case_insensitive(tmp_path: Path) -> None:
    assert parse_dag(_dag(tmp_path, "1\na 1 True home\n"))["a"].flag is True


@pytest.mark.parametrize(
    ("name", "alias"),
    [
        ("home", True),
        ("home2", True),
        ("scheduler", True),
        ("datasink0", True),
        ("homework", False),
        ("node", False),
    ],
)
def test_home_aliases(name: str, alias: bool) -> None:
    assert is_home_alias(name) is alias
