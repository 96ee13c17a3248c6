"""`jupiter report --trace`: a run as a Chrome trace (Perfetto, chrome://tracing), like Ray's timeline.

The JSON object format of the Trace Event Format: `{"traceEvents": [...],
"displayTimeUnit": "ms"}`, times in microseconds since the first frame was
submitted.

* **A track per node**: each node is a process (`process_name` metadata,
  sorted as in nodes.txt), each of its tasks a thread in it. Slices on one
  thread must not overlap, so a run that overlaps the previous one of its
  task (which one resident worker per task never does, but a record may)
  goes to a second row, `<task> (2)`, and so on.
* **A slice per task execution** (`ph: "X"`, `cat: "task"`), named by the
  task, from `execute` to `finish`; its args hold the frame, the input files
  and how long the frame waited on the node before it ran.
* **Transfers**: each file sent to another node is a slice on a `send ->
  <node>` thread of the sender (`cat: "transfer"`, args: bytes, frame,
  destination task), and a flow arrow (`ph: "s"` inside that slice, `ph: "f"`
  with `bp: "e"` inside the slice of the task that read the file) joins it to
  where it went. Files back home have their slice but no arrow (home runs no
  task to point at); hand-overs on one node cost nothing and are not drawn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jupiter.model.plan import HOME_TASK
from jupiter.report.run_record import RunRecord, base_frame, load_run


def _us(seconds: float) -> float:
    """Seconds as the microseconds a trace counts in (to the nanosecond, so no slice has zero width by rounding)."""
    return round(seconds * 1e6, 3)


def trace_document(record: RunRecord) -> dict[str, Any]:
    """The trace of a run (module docstring)."""
    start = record.start
    nodes = list(record.roles)
    pid = {node: index + 1 for index, node in enumerate(nodes)}
    threads: dict[tuple[str, str], int] = {}
    lanes: dict[tuple[str, str], list[float]] = {}
    """(node, row name) -> when the slice last put on each of its rows ends."""
    events: list[dict[str, Any]] = []

    def tid(node: str, name: str) -> int:
        key = (node, name)
        if key not in threads:
            threads[key] = number = len([k for k in threads if k[0] == node]) + 1
            events.append({"ph": "M", "name": "thread_name", "pid": pid[node], "tid": number, "args": {"name": name}})
            events.append(
                {
                    "ph": "M",
                    "name": "thread_sort_index",
                    "pid": pid[node],
                    "tid": number,
                    "args": {"sort_index": number},
                }
            )
        return threads[key]

    def lane(node: str, name: str, start: float, end: float) -> int:
        """The thread of the first row of `name` on `node` free at `start` (a new row when none is)."""
        ends = lanes.setdefault((node, name), [])
        for index, busy_until in enumerate(ends):
            if busy_until <= start:
                ends[index] = end
                return tid(node, name if index == 0 else f"{name} ({index + 1})")
        ends.append(end)
        return tid(node, name if len(ends) == 1 else f"{name} ({len(ends)})")

    for node in nodes:
        events.append(
            {
                "ph": "M",
                "name": "process_name",
                "pid": pid[node],
                "tid": 0,
                "args": {"name": f"{node} ({record.roles[node]})"},
            }
        )
        events.append(
            {"ph": "M", "name": "process_sort_index", "pid": pid[node], "tid": 0, "args": {"sort_index": pid[node]}}
        )
    # Threads of each node in DAG order.
    for task in record.order:
        for node in sorted({event.node for event in record.tasks if event.task == task}, key=nodes.index):
            tid(node, task)
    receivers: dict[tuple[str, str, str], tuple[int, int, float]] = {}
    for event in sorted(record.tasks, key=lambda event: event.execute):
        thread = lane(event.node, event.task, event.execute, event.finish)
        events.append(
            {
                "ph": "X",
                "cat": "task",
                "name": event.task,
                "pid": pid[event.node],
                "tid": thread,
                "ts": _us(event.execute - start),
                "dur": _us(max(0.0, event.finish - event.execute)),
                "args": {
                    "frame": base_frame(event.frame),
                    "files": list(event.files),
                    "waited_s": round(event.execute - event.arrive, 6),
                },
            }
        )
        receivers.setdefault(
            (base_frame(event.frame), event.task, event.node), (pid[event.node], thread, event.execute)
        )
    flow = 0
    for transfer in sorted(record.transfers, key=lambda event: event.time):
        if transfer.peer == transfer.node or not transfer.peer or transfer.peer not in pid:
            continue  # a hand-over on one node (nothing moved), or an unknown destination
        thread = lane(transfer.node, f"send -> {transfer.peer}", transfer.time, transfer.time + transfer.seconds)
        ts = _us(transfer.time - start)
        frame = base_frame(transfer.frame)
        events.append(
            {
                "ph": "X",
                "cat": "transfer",
                "name": f"{transfer.task or 'file'} <- {transfer.node}",
                "pid": pid[transfer.node],
                "tid": thread,
                "ts": ts,
                "dur": _us(transfer.seconds),
                "args": {"bytes": transfer.bytes, "frame": frame, "to": transfer.peer, "task": transfer.task},
            }
        )
        target = receivers.get((frame, transfer.task, transfer.peer)) if transfer.task != HOME_TASK else None
        if target is None or target[2] < transfer.time:
            continue
        flow += 1
        name = f"{transfer.bytes} B"
        events.append(
            {"ph": "s", "cat": "transfer", "name": name, "id": flow, "pid": pid[transfer.node], "tid": thread, "ts": ts}
        )
        events.append(
            {
                "ph": "f",
                "bp": "e",
                "cat": "transfer",
                "name": name,
                "id": flow,
                "pid": target[0],
                "tid": target[1],
                "ts": _us(target[2] - start),
            }
        )
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {"deployment": record.name, "app": record.app, "start": start},
    }


def write_trace(root: Path, path: Path) -> Path:
    """Write the trace of the deployment in `root` to `path`; returns it."""
    document = trace_document(load_run(root))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")
    return path
