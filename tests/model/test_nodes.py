"""`nodes.txt`: roles by name prefix."""

from __future__ import annotations

from pathlib import Path

from jupiter.model.nodes import NodeRole, parse_nodes


def test_roles_by_prefix(tmp_path: Path) -> None:
    path = tmp_path / "nodes.txt"
    path.write_text("home k8s-master\nhome2 k8s-a\ndatasource1 cam\nnode1 worker-1\nedge7 worker-2\n")
    nodes = parse_nodes(path)
    assert [n.name for n in nodes.homes] == ["home", "home2"]
    assert [n.name for n in nodes.datasources] == ["datasource1"]
    assert [n.name for n in nodes.compute] == ["node1", "edge7"]
    assert nodes["node1"].hostname == "worker-1"
    assert nodes["edge7"].role is NodeRole.COMPUTE
    assert nodes["edge7"].line == 5
    assert "home2" in nodes
    assert len(nodes) == 5
