"""`jupiter render`: prints or writes every Dockerfile and manifest, and touches nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from tests.conftest import Result, Workdir


def _snapshot(root: Path) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob("*")}


def test_render_prints_everything_and_touches_nothing(workdir: Workdir, run: Callable[..., Result]) -> None:
    before = _snapshot(workdir.root)
    result = run("render")
    assert (result.code, result.err) == (0, "")
    assert _snapshot(workdir.root) == before
    assert result.out.startswith("# ---- Dockerfile\n")
    documents = [doc for doc in yaml.safe_load_all(result.out.split("--- # ", 1)[1].join(["--- # ", ""])) if doc]
    kinds = [doc["kind"] for doc in documents]
    # The access an administrator grants first (a Role and its binding per namespace), then what
    # deploy applies, in its order.
    first = kinds.index("Namespace")
    assert kinds[:first] == ["Role", "RoleBinding"] * (first // 2) and first >= 2
    setup = [kind for kind in kinds[first:] if kind != "Namespace"]
    assert setup[:3] == ["Secret", "ConfigMap", "NetworkPolicy"]
    assert kinds.count("Deployment") == kinds.count("Service") == 3
    assert "Job" in kinds
    secret = next(doc for doc in documents if doc["kind"] == "Secret")
    assert secret["stringData"]["token"] == "<generated at deploy time>"


def test_render_out_writes_one_file_per_object(workdir: Workdir, run: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    result = run("render", "--out", str(out))
    assert result.code == 0
    names = sorted(p.name for p in out.iterdir())
    assert result.out == f"wrote {len(names)} files to {out}\n"
    assert "01-setup-namespace-jupiter.yaml" in names
    assert "Dockerfile" in names
    assert "02-agents-deployment-jupiter-node1.yaml" in names
    assert "03-mapper-job-jupiter-mapper.yaml" in names


def test_render_bad_namespace_is_an_input_error(workdir: Workdir, run: Callable[..., Result]) -> None:
    config = workdir.root / "jupiter_config.ini"
    config.write_text(config.read_text() + "NAMESPACE = Not_A_Name\n")
    result = run("render")
    assert result.code == 2
    assert result.err == (
        "error: jupiter_config.ini:10: NAMESPACE: 'Not_A_Name' is not a Kubernetes name; "
        "use lower-case letters, digits and '-'\n"
    )
