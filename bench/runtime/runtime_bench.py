"""Runtime benchmark: Jupiter's local backend against Dask distributed and Ray.

Two DAGs of tiny tasks passing 1 KiB files — chain10 (10 tasks in a line)
and fan (1 -> 4 -> 1) — on 4 local nodes. For each system: frames/s with
300 frames submitted at once, single-frame latency (median of several runs)
and per-hop latency (latency / depth); a floor of plain function calls; and
the RSS of every process of Jupiter's deployment (each agent and each task
worker, by name) while 10,000 frames stream through chain10: after warm-up,
late in the run, its peak, and the growth between the two (`--soak-only
--soak-frames 30000` for the long soak). Every figure comes from this one
run, so ratios compare like with like on a shared, noisy machine: the
three systems are started side by side and take turns, round after round
(the order rotating), so that a slow minute of the host slows all of them
alike. The same code gave chain10
between 170 and 850 frames/s in runs minutes apart, while the systems run one
after the other; interleaved, the ratio of the medians is what to read.

Usage: python bench/runtime/runtime_bench.py [--rounds 7] [--frames 300] [--soak-frames 10000] [--skip ray,dask]
       python bench/runtime/runtime_bench.py --soak-only --soak-frames 30000
Needs: pip install -r bench/requirements.txt
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from jupiter.backends.local import group_members
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.workspace import load_workspace
from jupiter.service.deploy import deploy, teardown
from jupiter.service.planning import static_or_default_mapping
from jupiter.service.record import Deployment
from jupiter.service.run import flush_events, submit_data, wait_frames

PAYLOAD = 1024
TASK_SOURCE = """
import os


def task(filename, pathin, pathout):
    names = filename if isinstance(filename, list) else [filename]
    data = b"".join(open(os.path.join(pathin, name), "rb").read() for name in names)
    out = os.path.join(pathout, "{task}_" + names[0].split("_")[-1])
    with open(out, "wb") as handle:
        handle.write(data[:{size}].ljust({size}, b"x"))
    return [out]
"""


def chain_dag(depth: int = 10) -> tuple[str, list[str]]:
    tasks = [f"t{i}" for i in range(depth)]
    lines = [f"{t} 1 true {tasks[i + 1] if i + 1 < depth else 'home'}" for i, t in enumerate(tasks)]
    return f"{depth}\n" + "\n".join(lines) + "\n", tasks


def fan_dag(width: int = 4) -> tuple[str, list[str]]:
    mids = [f"m{i}" for i in range(width)]
    lines = [f"src 1 true {' '.join(mids)}", *[f"{m} 1 true sink" for m in mids], f"sink {width} true home"]
    return f"{len(lines)}\n" + "\n".join(lines) + "\n", ["src", *mids, "sink"]


PLACEMENTS = ("round-robin", "blocks", "mapper")


def placement(tasks: list[str], names: list[str], how: str) -> dict[str, str]:
    """Task -> node: `round-robin` (every hop of a chain crosses nodes), `blocks` (pipeline stages)."""
    if how == "round-robin":
        return {task: names[i % len(names)] for i, task in enumerate(tasks)}
    size, extra = divmod(len(tasks), len(names))
    mapping: dict[str, str] = {}
    start = 0
    for index, node in enumerate(names):
        count = size + (1 if index < extra else 0)
        mapping.update({task: node for task in tasks[start : start + count]})
        start += count
    return mapping


def make_workdir(
    root: Path,
    name: str,
    dag: str,
    tasks: list[str],
    nodes: int,
    how: str = "round-robin",
    size: int = PAYLOAD,
    source: Callable[[str], str] | None = None,
) -> Path:
    """A workspace of the DAG on `nodes` local nodes; each task writes `size` bytes (`source`: a task's script)."""
    app = root / name / "app"
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "configuration.txt").write_text(dag)
    for task in tasks:
        script = source(task) if source is not None else TASK_SOURCE.format(task=task, size=size)
        (app / "scripts" / f"{task}.py").write_text(script)
    (app / "sample_input" / "in_0.bin").write_bytes(b"i" * min(size, PAYLOAD))
    names = [f"node{i + 1}" for i in range(nodes)]
    (root / name / "nodes.txt").write_text("home localhost\n" + "".join(f"{n} localhost\n" for n in names))
    (root / name / "jupiter_config.ini").write_text(
        "[CONFIG]\nSTATIC_MAPPING = 1\nRUNTIME = 0\n[DEPLOY]\nAPP = app\nMAPPING = mapping.txt\n"
    )
    if how == "mapper":
        # What Jupiter's default scheduler chooses for the DAG on default costs (jupiter map).
        workspace = load_workspace(root / name / "jupiter_config.ini", root / name / "nodes.txt", None)
        measured = resolve_spec(workspace).with_static_mapping(None)
        chosen = static_or_default_mapping(measured)
    else:
        chosen = placement(tasks, names, how)
    (root / name / "mapping.txt").write_text("".join(f"{task} {node}\n" for task, node in chosen.items()))
    return root / name


def load_average() -> str:
    """The machine's load average now, as printed beside every figure."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def wait_done(deployment: Deployment, total: int, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        counts = wait_frames(deployment, total, min(20.0, deadline - time.time()))
        if counts["done"] + counts["failed"] >= total:
            if counts["failed"]:
                raise RuntimeError(f"{counts['failed']} frames failed")
            return
    raise RuntimeError("timeout")


class JupiterSystem:
    """Jupiter's local backend with one deployment of the DAG."""

    name = "jupiter"

    def __init__(self, workdir: Path, payload: int = PAYLOAD, name: str = "jupiter") -> None:
        workspace = load_workspace(workdir / "jupiter_config.ini", workdir / "nodes.txt", None)
        self.deployment = deploy(resolve_spec(workspace))
        self.name = name
        self.payload = payload
        """Bytes of each input file."""
        self.frames = 0
        """Frames submitted so far (each call waits until all of them are done)."""

    def one(self) -> None:
        self._run([(f"lat_{self.frames}.bin", b"i" * self.payload)])

    def burst(self, frames: int) -> None:
        data = b"i" * self.payload
        self._run([(f"in_{self.frames + i}.bin", data) for i in range(frames)])

    def _run(self, files: list[tuple[str, bytes]]) -> None:
        submit_data(self.deployment, files)
        self.frames += len(files)
        wait_done(self.deployment, self.frames)

    def makespans(self) -> list[float]:
        """Per-frame makespans of the single frames, as home measured them."""
        flush_events(self.deployment)
        lines = (self.deployment.home_dir / "events.jsonl").read_text().splitlines()
        events = [json.loads(line) for line in lines]
        return [e["makespan"] for e in events if e["type"] == "frame_done" and e["input"].startswith("lat_")]

    def close(self) -> None:
        teardown(self.deployment)


def process_names(pgid: int, known: dict[int, tuple[str, psutil.Process]]) -> dict[int, tuple[str, psutil.Process]]:
    """Every live process of a local deployment's group, by name: `home`, `node1` (agents), `node1/t0` (workers).

    `known` is the previous answer: names are worked out once per pid.
    """
    found: dict[int, tuple[str, psutil.Process]] = {}
    members = group_members(pgid)
    agents: dict[int, str] = {}
    for pid in members:
        if pid in known:
            found[pid] = known[pid]
            continue
        try:
            process = psutil.Process(pid)
            command = process.cmdline()
        except psutil.Error:
            continue
        if "jupiter.runtime.node" in command and "--node" in command:
            name = command[command.index("--node") + 1]
        elif "jupiter.backends.supervisor" in command:
            name = "supervisor"
        else:
            name = ""  # a task worker (or a frame forked from one): named after its agent below
        found[pid] = (name, process)
    agents = {pid: name for pid, (name, _) in found.items() if name and name != "supervisor"}
    for pid, (name, process) in list(found.items()):
        if name:
            continue
        try:
            command = process.cmdline()
            parent = agents.get(process.ppid(), f"pid{process.ppid()}")
        except psutil.Error:
            del found[pid]
            continue
        script = command[command.index("jupiter.runtime.worker") + 1] if "jupiter.runtime.worker" in command else ""
        found[pid] = (f"{parent}/{Path(script).stem or f'pid{pid}'}", process)
    return found


class RssSampler:
    """The RSS of every process of a local deployment (agents and task workers), sampled in a thread.

    Keeps each process's peak, the peak of their sum, and (`keep`) every sample.
    """

    def __init__(self, deployment: Deployment, interval: float = 0.1, keep: bool = False) -> None:
        self.pgid = int(deployment.info["pgid"])
        self.interval = interval
        self.keep = keep
        self.peaks: dict[str, int] = {}
        self.peak_total = 0
        self.samples: list[dict[str, int]] = []
        self._known: dict[int, tuple[str, psutil.Process]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> dict[str, int]:
        """Each process's RSS now (bytes, by name)."""
        self._known = process_names(self.pgid, self._known)
        now: dict[str, int] = {}
        for name, process in self._known.values():
            try:
                now[name] = now.get(name, 0) + process.memory_info().rss
            except psutil.Error:
                continue
        return now

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.sample()
            for name, rss in now.items():
                self.peaks[name] = max(self.peaks.get(name, 0), rss)
            self.peak_total = max(self.peak_total, sum(now.values()))
            if self.keep:
                self.samples.append(now)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def agent_peaks(self) -> dict[str, int]:
        """Peaks of the agents alone (home and compute nodes)."""
        return {name: peak for name, peak in self.peaks.items() if "/" not in name and name != "supervisor"}


def soak_jupiter(workdir: Path, frames: int, batch: int = 500) -> dict[str, Any]:
    """Stream `frames` frames through a deployment, at most two batches in flight; every process's RSS sampled.

    Returns the throughput and, per process, the median RSS over the second
    tenth of the run (after warm-up; frames stream at a steady rate, so a
    tenth of the time is a tenth of the frames) and over the last tenth, the
    peak, and the RSS once every frame is done.
    """
    workspace = load_workspace(workdir / "jupiter_config.ini", workdir / "nodes.txt", None)
    deployment = deploy(resolve_spec(workspace))
    try:
        with RssSampler(deployment, interval=0.2, keep=True) as sampler:
            start = time.perf_counter()
            for first in range(0, frames, batch):
                count = min(frames, first + batch) - first
                submit_data(deployment, [(f"s_{i}.bin", b"i" * PAYLOAD) for i in range(first, first + count)])
                # Keep at most two batches in flight so the soak measures steady state, not a backlog.
                wait_done(deployment, max(0, first - batch + 1))
            wait_done(deployment, frames)
            elapsed = time.perf_counter() - start
            time.sleep(1.0)  # the statistics of the last frames reach home
            drained = sampler.sample()
    finally:
        teardown(deployment)

    def window(low: float, high: float) -> dict[str, float]:
        count = len(sampler.samples)
        chosen = sampler.samples[int(low * count) : max(int(low * count) + 1, int(high * count))]
        names = {name for sample in chosen for name in sample}
        return {name: statistics.median(s[name] for s in chosen if name in s) / 2**20 for name in names}

    return {
        "frames_per_s": frames / elapsed,
        "warm": window(0.1, 0.2),
        "late": window(0.9, 1.0),
        "peak": {name: peak / 2**20 for name, peak in sampler.peaks.items()},
        "drained": {name: rss / 2**20 for name, rss in drained.items()},
    }


def print_soak(frames: int, soak: dict[str, Any]) -> None:
    """The soak's table: per process, RSS after warm-up, late in the run, its peak, once drained, and the growth."""
    print(
        f"\nsoak: {frames} frames through chain10 at {soak['frames_per_s']:.1f} frames/s; RSS per process (MiB): "
        "median over the second tenth of the run (warm), over the last tenth (late), the peak, once every frame is "
        "done (drained); growth = late - warm"
    )
    print(f"{'process':<14} {'warm':>8} {'late':>8} {'peak':>8} {'drained':>8} {'growth':>8}")
    warm, late = soak["warm"], soak["late"]
    for name in sorted(soak["peak"], key=lambda n: ("/" in n, n)):
        w, last = warm.get(name, float("nan")), late.get(name, float("nan"))
        print(
            f"{name:<14} {w:>8.1f} {last:>8.1f} {soak['peak'][name]:>8.1f} "
            f"{soak['drained'].get(name, float('nan')):>8.1f} {last - w:>+8.1f}"
        )


def tiny(data: bytes) -> bytes:
    return data[:PAYLOAD].ljust(PAYLOAD, b"x")


def tiny_many(*parts: bytes) -> bytes:
    return b"".join(parts)[:PAYLOAD].ljust(PAYLOAD, b"x")


def graph_builder(shape: str, submit: Callable[..., object]) -> Callable[[bytes], object]:
    def chain(data: bytes) -> object:
        ref: object = data
        for _ in range(10):
            ref = submit(tiny, ref)
        return ref

    def fan(data: bytes) -> object:
        src = submit(tiny, data)
        mids = [submit(tiny, src) for _ in range(4)]
        return submit(tiny_many, *mids)

    return chain if shape == "chain10" else fan


class DaskSystem:
    """Dask distributed: LocalCluster(4 workers x 1 thread, processes), client.submit."""

    name = "dask"

    def __init__(self, shape: str) -> None:
        from dask import distributed

        dask: Any = distributed
        self.cluster = dask.LocalCluster(n_workers=4, threads_per_worker=1, processes=True, dashboard_address=None)
        self.client = dask.Client(self.cluster)
        self.build = graph_builder(shape, lambda f, *a: self.client.submit(f, *a, pure=False))

    def one(self) -> None:
        self.build(b"i" * PAYLOAD).result()  # type: ignore[attr-defined]

    def burst(self, frames: int) -> None:
        self.client.gather([self.build(b"i" * PAYLOAD) for _ in range(frames)])

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


class RaySystem:
    """Ray: ray.init(num_cpus=2), remote tasks, no dashboard."""

    name = "ray"

    def __init__(self, shape: str) -> None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        import ray as ray_module

        self.ray: Any = ray_module
        self.ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        tiny_r = self.ray.remote(tiny)
        many_r = self.ray.remote(tiny_many)

        def submit(f: Callable[..., bytes], *args: object) -> object:
            return (tiny_r if f is tiny else many_r).remote(*args)

        self.build = graph_builder(shape, submit)

    def one(self) -> None:
        self.ray.get(self.build(b"i" * PAYLOAD))

    def burst(self, frames: int) -> None:
        self.ray.get([self.build(b"i" * PAYLOAD) for _ in range(frames)])

    def close(self) -> None:
        self.ray.shutdown()


def interleaved(
    systems: list[Any], frames: int, latency_runs: int, rounds: int, warmup: int
) -> dict[str, dict[str, Any]]:
    """Every system runs round after round, in turn (the order rotating), so all see the same noise.

    A round is `latency_runs` single frames (a short pause between them)
    then `frames` frames at once. Returns per system the latency samples
    and the frames/s of each round.
    """
    for system in systems:
        system.burst(warmup)
    figures: dict[str, dict[str, Any]] = {system.name: {"latencies": [], "rates": []} for system in systems}
    for round_ in range(rounds):
        order = systems[round_ % len(systems) :] + systems[: round_ % len(systems)]
        for system in order:
            for _ in range(latency_runs):
                time.sleep(0.05)
                start = time.perf_counter()
                system.one()
                figures[system.name]["latencies"].append(time.perf_counter() - start)
            start = time.perf_counter()
            system.burst(frames)
            figures[system.name]["rates"].append(frames / (time.perf_counter() - start))
        print(
            f"  round {round_ + 1}: "
            + ", ".join(f"{name} {figures[name]['rates'][-1]:.3g} frames/s" for name in figures),
            file=sys.stderr,
        )
    return figures


def bench_floor(shape: str, frames: int) -> dict[str, list[float]]:
    """Plain function calls: what the DAG costs with no runtime at all."""
    build = graph_builder(shape, lambda f, *a: f(*a))
    start = time.perf_counter()
    for _ in range(frames):
        build(b"i" * PAYLOAD)
    elapsed = time.perf_counter() - start
    return {"rates": [frames / elapsed], "latencies": [elapsed / frames]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--latency-runs", type=int, default=3, help="single frames per system and round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per system, interleaved; medians are kept")
    parser.add_argument("--warmup", type=int, default=100, help="frames each system runs before the first round")
    parser.add_argument("--soak-frames", type=int, default=10_000, help="0 skips the memory soak")
    parser.add_argument("--skip", default="", help="comma list of: dask,ray")
    parser.add_argument("--soak-only", action="store_true", help="only the 10,000-frame memory soak")
    parser.add_argument(
        "--placement",
        choices=PLACEMENTS,
        default="round-robin",
        help="Jupiter's mapping of the DAGs on the 4 nodes: round-robin (every chain hop crosses nodes; default), "
        "blocks (contiguous pipeline stages), mapper (what the default scheduler picks on default costs)",
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    depth = {"chain10": 10, "fan": 3}
    started_load = load_average()
    print(f"start: {started_load}", file=sys.stderr)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    makespans: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dirs = {
            "chain10": make_workdir(root, "chain10", *chain_dag(), nodes=4, how=args.placement),
            "fan": make_workdir(root, "fan", *fan_dag(), nodes=4, how=args.placement),
        }
        used = {shape: _nodes_used(folder) for shape, folder in dirs.items()}
        for shape in () if args.soak_only else ("chain10", "fan"):
            print(f"{shape}: starting the systems", file=sys.stderr)
            systems: list[Any] = []
            try:
                jupiter = JupiterSystem(dirs[shape])
                systems.append(jupiter)
                if "dask" not in skip:
                    systems.append(DaskSystem(shape))
                if "ray" not in skip:
                    systems.append(RaySystem(shape))
                results[shape] = interleaved(systems, args.frames, args.latency_runs, args.rounds, args.warmup)
                makespans[shape] = jupiter.makespans()
            finally:
                for system in reversed(systems):
                    system.close()
            results[shape]["floor"] = bench_floor(shape, args.frames)
        soak = soak_jupiter(dirs["chain10"], args.soak_frames) if args.soak_frames else None

    if results:
        print(
            f"\n{args.frames} frames at once, 1 KiB files, 4 local nodes "
            f"({args.placement} placement: chain10 on {used['chain10']} nodes, fan on {used['fan']}); "
            f"{args.rounds} rounds per system, interleaved so that every system sees the same noise; "
            f"frames/s = median over rounds; latency = median of {args.rounds * args.latency_runs} single frames, "
            f"measured by the client; {started_load} at the start, {load_average()} at the end"
        )
        print(f"{'dag':<8} {'system':<8} {'frames/s':>10} {'min':>8} {'max':>8} {'latency ms':>11} {'per-hop ms':>11}")
        for shape, figures in results.items():
            for system, numbers in figures.items():
                rates, latency = numbers["rates"], statistics.median(numbers["latencies"])
                print(
                    f"{shape:<8} {system:<8} {statistics.median(rates):>10.1f} {min(rates):>8.1f} {max(rates):>8.1f} "
                    f"{latency * 1e3:>11.2f} {latency * 1e3 / depth[shape]:>11.3f}"
                )
        for shape, values in makespans.items():
            makespan = statistics.median(values)
            print(
                f"{shape:<8} jupiter per-frame makespan measured by home: {makespan * 1e3:.2f} ms "
                f"({makespan * 1e3 / depth[shape]:.3f} ms per hop)"
            )
        print(
            "\nratios (jupiter / peer): frames/s (of the medians; median and range of the same-round ratios), latency"
        )
        for shape, figures in results.items():
            ours = figures["jupiter"]
            for peer in ("ray", "dask"):
                if peer not in figures:
                    continue
                theirs = figures[peer]
                paired = [mine / other for mine, other in zip(ours["rates"], theirs["rates"], strict=True)]
                rate = statistics.median(ours["rates"]) / statistics.median(theirs["rates"])
                latency = statistics.median(ours["latencies"]) / statistics.median(theirs["latencies"])
                print(
                    f"{shape:<8} vs {peer:<5} throughput x{rate:.2f}"
                    f" (same round: median x{statistics.median(paired):.2f}, x{min(paired):.2f}..x{max(paired):.2f})"
                    f"   per-hop latency x{latency:.2f}"
                )
    if soak:
        print_soak(args.soak_frames, soak)
        print(f"(soak ended at {load_average()})")


def _nodes_used(workdir: Path) -> int:
    return len({line.split()[1] for line in (workdir / "mapping.txt").read_text().splitlines() if line.strip()})


if __name__ == "__main__":
    main()
