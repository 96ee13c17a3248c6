"""How long the mappers take on large random DAGs (what the tests only bound loosely).

    .venv/bin/python bench/mapping/speed.py                 # heft, cpop, peft on 1000 tasks x 16 nodes
    .venv/bin/python bench/mapping/speed.py --tasks 10000 --nodes 64 --mappers heft

Prints, per mapper, the best and the median of `--repeat` runs, with the
load average beside them (the machine is shared: compare figures taken at
a similar load). Unloaded, HEFT maps 1000 tasks on 16 nodes in 12-25 ms here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from jupiter.mapping.generate import random_instance
from jupiter.mapping.registry import get_mapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--mappers", default="heft,cpop,peft", help="comma-separated registered mapper names")
    args = parser.parse_args()
    problem = random_instance(args.tasks, args.nodes, ccr=1.0, seed=args.seed).problem()
    _ = problem.indexed  # built once, outside the timing, as a deployment's mapping problem is
    print(f"{args.tasks} tasks x {args.nodes} nodes, best and median of {args.repeat} runs")
    for name in args.mappers.split(","):
        mapper = get_mapper(name.strip())
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            mapper.schedule(problem)
            times.append(time.perf_counter() - started)
        load = os.getloadavg()[0]
        print(
            f"{name:<10} best {min(times) * 1e3:9.1f} ms  median {statistics.median(times) * 1e3:9.1f} ms"
            f"  (load average {load:.2f})"
        )


if __name__ == "__main__":
    main()
