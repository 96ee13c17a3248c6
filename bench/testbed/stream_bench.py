"""Streams on the emulated testbed (issue 16): the `stream` mapper against `best` and `heft`, and the predictor.

For two apps on the shipped testbed (jupiter/data/testbed.ini: node1 at speed 1,
node2-4 at 0.25, 20-40 Mbit/s uplinks between them, home on a fast LAN):

* **network monitoring**: the DAG of jupiter/data/app_specific_files/
  network_monitoring_app (14 tasks: local_pro -> 3 x (aggregate -> simple and
  astute detectors -> fusion_center) -> global_fusion), each task's cost
  proportional to the CPU time the real program takes on the sample inputs
  (measured at the start, median of 15 runs) and scaled so that one frame's
  tasks add up to `--nm-total` seconds at speed 1 (0.3 s: local_pro ~0.12 s,
  aggregate ~0.03 s, the fusions ~3 ms); outputs as large as the real ones.
* **generated**: a 30-task DAG from jupiter.tools.dummy's generator
  (`GENERATED`: 8 stages, seed 3, tasks of 5-25 ms at speed 1, outputs of
  4-80 KB), run by the same sleeping tasks.

The shipped app's programs take milliseconds (local_pro ~10 ms, the rest
0.5-4 ms), so the bench keeps their relative costs and scales them up: at
their own size the runtime's ~2 ms per task would be most of the time.

What it measures, per app:

1. Profiles once (`jupiter profile`), then maps from that profile as `jupiter
   run` would (`service.planning.schedule_profile`, the config's `SCHEDULER`
   and `[MAPPER] STREAM_RATE`): `heft`, `best`, `stream` as fast as possible
   (`STREAM_RATE = 0`), and `stream` for each rate below.
2. Calibrates the runtime's per-frame costs that the profile does not hold,
   on a run of its own (the fast `stream` mapping at 70% of its predicted
   rate): the node time per task beyond `task()` (worker round trip, routing
   the outputs, all inside the node's one-task-at-a-time lock; the mean gap
   between two task runs on a node when the second was waiting), the delay
   of a transfer beyond the link's fit (median), home -> entry task
   (ingress) and exit task -> frame done at home (egress). They go into the
   predictor: per task execution + overhead, link constant + residual,
   `ingress`/`egress` per node.
3. Highest sustainable rate of each of heft, best, stream(fast): predicted
   = 1 / bottleneck period (`pipeline_periods`, uplink model, overheads
   in); measured = the steady throughput (frames done between the 10th and
   90th percentile of finish times, summary.json's `throughput.steady`) of a
   Poisson stream offered at 1.5x the prediction, which a run cannot exceed
   and keeps up with below (`sustained.kept_up` says which it did).
4. Poisson streams (`--frames` frames each) at 30%, 70% and 95% of R, the
   highest measured sustainable rate among the three mappings, and at 70%
   of heft's: stream(rate) vs best vs heft. For each case, measured
   (summary.json: latency from home's frame_submitted to frame_done, steady
   throughput, kept up) against `predict_stream` on the same profile,
   mapping, calibration and Poisson arrivals (the same seed gives the same
   planned arrival times; the seed is the one whose sample of that many
   frames has the nominal rate, `seed_for`), and the ratio predicted /
   measured; `own` is the p95 ratio with the runtime costs measured in that
   very run (what is left is the queueing model's own error).

Targets (issue 16, "Done when"): the stream mapper sustains a higher rate than
heft and best; at 70% of heft's sustainable rate its p95 latency is lower than
theirs; the predictor is within 20% of the measured throughput and within 30%
of the measured p95 latency on every case.

Why the tasks sleep. All emulated nodes share this machine's cores (two on
the dev machine, shared with others), a node runs one task at a time, and
the emulation pads a slow node's task to cpu_time / speed by sleeping: tasks
that burned CPU on several nodes at once would compete for the cores and run
slower than the profile says. So the bench apps' tasks burn nothing: each
sleeps COST / speed (speed from JUPITER_EMULATED_SPEED, which the agent sets
for its workers), reads nothing but the names of its inputs and writes its
outputs. What the agents themselves use is printed beside every run
(`cpu`: cores used on average by the deployment's processes while frames
ran: 0.1-0.5 of a core) with the 1-minute load average of the machine.

The machine is shared: when others load it far beyond its cores, agents
wait for a CPU, per-frame costs grow several-fold and transfers stall for
up to seconds, which no model of the testbed predicts. Each run therefore
first waits (at most `--wait` s, `--wait-budget` s in all) for the load
average to fall to `--max-load` (default 4 per core), a decision taken
before anything is measured, and the tables mark with `*` the runs that
still started or ended above it.

    .venv/bin/python bench/testbed/stream_bench.py            # both apps, 100 frames per case (about 30 minutes)
    .venv/bin/python bench/testbed/stream_bench.py --quick    # 40 frames per case (about 15 minutes)
    .venv/bin/python bench/testbed/stream_bench.py --apps nm --frames 60 --workdir /tmp/streams  # keep the runs
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import psutil
from testbed_bench import make_workdir, workspace_of

from jupiter.backends.local import group_members
from jupiter.mapping import ArrivalProcess, LinkCost, Problem, pipeline_periods, predict_stream
from jupiter.model.arrivals import Arrivals
from jupiter.model.bundled import data_dir
from jupiter.model.dag import HOME, Dag, parse_dag
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.events import TaskRun
from jupiter.model.problem_files import problem_from_profile
from jupiter.report.run_record import RunRecord, base_frame, load_run
from jupiter.report.timing import steady_throughput
from jupiter.service.deploy import deploy, teardown
from jupiter.service.planning import schedule_profile
from jupiter.service.run import collect_inputs, flush_events, profile, stream
from jupiter.service.summary import summarize
from jupiter.tools.dummy import DummySpec, generate_dag

KB = 1024
SEEDS = range(1, 200)
"""Seeds a stream's Poisson arrivals are chosen from (`seed_for`)."""
OVERLOAD = 1.5
"""The sustainable-rate runs offer this many times the predicted rate."""
LINKS: Final = "uplink"
"""The testbed's links: every transfer a node sends shares its uplink (jupiter/data/testbed.ini)."""

# ------------------------------------------------------------------ the bench apps

_SLEEPER = '''\
"""What every task of this bench app does: sleep its cost at the node's speed, then write its outputs.

Not a task (no line in configuration.txt). The cost is emulated by sleeping
COST / speed, where speed is the emulated node's factor the agent passes in
JUPITER_EMULATED_SPEED, so a task uses almost no CPU: the emulated nodes,
which share this machine's cores, do not slow each other down.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def speed() -> float:
    raw = os.environ.get("JUPITER_EMULATED_SPEED", "")
    value = float(raw) if raw else 1.0
    return value if 0 < value <= 1 else 1.0


def run(name, cost, sizes, filename, pathin, pathout):
    names = [filename] if isinstance(filename, str) else list(filename)
    for item in names:
        Path(pathin, item).stat()
    time.sleep(cost / speed())
    frame = Path(sorted(names)[0].split("__")[0]).stem
    outputs = []
    for index, size in enumerate(sizes):
        path = Path(pathout, f"{frame}__{name}_{index}.txt")
        path.write_bytes(b"x" * size)
        outputs.append(str(path.resolve()))
    return outputs
'''

_TASK = '''\
"""Task {name} of the bench app {app}: sleeps {cost!r} s at speed 1, writes {sizes!r} bytes."""

from sleeper import run


def task(filename, pathin, pathout):
    return run({name!r}, {cost!r}, {sizes!r}, filename, pathin, pathout)
'''


@dataclass(frozen=True)
class AppShape:
    """A bench app: its DAG lines, each task's cost at speed 1 and output sizes, and its sample inputs."""

    name: str
    lines: tuple[str, ...]
    """configuration.txt lines after the count (`task NUM_INPUTS FLAG children...`)."""
    costs: Mapping[str, float]
    sizes: Mapping[str, tuple[int, ...]]
    samples: tuple[tuple[str, bytes], ...]


def write_app(folder: Path, shape: AppShape) -> Path:
    """Write the sleeping app into `folder`/app_specific_files/<name>; returns its folder."""
    app = folder / "app_specific_files" / shape.name
    if app.exists():
        shutil.rmtree(app)
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "configuration.txt").write_text("\n".join([str(len(shape.lines)), *shape.lines]) + "\n")
    (app / "app_config.ini").write_text("[DOCKER_PORT]\n\n[SVC_PORT]\n")
    (app / "scripts" / "sleeper.py").write_text(_SLEEPER)
    for task, cost in shape.costs.items():
        text = _TASK.format(name=task, app=shape.name, cost=round(cost, 5), sizes=tuple(shape.sizes[task]))
        (app / "scripts" / f"{task}.py").write_text(text)
    for name, data in shape.samples:
        (app / "sample_input" / name).write_bytes(data)
    return app


def _load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_nm_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_real(
    dag: Dag, scripts: Mapping[str, ModuleType], sample: Path, work: Path
) -> tuple[dict[str, float], dict[str, tuple[int, ...]]]:
    """One frame of the real app in this process: CPU seconds and output sizes per task."""
    inputs: dict[str, list[Path]] = {task: [] for task in dag.order}
    cpu: dict[str, float] = {}
    sizes: dict[str, tuple[int, ...]] = {}
    for task in dag.order:
        spec = dag.tasks[task]
        pathin, pathout = work / task / "in", work / task / "out"
        pathin.mkdir(parents=True)
        pathout.mkdir(parents=True)
        received = inputs[task] or [sample]
        for path in received:
            shutil.copyfile(path, pathin / path.name)
        names = [path.name for path in received]
        argument: str | list[str] = names[0] if spec.num_inputs == 1 else names
        started = time.process_time()
        outputs = [Path(p) for p in scripts[task].task(argument, str(pathin), str(pathout))]
        cpu[task] = time.process_time() - started
        sizes[task] = tuple(p.stat().st_size for p in outputs)
        for index, child in enumerate(spec.children):
            if child != HOME:
                inputs[child].append(outputs[0 if spec.flag else index])
    return cpu, sizes


def network_monitoring_shape(total: float, repeat: int = 5) -> AppShape:
    """The network-monitoring app's DAG with sleeping tasks (module docstring): costs proportional to the
    real programs' CPU time here (median over the samples x `repeat`), adding up to `total` s per frame."""
    folder = data_dir() / "app_specific_files" / "network_monitoring_app"
    dag = parse_dag(folder / "configuration.txt")
    samples = sorted(p for p in (folder / "sample_input").iterdir() if p.is_file())
    scripts_dir = str(folder / "scripts")
    sys.path.insert(0, scripts_dir)  # the task scripts `import anomaly`, as the agents let them
    try:
        scripts = {task: _load_script(folder / "scripts" / f"{task}.py") for task in dag.order}
        with tempfile.TemporaryDirectory(prefix="jupiter-nm-") as tmp:
            runs = [
                _run_real(dag, scripts, sample, Path(tmp) / f"{index}-{sample.stem}")
                for index in range(repeat)
                for sample in samples
            ]
    finally:
        sys.path.remove(scripts_dir)
    cpu = {task: statistics.median(run[0][task] for run in runs) for task in dag.order}
    scale = total / sum(cpu.values())
    sizes = {
        task: tuple(round(statistics.mean(run[1][task][i] for run in runs)) for i in range(len(runs[0][1][task])))
        for task in dag.order
    }
    lines = tuple(
        f"{task} {dag.tasks[task].num_inputs} {'true' if dag.tasks[task].flag else 'false'} "
        + " ".join(dag.tasks[task].children)
        for task in dag.order
    )
    costs = {task: cpu[task] * scale for task in dag.order}
    return AppShape("network_monitoring", lines, costs, sizes, tuple((p.name, p.read_bytes()) for p in samples))


GENERATED = DummySpec(
    tasks=30,
    layers=8,
    seed=3,
    cpu_seconds=(0.005, 0.025),
    output_bytes=(4 * KB, 80 * KB),
    samples=3,
    sample_bytes=(10 * KB, 20 * KB),
)
"""The generated app: a pipeline of 8 stages of about 4 tasks (the generator's default, about sqrt(30) = 5
stages of 6, is wider than most stream pipelines; there HEFT already spreads most tasks and the stream
mapper's edge in sustainable rate is smaller, 7-12% on five seeds against 23-30% with 8 stages)."""


def generated_shape(spec: DummySpec = GENERATED) -> AppShape:
    """A DAG from jupiter.tools.dummy's generator, with its costs and output sizes, as sleeping tasks."""
    app = generate_dag(spec)
    return AppShape(
        f"generated{spec.tasks}",
        tuple(task.configuration_line() for task in app.tasks),
        {task.name: task.cpu_seconds for task in app.tasks},
        {task.name: task.output_sizes for task in app.tasks},
        app.samples,
    )


def configure(folder: Path, shape: AppShape, scheduler: str = "heft", rate: float = 0.0) -> None:
    """The workspace's jupiter_config.ini: the app, the shipped testbed, the mapper and its stream rate."""
    (folder / "jupiter_config.ini").write_text(
        f"[CONFIG]\nSCHEDULER = {scheduler}\n[MAPPER]\nSTREAM_RATE = {rate:.6g}\n"
        f"[DEPLOY]\nAPP = app_specific_files/{shape.name}\n"
        "[PROFILING]\nTESTBED = testbed.ini\nNETWORK_SIZES = 1K 10K 100K 1M\nNETWORK_SAMPLES = 2\nEXEC_RUNS = 2\n"
    )


# ------------------------------------------------------------------ runs


def seed_for(frames: int) -> int:
    """The seed whose first `frames` Poisson arrivals come at the nominal rate (within a fraction of a percent).

    A short Poisson sample's rate is off by 1/sqrt(frames) (16% for 40 frames), which would blur what
    "70% of a rate" means; among SEEDS the one closest to the nominal rate is taken. It does not depend
    on the rate (the gaps scale with 1/rate), so every mapping and the predictor see the same arrivals.
    """

    def error(seed: int) -> float:
        offsets = Arrivals.poisson(1.0, seed).offsets(frames)
        return abs((frames - 1) / offsets[-1] - 1) if frames > 1 else 0.0

    return min(SEEDS, key=error)


def poisson(rate: float, frames: int) -> Arrivals:
    """The Poisson arrivals of a run of `frames` frames at `rate` (`seed_for`)."""
    return Arrivals.poisson(rate, seed_for(frames))


@dataclass(frozen=True)
class Measured:
    """One run, as summary.json and the event log give it."""

    offered: float
    steady: float
    kept_up: bool | None
    p50: float
    p95: float
    done: int
    frames: int
    seconds: float
    cpu: float
    """Cores the deployment's processes used on average while the frames ran."""
    load: float
    """1-minute load average of the machine at the end of the run."""
    busy: bool
    """The load average was above `Machine.max_load` when the run started or ended."""
    record: RunRecord = field(repr=False)

    @property
    def load_text(self) -> str:
        return f"{self.load:.2f}{'*' if self.busy else ' '}"


def _group_cpu(pgid: int) -> float:
    total = 0.0
    for pid in group_members(pgid):
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


@dataclass
class Machine:
    """The shared machine: each run waits (up to `wait` s, `budget` s in all) for the 1-minute load average
    to fall to `max_load` before it starts, decided before anything is measured; a run whose load average
    was above it at either end is marked `*` in the tables."""

    max_load: float
    wait: float
    budget: float
    waited: float = 0.0

    def calm(self) -> float:
        """Wait for a calmer machine (within the limits); returns the load average it starts at."""
        started = time.time()
        while (
            os.getloadavg()[0] > self.max_load
            and time.time() - started < self.wait
            and self.waited + time.time() - started < self.budget
        ):
            time.sleep(2.0)
        self.waited += time.time() - started
        return os.getloadavg()[0]


def measure(
    folder: Path, mapping: Mapping[str, str], arrivals: Arrivals, frames: int, name: str, machine: Machine
) -> Measured:
    """Deploy with `mapping` (static: nothing profiled again), stream `frames` frames by `arrivals`, summarise."""
    load_before = machine.calm()
    mapping_file = folder / f"mapping-{name}.txt"
    mapping_file.write_text("".join(f"{task} {node}\n" for task, node in mapping.items()))
    spec = resolve_spec(workspace_of(folder), mapping_file)
    files = collect_inputs(spec, None, frames)
    deployment = deploy(spec, reprofile=False)
    try:
        pgid = int(deployment.handle.info["pgid"])
        cpu0, started = _group_cpu(pgid), time.time()
        # A stream far above what the mapping sustains takes frames / capacity: allow three times the plan.
        timeout = 120.0 + 3 * frames / (arrivals.rate or 1.0)
        stream(deployment, files, arrivals, timeout)
        seconds = time.time() - started
        cpu = (_group_cpu(pgid) - cpu0) / seconds
        flush_events(deployment)
        summary = summarize(deployment, started, arrivals)
        record = load_run(deployment.root)
    finally:
        teardown(deployment)
    doc = summary.document
    if summary.failed:
        raise RuntimeError(f"{summary.failed} frames failed: {summary.errors[:1]}")
    return Measured(
        offered=float(doc["arrivals"]["offered"] or math.nan),
        steady=float(doc["throughput"]["steady"] or math.nan),
        kept_up=doc["sustained"]["kept_up"],
        p50=float(doc["latency"]["p50"]),
        p95=float(doc["latency"]["p95"]),
        done=summary.done,
        frames=summary.frames,
        seconds=seconds,
        cpu=cpu,
        load=os.getloadavg()[0],
        busy=max(load_before, os.getloadavg()[0]) > machine.max_load,
        record=record,
    )


# ------------------------------------------------------------------ calibration and prediction


@dataclass(frozen=True)
class Calibration:
    """The runtime's per-frame costs beyond the profile (module docstring, step 2), in seconds."""

    overhead: float
    """Node time per task run beyond task(): mean gap between back-to-back runs on a node."""
    residual: float
    """Delay of a transfer between two nodes beyond the link's fit, the overhead and the frame's own
    transfers before it on the sender's uplink: median (other frames' transfers may delay a few)."""
    ingress: Mapping[str, float]
    """Per node: frame submitted at home -> its input at the entry task there (mean)."""
    egress: Mapping[str, float]
    """Per node: its exit task's run ended -> frame done at home, less the overhead (mean)."""
    samples: tuple[int, int, int, int]
    """Gaps, transfers, ingresses and egresses measured."""

    def describe(self) -> str:
        ing = statistics.mean(self.ingress.values()) if self.ingress else 0.0
        eg = statistics.mean(self.egress.values()) if self.egress else 0.0
        gaps, hops, ins, outs = self.samples
        return (
            f"overhead {self.overhead * 1000:.2f} ms per task run ({gaps} gaps), transfer residual"
            f" {self.residual * 1000:+.2f} ms ({hops} hops), ingress {ing * 1000:.2f} ms ({ins}),"
            f" egress {eg * 1000:.2f} ms ({outs})"
        )


def calibrate(record: RunRecord, problem: Problem) -> Calibration:
    """Measure the runtime's costs beyond the profile from one run's events (module docstring, step 2)."""
    by_node: dict[str, list[TaskRun]] = {}
    for run in record.tasks:
        by_node.setdefault(run.node, []).append(run)
    gaps: list[float] = []
    for node_runs in by_node.values():
        node_runs.sort(key=lambda run: run.execute)
        # The second run's runner had its frame before the first one finished: it waited for the node only.
        gaps += [b.execute - a.finish for a, b in itertools.pairwise(node_runs) if b.enter <= a.finish]
    overhead = statistics.mean(gaps) if gaps else 0.0
    frames: dict[str, dict[str, TaskRun]] = {}
    for run in record.tasks:
        frames.setdefault(base_frame(run.frame), {})[run.task] = run
    sizes = {(edge.parent, edge.child): edge.size for edge in problem.edges}
    children: dict[str, list[str]] = {}
    for task in record.order:
        for parent in record.parents.get(task, ()):
            children.setdefault(parent, []).append(task)
    done = {event.frame: event.time for event in record.done}
    ingress: dict[str, list[float]] = {}
    egress: dict[str, list[float]] = {}
    residuals: list[float] = []
    for frame, submitted in record.submitted.items():
        runs = frames.get(frame, {})
        if frame not in done or not runs:
            continue
        for task, run in runs.items():
            if not record.parents.get(task, ()):
                ingress.setdefault(run.node, []).append(run.arrive - submitted.time)
            # The frame's transfers leaving this run's node, in DAG order, share its uplink for their
            # bytes as the predictor has them; what a child with this only parent gets later is residual.
            held_until = run.finish + overhead
            for child in children.get(task, ()):
                kid = runs.get(child)
                if kid is None or kid.node == run.node:
                    continue
                link = problem.links[(run.node, kid.node)]
                size = sizes[(task, child)]
                held_until += max(0.0, link.time(size) - link.c)
                if len(record.parents.get(child, ())) == 1:
                    residuals.append(kid.arrive - held_until - link.c)
        last = max((runs[task] for task in record.exits if task in runs), key=lambda run: run.finish)
        egress.setdefault(last.node, []).append(max(0.0, done[frame] - last.finish - overhead))
    return Calibration(
        overhead=overhead,
        residual=statistics.median(residuals) if residuals else 0.0,
        ingress={node: statistics.mean(values) for node, values in ingress.items()},
        egress={node: statistics.mean(values) for node, values in egress.items()},
        samples=(len(gaps), len(residuals), sum(map(len, ingress.values())), sum(map(len, egress.values()))),
    )


def with_overheads(problem: Problem, calibration: Calibration) -> Problem:
    """The profile's problem with the runtime's costs in: each run + overhead, each link's constant + residual."""
    return Problem(
        problem.tasks,
        problem.nodes,
        [[x + calibration.overhead for x in row] for row in problem.exec_times],
        problem.edges,
        {key: LinkCost(link.a, link.b, max(0.0, link.c + calibration.residual)) for key, link in problem.links.items()},
        problem.max_tasks_per_node,
        problem.resources,
    )


@dataclass(frozen=True)
class Predicted:
    """`predict_stream` on one case."""

    steady: float
    p50: float
    p95: float


def predict(
    problem: Problem, calibration: Calibration | None, mapping: Mapping[str, str], rate: float, frames: int
) -> Predicted:
    """The predictor on the case's Poisson arrivals (same rate, frames and seed as the run), every frame counted."""
    arrival = ArrivalProcess.poisson(rate, frames, seed_for(frames))
    offsets = arrival.times()
    assert offsets == poisson(rate, frames).offsets(frames), "the predictor and the run must plan the same arrivals"
    cal = calibration or Calibration(0.0, 0.0, {}, {}, (0, 0, 0, 0))
    nodes = set(problem.nodes)
    fallback = statistics.mean(cal.ingress.values()) if cal.ingress else 0.0
    ingress = {node: cal.ingress.get(node, fallback) for node in nodes}
    fallback = statistics.mean(cal.egress.values()) if cal.egress else 0.0
    egress = {node: cal.egress.get(node, fallback) for node in nodes}
    pred = predict_stream(problem, mapping, arrival, links=LINKS, ingress=ingress, egress=egress, queues="task")
    done = [a + latency for a, latency in zip(offsets, pred.latencies, strict=True)]
    steady = steady_throughput(done)
    return Predicted(steady[0] if steady else math.nan, pred.latency.p50, pred.latency.p95)


# ------------------------------------------------------------------ the bench


def _ratio(predicted: float, measured: float) -> float:
    return predicted / measured if measured > 0 else math.nan


def _ok(value: float, tolerance: float) -> bool:
    return math.isfinite(value) and abs(value - 1) <= tolerance


@dataclass
class Case:
    """One stream run and its prediction."""

    label: str
    mapper: str
    rate: float
    measured: Measured
    predicted: Predicted
    """With the app's calibration (the target's figure)."""
    own: Predicted
    """With the runtime costs measured in this very run (what is left is the queueing model's error)."""

    @property
    def thr_ratio(self) -> float:
        return _ratio(self.predicted.steady, self.measured.steady)

    @property
    def p95_ratio(self) -> float:
        return _ratio(self.predicted.p95, self.measured.p95)

    @property
    def own_p95_ratio(self) -> float:
        return _ratio(self.own.p95, self.measured.p95)


@dataclass
class AppResult:
    name: str
    verdicts: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _say(text: str) -> None:
    print(text, flush=True)


def _mapping(
    folder: Path, shape: AppShape, document: Mapping[str, Any], scheduler: str, rate: float = 0.0
) -> dict[str, str]:
    """What `jupiter run` maps from this profile with SCHEDULER = scheduler (and STREAM_RATE = rate)."""
    configure(folder, shape, scheduler, rate)
    spec = resolve_spec(workspace_of(folder))
    placed = schedule_profile(spec, document)
    configure(folder, shape)
    return {task: placed.node_of(task) for task in spec.app.dag.order}


def _nodes_used(mapping: Mapping[str, str]) -> str:
    counts: dict[str, int] = {}
    for node in mapping.values():
        counts[node] = counts.get(node, 0) + 1
    return " ".join(f"{node}:{count}" for node, count in sorted(counts.items()))


@dataclass(frozen=True)
class Sizes:
    """Frames of each kind of run."""

    cases: int
    saturation: int
    calibration: int


def bench_app(shape: AppShape, sizes: Sizes, machine: Machine, keep: Path | None) -> AppResult:
    """Everything the module docstring lists, for one app; in `keep` (left there) or a temporary folder."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="jupiter-stream-") as tmp:
            return _bench_app(Path(tmp), shape, sizes, machine)
    folder = keep / shape.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return _bench_app(folder, shape, sizes, machine)


def _own(raw: Problem, run: Measured, mapping: Mapping[str, str], rate: float, frames: int) -> Predicted:
    """The prediction with the runtime costs this run measured (the queueing model alone on trial)."""
    calibration = calibrate(run.record, raw)
    return predict(with_overheads(raw, calibration), calibration, mapping, rate, frames)


def _bench_app(folder: Path, shape: AppShape, sizes: Sizes, machine: Machine) -> AppResult:
    frames, saturation_frames, calibration_frames = sizes.cases, sizes.saturation, sizes.calibration
    result = AppResult(shape.name)
    started = time.time()
    make_workdir(folder)
    write_app(folder, shape)
    configure(folder, shape)
    work = sum(shape.costs.values())
    _say(f"\n=== {shape.name}: {len(shape.lines)} tasks, {work:.3f} s of tasks per frame at speed 1")
    _say("costs at speed 1 (ms): " + ", ".join(f"{t} {c * 1000:.1f}" for t, c in shape.costs.items()))
    t0 = time.time()
    document = profile(resolve_spec(workspace_of(folder)), folder / "profile.json")
    raw = problem_from_profile(document)
    _say(f"profiled in {time.time() - t0:.0f} s (load average {os.getloadavg()[0]:.2f})")

    mappings = {name: _mapping(folder, shape, document, name) for name in ("heft", "best")}
    mappings["stream"] = _mapping(folder, shape, document, "stream", 0.0)
    for name, mapping in mappings.items():
        _say(f"  {name:<7} nodes {_nodes_used(mapping)}")

    # Calibration on a run of its own: the fast stream mapping at 70% of its predicted rate.
    rate = 0.7 * pipeline_periods(raw, mappings["stream"], links=LINKS).sustainable_rate
    cal_run = measure(
        folder, mappings["stream"], poisson(rate, calibration_frames), calibration_frames, "calibration", machine
    )
    calibration = calibrate(cal_run.record, raw)
    model = with_overheads(raw, calibration)
    _say(
        f"calibration: stream at {rate:.2f} frames/s, {cal_run.done} frames (load average {cal_run.load_text.strip()},"
        f" cpu {cal_run.cpu:.2f} cores): {calibration.describe()}"
    )

    # Highest sustainable rate of each mapping.
    _say(f"\n-- highest sustainable rate ({saturation_frames} frames offered at {OVERLOAD}x the prediction)")
    _say(
        f"{'mapping':<8} {'1/period':>9} {'+overhead':>10} {'offered':>8} {'measured':>9} {'kept up':>8}"
        f" {'pred/meas':>10} {'load':>7} {'cpu':>5}"
    )
    sustainable: dict[str, float] = {}
    capacity_ratio: dict[str, float] = {}
    for name in ("heft", "best", "stream"):
        mapping = mappings[name]
        bare = pipeline_periods(raw, mapping, links=LINKS).sustainable_rate
        predicted = pipeline_periods(model, mapping, links=LINKS).sustainable_rate
        run = measure(
            folder, mapping, poisson(OVERLOAD * predicted, saturation_frames), saturation_frames, f"sat-{name}", machine
        )
        if run.kept_up:
            # Offered below what it sustains: the prediction was low; offer twice as much.
            run = measure(
                folder, mapping, poisson(2 * run.offered, saturation_frames), saturation_frames, f"sat2-{name}", machine
            )
        sustainable[name] = run.steady
        capacity_ratio[name] = _ratio(predicted, run.steady)
        _say(
            f"{name:<8} {bare:>9.2f} {predicted:>10.2f} {run.offered:>8.2f} {run.steady:>9.2f} {run.kept_up!s:>8}"
            f" {capacity_ratio[name]:>10.2f} {run.load_text:>7} {run.cpu:>5.2f}"
        )
    best_name = max(sustainable, key=lambda name: sustainable[name])
    top = sustainable[best_name]
    _say(f"R = {top:.2f} frames/s, the highest measured sustainable rate (mapping {best_name})")
    result.verdicts["stream sustains more than heft and best"] = sustainable["stream"] > max(
        sustainable["heft"], sustainable["best"]
    )
    result.verdicts["1/period within 20% of the measured sustainable rate"] = all(
        _ok(x, 0.2) for x in capacity_ratio.values()
    )

    # Streams at three rates of R, and at 70% of heft's.
    rates = [
        ("30% R", 0.3 * top),
        ("70% R", 0.7 * top),
        ("95% R", 0.95 * top),
        ("70% heft", 0.7 * sustainable["heft"]),
    ]
    cases: list[Case] = []
    _say(f"\n-- Poisson streams, {frames} frames each (seed {seed_for(frames)}); ratio = predicted / measured")
    _say(
        f"{'rate':<9} {'fr/s':>5} {'mapping':<8} {'offered':>7} {'steady':>7} {'pred':>6} {'ratio':>6} {'kept':>5}"
        f" {'p50':>7} {'p95':>7} {'pred':>7} {'ratio':>6} {'own':>5} {'load':>6} {'cpu':>5}"
    )
    for label, rate in rates:
        for name in ("stream", "best", "heft"):
            mapping = _mapping(folder, shape, document, "stream", rate) if name == "stream" else mappings[name]
            run = measure(folder, mapping, poisson(rate, frames), frames, f"{label}-{name}".replace(" ", ""), machine)
            prediction = predict(model, calibration, mapping, rate, frames)
            case = Case(label, name, rate, run, prediction, _own(raw, run, mapping, rate, frames))
            cases.append(case)
            _say(
                f"{label:<9} {rate:>5.2f} {name:<8} {run.offered:>7.2f} {run.steady:>7.2f}"
                f" {case.predicted.steady:>6.2f} {case.thr_ratio:>6.2f} {'yes' if run.kept_up else 'no':>5}"
                f" {run.p50:>7.3f} {run.p95:>7.3f}"
                f" {case.predicted.p95:>7.3f} {case.p95_ratio:>6.2f} {case.own_p95_ratio:>5.2f}"
                f" {run.load_text:>6} {run.cpu:>5.2f}"
            )
    at_heft = {case.mapper: case.measured.p95 for case in cases if case.label == "70% heft"}
    result.verdicts["stream's p95 lowest at 70% of heft's rate"] = at_heft["stream"] < min(
        at_heft["heft"], at_heft["best"]
    )
    result.verdicts["predicted throughput within 20% on every case"] = all(_ok(c.thr_ratio, 0.2) for c in cases)
    result.verdicts["predicted p95 within 30% on every case"] = all(_ok(c.p95_ratio, 0.3) for c in cases)
    result.notes.append(
        "p95 within 30% with each run's own runtime costs: "
        f"{sum(_ok(c.own_p95_ratio, 0.3) for c in cases)} of {len(cases)} cases"
    )
    busy = [c for c in cases if c.measured.busy]
    result.notes.append(
        f"{len(busy)} of {len(cases)} cases ran with the load average above {machine.max_load:g} (marked *)"
        + (
            f"; p95 within 30% on {sum(_ok(c.p95_ratio, 0.3) for c in cases if not c.measured.busy)}"
            f" of the {len(cases) - len(busy)} others"
            if busy
            else ""
        )
    )
    worst_thr = max(cases, key=lambda c: abs(c.thr_ratio - 1))
    worst_p95 = max(cases, key=lambda c: abs(c.p95_ratio - 1))
    _say(
        f"worst throughput ratio {worst_thr.thr_ratio:.2f} ({worst_thr.label}, {worst_thr.mapper}); worst p95 ratio"
        f" {worst_p95.p95_ratio:.2f} ({worst_p95.label}, {worst_p95.mapper})"
    )
    _say(f"({shape.name} in {(time.time() - started) / 60:.1f} minutes)")
    for what, ok in result.verdicts.items():
        _say(f"  {'met   ' if ok else 'MISSED'} {what}")
    for note in result.notes:
        _say(f"  ({note})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", nargs="+", choices=("nm", "generated"), default=["nm", "generated"])
    parser.add_argument("--quick", action="store_true", help="40 frames per case, 30 per sustainable-rate run")
    parser.add_argument("--frames", type=int, default=None, help="frames per stream case (default 100, quick 40)")
    parser.add_argument("--nm-total", type=float, default=0.3, help="network monitoring: seconds of tasks per frame")
    parser.add_argument("--workdir", type=Path, default=None, help="keep every app's workspace and runs in this folder")
    cores = os.cpu_count() or 1
    parser.add_argument(
        "--max-load", type=float, default=4.0 * cores, help="wait before a run while the load average is above this"
    )
    parser.add_argument("--wait", type=float, default=90.0, help="seconds a run waits at most for --max-load")
    parser.add_argument("--wait-budget", type=float, default=600.0, help="seconds all runs wait at most in all")
    args = parser.parse_args()
    # SIGTERM (as well as Ctrl-C) unwinds, so the running deployment is torn down.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    quick = args.quick
    sizes = Sizes(args.frames or (40 if quick else 100), 30 if quick else 60, 20 if quick else 40)
    machine = Machine(args.max_load, args.wait, args.wait_budget)
    started = time.time()
    _say(f"stream bench: load average {os.getloadavg()[0]:.2f} on {cores} cores (runs wait for <= {args.max_load:g})")
    shapes: list[AppShape] = []
    if "nm" in args.apps:
        shapes.append(network_monitoring_shape(args.nm_total))
    if "generated" in args.apps:
        shapes.append(generated_shape())
    results = [bench_app(shape, sizes, machine, args.workdir) for shape in shapes]
    _say(
        f"\n== summary ({(time.time() - started) / 60:.1f} minutes, {machine.waited:.0f} s of them waiting for a calmer"
        f" machine; load average {os.getloadavg()[0]:.2f})"
    )
    for result in results:
        for what, ok in result.verdicts.items():
            _say(f"{result.name:<20} {'met   ' if ok else 'MISSED'} {what}")


if __name__ == "__main__":
    main()
