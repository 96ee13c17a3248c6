"""Profilers and measured mapping on an emulated heterogeneous testbed (issue 4's figures).

Three parts, each printing its figures and ratios measured in this run:

* `accuracy`: the network profiler over the real data plane on emulated
  links of 1, 10 and 100 Mbit/s with 0, 10 and 50 ms latency, one link at
  a time as `jupiter profile` probes them: fit from test files, then
  transfers of 10 KB-10 MB compared with the fit's prediction (target:
  within 15%). `--parallel` probes all nine at once in one event loop, which
  is three times faster and shows why the profiler does not: a 10 MB probe
  holds the loop for tens of milliseconds (checksums), and the 1 ms
  transfers of the fast links come out up to 70% off.
* `speed`: `jupiter profile` on the shipped testbed (node1 at speed 1,
  node2-4 at 0.25) with a bench app of 50-200 ms tasks: each node's total
  profiled time relative to node1 against the configured ratio 4 (target:
  within 15%).
* `e2e`: the same app and testbed, frames one at a time: mean per-frame
  makespan with the profiled `heft` mapping vs a random mapping and vs all
  tasks on one slow node (targets: <= 0.7x both), and heft's predicted
  makespan vs the measured one (target: within 20%).

    .venv/bin/python bench/testbed/testbed_bench.py            # all parts (about 35 minutes, accuracy 27)
    .venv/bin/python bench/testbed/testbed_bench.py --quick    # files up to 1 MB, fewer frames (about 6 minutes)
    .venv/bin/python bench/testbed/testbed_bench.py e2e --frames 8
    .venv/bin/python bench/testbed/testbed_bench.py --quick --parallel accuracy   # all links at once (47 s)

The machine is shared and noisy: makespans are medians over frames.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from jupiter.model.bundled import data_dir
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.plan import NodeAddress, PlanProfiling
from jupiter.model.testbed import Testbed
from jupiter.model.workspace import Workspace, load_workspace
from jupiter.profiling.fit import fit_link
from jupiter.runtime.emulation import Emulation
from jupiter.runtime.extensions.probing import Probing
from jupiter.runtime.protocol import check, read_message, refusal_reply
from jupiter.service.deploy import deploy, teardown
from jupiter.service.record import Deployment
from jupiter.service.run import collect_inputs, flush_events, home_frames, profile, submit
from jupiter.tools.dummy import DummySpec, generate_app

TOKEN = "bench-token-" + "x" * 20
KB, MB = 1024, 1024 * 1024

# ------------------------------------------------------------------ accuracy


async def _receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while (message := await read_message(reader)) is not None:
        problem = check(message, TOKEN)
        writer.write(refusal_reply(problem))
        await writer.drain()
    writer.close()


async def _one_link(mbit: float, latency: float, fit_sizes: list[int], check_sizes: list[int]) -> list[Any]:
    server = await asyncio.start_server(_receiver, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    agent = SimpleNamespace(
        node="a",
        token=TOKEN,
        plan=SimpleNamespace(profiling=PlanProfiling(), nodes={"b": NodeAddress("b", "compute", "127.0.0.1", port, 0)}),
        emulation=Emulation("a", Testbed(links={("a", "b"): (mbit * 1e6 / 8, latency)})),
    )
    service = Probing(cast(Any, agent))
    fit = fit_link("a", "b", await service.measure("b", fit_sizes, 2))
    rows = []
    # The measured time of a size is the median of three transfers (single millisecond transfers are noisy).
    checks = await service.measure("b", check_sizes, 3)
    for size in check_sizes:
        measured = statistics.median(t for z, t in checks if z == size)
        predicted = fit.predict(size)
        rows.append((mbit, latency, size, measured, predicted, predicted / measured - 1))
    server.close()
    await server.wait_closed()
    return rows


def accuracy(quick: bool, parallel: bool = False) -> bool:
    top = MB if quick else 10 * MB
    fit_sizes = [KB, 10 * KB, 100 * KB, MB] + ([] if quick else [10 * MB])
    check_sizes = [10 * KB, 100 * KB, MB] + ([] if quick else [10 * MB])
    print(
        f"\n== network profiler accuracy (fit on {fit_sizes[0]}..{top} bytes x2, "
        f"check 10 KB..{top // KB} KB, median of 3; links {'all at once' if parallel else 'one at a time'})"
    )

    async def main() -> list[list[Any]]:
        links = [(mbit, lat) for mbit in (1, 10, 100) for lat in (0.0, 0.010, 0.050)]
        if parallel:
            return await asyncio.gather(*(_one_link(m, lat, fit_sizes, check_sizes) for m, lat in links))
        return [await _one_link(m, lat, fit_sizes, check_sizes) for m, lat in links]

    started = time.time()
    results = [row for rows in asyncio.run(main()) for row in rows]
    print(f"{'Mbit/s':>7} {'lat ms':>7} {'bytes':>9} {'measured s':>11} {'predicted s':>12} {'error':>7}")
    for mbit, lat, size, measured, predicted, error in results:
        print(f"{mbit:>7} {lat * 1000:>7.0f} {size:>9} {measured:>11.4f} {predicted:>12.4f} {error:>+7.1%}")
    per_link: dict[tuple[float, float], float] = {}
    for mbit, lat, _, _, _, error in results:
        per_link[(mbit, lat)] = max(per_link.get((mbit, lat), 0.0), abs(error))
    print("worst error per link: " + ", ".join(f"{m}/{lat * 1000:.0f}ms {e:.1%}" for (m, lat), e in per_link.items()))
    worst = float(max(abs(r[5]) for r in results))
    print(f"worst error {worst:.1%} over {len(results)} transfers (target <= 15%) in {time.time() - started:.0f} s")
    return worst <= 0.15


# ------------------------------------------------------------ the workspace


def make_workdir(folder: Path, frames_samples: int = 2) -> Path:
    """The shipped nodes.txt and testbed, a bench app with 50-200 ms tasks and 100 KB-1 MB outputs."""
    shutil.copyfile(data_dir() / "nodes.txt", folder / "nodes.txt")
    shutil.copyfile(data_dir() / "testbed.ini", folder / "testbed.ini")
    spec = DummySpec(
        tasks=10,
        seed=7,
        cpu_seconds=(0.05, 0.2),
        output_bytes=(100 * KB, MB),
        samples=frames_samples,
        sample_bytes=(10 * KB, 20 * KB),
    )
    generate_app(folder / "app_specific_files" / "bench_app", spec, overwrite=True)
    (folder / "jupiter_config.ini").write_text(
        "[CONFIG]\nSCHEDULER = heft\n[DEPLOY]\nAPP = app_specific_files/bench_app\n"
        "[PROFILING]\nTESTBED = testbed.ini\nNETWORK_SIZES = 1K 10K 100K 1M\nNETWORK_SAMPLES = 2\nEXEC_RUNS = 2\n"
    )
    return folder


def workspace_of(folder: Path) -> Workspace:
    return load_workspace(folder / "jupiter_config.ini", folder / "nodes.txt", None)


def speed(folder: Path) -> bool:
    print("\n== execution profile vs emulated speed factors (shipped testbed.ini: node1 = 1, node2-4 = 0.25)")
    workspace = workspace_of(folder)
    started = time.time()
    document = profile(resolve_spec(workspace), folder / "profile.json", progress=lambda _: None)
    execution = document["execution"]
    totals = {node: sum(execution[t][node]["seconds"] for t in execution) for node in document["nodes"]}
    ok = True
    print(f"{'node':<8} {'total s':>9} {'vs node1':>9} {'configured':>11} {'error':>7}")
    for node, total in totals.items():
        ratio = total / totals["node1"]
        configured = 1.0 if node == "node1" else 4.0
        error = ratio / configured - 1
        ok &= abs(error) <= 0.15
        print(f"{node:<8} {total:>9.3f} {ratio:>9.2f} {configured:>11.2f} {error:>+7.1%}")
    print(f"(profiled in {time.time() - started:.0f} s; target: every ratio within 15%)")
    return ok


# ----------------------------------------------------------------------- e2e


def _frames(deployment: Deployment, workspace: Workspace, count: int) -> list[float]:
    """Submit frames one at a time; per-frame makespans from home's event log."""
    inputs = collect_inputs(resolve_spec(workspace), None, count)
    for i, frame in enumerate(inputs):
        submit(deployment, [frame])
        deadline = time.time() + 120
        while True:
            counts = home_frames(deployment)
            if counts["done"] + counts["failed"] > i:
                break
            if time.time() > deadline:
                raise RuntimeError(f"frame {i} did not finish; see {deployment.root / 'logs'}")
            time.sleep(0.02)
    flush_events(deployment)
    events = [json.loads(line) for line in (deployment.home_dir / "events.jsonl").read_text().splitlines()]
    failed = [e for e in events if e["type"] == "frame_failed"]
    if failed:
        raise RuntimeError(f"{len(failed)} frames failed: {failed[0]['error'][-300:]}")
    return [e["makespan"] for e in events if e["type"] == "frame_done"]


def _run(workspace: Workspace, count: int, mapping_file: Path | None) -> tuple[list[float], dict[str, Any]]:
    deployment = deploy(resolve_spec(workspace, mapping_file), reprofile=False)
    try:
        spans = _frames(deployment, workspace, count)
        predicted = json.loads(p.read_text()) if (p := deployment.root / "mapping.json").exists() else {}
        return spans, {"mapping": deployment.mapping, **predicted}
    finally:
        teardown(deployment)


def e2e(folder: Path, count: int, seeds: int) -> bool:
    print(f"\n== end to end on the shipped testbed: {count} frames one at a time per mapping")
    workspace = workspace_of(folder)
    tasks = workspace.app.dag.order
    compute = [node.name for node in workspace.nodes.compute]
    started = time.time()
    heft_spans, heft = _run(workspace, count, None)
    results = {"heft (profiled)": heft_spans}
    for seed in range(seeds):
        rng = random.Random(seed)
        path = folder / f"random{seed}.txt"
        path.write_text("".join(f"{task} {rng.choice(compute)}\n" for task in tasks))
        results[f"random (seed {seed})"], _ = _run(workspace, count, path)
    slow = folder / "slow.txt"
    slow.write_text("".join(f"{task} node2\n" for task in tasks))
    results["all on node2 (slow)"], _ = _run(workspace, count, slow)
    print(f"heft mapping: {heft['mapping']}")
    print(f"{'mapping':<22} {'median s':>9} {'mean s':>8} {'heft / this':>12}")
    heft_median = statistics.median(heft_spans)
    for name, spans in results.items():
        print(
            f"{name:<22} {statistics.median(spans):>9.3f} {statistics.mean(spans):>8.3f} "
            f"{heft_median / statistics.median(spans):>12.2f}"
        )
    random_medians = [statistics.median(v) for k, v in results.items() if k.startswith("random")]
    random_ratio = heft_median / statistics.median(random_medians)
    slow_ratio = heft_median / statistics.median(results["all on node2 (slow)"])
    predicted = float(heft["makespan"])
    error = predicted / heft_median - 1
    print(
        f"heft / random: {random_ratio:.2f} (target <= 0.70); heft / one slow node: {slow_ratio:.2f} (target <= 0.70)"
    )
    print(
        f"heft predicted makespan {predicted:.3f} s vs measured median {heft_median:.3f} s: {error:+.1%} (target 20%)"
    )
    print(f"(e2e in {time.time() - started:.0f} s)")
    return random_ratio <= 0.7 and slow_ratio <= 0.7 and abs(error) <= 0.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", help="accuracy, speed, e2e (default: all)")
    parser.add_argument("--quick", action="store_true", help="files up to 1 MB, 5 frames")
    parser.add_argument("--frames", type=int, default=None, help="frames per mapping (default 10, quick 5)")
    parser.add_argument("--seeds", type=int, default=1, help="random mappings to compare with")
    parser.add_argument("--parallel", action="store_true", help="accuracy: probe all links at once (faster, disturbed)")
    args = parser.parse_args()
    parts = args.parts or ["accuracy", "speed", "e2e"]
    unknown = set(parts) - {"accuracy", "speed", "e2e"}
    if unknown:
        parser.error(f"unknown part(s) {sorted(unknown)}; use accuracy, speed, e2e")
    frames = args.frames or (5 if args.quick else 10)
    verdicts = {}
    with tempfile.TemporaryDirectory(prefix="jupiter-testbed-") as tmp:
        folder = make_workdir(Path(tmp))
        if "accuracy" in parts:
            verdicts["accuracy"] = accuracy(args.quick, args.parallel)
        if "speed" in parts:
            verdicts["speed"] = speed(folder)
        if "e2e" in parts:
            verdicts["e2e"] = e2e(folder, frames, args.seeds)
    print("\n" + "  ".join(f"{part}: {'met' if ok else 'MISSED'}" for part, ok in verdicts.items()))


if __name__ == "__main__":
    main()
