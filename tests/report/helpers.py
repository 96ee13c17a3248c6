"""A hand-made deployment folder: a two-task chain (split on n1, join on n2) and frames with known timings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from jupiter.model.events import Event, FrameDone, FrameSubmitted, TaskRun, Transfer, encode
from jupiter.model.plan import NodeAddress, Plan, TaskSpec

PREDICTED = {
    "scheduler": "heft",
    "makespan": 0.3,
    "mapping": {"split": "n1", "join": "n2"},
    "tasks": {
        "split": {"node": "n1", "start": 0.0, "finish": 0.2},
        "join": {"node": "n2", "start": 0.2, "finish": 0.3},
    },
}
PROFILE = {
    "format": "jupiter-profile",
    "version": 1,
    "nodes": ["n1", "n2"],
    "links": [
        {"src": "n1", "dst": "n2", "a": 0.0, "b": 0.0, "c": 0.0},
        {"src": "n2", "dst": "n1", "a": 0.0, "b": 0.0, "c": 0.0},
    ],
    "execution": {
        "split": {
            "n1": {"seconds": 0.2, "output_bytes": {"join": 100}},
            "n2": {"seconds": 0.4, "output_bytes": {"join": 100}},
        },
        "join": {"n1": {"seconds": 0.2}, "n2": {"seconds": 0.1}},
    },
    "edges": [["split", "join"]],
}


def frame_events(index: int, t0: float) -> list[Event]:
    """One frame submitted at t0 (s): home -> split (4 ms on the wire), split 0.2 s, 50 ms to n2, join 0.1 s,
    20 ms back home; done at t0 + 0.45, so its latency is 0.45 = 0.3 execution + 0.074 transfer + 0.076 waiting."""
    frame = f"f{index:06d}-abcdef"
    return [
        FrameSubmitted(frame, f"{index}.txt", t0),
        Transfer("sender", "home", "/in", t0 + 0.001, frame, "home", "n1", 1000, 0.004, "split"),
        TaskRun(
            "split", frame, "n1", (f"{index}.txt",), t0 + 0.005, t0 + 0.006, t0 + 0.010, t0 + 0.210, True, None, "home"
        ),
        Transfer("sender", "n1", "/o", t0 + 0.212, frame, "home", "n2", 2000, 0.05, "join"),
        TaskRun("join", frame, "n2", ("o",), t0 + 0.262, t0 + 0.27, t0 + 0.30, t0 + 0.40, True, None, "home"),
        Transfer("sender", "n2", "/r", t0 + 0.401, frame, "home", "home", 300, 0.02, "home"),
        FrameDone(frame, f"{index}.txt", t0 + 0.45, 0.45, ("r",)),
    ]


def make_deployment(root: Path, events: Sequence[Event], predicted: bool = True, profile: bool = True) -> Path:
    """A deployment folder holding `events` (and, as a measured deployment would, mapping.json and profile.json)."""
    (root / "home").mkdir(parents=True)
    tasks = {
        "split": TaskSpec("split", 1, True, ("join",), (), "split.py"),
        "join": TaskSpec("join", 1, True, ("home",), ("split",), "join.py"),
    }
    nodes = {
        name: NodeAddress(name, role, "127.0.0.1", 1, 2)
        for name, role in (("home", "home"), ("n1", "compute"), ("n2", "compute"))
    }
    mapping = {"split": "n1", "join": "n2"}
    Plan("dep", "demo", "/demo", tasks, ("split", "join"), mapping, nodes, ("split",), "home").save(root / "plan.json")
    (root / "home" / "events.jsonl").write_text("".join(encode(event) + "\n" for event in events))
    if predicted:
        (root / "mapping.json").write_text(json.dumps(PREDICTED))
    if profile:
        (root / "profile.json").write_text(json.dumps(PROFILE))
    return root
