"""Home's frame tracker: recovery after a restart of home, from the event log and the output folders."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from jupiter.model.events import Event, FrameDone, FrameFailed, FrameSubmitted, encode
from jupiter.model.layout import HomeLayout
from jupiter.model.plan import NodeAddress, Plan, TaskSpec
from jupiter.runtime.frames import THROUGHPUT_WINDOW, ClientIds, FrameState, FrameTotals, FrameTracker, Submitted
from jupiter.runtime.spool import store_input


def _tracker(folder: Path, recorded: list[Event]) -> FrameTracker:
    tasks = {
        "a": TaskSpec("a", 1, True, ("home",), (), "a.py"),
        "b": TaskSpec("b", 1, True, ("home",), (), "b.py"),
    }
    nodes = {name: NodeAddress(name, role, "127.0.0.1", 1, 2) for name, role in (("home", "home"), ("n1", "compute"))}
    plan = Plan("dep", "app", "/app", tasks, ("a", "b"), {"a": "n1", "b": "n1"}, nodes, ("a", "b"), "home")
    services: Any = SimpleNamespace(plan=plan, node="home", token="t")
    return FrameTracker(services, HomeLayout(folder), recorded.append)


def test_a_restarted_home_knows_its_frames_in_flight_and_continues_the_sequence(tmp_path: Path) -> None:
    layout = HomeLayout(tmp_path / "home")
    layout.dir.mkdir()
    lines = [
        encode(FrameSubmitted("f000001-aaaaaa", "1.txt", 10.0)),
        encode(FrameSubmitted("f000002-bbbbbb", "2.txt", 11.0)),
        encode(FrameSubmitted("f000003-cccccc", "3.txt", 12.0)),
        encode(FrameDone("f000001-aaaaaa", "1.txt", 13.0, 3.0, ("o.txt",))),
        encode(FrameFailed("f000002-bbbbbb", "2.txt", 14.0, "boom")),
        # A poisoned line (an id that is not a frame id) is skipped, not fatal.
        '{"type":"frame_submitted","frame":"zzz/..","input":"x","time":1}',
        "not json at all",
        encode(FrameSubmitted("f000007-dddddd", "7.txt", 15.0)),
    ]
    layout.events.write_text("\n".join(lines) + "\n")
    # Frame 3 had one of its two final outputs home before the restart (its marker kept, not yet shown).
    markers = layout.frame_results("f000003-cccccc")
    markers.mkdir(parents=True)
    store_input(str(markers), "f000003-cccccc", "a@0", "a.out", b"from a")
    recorded: list[Event] = []
    tracker = _tracker(layout.dir, recorded)
    tracker.recover()
    assert sorted(tracker.frames) == ["f000003-cccccc", "f000007-dddddd"]
    assert tracker.frames["f000003-cccccc"].results == {"a@0": "a.out"}
    # The crash came between the marker and the output: recovery shows the output.
    assert (layout.frame_output("f000003-cccccc") / "a.out").read_bytes() == b"from a"
    assert (tracker.totals.submitted, tracker.totals.done, tracker.totals.failed) == (4, 1, 1)
    assert list(tracker.totals.makespans) == [3.0]
    assert tracker.seq == 7
    # The missing output completes the frame exactly once; a repeat is ignored.
    header = {"frame": "f000003-cccccc", "src": "b", "idx": 0, "name": "b.out", "task": "home"}
    assert tracker.accept_result(header, b"from b") is None
    assert tracker.accept_result(header, b"from b") is None
    done = [event for event in recorded if isinstance(event, FrameDone)]
    assert [event.frame for event in done] == ["f000003-cccccc"]
    assert sorted(done[0].outputs) == ["a.out", "b.out"]
    # The output folder holds the outputs only; the markers are gone with the frame.
    assert sorted(path.name for path in layout.frame_output("f000003-cccccc").iterdir()) == ["a.out", "b.out"]
    assert not markers.exists()
    assert tracker.totals.done == 2
    # The next frame gets the next sequence number.
    counts = asyncio.run(tracker.wait_finished(3, 0.0))
    assert counts["done"] == 2 and counts["in_flight"] == 1


def test_no_event_log_means_nothing_in_flight(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path / "home", [])
    tracker.recover()
    assert tracker.frames == {} and tracker.seq == 0


def test_a_frames_output_folder_holds_only_its_outputs_and_its_markers_go_when_it_is_done(tmp_path: Path) -> None:
    recorded: list[Event] = []
    tracker = _tracker(tmp_path / "home", recorded)
    tracker.frames["f000001-aaaaaa"] = FrameState("f000001-aaaaaa", "1.txt", 1.0)
    folder = tracker.layout.frame_output("f000001-aaaaaa")
    markers = tracker.layout.frame_results("f000001-aaaaaa")
    tracker.accept_result({"frame": "f000001-aaaaaa", "src": "a", "idx": 0, "name": "a.out"}, b"A")
    # In flight: the slot marker, kept beside home's copy, tells a restarted home which outputs are in.
    assert [p.name for p in folder.iterdir()] == ["a.out"]
    assert sorted(p.name for p in markers.iterdir()) == [".slot@f000001-aaaaaa@a@0@a.out", "a.out"]
    tracker.accept_result({"frame": "f000001-aaaaaa", "src": "b", "idx": 0, "name": "b.out"}, b"B")
    assert [type(event).__name__ for event in recorded][-1] == "FrameDone"
    assert sorted(p.name for p in folder.iterdir()) == ["a.out", "b.out"]
    assert (folder / "a.out").read_bytes() == b"A"
    assert not markers.exists()


def test_a_failed_frame_keeps_its_partial_outputs_and_drops_its_markers(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path / "home", [])
    tracker.frames["f000002-bbbbbb"] = FrameState("f000002-bbbbbb", "2.txt", 1.0)
    tracker.accept_result({"frame": "f000002-bbbbbb", "src": "a", "idx": 0, "name": "a.out"}, b"A")
    tracker.fail("f000002-bbbbbb", "b failed")
    folder = tracker.layout.frame_output("f000002-bbbbbb")
    assert [p.name for p in folder.iterdir()] == ["a.out"]
    assert not tracker.layout.frame_results("f000002-bbbbbb").exists()


def test_recovery_drops_the_markers_a_stopped_home_left_of_finished_frames(tmp_path: Path) -> None:
    layout = HomeLayout(tmp_path / "home")
    layout.dir.mkdir()
    lines = [
        encode(FrameSubmitted("f000001-aaaaaa", "1.txt", 10.0)),
        encode(FrameDone("f000001-aaaaaa", "1.txt", 13.0, 3.0, ("a.out", "b.out"))),
        encode(FrameSubmitted("f000002-bbbbbb", "2.txt", 11.0)),
    ]
    layout.events.write_text("\n".join(lines) + "\n")
    done, flying = layout.frame_results("f000001-aaaaaa"), layout.frame_results("f000002-bbbbbb")
    for folder, frame in ((done, "f000001-aaaaaa"), (flying, "f000002-bbbbbb")):
        folder.mkdir(parents=True)
        store_input(str(folder), frame, "a@0", "a.out", b"A")
    tracker = _tracker(layout.dir, [])
    tracker.recover()
    assert not done.exists()
    assert sorted(p.name for p in flying.iterdir()) == [".slot@f000002-bbbbbb@a@0@a.out", "a.out"]
    # The output copy a crash may have missed is made again.
    assert [p.name for p in layout.frame_output("f000002-bbbbbb").iterdir()] == ["a.out"]
    assert tracker.frames["f000002-bbbbbb"].results == {"a@0": "a.out"}


def test_throughput_counts_the_frames_of_the_last_window_only() -> None:
    totals = FrameTotals(first_submit=1000.0)
    for second in range(60):
        totals.finished(1000.0 + second + 0.5)  # a frame a second for a minute
    # Over the last 30 s: the 29 whole seconds after the one that is 30 s old.
    rate, window = totals.recent_throughput(1060.0)
    assert window == THROUGHPUT_WINDOW
    assert rate == pytest.approx(29 / THROUGHPUT_WINDOW)
    # A minute later nothing finished: the throughput is 0, not the run's average.
    assert totals.recent_throughput(1120.0) == (0.0, THROUGHPUT_WINDOW)
    assert len(totals.recent) == 0
    # Early in a run the window is the time since the first frame.
    early = FrameTotals(first_submit=1000.0)
    early.finished(1001.0)
    early.finished(1001.5)
    assert early.recent_throughput(1002.0) == (1.0, 2.0)


def test_a_frame_whose_outputs_were_all_in_before_a_restart_is_recorded_done(tmp_path: Path) -> None:
    """Killed between taking the last output and recording the frame done: recovery finishes it."""
    layout = HomeLayout(tmp_path / "home")
    layout.dir.mkdir()
    layout.events.write_text(encode(FrameSubmitted("f000003-cccccc", "3.txt", 10.0)) + "\n")
    markers = layout.frame_results("f000003-cccccc")
    markers.mkdir(parents=True)
    store_input(str(markers), "f000003-cccccc", "a@0", "a.out", b"A")
    store_input(str(markers), "f000003-cccccc", "b@0", "b.out", b"B")
    recorded: list[Event] = []
    tracker = _tracker(layout.dir, recorded)
    tracker.recover()
    assert "f000003-cccccc" not in tracker.frames
    assert [(type(event).__name__, getattr(event, "outputs", ())) for event in recorded] == [
        ("FrameDone", ("a.out", "b.out"))
    ]
    assert sorted(p.name for p in layout.frame_output("f000003-cccccc").iterdir()) == ["a.out", "b.out"]
    assert not markers.exists()


def test_client_ids_give_back_the_frame_each_started_and_forget_the_oldest_past_the_limit() -> None:
    ids = ClientIds(limit=5)
    # The CLI's ids (`<submission>-<i>`), started in a row, and ids of any other form.
    for index in range(4):
        ids.add(f"sub-{index}", f"f{10 + index:06d}-{index:06x}")
    ids.add("my own id", "f000014-abcdef")
    assert [ids.get(f"sub-{index}") for index in range(4)] == [f"f{10 + i:06d}-{i:06x}" for i in range(4)]
    assert ids.get("my own id") == "f000014-abcdef"
    # Ids it never saw, including ones that only look alike, are unknown.
    assert ids.get("sub-4") is None and ids.get("sub-01") is None and ids.get("sub") is None
    assert len(ids) == 5
    # Past the limit the oldest frame goes first, whichever form its id has.
    ids.add("other-0", "f000015-000000")
    assert ids.get("sub-0") is None and ids.get("sub-1") == "f000011-000001" and len(ids) == 5
    for index in range(5):
        ids.add(f"later-{index}", f"f{16 + index:06d}-ffffff")
    assert [client for client in ("sub-3", "my own id", "other-0") if client in ids] == []
    assert [ids.get(f"later-{index}") for index in range(5)] == [f"f{16 + i:06d}-ffffff" for i in range(5)]


def test_client_ids_of_interleaved_submissions_and_odd_frame_ids_are_kept_exactly() -> None:
    ids = ClientIds(limit=100)
    # Two submissions whose frames alternate: neither gets consecutive sequence numbers.
    for index in range(6):
        ids.add(f"{'ab'[index % 2]}-{index // 2}", f"f{index + 1:06d}-{index:06x}")
    ids.add("c-0", "f0000007-aaaaaa")  # a leading zero a sequence number of its own would not have
    ids.add("c-1", "f1234567-bbbbbb")
    assert [ids.get(f"a-{i}") for i in range(3)] == ["f000001-000000", "f000003-000002", "f000005-000004"]
    assert [ids.get(f"b-{i}") for i in range(3)] == ["f000002-000001", "f000004-000003", "f000006-000005"]
    assert (ids.get("c-0"), ids.get("c-1")) == ("f0000007-aaaaaa", "f1234567-bbbbbb")


def test_the_ids_of_a_long_submission_take_a_few_bytes_a_frame() -> None:
    ids = ClientIds(limit=200_000)
    tracemalloc.start()
    try:
        for index in range(50_000):
            ids.add(f"0123456789ab-{index}", f"f{index + 1:06d}-{index % 4096:06x}")
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert used < 50_000 * 8  # the two strings and a dictionary entry each took about 200 bytes
    assert ids.get("0123456789ab-49999") == f"f050000-{49_999 % 4096:06x}"


def test_a_submit_again_with_a_known_client_id_answers_the_frame_it_started(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path / "home", [])
    tracker.clients.add("s-0", "f000001-aaaaaa")
    services: Any = tracker.services
    released: list[str] = []
    services.pool = lambda parent: SimpleNamespace(release=released.append)
    answer = asyncio.run(tracker.start([str(tmp_path / "in.txt")], str(tmp_path / "frames" / "d1"), client="s-0"))
    assert answer == Submitted("f000001-aaaaaa", started=False)
    assert released == [str(tmp_path / "frames" / "d1")] and tracker.seq == 0
