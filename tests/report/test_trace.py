"""`jupiter report --trace`: the run as a Chrome trace, checked against the Trace Event Format's rules."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from jupiter.report.run_record import load_run
from jupiter.report.trace import trace_document, write_trace
from tests.report.helpers import frame_events, make_deployment

METADATA = {
    "process_name": "name",
    "thread_name": "name",
    "process_sort_index": "sort_index",
    "thread_sort_index": "sort_index",
}


def _enclosing(slices: list[dict[str, Any]], pid: int, tid: int, ts: float) -> dict[str, Any] | None:
    for event in slices:
        if (event["pid"], event["tid"]) == (pid, tid) and event["ts"] <= ts <= event["ts"] + event["dur"]:
            return event
    return None


def check_trace(document: Any) -> None:
    """The Trace Event Format's rules (JSON object form) this trace relies on; AssertionError names the first broken."""
    assert isinstance(document, dict) and isinstance(document.get("traceEvents"), list)
    assert document.get("displayTimeUnit") in ("ms", "ns")
    json.dumps(document, allow_nan=False)  # strict JSON: no NaN or Infinity anywhere
    events = document["traceEvents"]
    named_processes: set[int] = set()
    named_threads: set[tuple[int, int]] = set()
    slices: list[dict[str, Any]] = []
    flows: dict[int | str, list[dict[str, Any]]] = {}
    for event in events:
        phase = event.get("ph")
        assert phase in {"X", "M", "s", "f"}, event
        assert isinstance(event.get("name"), str) and event["name"], event
        assert isinstance(event.get("pid"), int) and isinstance(event.get("tid"), int), event
        if phase == "M":
            assert event["name"] in METADATA, event
            assert METADATA[event["name"]] in event["args"], event
            if event["name"] == "process_name":
                named_processes.add(event["pid"])
            elif event["name"] == "thread_name":
                named_threads.add((event["pid"], event["tid"]))
            continue
        assert isinstance(event.get("ts"), int | float) and math.isfinite(event["ts"]) and event["ts"] >= 0, event
        assert isinstance(event.get("cat"), str), event
        if phase == "X":
            assert isinstance(event.get("dur"), int | float) and event["dur"] >= 0, event
            slices.append(event)
        else:
            assert isinstance(event.get("id"), int | str), event
            flows.setdefault(event["id"], []).append(event)
    for event in slices:
        assert event["pid"] in named_processes and (event["pid"], event["tid"]) in named_threads, event
    # Complete events on one thread nest or follow each other, never overlap partly.
    by_thread: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for event in slices:
        by_thread.setdefault((event["pid"], event["tid"]), []).append(event)
    for thread in by_thread.values():
        thread.sort(key=lambda e: (e["ts"], -e["dur"]))
        open_ends: list[float] = []
        for event in thread:
            while open_ends and open_ends[-1] <= event["ts"]:
                open_ends.pop()
            end = event["ts"] + event["dur"]
            assert not open_ends or end <= open_ends[-1] + 1e-6, f"partial overlap on {event['pid']}/{event['tid']}"
            open_ends.append(end)
    # Each flow: one start inside a slice, one end bound to the slice enclosing it, later, same category and name.
    for ident, pair in flows.items():
        assert sorted(e["ph"] for e in pair) == ["f", "s"], ident
        start, finish = sorted(pair, key=lambda e: e["ph"] != "s")
        assert (start["cat"], start["name"]) == (finish["cat"], finish["name"]), ident
        assert finish["ts"] >= start["ts"], ident
        assert _enclosing(slices, start["pid"], start["tid"], start["ts"]) is not None, ident
        assert finish.get("bp") == "e" and _enclosing(slices, finish["pid"], finish["tid"], finish["ts"]) is not None


def test_a_run_is_a_valid_trace_with_a_track_per_node_and_flows_for_transfers(tmp_path: Path) -> None:
    root = make_deployment(tmp_path / "dep", frame_events(1, 100.0) + frame_events(2, 100.1) + frame_events(3, 101.0))
    document = trace_document(load_run(root))
    check_trace(document)
    events = document["traceEvents"]
    processes = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert sorted(processes.values()) == ["home (home)", "n1 (compute)", "n2 (compute)"]
    threads = {(e["pid"], e["args"]["name"]) for e in events if e["name"] == "thread_name"}
    # Frames 1 and 2 overlap (made by hand: one worker would run them one after the other): a second row each.
    n1 = next(pid for pid, name in processes.items() if name.startswith("n1"))
    assert {name for pid, name in threads if pid == n1} == {"split", "split (2)", "send -> n2"}
    tasks = [e for e in events if e["ph"] == "X" and e["cat"] == "task"]
    assert len(tasks) == 6
    first = min(tasks, key=lambda e: e["ts"])
    assert (first["name"], processes[first["pid"]], first["ts"], first["dur"]) == (
        "split",
        "n1 (compute)",
        10_000,
        200_000,
    )
    assert first["args"] == {"frame": "f000001-abcdef", "files": ["1.txt"], "waited_s": 0.005}
    transfers = [e for e in events if e["ph"] == "X" and e["cat"] == "transfer"]
    # home -> n1 and n1 -> n2 and n2 -> home, per frame.
    assert len(transfers) == 9
    flows = [e for e in events if e["ph"] == "s"]
    # Files back home have no task to point at: two arrows per frame.
    assert len(flows) == 6
    assert {e["name"] for e in flows} == {"1000 B", "2000 B"}
    hop = next(e for e in transfers if e["args"]["bytes"] == 2000)
    assert hop["args"] == {"bytes": 2000, "frame": "f000001-abcdef", "to": "n2", "task": "join"}


def test_write_trace_writes_compact_json(tmp_path: Path) -> None:
    root = make_deployment(tmp_path / "dep", frame_events(1, 100.0))
    path = write_trace(root, tmp_path / "out" / "trace.json")
    check_trace(json.loads(path.read_text()))
    assert "\n" not in path.read_text()
