"""Pipelining: frames of an app whose tasks take seconds come out one stage-time apart, not all at the end.

An app of `--stages` tasks in a line, each sleeping `--seconds` in task()
(then writing a 1 KiB output), deployed on the local backend with a static
mapping of one stage per compute node (`--stages` nodes besides home);
`--frames` frames are submitted at once. With stages that overlap, frame 1
is done after about one frame's time (stages x seconds, 8 s by default) and
the last after about (frames + stages - 1) x seconds (46 s); in lock-step
(each stage running the whole burst before passing any frame on) the first
would come only after about frames x stages x seconds.

It prints each frame's finish time, measured by the client from the moment
it started submitting (`wait_frames`, home's long poll, asked for 1, 2, ...
frames done), beside home's makespan of the frame, then the first and the
last against what a pipeline should give, and the load average.

Usage: .venv/bin/python bench/runtime/pipeline_bench.py [--frames 20] [--stages 4] [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from jupiter.service.run import flush_events, submit_data, wait_frames

sys.path.insert(0, str(Path(__file__).parent))
import runtime_bench as rb  # the bench's own helpers, next to this file

SLEEPY_SOURCE = """
import os
import time


def task(filename, pathin, pathout):
    time.sleep({seconds})
    with open(os.path.join(pathin, filename), "rb") as handle:
        data = handle.read()
    out = os.path.join(pathout, "{task}_" + filename.split("_")[-1])
    with open(out, "wb") as handle:
        handle.write(data[:1024].ljust(1024, b"x"))
    return [out]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--stages", type=int, default=4, help="tasks in a line, one per compute node")
    parser.add_argument("--seconds", type=float, default=2.0, help="each task's time.sleep")
    args = parser.parse_args()
    started_load = rb.load_average()
    print(f"start: {started_load}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        dag, tasks = rb.chain_dag(args.stages)
        work = rb.make_workdir(
            Path(tmp),
            "sleepy",
            dag,
            tasks,
            nodes=args.stages,
            source=lambda task: SLEEPY_SOURCE.format(task=task, seconds=args.seconds),
        )
        system = rb.JupiterSystem(work)
        try:
            deployment = system.deployment
            start = time.perf_counter()
            submit_data(deployment, [(f"in_{i:03d}.bin", b"i" * 1024) for i in range(args.frames)])
            submitted = time.perf_counter() - start
            finished: list[float] = []
            deadline = start + args.frames * args.stages * args.seconds + 120
            while len(finished) < args.frames and time.perf_counter() < deadline:
                counts = wait_frames(deployment, len(finished) + 1, min(20.0, deadline - time.perf_counter()))
                now = time.perf_counter() - start
                finished += [now] * (min(args.frames, counts["done"] + counts["failed"]) - len(finished))
                if counts["failed"]:
                    raise SystemExit(f"{counts['failed']} frames failed")
            flush_events(deployment)
            events = [json.loads(line) for line in (deployment.home_dir / "events.jsonl").read_text().splitlines()]
        finally:
            system.close()
    done = sorted((e for e in events if e["type"] == "frame_done"), key=lambda e: e["time"])
    first, last = finished[0], finished[-1]
    frame_time = args.stages * args.seconds
    pipelined = (args.frames + args.stages - 1) * args.seconds
    print(
        f"{args.frames} frames submitted at once (in {submitted:.2f} s) to {args.stages} stages of "
        f"{args.seconds:g} s each, one stage per node; {started_load} at the start, {rb.load_average()} at the end"
    )
    print(f"{'frame':>5} {'input':<12} {'finished s':>10} {'makespan s':>10}")
    for index, (when, event) in enumerate(zip(finished, done, strict=False)):
        print(f"{index + 1:>5} {event['input']:<12} {when:>10.2f} {event['makespan']:>10.2f}")
    print(
        f"first frame done after {first:.2f} s (one frame's time: {frame_time:g} s); "
        f"last after {last:.2f} s (pipelined: (frames + stages - 1) x {args.seconds:g} s = {pipelined:g} s; "
        f"lock-step would give the first after {args.frames * frame_time:g} s)"
    )


if __name__ == "__main__":
    main()
