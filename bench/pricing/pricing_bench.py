"""Pricing CIRCE vs nonpricing on an emulated testbed (issue 6's figures).

One generated app (6 CPU-burning tasks, fan-out and fan-in) on four
emulated compute nodes of equal speed, mapped by `heft` from real profiles.
For each dispatcher — nonpricing (the fixed mapping), pricing `event` and
pricing `push` — one deployment runs, in the same script run:

* **overhead**: frames one at a time on the unloaded testbed; the median
  per-frame makespan, and its ratio to nonpricing's (target: within 10%);
* **slowdown**: a closed loop keeps `--window` frames in flight; throughput
  (frames/s) is measured, then the busiest node of the mapping is slowed to
  `--speed` mid-stream (`jupiter speed`, i.e. the agents' emulated speed
  factor changes at run time), and after `--settle` frames throughput is
  measured again. Reported: throughput after / before for each dispatcher
  (target for pricing: >= 0.8), and against nonpricing's.

    .venv/bin/python bench/pricing/pricing_bench.py             # about 3 minutes
    .venv/bin/python bench/pricing/pricing_bench.py --rounds 3  # medians over 3 rounds
    .venv/bin/python bench/pricing/pricing_bench.py --aggregate max

The machine is shared and noisy: figures are medians over frames and rounds,
and every dispatcher is measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.workspace import load_workspace
from jupiter.service.deploy import deploy, teardown
from jupiter.service.faults import set_speed
from jupiter.service.record import Deployment
from jupiter.service.run import flush_events, home_frames, submit_data, wait_frames
from jupiter.tools.dummy import DummySpec, generate_app

KB = 1024
DISPATCHERS = ("nonpricing", "event", "push")
TESTBED = """[nodes]
node1 = 1
node2 = 1
node3 = 1
node4 = 1

[uplinks]
default = 100mbit 2ms

[links]
home -> * = 1gbit 0ms
* -> home = 1gbit 0ms
"""


@dataclass
class Figures:
    """One dispatcher's figures in one round."""

    makespan: float = 0.0
    before: float = 0.0
    after: float = 0.0
    victim: str = ""
    workers_after: Counter[str] = field(default_factory=Counter)

    @property
    def recovery(self) -> float:
        return self.after / self.before if self.before else 0.0


def make_workdir(folder: Path, dispatcher: str, aggregate: str) -> Path:
    work = folder / dispatcher
    work.mkdir(parents=True)
    spec = DummySpec(
        tasks=6,
        layers=4,
        fan_out=2,
        seed=3,
        cpu_seconds=(0.01, 0.03),
        output_bytes=(2 * KB, 20 * KB),
        samples=4,
        sample_bytes=(2 * KB, 4 * KB),
    )
    generate_app(work / "app_specific_files" / "bench_app", spec, overwrite=True)
    (work / "nodes.txt").write_text(
        "home localhost\nnode1 localhost\nnode2 localhost\nnode3 localhost\nnode4 localhost\n"
    )
    (work / "testbed.ini").write_text(TESTBED)
    (work / "jupiter_config.ini").write_text(
        f"[CONFIG]\nSCHEDULER = heft\nPRICING = {dispatcher}\nPRICE_OPTION = {aggregate}\n"
        "[DEPLOY]\nAPP = app_specific_files/bench_app\n"
        "[PROFILING]\nTESTBED = testbed.ini\nNETWORK_SIZES = 1K 10K 100K\nNETWORK_SAMPLES = 2\nEXEC_RUNS = 2\n"
    )
    return work


def closed_loop(deployment: Deployment, files: list[tuple[str, bytes]], count: int, window: int) -> float:
    """Keep `window` frames in flight until `count` more are done; returns frames/s."""
    start_done = home_frames(deployment)["done"]
    submitted = done = 0
    started = time.perf_counter()
    while done < count:
        if submitted - done < window and submitted < count:
            submit_data(deployment, [files[submitted % len(files)]])
            submitted += 1
            continue
        counts = wait_frames(deployment, start_done + done + 1, 5.0)
        done = counts["done"] + counts["failed"] - start_done
    return count / (time.perf_counter() - started)


def one_at_a_time(deployment: Deployment, files: list[tuple[str, bytes]], count: int) -> list[str]:
    """Frames one after the other; returns their ids."""
    frames = []
    for index in range(count):
        frames += submit_data(deployment, [files[index % len(files)]])
        wait_frames(deployment, home_frames(deployment)["submitted"], 30.0)
    return frames


def measure(work: Path, args: argparse.Namespace) -> Figures:
    workspace = load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None)
    files = [(path.name, path.read_bytes()) for path in workspace.app.sample_inputs]
    deployment = deploy(resolve_spec(workspace))
    figures = Figures()
    try:
        one_at_a_time(deployment, files, 5)  # warm up
        frames = one_at_a_time(deployment, files, args.frames)
        flush_events(deployment)
        events = [json.loads(line) for line in (deployment.home_dir / "events.jsonl").read_text().splitlines()]
        spans = {e["frame"]: e["makespan"] for e in events if e["type"] == "frame_done"}
        figures.makespan = statistics.median(spans[frame] for frame in frames)
        figures.before = closed_loop(deployment, files, args.stream, args.window)
        # The node that holds most of the mapping's tasks is the one whose slowdown hurts most.
        figures.victim = Counter(deployment.mapping.values()).most_common(1)[0][0]
        set_speed(deployment, figures.victim, args.speed)
        closed_loop(deployment, files, args.settle, args.window)
        mark = time.time()
        figures.after = closed_loop(deployment, files, args.stream, args.window)
        flush_events(deployment)
        events = [json.loads(line) for line in (deployment.home_dir / "events.jsonl").read_text().splitlines()]
        figures.workers_after = Counter(e["node"] for e in events if e["type"] == "task" and e["enter"] >= mark)
    finally:
        teardown(deployment)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--aggregate", choices=("sum", "max"), default="sum")
    parser.add_argument("--frames", type=int, default=25, help="frames one at a time for the makespan")
    parser.add_argument("--stream", type=int, default=80, help="frames per throughput measurement")
    parser.add_argument("--settle", type=int, default=20, help="frames between the slowdown and the measurement")
    parser.add_argument("--window", type=int, default=8, help="frames in flight in the closed loop")
    parser.add_argument("--speed", type=float, default=0.2, help="speed factor of the slowed node")
    args = parser.parse_args()
    results: dict[str, list[Figures]] = {name: [] for name in DISPATCHERS}
    with tempfile.TemporaryDirectory(prefix="jupiter-pricing-bench-") as tmp:
        for round_number in range(args.rounds):
            for dispatcher in DISPATCHERS:
                work = make_workdir(Path(tmp) / f"r{round_number}", dispatcher, args.aggregate)
                figures = measure(work, args)
                results[dispatcher].append(figures)
                print(
                    f"round {round_number + 1} {dispatcher:<10} makespan {figures.makespan * 1000:7.1f} ms  "
                    f"throughput {figures.before:6.2f} -> {figures.after:6.2f} frames/s "
                    f"({figures.recovery:.2f}) after slowing {figures.victim} to {args.speed:g}; "
                    f"tasks since: {dict(sorted(figures.workers_after.items()))}",
                    flush=True,
                )

    def median(name: str, attribute: str) -> float:
        return float(statistics.median(float(getattr(figures, attribute)) for figures in results[name]))

    base_span = median("nonpricing", "makespan")
    base_after = median("nonpricing", "after")
    print(f"\nmedians over {args.rounds} round(s), aggregate {args.aggregate}, window {args.window}:")
    print(
        f"{'dispatcher':<11} {'makespan ms':>11} {'vs nonpricing':>13} {'before f/s':>10} {'after f/s':>9} "
        f"{'after/before':>12} {'after vs nonpricing':>19}"
    )
    for name in DISPATCHERS:
        span, before, after = median(name, "makespan"), median(name, "before"), median(name, "after")
        print(
            f"{name:<11} {span * 1000:>11.1f} {span / base_span:>13.3f} {before:>10.2f} {after:>9.2f} "
            f"{median(name, 'recovery'):>12.2f} {after / base_after:>19.2f}"
        )
    print("targets: pricing makespan within 10% of nonpricing (ratio <= 1.10); pricing after/before >= 0.80")


if __name__ == "__main__":
    main()
