"""Task and extension counters survive an agent's restart: from done.log, and from counters.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import NodeAddress
from jupiter.model.workspace import Workspace
from jupiter.runtime import inbox as inbox_module
from jupiter.runtime.counters import SavedCounters, whole_numbers
from jupiter.runtime.inbox import Inbox
from jupiter.runtime.spool import FolderPool
from jupiter.service.plans import build_plan


def _inbox(workspace: Workspace, root: Path) -> Inbox:
    spec = resolve_spec(workspace, workspace.config.base_dir / "mapping.txt")
    addresses = {node.name: NodeAddress(node.name, node.role.value, "127.0.0.1", 1, 2) for node in spec.nodes}
    plan = build_plan(spec, "counted", {"split": "node1", "join": "node1"}, addresses)
    layout = DeploymentLayout(root).node("node1")
    layout.dir.mkdir(parents=True, exist_ok=True)
    pools: dict[str, FolderPool] = {}
    inbox = Inbox("node1", lambda: plan, layout, lambda parent: pools.setdefault(parent, FolderPool(parent)), print)
    for task in ("split", "join"):
        inbox.add_task(task)
    return inbox


def test_done_and_failed_frames_are_counted_again_after_a_restart(fan_workspace: Workspace, tmp_path: Path) -> None:
    first = _inbox(fan_workspace, tmp_path)
    first.recover()
    first.finish("split", "f000001-aaaaaa")
    first.finish("split", "f000002-bbbbbb", ok=False)
    first.finish("split", "f000002-bbbbbb", ok=False)  # a repeat (re-sent after a crash) counts once
    first.finish("join", "f000001-aaaaaa")
    first.close()
    assert first.layout.done.read_text().splitlines() == [
        "split f000001-aaaaaa home",
        "split f000002-bbbbbb home failed",
        "split f000002-bbbbbb home failed",
        "join f000001-aaaaaa home",
    ]
    again = _inbox(fan_workspace, tmp_path)
    again.restore_peaks({"split": 7})
    again.recover()
    split, join = again.counters["split"], again.counters["join"]
    assert (split.done, split.failed, split.peak) == (1, 1, 7)
    assert (join.done, join.failed, join.peak) == (1, 0, 0)
    # A task given to the node later (dispatch after profiling) gets its counts too.
    again.counters.pop("join")
    again.add_task("join")
    assert again.counters["join"].done == 1
    again.close()


def test_counts_survive_a_compacted_done_log(
    fan_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_module, "COMPACT_EVERY", 2)
    first = _inbox(fan_workspace, tmp_path)
    first.recover()
    first.finish("split", "f000001-aaaaaa")
    first.finish("split", "f000002-bbbbbb", ok=False)
    first.finish("split", "f000003-cccccc")
    # Home's oldest frame in flight is number 3: the two before are finished and forgotten here.
    first.forget_before("home", 3)
    first.close()
    assert first.layout.done.read_text().splitlines() == ["#forgotten split 1 1", "split f000003-cccccc home"]
    assert first.remembered() == 1
    again = _inbox(fan_workspace, tmp_path)
    again.recover()
    split = again.counters["split"]
    assert (split.done, split.failed) == (2, 1)
    again.close()


def test_saved_counters_are_written_only_when_they_change_and_read_back(tmp_path: Path) -> None:
    saved = SavedCounters(tmp_path / "counters.json")
    assert saved.load() == {}
    saved.save({"peak": {"split": 3}, "extensions": {"pricing": {"decided": 12}}})
    written = saved.path.stat().st_mtime_ns
    saved.save({"extensions": {"pricing": {"decided": 12}}, "peak": {"split": 3}})
    assert saved.path.stat().st_mtime_ns == written
    assert SavedCounters(saved.path).load() == {"peak": {"split": 3}, "extensions": {"pricing": {"decided": 12}}}
    saved.path.write_text("{not json")
    assert SavedCounters(saved.path).load() == {}  # a torn file: the counters start again, the agent runs
    assert whole_numbers({"a": 1, "b": "2", "c": True, "d": 2.5}) == {"a": 1}
    assert whole_numbers(["a"]) == {}


def test_pricing_decisions_and_peaks_come_back_with_the_agent(fan_workspace: Workspace, tmp_path: Path) -> None:
    import dataclasses

    from jupiter.model.plan import PlanPricing
    from jupiter.runtime.node import build_agent

    spec = resolve_spec(fan_workspace, fan_workspace.config.base_dir / "mapping.txt")
    addresses = {node.name: NodeAddress(node.name, node.role.value, "127.0.0.1", 1, 2) for node in spec.nodes}
    plan = build_plan(spec, "counted", {"split": "node1", "join": "node1"}, addresses)
    plan = dataclasses.replace(plan, pricing=PlanPricing("push"))
    first = build_agent(plan, "node1", "t", tmp_path)
    first.recover()
    pricing = next(extension for extension in first.extensions if extension.name == "pricing")
    assert first.counter_snapshot()["extensions"]["pricing"] == {"decided": 0}
    first.inbox.counters["split"].peak = 4
    pricing.decided = 17  # type: ignore[attr-defined]
    first.saved_counters.save(first.counter_snapshot())
    first.inbox.close()
    first.outbox.journal.close()
    again = build_agent(plan, "node1", "t", tmp_path)
    again.recover()
    restored = next(extension for extension in again.extensions if extension.name == "pricing")
    assert restored.counters() == {"decided": 17}
    assert again.inbox.counters["split"].peak == 4
    again.inbox.close()
    again.outbox.journal.close()
