"""Workloads benchmark: Jupiter's local backend against Ray and Dask on big frames, wide fans and CPU-bound tasks.

What it measures, per workload, for each system:

  a. chain of 5 tasks, 4 MiB per hop, 40 frames submitted at once: frames/s,
     MB/s (frames/s x frame size), client-measured single-frame latency and
     per-hop latency (latency / depth, median of several single frames);
     the peak RSS summed over Jupiter's processes (agents and task workers)
     and the largest single agent's. Targets: Jupiter >= 2x Ray (objects)
     frames/s, per-hop latency <= Ray's.
  b. the same chain with 64 MiB frames (6 at once): every Jupiter agent's
     peak RSS (sampled 10 times a second, per process) must stay under 200 MiB.
  c. fan 1 -> 32 -> 1, 1 KiB, 200 frames at once: frames/s.
  d. fan 1 -> 8 -> 1, each middle task burning 20 ms of CPU (a busy loop),
     50 frames at once: frames/s (everybody should be near the 2-core limit).
  e. chain10 and fan 1 -> 4 -> 1, 1 KiB: `runtime_bench.py --soak-frames 0`,
     run as it is, its tables printed after the others.

The systems:

* jupiter: the local backend, a static round-robin mapping of the tasks over
  4 compute nodes (home is the fifth agent), as runtime_bench.py deploys
  it; the client submits the frames to home and waits on home's long poll
  (`wait_frames`), so its latency is client-measured like the others';
* ray-objects: `@ray.remote` tasks, each given the ObjectRef of its parent
  (no driver round trip), `ray.get` on the final refs only;
* ray-files: the same, but tasks read their input file from a shared
  folder (in memory, as Jupiter's spool) and write their output there,
  passing paths;
* dask-objects: `dask.delayed` calls building one graph for the whole
  burst, computed with one `client.compute` (LocalCluster: 4 worker
  processes of 1 thread);
* dask-files: the same graph over file paths.

Each task reads its inputs and writes (or returns) `size` bytes; every frame's
input is distinct bytes (no system can share one input between frames).
Every system is started once per workload and they take turns, round after
round, the order rotating (`runtime_bench.interleaved`), so a slow minute of
the shared machine slows all of them alike: read the medians and the
same-round ratios. The load average is printed at the start, at the end
and beside each table.

Usage:
    .venv/bin/python bench/runtime/workloads_bench.py                   # everything, about 10-15 minutes
    .venv/bin/python bench/runtime/workloads_bench.py --only a,b --rounds 3 --skip dask
    .venv/bin/python bench/runtime/workloads_bench.py --only a --size-a 8M --frames-a 20
Needs: pip install -r bench/requirements.txt (Ray runs with RAY_AUTH_MODE=disabled).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jupiter.backends.local import MEMORY_FOLDER, in_memory
from jupiter.model.task_settings import parse_size

sys.path.insert(0, str(Path(__file__).parent))
import runtime_bench as rb  # the bench's own helpers, next to this file

MiB = 1024**2
AGENT_RSS_LIMIT = 200 * MiB
"""Workload b's target: every agent's RSS under this while 64 MiB frames flow."""

BURN_SOURCE = """
import os
import time


def task(filename, pathin, pathout):
    # {burn} s of CPU (a busy loop on the thread's CPU clock, so a busy machine makes it longer, not shorter).
    end = time.thread_time() + {burn}
    while time.thread_time() < end:
        pass
    names = filename if isinstance(filename, list) else [filename]
    data = b"".join(open(os.path.join(pathin, name), "rb").read() for name in names)
    out = os.path.join(pathout, "{task}_" + names[0].split("_")[-1])
    with open(out, "wb") as handle:
        handle.write(data[:{size}].ljust({size}, b"x"))
    return [out]
"""
"""A middle task of workload d: runtime_bench's task after a busy loop."""


@dataclass(frozen=True)
class Workload:
    """One DAG, frame size and burst."""

    key: str
    title: str
    shape: str
    """`chain` (`width` tasks in a line) or `fan` (1 -> `width` -> 1)."""
    width: int
    size: int
    """Bytes of every file (each input and each task's output)."""
    frames: int
    """Frames submitted at once per round."""
    latency_runs: int
    """Single frames per system and round (client-measured latency)."""
    rounds: int
    """Interleaved rounds per system (unless `--rounds` says otherwise)."""
    burn: float = 0.0
    """CPU seconds of each middle task of a fan."""
    warmup: int = 0
    """Frames each system runs before the first round (0: one burst's worth)."""

    @property
    def depth(self) -> int:
        """Tasks on the longest path (latency / depth = per-hop latency)."""
        return self.width if self.shape == "chain" else 3

    def dag(self) -> tuple[str, list[str]]:
        return rb.chain_dag(self.width) if self.shape == "chain" else rb.fan_dag(self.width)

    def burn_of(self, task: str) -> float:
        """CPU seconds `task` burns (the middle tasks of a fan)."""
        return self.burn if self.shape == "fan" and task.startswith("m") else 0.0

    def script(self, task: str) -> str:
        burn = self.burn_of(task)
        source = BURN_SOURCE if burn else rb.TASK_SOURCE
        return source.format(task=task, size=self.size, burn=burn)


WORKLOADS = {
    "a": Workload("a", "chain5, 4 MiB per hop", "chain", 5, 4 * MiB, 40, 3, rounds=5),
    "b": Workload("b", "chain5, 64 MiB per hop", "chain", 5, 64 * MiB, 6, 1, rounds=3, warmup=2),
    "c": Workload("c", "fan 1->32->1, 1 KiB", "fan", 32, 1024, 200, 2, rounds=3, warmup=50),
    "d": Workload("d", "fan 1->8->1, 20 ms CPU per middle task", "fan", 8, 1024, 50, 2, rounds=3, burn=0.02, warmup=10),
}


# ------------------------------------------------------------- the tasks of Ray and Dask


def spin(seconds: float) -> None:
    """Burn `seconds` of this thread's CPU (not the process's: Ray's and Dask's workers run other threads too)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def hop(data: bytes, size: int, burn: float) -> bytes:
    spin(burn)
    return data[:size].ljust(size, b"x")


def join(size: int, *parts: bytes) -> bytes:
    return b"".join(parts)[:size].ljust(size, b"x")


def hop_file(path: str, size: int, burn: float, folder: str) -> str:
    spin(burn)
    with open(path, "rb") as handle:
        data = handle.read()
    out = os.path.join(folder, uuid.uuid4().hex)
    with open(out, "wb") as handle:
        handle.write(data[:size].ljust(size, b"x"))
    return out


def join_file(size: int, folder: str, *paths: str) -> str:
    data = b""
    for path in paths:
        with open(path, "rb") as handle:
            data += handle.read()
    out = os.path.join(folder, uuid.uuid4().hex)
    with open(out, "wb") as handle:
        handle.write(data[:size].ljust(size, b"x"))
    return out


def inputs(count: int, size: int, first: int) -> list[bytes]:
    """Distinct input bytes for `count` frames (no system may share one input between frames)."""
    return [f"{first + i:012d}".encode().ljust(size, b"i")[:size] for i in range(count)]


Submit = Callable[..., Any]


def build(workload: Workload, submit: Submit, source: Any, files: str | None) -> Any:
    """One frame's graph: `submit(function, *arguments)` per task, each given its parents' results.

    `files`: the shared folder of the file-passing variants (tasks take and return paths), else None.
    """
    size = workload.size
    if workload.shape == "chain":
        ref = source
        for _ in range(workload.width):
            ref = submit(hop_file, ref, size, 0.0, files) if files else submit(hop, ref, size, 0.0)
        return ref
    first = submit(hop_file, source, size, 0.0, files) if files else submit(hop, source, size, 0.0)
    if files:
        mids = [submit(hop_file, first, size, workload.burn, files) for _ in range(workload.width)]
        return submit(join_file, size, files, *mids)
    mids = [submit(hop, first, size, workload.burn) for _ in range(workload.width)]
    return submit(join, size, *mids)


def shared_folder() -> str:
    """A folder for the file-passing variants: in memory when the machine has it, as Jupiter's spool is."""
    return tempfile.mkdtemp(prefix="workloads-", dir=MEMORY_FOLDER if in_memory(MEMORY_FOLDER) else None)


class FileInputs:
    """The file variants' inputs: written by the client into the shared folder, as part of the timed work."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def write(self, data: list[bytes]) -> list[str]:
        paths = []
        for item in data:
            path = os.path.join(self.folder, f"in-{uuid.uuid4().hex}")
            with open(path, "wb") as handle:
                handle.write(item)
            paths.append(path)
        return paths

    def clear(self) -> None:
        for name in os.listdir(self.folder):
            os.unlink(os.path.join(self.folder, name))


# ------------------------------------------------------------------ the systems


class Jupiter(rb.JupiterSystem):
    """Jupiter's local backend (runtime_bench's system) with distinct inputs and every process's RSS sampled."""

    def __init__(self, workload: Workload, root: Path) -> None:
        dag, tasks = workload.dag()
        name = f"w{workload.key}"
        work = rb.make_workdir(root, name, dag, tasks, nodes=4, size=workload.size, source=workload.script)
        super().__init__(work, payload=workload.size)
        self.sampler = rb.RssSampler(self.deployment, interval=0.1).__enter__()

    def one(self) -> None:
        self._run([(f"lat_{self.frames}.bin", inputs(1, self.payload, self.frames)[0])])

    def burst(self, frames: int) -> None:
        data = inputs(frames, self.payload, self.frames)
        self._run([(f"in_{self.frames + i}.bin", item) for i, item in enumerate(data)])

    def close(self) -> None:
        self.sampler.__exit__()
        super().close()


class RayRuntime:
    """One Ray instance (`ray.init(num_cpus=2)`, no dashboard) for both Ray variants."""

    def __init__(self) -> None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        import ray

        self.ray: Any = ray
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        self.remote = {function: ray.remote(function) for function in (hop, join, hop_file, join_file)}

    def submit(self, function: Callable[..., Any], *arguments: Any) -> Any:
        return self.remote[function].remote(*arguments)

    def close(self) -> None:
        self.ray.shutdown()


class RaySystem:
    """Ray tasks given their parents' ObjectRefs; `ray.get` on the final refs only (`files`: paths in a folder)."""

    def __init__(self, runtime: RayRuntime, workload: Workload, files: bool) -> None:
        self.runtime = runtime
        self.workload = workload
        self.name = "ray-files" if files else "ray-objects"
        self.files = FileInputs(shared_folder()) if files else None
        self.count = 0

    def _run(self, frames: int) -> None:
        data = inputs(frames, self.workload.size, self.count)
        self.count += frames
        folder = self.files.folder if self.files else None
        sources: list[Any] = self.files.write(data) if self.files else data
        finals = [build(self.workload, self.runtime.submit, source, folder) for source in sources]
        self.runtime.ray.get(finals)
        if self.files:
            self.files.clear()

    def one(self) -> None:
        self._run(1)

    def burst(self, frames: int) -> None:
        self._run(frames)

    def close(self) -> None:
        if self.files:
            shutil.rmtree(self.files.folder, ignore_errors=True)


class DaskRuntime:
    """One Dask LocalCluster (4 worker processes x 1 thread, no dashboard) and its client, for both variants."""

    def __init__(self) -> None:
        import dask
        from dask import distributed

        self.dask: Any = dask
        untyped: Any = distributed  # as runtime_bench.py: distributed's constructors carry no annotations
        self.cluster = untyped.LocalCluster(n_workers=4, threads_per_worker=1, processes=True, dashboard_address=None)
        self.client: Any = untyped.Client(self.cluster)
        # The graph holds the frames' inputs, which the client has to send anyway (as Jupiter's client uploads them).
        warnings.filterwarnings("ignore", "Sending large graph", UserWarning)

    def submit(self, function: Callable[..., Any], *arguments: Any) -> Any:
        # pure=False: a key of its own per call, and no hashing of megabytes of input to name it.
        return self.dask.delayed(function, pure=False)(*arguments)

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


class DaskSystem:
    """One `dask.delayed` graph for the whole burst, one `client.compute`, results gathered (`files`: paths)."""

    def __init__(self, runtime: DaskRuntime, workload: Workload, files: bool) -> None:
        self.runtime = runtime
        self.workload = workload
        self.name = "dask-files" if files else "dask-objects"
        self.files = FileInputs(shared_folder()) if files else None
        self.count = 0

    def _run(self, frames: int) -> None:
        data = inputs(frames, self.workload.size, self.count)
        self.count += frames
        folder = self.files.folder if self.files else None
        raw: list[Any] = self.files.write(data) if self.files else data
        # Inputs wrapped once each (Dask's advice for concrete data passed to delayed calls).
        sources = [self.runtime.dask.delayed(item, pure=False) for item in raw]
        finals = [build(self.workload, self.runtime.submit, source, folder) for source in sources]
        client = self.runtime.client
        client.gather(client.compute(finals))
        if self.files:
            self.files.clear()

    def one(self) -> None:
        self._run(1)

    def burst(self, frames: int) -> None:
        self._run(frames)

    def close(self) -> None:
        if self.files:
            shutil.rmtree(self.files.folder, ignore_errors=True)


# ------------------------------------------------------------------- running


def run_workload(
    workload: Workload, root: Path, skip: set[str]
) -> tuple[dict[str, dict[str, Any]], rb.RssSampler, str]:
    """Every system of one workload, interleaved; returns their figures, Jupiter's RSS sampler and the start load."""
    load = rb.load_average()
    print(f"workload {workload.key} ({workload.title}): starting the systems; {load}", file=sys.stderr)
    closers: list[Callable[[], None]] = []
    systems: list[Any] = []
    try:
        jupiter = Jupiter(workload, root)
        closers.append(jupiter.close)
        systems.append(jupiter)
        if "ray" not in skip:
            ray = RayRuntime()
            closers.append(ray.close)
            for files in (False, True):
                system = RaySystem(ray, workload, files)
                closers.append(system.close)
                systems.append(system)
        if "dask" not in skip:
            dask = DaskRuntime()
            closers.append(dask.close)
            for files in (False, True):
                dask_system = DaskSystem(dask, workload, files)
                closers.append(dask_system.close)
                systems.append(dask_system)
        figures = rb.interleaved(
            systems, workload.frames, workload.latency_runs, workload.rounds, workload.warmup or workload.frames
        )
    finally:
        for close in reversed(closers):
            close()
    return figures, jupiter.sampler, load


def print_table(workload: Workload, figures: dict[str, dict[str, Any]], load: str) -> None:
    """Frames/s, MB/s and client-measured latency per system, then Jupiter's ratios to every peer."""
    print(
        f"\nworkload {workload.key}: {workload.title}, {workload.frames} frames at once, {workload.rounds} rounds "
        f"interleaved (medians; latency: median of {workload.rounds * workload.latency_runs} single frames, "
        "client-measured); "
        f"{load} at the start, {rb.load_average()} at the end"
    )
    print(f"{'system':<13} {'frames/s':>9} {'min':>8} {'max':>8} {'MB/s':>8} {'latency ms':>11} {'per-hop ms':>11}")
    for name, numbers in figures.items():
        rates = numbers["rates"]
        latency = statistics.median(numbers["latencies"]) if numbers["latencies"] else float("nan")
        rate = statistics.median(rates)
        print(
            f"{name:<13} {rate:>9.2f} {min(rates):>8.2f} {max(rates):>8.2f} {rate * workload.size / 1e6:>8.1f} "
            f"{latency * 1e3:>11.1f} {latency * 1e3 / workload.depth:>11.2f}"
        )
    ours = figures["jupiter"]
    for peer, theirs in figures.items():
        if peer == "jupiter":
            continue
        paired = [mine / other for mine, other in zip(ours["rates"], theirs["rates"], strict=True)]
        rate = statistics.median(ours["rates"]) / statistics.median(theirs["rates"])
        line = (
            f"  jupiter / {peer:<13} frames/s x{rate:.2f} (same round: median x{statistics.median(paired):.2f}, "
            f"x{min(paired):.2f}..x{max(paired):.2f})"
        )
        if ours["latencies"] and theirs["latencies"]:
            latency = statistics.median(ours["latencies"]) / statistics.median(theirs["latencies"])
            line += f"   per-hop latency x{latency:.2f}"
        print(line)


def print_memory(workload: Workload, sampler: rb.RssSampler) -> None:
    """Jupiter's RSS: the peak of the sum over its processes, every process's peak, the largest agent's."""
    agents = sampler.agent_peaks()
    largest = max(agents, key=lambda name: agents[name])
    print(
        f"  jupiter RSS (sampled every {sampler.interval:g} s): peak of the sum over {len(sampler.peaks)} processes "
        f"{sampler.peak_total / MiB:.0f} MiB; largest agent {largest} {agents[largest] / MiB:.1f} MiB"
    )
    shown = sorted(sampler.peaks, key=lambda name: ("/" in name, name))
    print("  peaks (MiB): " + ", ".join(f"{name} {sampler.peaks[name] / MiB:.1f}" for name in shown))
    if workload.key == "b":
        over = [name for name, peak in agents.items() if peak >= AGENT_RSS_LIMIT]
        verdict = f"over: {', '.join(over)}" if over else "every agent under it"
        print(f"  target: every agent under {AGENT_RSS_LIMIT / MiB:.0f} MiB: {verdict}")


def print_targets(figures: dict[str, dict[str, Any]]) -> None:
    """Workload a's targets against Ray's objects variant."""
    if "ray-objects" not in figures:
        return
    ours, ray = figures["jupiter"], figures["ray-objects"]
    rate = statistics.median(ours["rates"]) / statistics.median(ray["rates"])
    latency = statistics.median(ours["latencies"]) / statistics.median(ray["latencies"])
    print(
        f"  targets: frames/s >= 2x ray-objects: x{rate:.2f} ({'met' if rate >= 2 else 'missed'}); "
        f"per-hop latency <= ray-objects': x{latency:.2f} ({'met' if latency <= 1 else 'missed'})"
    )


def run_chain10(rounds: int, skip: set[str]) -> None:
    """Workload e: runtime_bench.py as it is, without its soak; its output printed as it comes."""
    command = [sys.executable, str(Path(rb.__file__)), "--soak-frames", "0", "--rounds", str(rounds)]
    if skip:
        command += ["--skip", ",".join(sorted(skip))]
    print(f"\nworkload e: {' '.join(command[1:])}; {rb.load_average()}", flush=True)
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds per system, medians kept (default: 5 for a, 3 for b, c, d)"
    )
    parser.add_argument("--rounds-e", type=int, default=5, help="rounds of runtime_bench.py (workload e)")
    parser.add_argument("--only", default="a,b,c,d,e", help="comma list of workloads: a,b,c,d,e")
    parser.add_argument("--skip", default="", help="comma list of peers to leave out: ray,dask")
    for key, workload in WORKLOADS.items():
        parser.add_argument(f"--size-{key}", type=parse_size, help=f"bytes per file of {key} (default {workload.size})")
        parser.add_argument(f"--frames-{key}", type=int, help=f"frames at once in {key} (default {workload.frames})")
    args = parser.parse_args()
    only = [key for key in filter(None, args.only.split(",")) if key in (*WORKLOADS, "e")]
    skip = set(filter(None, args.skip.split(",")))
    print(f"start: {rb.load_average()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for key in only:
            if key == "e":
                continue
            workload = WORKLOADS[key]
            size, frames = getattr(args, f"size_{key}"), getattr(args, f"frames_{key}")
            workload = replace(
                workload,
                size=size or workload.size,
                frames=frames or workload.frames,
                rounds=args.rounds or workload.rounds,
            )
            figures, sampler, load = run_workload(workload, Path(tmp), skip)
            print_table(workload, figures, load)
            if key in ("a", "b"):
                print_memory(workload, sampler)
            if key == "a":
                print_targets(figures)
            sys.stdout.flush()
    if "e" in only:
        run_chain10(args.rounds_e, skip)
    print(f"\nend: {rb.load_average()}")


if __name__ == "__main__":
    main()
