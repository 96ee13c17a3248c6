"""How long `jupiter render` takes, and how large its objects are, for large apps and clusters.

    .venv/bin/python bench/containers/render_bench.py                         # 200x50, 2000x4, 200x500, 2000x500
    .venv/bin/python bench/containers/render_bench.py --shape 2000x500 --repeat 3

Each shape is TASKSxNODES: a generated app (`jupiter.tools.dummy`) of that
many tasks, that many compute nodes besides home, a static mapping (tasks
dealt round-robin), rendered for the kubernetes backend as `jupiter render`
does (`jupiter.service.preview.rendered_files`). Printed per shape: the
best of `--repeat` renders, the number of objects, the largest object and
the plan's size (both must stay under a ConfigMap's 1 MiB), with the load
average beside it. Before the renderers shared one plan among the agents,
500 nodes took 87 s and the plans ConfigMap was 55.9 MB.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.workspace import load_workspace
from jupiter.service.preview import rendered_files
from jupiter.tools.dummy import DummySpec, generate_app


def workspace(root: Path, tasks: int, nodes: int) -> Path:
    app = generate_app(root / "app_specific_files" / "big", DummySpec(tasks=tasks, seed=1))
    names = [f"node{i}" for i in range(nodes)]
    (root / "nodes.txt").write_text("home kube-master\n" + "".join(f"{n} kube-{n}\n" for n in names))
    order = [
        line.split()[0]
        for line in (root / "app_specific_files" / "big" / "configuration.txt").read_text().splitlines()[1:]
    ]
    (root / "mapping.txt").write_text("".join(f"{task} {names[i % nodes]}\n" for i, task in enumerate(order)))
    (root / "jupiter_config.ini").write_text(
        "[CONFIG]\nSTATIC_MAPPING = 1\n[DEPLOY]\nAPP = app_specific_files/big\nMAPPING = mapping.txt\n"
        "BACKEND = kubernetes\n"
    )
    assert app is not None
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", action="append", help="TASKSxNODES (repeatable)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    for shape in args.shape or ["200x50", "2000x4", "200x500", "2000x500"]:
        tasks, nodes = (int(part) for part in shape.split("x"))
        with tempfile.TemporaryDirectory() as folder:
            root = workspace(Path(folder), tasks, nodes)
            spec = resolve_spec(load_workspace(root / "jupiter_config.ini", root / "nodes.txt", None))
            best = float("inf")
            for _ in range(args.repeat):
                started = time.perf_counter()
                files = rendered_files(spec)
                best = min(best, time.perf_counter() - started)
        largest = max(files[1:], key=lambda item: len(item[1]))
        plan = next(text for name, text in files if "configmap-jupiter-plans" in name)
        print(
            f"{tasks:>5} tasks x {nodes:>3} nodes: {best:6.2f} s, {len(files) - 1} objects, largest "
            f"{largest[0]} {len(largest[1]) / 1024:.0f} KiB, plan ConfigMap {len(plan) / 1024:.0f} KiB "
            f"(load average {os.getloadavg()[0]:.2f})"
        )


if __name__ == "__main__":
    main()
