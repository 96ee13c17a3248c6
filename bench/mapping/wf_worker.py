"""Runs inside the Python 3.12 venv: generates WfCommons workflows offline.

For each (recipe, n_tasks, seed) it builds a synthetic workflow with the
wfcommons 1.6 recipe (SAGA's recipe table) and writes the runtime of each
task and, per edge, the bytes of the parent's output files the child reads
(1 byte when they share none; sizes are rescaled to a CCR later anyway):
{"tasks": {name: runtime}, "edges": [[parent, child, bytes]]}.
Usage: wf_worker.py OUT.json recipe:n_tasks:seed [...]
"""

from __future__ import annotations

import json
import logging
import random
import sys

import numpy as np
from saga.schedulers.data.wfcommons import get_num_task_range, recipes  # type: ignore[import-not-found]
from wfcommons import WorkflowGenerator  # type: ignore[import-not-found,unused-ignore]


def main() -> None:
    logging.disable(logging.WARNING)
    out = {}
    for spec in sys.argv[2:]:
        recipe, n, seed = spec.split(":")
        random.seed(int(seed))
        np.random.seed(int(seed))
        # Each recipe has a smallest size it can make; ask for at least that.
        size = max(int(n), get_num_task_range(recipe)[0])
        g = WorkflowGenerator(recipes[recipe](num_tasks=size)).build_workflow()
        edges = []
        for u, v in g.edges:
            outs = {f.file_id: f.size for f in g.nodes[u]["task"].output_files}
            shared = sum(outs.get(f.file_id, 0) for f in g.nodes[v]["task"].input_files)
            edges.append([str(u), str(v), float(shared or 1)])
        out[spec] = {
            "tasks": {str(t): max(1e-9, float(g.nodes[t]["task"].runtime or 0.0)) for t in g.nodes},
            "edges": edges,
        }
        print(spec, len(g.nodes), flush=True)
    with open(sys.argv[1], "w", encoding="utf-8") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main()
