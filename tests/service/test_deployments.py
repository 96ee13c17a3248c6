"""Deployments side by side: choosing the one a command means, `jupiter list`, `jupiter prune`.

The deployments here are folders as `deploy` leaves them, of the local
backend: "running" ones name this test's own process group (which is alive),
"exited" ones the group of a process that has ended.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jupiter.cli.profile_cmds import report_folder
from jupiter.model.errors import InputError
from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import NodeAddress
from jupiter.service.deployments import choose, entries, folder_size, prune
from jupiter.service.record import DeploymentError, DeploymentRecord, State, read_state, write_state
from tests.conftest import Result

Run = Callable[..., Result]


@pytest.fixture(scope="module")
def dead_group() -> int:
    """The process group id of a process that has ended (nothing runs in it)."""
    process = subprocess.Popen(["true"], start_new_session=True)
    process.wait()
    return process.pid


def make(
    state_dir: Path,
    deployment: str,
    state: State | None,
    app: str = "demo",
    pgid: int | None = None,
    age: float = 60.0,
    payload: int = 0,
    spool: Path | None = None,
) -> Path:
    """A deployment folder with its record (when `pgid` is given), state and `payload` bytes of outputs."""
    root = state_dir / deployment
    (root / "home" / "output").mkdir(parents=True)
    (root / "token").write_text("t" * 64)
    (root / "home" / "output" / "out.bin").write_bytes(b"x" * payload)
    if pgid is not None:
        info: dict[str, object] = {"pgid": pgid, **({"spool": str(spool)} if spool else {})}
        nodes = {"home": NodeAddress("home", "home", "127.0.0.1", 1, 2)}
        DeploymentRecord(deployment, root, "local", info, "home", nodes, time.time() - age, app).save()
    if state is not None:
        write_state(root, state)
    return root


def test_states_are_read_back_and_legacy_folders_get_one(tmp_path: Path, dead_group: int) -> None:
    states = tmp_path / ".jupiter"
    make(states, "20260101-000000-aaaaaa", State.STOPPED, pgid=dead_group, age=300)
    make(states, "20260101-000100-bbbbbb", None, pgid=dead_group, age=200)  # before states: stopped
    make(states, "20260101-000200-cccccc", None, pgid=dead_group, age=100)  # named by the old pointer
    make(states, "20260101-000300-dddddd", None, age=50)  # no record: its deploy failed early
    (states / "current").write_text("20260101-000200-cccccc")
    (states / "notes").mkdir()  # not a deployment id: never looked at
    found = entries(states)
    assert [(entry.id, entry.state) for entry in found] == [
        ("20260101-000000-aaaaaa", State.STOPPED),
        ("20260101-000100-bbbbbb", State.STOPPED),
        ("20260101-000200-cccccc", State.RUNNING),
        ("20260101-000300-dddddd", State.FAILED),
    ]
    (states / "20260101-000000-aaaaaa" / "state").write_text("paused\n")
    with pytest.raises(DeploymentError, match="unknown state 'paused'; expected one of: starting, running"):
        read_state(states / "20260101-000000-aaaaaa")


def test_the_default_is_the_only_or_latest_running_one(tmp_path: Path, dead_group: int) -> None:
    states = tmp_path / ".jupiter"
    mine = os.getpgid(0)
    make(states, "20260101-000000-aaaaaa", State.RUNNING, "first", pgid=mine, age=300)
    make(states, "20260101-000100-bbbbbb", State.STOPPED, "gone", pgid=dead_group, age=200)
    assert choose(states).deployment.id == "20260101-000000-aaaaaa"
    assert choose(states).others == ()
    make(states, "20260101-000200-cccccc", State.RUNNING, "second", pgid=mine, age=100)
    make(states, "20260101-000300-dddddd", State.RUNNING, "crashed", pgid=dead_group, age=10)
    picked = choose(states)
    assert picked.deployment.id == "20260101-000200-cccccc"  # the latest that runs, not the crashed one
    assert picked.others == ("20260101-000000-aaaaaa",)
    # teardown also takes one that was never torn down although nothing of it runs.
    assert choose(states, running=False).deployment.id == "20260101-000200-cccccc"


@pytest.mark.parametrize(
    ("wanted", "found"),
    [
        ("20260101-000100-bbbbbb", "20260101-000100-bbbbbb"),
        ("20260101-0001", "20260101-000100-bbbbbb"),
        ("aaaaaa", "20260101-000000-aaaaaa"),
    ],
)
def test_deployment_by_id_start_or_end(tmp_path: Path, dead_group: int, wanted: str, found: str) -> None:
    states = tmp_path / ".jupiter"
    make(states, "20260101-000000-aaaaaa", State.STOPPED, pgid=dead_group)
    make(states, "20260101-000100-bbbbbb", State.RUNNING, pgid=dead_group)
    assert choose(states, wanted).deployment.id == found


def test_wrong_or_ambiguous_ids_and_nothing_running_say_what_to_do(tmp_path: Path, dead_group: int) -> None:
    states = tmp_path / ".jupiter"
    with pytest.raises(DeploymentError) as nothing:
        choose(states)
    assert str(nothing.value) == f"no deployment is running here ({states}); start one with `jupiter deploy`"
    make(states, "20260101-000000-aaaaaa", State.STOPPED, pgid=dead_group)
    make(states, "20260101-000100-aaaaab", State.RUNNING, "crashed", pgid=dead_group)
    make(states, "20260101-000200-cccccc", State.FAILED)
    with pytest.raises(DeploymentError) as unknown:
        choose(states, "zzz")
    assert str(unknown.value) == (
        f"no deployment 'zzz' in {states} (latest: 20260101-000000-aaaaaa, 20260101-000100-aaaaab, "
        "20260101-000200-cccccc); `jupiter list` shows them all"
    )
    assert choose(states, "20260101-0000").deployment.id == "20260101-000000-aaaaaa"  # a unique start
    with pytest.raises(DeploymentError) as several:
        choose(states, "2026")
    assert str(several.value).startswith("'2026' matches 3 deployments (20260101-000000-aaaaaa, ")
    with pytest.raises(DeploymentError) as crashed:
        choose(states)
    assert str(crashed.value) == (
        "deployment 20260101-000100-aaaaab (crashed) is not running any more: its agents stopped without a "
        f"teardown; see its logs in {states}/20260101-000100-aaaaab/logs, and clean it up with `jupiter teardown`"
    )
    with pytest.raises(DeploymentError) as unreachable:
        choose(states, "cccccc")
    assert str(unreachable.value) == (
        "deployment 20260101-000200-cccccc is failed and has no record to reach it by; "
        f"`jupiter prune` removes its folder {states}/20260101-000200-cccccc"
    )


def test_prune_removes_what_is_over_and_keeps_what_runs(tmp_path: Path, dead_group: int) -> None:
    states = tmp_path / ".jupiter"
    spool = tmp_path / "shm" / "jupiter-spool-20260101-000300-dddddd-x1"
    (spool / "nodes").mkdir(parents=True)
    (spool / "nodes" / "held.bin").write_bytes(b"s" * 500)
    stopped = make(states, "20260101-000000-aaaaaa", State.STOPPED, pgid=dead_group, payload=2000)
    failed = make(states, "20260101-000100-bbbbbb", State.FAILED, payload=100)
    running = make(states, "20260101-000200-cccccc", State.RUNNING, pgid=os.getpgid(0))
    exited = make(states, "20260101-000300-dddddd", State.RUNNING, pgid=dead_group, spool=spool, payload=10)
    starting = make(states, "20260101-000400-eeeeee", State.STARTING)
    sizes = {root.name: folder_size(root) for root in (stopped, failed, exited)}
    sizes[exited.name] += 500
    result = prune(states)
    assert dict(result.removed) == sizes
    assert result.freed == sum(sizes.values())
    assert result.kept == [
        ("20260101-000200-cccccc", "running"),
        ("20260101-000400-eeeeee", "starting: a deploy may be in progress (`jupiter teardown` it if not)"),
    ]
    assert sorted(p.name for p in states.iterdir()) == [running.name, starting.name]
    assert not spool.exists()
    assert read_state(running) is State.RUNNING


def test_folder_size_counts_hard_links_once(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 100)
    (tmp_path / "b").hardlink_to(tmp_path / "a")
    (tmp_path / "c").symlink_to("/etc/passwd")
    assert folder_size(tmp_path) == 100 + len("/etc/passwd")


def test_list_and_prune_commands(workdir: Path, run: Run, dead_group: int) -> None:
    states = Path(".jupiter")
    assert run("list").out == "no deployments in " + str(states.resolve()) + (
        "; start one with `jupiter run APP` or `jupiter deploy APP`\n"
    )
    assert json.loads(run("list", "--output", "json").out) == {
        "format": "jupiter-list",
        "version": 1,
        "state_dir": str(states.resolve()),
        "deployments": [],
    }
    make(states.resolve(), "20260101-000000-aaaaaa", State.STOPPED, "demo", pgid=dead_group, age=7200, payload=1500)
    make(
        states.resolve(), "20260101-000100-bbbbbb", State.RUNNING, "network_monitoring_app", os.getpgid(0), payload=900
    )
    sizes = [folder_size(states / name) for name in ("20260101-000000-aaaaaa", "20260101-000100-bbbbbb")]
    listed = run("list")
    assert listed.code == 0
    assert listed.out.splitlines() == [
        "id                      state     backend     app                         age       size",
        f"20260101-000000-aaaaaa  stopped   local       demo                        2 h  {sizes[0] / 1000:>6.1f} KB",
        f"20260101-000100-bbbbbb  running   local       network_monitoring_app    1 min  {sizes[1] / 1000:>6.1f} KB",
    ]
    document = json.loads(run("list", "--output", "json").out)["deployments"]
    assert [row["id"] for row in document] == ["20260101-000000-aaaaaa", "20260101-000100-bbbbbb"]
    assert document[0] == {
        "id": "20260101-000000-aaaaaa",
        "state": "stopped",
        "backend": "local",
        "app": "demo",
        "created": pytest.approx(time.time() - 7200, abs=60),
        "age_seconds": pytest.approx(7200, abs=60),
        "size_bytes": sizes[0],
        "folder": str(states.resolve() / "20260101-000000-aaaaaa"),
    }
    pruned = run("prune")
    assert (pruned.code, pruned.err) == (0, "")
    assert pruned.out.splitlines() == [
        f"removed 20260101-000000-aaaaaa ({sizes[0] / 1000:.1f} KB)",
        "kept 20260101-000100-bbbbbb: running",
        f"removed 1 deployment, freed {sizes[0] / 1000:.1f} KB",
    ]
    assert run("prune").out.splitlines() == ["kept 20260101-000100-bbbbbb: running", "nothing to prune"]


def test_teardown_status_and_submit_name_what_is_missing(workdir: Path, run: Run) -> None:
    assert run("teardown").out == "nothing to tear down\n"
    missing = run("status", "--deployment", "abc")
    assert missing.code == 1
    assert missing.err == (
        f"error: no deployment 'abc' in {Path('.jupiter').resolve()} (latest: none); `jupiter list` shows them all\n"
    )
    assert run("teardown", "--all", "--deployment", "abc").code == 2
    layout = DeploymentLayout(Path(".jupiter").resolve() / "x")
    assert layout.state.name == "state"


def test_report_reads_the_latest_deployment_that_ran_or_the_one_named(tmp_path: Path, dead_group: int) -> None:
    states = tmp_path / ".jupiter"
    ran = make(states, "20260101-000000-aaaaaa", State.STOPPED, pgid=dead_group, age=100)
    failed = make(states, "20260101-000100-bbbbbb", State.FAILED, pgid=dead_group, age=10)
    for root in (ran, failed):
        (root / "plan.json").write_text("{}")
    assert report_folder(states, None) == ran  # a deploy that failed is not the run to report on
    assert report_folder(states, "bbbbbb") == failed
    assert report_folder(states, str(ran)) == ran
    with pytest.raises(InputError, match="no deployment has run here"):
        report_folder(tmp_path / "empty", None)
