"""Where the CPU goes while chain10 streams: CPU seconds per process (home, agents, task workers).

Deploys chain10 on 4 local nodes (round-robin, as runtime_bench.py), warms up
with 300 frames, then submits `--rounds` bursts of 300 frames and prints, per
process, the CPU time used and its cost per frame, with the throughput.
Run it several times: on a shared 2-core machine the cost per frame itself
varies between runs (see the closing note of issue 3).

    .venv/bin/python bench/runtime/cpu_per_process.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.workspace import load_workspace
from jupiter.service.deploy import deploy, teardown
from jupiter.service.run import submit_data

sys.path.insert(0, str(Path(__file__).parent))
import runtime_bench as rb  # the bench's own helpers, next to this file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--placement", choices=rb.PLACEMENTS, default="round-robin")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = rb.make_workdir(Path(tmp), "chain10", *rb.chain_dag(10), nodes=4, how=args.placement)
        workspace = load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None)
        deployment = deploy(resolve_spec(workspace))
        try:
            pids = json.loads((deployment.root / "pids.json").read_text())["agents"]
            processes: dict[str, psutil.Process] = {}
            for node, pid in pids.items():
                agent = psutil.Process(pid)
                processes[node] = agent
                for index, child in enumerate(agent.children()):
                    processes[f"{node}/worker{index}"] = child

            def cpu() -> dict[str, float]:
                return {name: sum(p.cpu_times()[:2]) for name, p in processes.items()}

            submit_data(deployment, [(f"w{i}.bin", b"i" * rb.PAYLOAD) for i in range(300)])
            rb.wait_done(deployment, 300)
            before, started, done = cpu(), time.perf_counter(), 300
            for _ in range(args.rounds):
                submit_data(deployment, [(f"in_{i}.bin", b"i" * rb.PAYLOAD) for i in range(300)])
                done += 300
                rb.wait_done(deployment, done)
            elapsed, after = time.perf_counter() - started, cpu()
        finally:
            teardown(deployment)
    frames = 300 * args.rounds
    print(f"{frames / elapsed:.1f} frames/s over {frames} frames in {elapsed:.2f} s")
    total = 0.0
    for name in processes:
        used = after[name] - before[name]
        total += used
        print(f"{name:<16} {used:6.2f} s  {used / frames * 1e3:6.3f} ms/frame")
    available = elapsed * (psutil.cpu_count() or 1)
    print(f"total {total:.2f} CPU s of {available:.2f} available; {total / frames * 1e3:.2f} ms/frame")


if __name__ == "__main__":
    main()
