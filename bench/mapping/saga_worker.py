"""Runs inside the Python 3.12 venv that holds anrg-saga (never imported by Jupiter).

Reads a JSON list of related-machines instances, runs SAGA's HEFT, CPoP, PEFT,
MinMin and FastestNode on each, and writes makespans and scheduling times.
With ``--only order`` it instead reports SAGA's iteration orders (topological
sort, task set, node set): the orders its tie-breaks follow.
Usage: saga_worker.py IN.json OUT.json [--only heft,cpop | --only order]
"""

from __future__ import annotations

import json
import logging
import sys
import time

from saga import Network, TaskGraph  # type: ignore[import-not-found]
from saga.schedulers import (  # type: ignore[import-not-found]
    CpopScheduler,
    FastestNodeScheduler,
    HeftScheduler,
    MinMinScheduler,
)
from saga.schedulers.peft import PEFTScheduler  # type: ignore[import-not-found]

SCHEDULERS = {
    "heft": HeftScheduler,
    "cpop": CpopScheduler,
    "peft": PEFTScheduler,
    "minmin": MinMinScheduler,
    "fastest_node": FastestNodeScheduler,
}


def main() -> None:
    logging.disable(logging.WARNING)  # SAGA warns when it adds super source/sink tasks
    src, dst = sys.argv[1], sys.argv[2]
    only = sys.argv[4].split(",") if len(sys.argv) > 4 and sys.argv[3] == "--only" else list(SCHEDULERS)
    with open(src, encoding="utf-8") as fh:
        instances = json.load(fh)
    out = []
    for inst in instances:
        network = Network.create(
            nodes=[(n, s) for n, s in inst["nodes"].items()],
            edges=[(u, v, s) for u, v, s in inst["links"]],
        )
        graph = TaskGraph.create(
            tasks=[(t, c) for t, c in inst["tasks"].items()],
            dependencies=[(p, c, s) for p, c, s in inst["edges"]],
        )
        row: dict[str, object] = {"name": inst["name"]}
        if only == ["order"]:
            # SAGA breaks ties by the iteration order of its frozensets (fixed by
            # PYTHONHASHSEED): HEFT/PEFT by its topological sort, MinMin by the task
            # set, every scheduler's node choice by the node set. Hand them over so
            # that our SAGA variants can be given the same tie orders.
            real = [t for t in graph.topological_sort() if not t.name.startswith("__super_")]
            row["topo"] = [t.name for t in real]
            row["tasks"] = [t.name for t in graph.tasks if not t.name.startswith("__super_")]
            row["nodes"] = [n.name for n in network.nodes]
            out.append(row)
            continue
        for name in only:
            t0 = time.perf_counter()
            sched = SCHEDULERS[name]().schedule(network, graph)
            row[name + "_time"] = time.perf_counter() - t0
            row[name] = sched.makespan
        out.append(row)
        print(inst["name"], flush=True)
    with open(dst, "w", encoding="utf-8") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main()
