"""Generate dummy Jupiter apps: layered random DAGs of tasks that burn CPU and write files.

Like the original's Automatic DAG Generator, the point is a workload of any
size and shape with known costs, for testing and benchmarking profilers,
mappers and the runtime. A `DummySpec` fixes everything (the seed included),
so a spec always gives the same app, byte for byte:

- tasks sit in layers; edges go from a layer to the next one or, now and then,
  to the one after (skip edges); every task past the entry layer has at least
  one parent, every task before the last layer at least one child, and tasks
  of the last layer send their output `home`. With one entry task every task
  is reachable from it; with several, the entries share a child, so the DAG
  is always connected;
- a task with two or more children uses FLAG false (one output per child)
  with probability `false_ratio`, otherwise FLAG true (one output for all);
- each task's script has its CPU time and output sizes baked in as
  constants. It burns `CPU_SECONDS / speed` of CPU time measured with
  `time.process_time()` (so a busy or CPU-capped machine stretches the wall
  time the way a slower node would), where `speed` comes from the
  environment variable JUPITER_SPEED_FACTOR (a positive float, default 1.0;
  0.5 emulates a node half as fast). It then writes outputs whose bytes are
  a SHA-256 hash chain seeded by the task's name, the output's index and the
  digests of its inputs, sorted so that input order does not matter:
  `expected_outputs` recomputes every task's outputs without running
  anything, so tests can check what a run produced.

Command line: `scripts/generate_dummy_app.py` (see `DummySpec.command`).
"""

from __future__ import annotations

import hashlib
import math
import random
import shutil
import string
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

HOME = "home"


@dataclass(frozen=True)
class DummySpec:
    """Shape, costs and seed of a generated app; the same spec gives the same app."""

    tasks: int = 10
    """Number of tasks."""
    layers: int | None = None
    """Number of layers (the longest path has this many tasks); None: about sqrt(tasks)."""
    max_width: int | None = None
    """Most tasks in one layer; None: no limit besides the fan-out."""
    fan_out: int = 3
    """Most children of one task."""
    entries: int = 1
    """Tasks in the first layer, each fed by home."""
    false_ratio: float = 0.5
    """Chance that a task with two or more children uses FLAG false."""
    extra_edges: float = 0.5
    """Chance that a task gets one more child beyond the ones the structure needs."""
    seed: int = 0
    cpu_seconds: tuple[float, float] = (0.005, 0.02)
    """Range of a task's CPU time in seconds at speed 1 (uniform)."""
    output_bytes: tuple[int, int] = (1024, 20 * 1024)
    """Range of one output's size in bytes (uniform)."""
    samples: int = 3
    """Number of files in sample_input/ (one file = one frame)."""
    sample_bytes: tuple[int, int] = (1024, 4096)
    """Range of a sample input's size in bytes (uniform)."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.tasks < 1:
            problems.append(f"tasks must be at least 1, got {self.tasks}")
        if self.layers is not None and self.layers < 1:
            problems.append(f"layers must be at least 1, got {self.layers}")
        if self.max_width is not None and self.max_width < self.entries:
            problems.append(f"max_width ({self.max_width}) must be at least entries ({self.entries})")
        if self.fan_out < 1:
            problems.append(f"fan_out must be at least 1, got {self.fan_out}")
        if self.entries < 1:
            problems.append(f"entries must be at least 1, got {self.entries}")
        for name in ("false_ratio", "extra_edges"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        low, high = self.cpu_seconds
        if not 0.0 <= low <= high:
            problems.append(f"cpu_seconds must be a range 0 <= min <= max, got {self.cpu_seconds}")
        for name in ("output_bytes", "sample_bytes"):
            low_bytes, high_bytes = getattr(self, name)
            if not 1 <= low_bytes <= high_bytes:
                problems.append(f"{name} must be a range 1 <= min <= max, got {getattr(self, name)}")
        if self.samples < 1:
            problems.append(f"samples must be at least 1, got {self.samples}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def layer_count(self) -> int:
        """The number of layers, defaulted from the number of tasks."""
        if self.layers is not None:
            return self.layers
        if self.tasks == self.entries:
            return 1
        return max(2, round(math.sqrt(self.tasks)))

    def command(self, folder: str = "DIR") -> str:
        """The scripts/generate_dummy_app.py command line that regenerates this app."""
        args = [f"python scripts/generate_dummy_app.py {folder}"]
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None:
                continue
            option = "--" + item.name.replace("_", "-")
            shown = " ".join(map(str, value)) if isinstance(value, tuple) else str(value)
            args.append(f"{option} {shown}")
        return " ".join(args)


@dataclass(frozen=True)
class DummyTask:
    """One generated task and the constants baked into its script."""

    name: str
    layer: int
    num_inputs: int
    """Number of parents (1 for an entry task, fed by home)."""
    flag: bool
    children: tuple[str, ...]
    """Child tasks, or ("home",) for a task of the last layer."""
    cpu_seconds: float
    output_sizes: tuple[int, ...]
    """Size of each output: one per child with FLAG false, a single one with FLAG true."""

    def configuration_line(self) -> str:
        """The task's line in configuration.txt."""
        flag = "true" if self.flag else "false"
        return f"{self.name} {self.num_inputs} {flag} {' '.join(self.children)}"


@dataclass(frozen=True)
class DummyApp:
    """A generated app: its tasks in topological (layer) order and its sample inputs."""

    spec: DummySpec
    tasks: tuple[DummyTask, ...]
    samples: tuple[tuple[str, bytes], ...]
    """(file name, content) of each sample input."""

    def task(self, name: str) -> DummyTask:
        """The task called `name`."""
        return next(task for task in self.tasks if task.name == name)

    def parents(self, name: str) -> tuple[str, ...]:
        """Parents of task `name`, in topological order."""
        return tuple(task.name for task in self.tasks if name in task.children)

    def configuration(self) -> str:
        """The text of configuration.txt."""
        return "\n".join([str(len(self.tasks))] + [task.configuration_line() for task in self.tasks]) + "\n"


def _layer_widths(rng: random.Random, spec: DummySpec) -> list[int]:
    layers = spec.layer_count
    if layers == 1 and spec.tasks > 1:
        raise ValueError(f"one layer of {spec.tasks} tasks is not a connected DAG; use fewer entries or more layers")
    widths = [spec.entries] + [1] * (layers - 1)
    spare = spec.tasks - sum(widths)
    if spare < 0:
        raise ValueError(
            f"{spec.tasks} tasks cannot fill {layers} layers after {spec.entries} entry task(s); "
            "use more tasks, fewer layers or fewer entries"
        )

    def capacity(layer: int) -> int:
        # Children the previous layer can still take: in layer 1 the first task
        # already holds one slot of every entry (entries share it).
        limit = (spec.fan_out - 1) * spec.entries + 1 if layer == 1 else spec.fan_out * widths[layer - 1]
        return min(limit, spec.max_width) if spec.max_width is not None else limit

    for _ in range(spare):
        open_layers = [layer for layer in range(1, layers) if widths[layer] < capacity(layer)]
        if not open_layers:
            raise ValueError(
                f"{spec.tasks} tasks do not fit in {layers} layers with fan-out {spec.fan_out}"
                + (f" and width {spec.max_width}" if spec.max_width is not None else "")
                + "; raise the fan-out, the width or the number of layers"
            )
        widths[rng.choice(open_layers)] += 1
    return widths


def _edges(rng: random.Random, spec: DummySpec, layers: list[list[int]]) -> dict[int, set[int]]:
    children: dict[int, set[int]] = {task: set() for layer in layers for task in layer}
    has_parent: set[int] = set()
    if len(layers) > 1 and spec.entries > 1:
        for entry in layers[0]:
            children[entry].add(layers[1][0])
        has_parent.add(layers[1][0])
    # Every task past the entries gets a parent in the layer above.
    for depth in range(1, len(layers)):
        for task in layers[depth]:
            if task not in has_parent:
                free = [parent for parent in layers[depth - 1] if len(children[parent]) < spec.fan_out]
                children[rng.choice(free)].add(task)
                has_parent.add(task)
    # Every task before the last layer gets a child.
    for depth in range(len(layers) - 1):
        for task in layers[depth]:
            if not children[task]:
                children[task].add(rng.choice(layers[depth + 1]))
    # Extra edges make fan-in and skip edges.
    for depth in range(len(layers) - 1):
        below = layers[depth + 1] + (layers[depth + 2] if depth + 2 < len(layers) else [])
        for task in layers[depth]:
            if rng.random() < spec.extra_edges and len(children[task]) < spec.fan_out:
                options = [child for child in below if child not in children[task]]
                if options:
                    children[task].add(rng.choice(options))
    return children


def hash_chain(seed: bytes, size: int) -> bytes:
    """`size` bytes of text: lines of 64 hex digits of the SHA-256 chain that starts at `seed`."""
    lines: list[bytes] = []
    block = seed
    for _ in range(size // 65 + 1):
        block = hashlib.sha256(block).digest()
        lines.append(block.hex().encode("ascii") + b"\n")
    return b"".join(lines)[:size]


def output_content(task: str, index: int, inputs: Sequence[bytes], size: int) -> bytes:
    """The `index`-th output of `task` given the contents of its inputs (in any order)."""
    digests = sorted(hashlib.sha256(content).digest() for content in inputs)
    seed = hashlib.sha256(f"{task}:{index}:".encode() + b"".join(digests)).digest()
    return hash_chain(seed, size)


def _cpu_seconds(rng: random.Random, bounds: tuple[float, float]) -> float:
    """A CPU time drawn from `bounds`, to 0.1 ms so that scripts show short constants."""
    low, high = bounds
    return min(max(round(rng.uniform(low, high), 4), low), high)


def _sample_seed(seed: int, index: int) -> bytes:
    return hashlib.sha256(f"sample:{seed}:{index}".encode()).digest()


def generate_dag(spec: DummySpec) -> DummyApp:
    """The app `spec` describes, without writing anything."""
    rng = random.Random(spec.seed)
    widths = _layer_widths(rng, spec)
    layers: list[list[int]] = []
    for width in widths:
        start = sum(len(layer) for layer in layers)
        layers.append(list(range(start, start + width)))
    children = _edges(rng, spec, layers)
    parents = {task: sum(task in kids for kids in children.values()) for task in children}
    tasks: list[DummyTask] = []
    for depth, layer in enumerate(layers):
        for task in layer:
            kids = tuple(f"task{child}" for child in sorted(children[task])) or (HOME,)
            flag = len(kids) < 2 or rng.random() >= spec.false_ratio
            outputs = 1 if flag else len(kids)
            tasks.append(
                DummyTask(
                    name=f"task{task}",
                    layer=depth,
                    num_inputs=max(1, parents[task]),
                    flag=flag,
                    children=kids,
                    cpu_seconds=_cpu_seconds(rng, spec.cpu_seconds),
                    output_sizes=tuple(rng.randint(*spec.output_bytes) for _ in range(outputs)),
                )
            )
    samples = tuple(
        (f"input{index}.txt", hash_chain(_sample_seed(spec.seed, index), rng.randint(*spec.sample_bytes)))
        for index in range(spec.samples)
    )
    return DummyApp(spec=spec, tasks=tuple(tasks), samples=samples)


def expected_outputs(app: DummyApp, frame: bytes) -> dict[str, list[bytes]]:
    """Every task's outputs, in return order, for one frame whose input content is `frame`."""
    inputs: dict[str, list[bytes]] = {task.name: [] for task in app.tasks}
    outputs: dict[str, list[bytes]] = {}
    for task in app.tasks:
        received = inputs[task.name] or [frame]
        outputs[task.name] = [
            output_content(task.name, index, received, size) for index, size in enumerate(task.output_sizes)
        ]
        for position, child in enumerate(task.children):
            if child != HOME:
                inputs[child].append(outputs[task.name][0 if task.flag else position])
    return outputs


_SCRIPT = string.Template('''\
"""Task $name of a generated dummy Jupiter app (layer $layer of the DAG).

Generated by jupiter.tools.dummy; edit the generator, not this file. Regenerate
with this one command line:
    $command

What every dummy task does is in jupiter.tools.dummy_task; this file only
holds this task's parameters.
"""

from __future__ import annotations

from jupiter.tools.dummy_task import run_main, run_task

TASK = "$name"
NUM_INPUTS = $num_inputs
CHILDREN = $children
FLAG = $flag
CPU_SECONDS = $cpu_seconds
OUTPUT_SIZES = $output_sizes


def task(filename: str | list[str], pathin: str, pathout: str) -> list[str]:
    """Burn CPU, then write this task's outputs for one frame; returns their paths."""
    return run_task(TASK, NUM_INPUTS, CPU_SECONDS, OUTPUT_SIZES, filename, pathin, pathout)


def main() -> None:
    """Run the task on the app's sample inputs and print where its outputs went."""
    run_main(TASK, NUM_INPUTS, CPU_SECONDS, OUTPUT_SIZES, __file__)


if __name__ == "__main__":
    main()
''')


def _tuple_literal(names: tuple[str, ...]) -> str:
    """A tuple of strings as Python source, in the double quotes the scripts use."""
    items = ", ".join(f'"{name}"' for name in names)
    return f"({items},)" if len(names) == 1 else f"({items})"


def render_script(task: DummyTask, spec: DummySpec) -> str:
    """The source of `scripts/<task>.py`."""
    return _SCRIPT.substitute(
        name=task.name,
        layer=task.layer,
        command="\n        ".join(textwrap.wrap(spec.command(), width=76, break_on_hyphens=False)),
        num_inputs=task.num_inputs,
        children=_tuple_literal(task.children),
        flag=repr(task.flag),
        cpu_seconds=repr(task.cpu_seconds),
        output_sizes=repr(task.output_sizes),
    )


def app_files(app: DummyApp) -> dict[str, bytes]:
    """Every file of the app folder, by path relative to the folder."""
    entries = [task for task in app.tasks if task.layer == 0]
    files: dict[str, str | bytes] = {
        "configuration.txt": app.configuration(),
        "app_config.ini": "[DOCKER_PORT]\n\n[SVC_PORT]\n",
        "requirements.txt": "",
        "input_node.txt": "task node\n" + "".join(f"{task.name} node1\n" for task in entries),
        "name_convert.txt": "input output_app_name input_app_name\n"
        + "".join(f"{task.name} {task.name} {(app.parents(task.name) or ('input',))[0]}\n" for task in app.tasks),
    }
    for task in app.tasks:
        files[f"scripts/{task.name}.py"] = render_script(task, app.spec)
    for name, content in app.samples:
        files[f"sample_input/{name}"] = content
    return {path: data.encode() if isinstance(data, str) else data for path, data in files.items()}


def write_app(app: DummyApp, folder: Path, *, overwrite: bool = False) -> list[Path]:
    """Write the app into `folder`; returns the files written.

    The folder must not exist or be empty; with `overwrite`, an existing app
    folder (one that has a configuration.txt) is replaced.
    """
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{folder} is not empty; choose another folder or pass overwrite=True")
        if not (folder / "configuration.txt").is_file():
            raise FileExistsError(f"{folder} is not an app folder (no configuration.txt); refusing to replace it")
        shutil.rmtree(folder)
    written: list[Path] = []
    for relative, data in app_files(app).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


def generate_app(folder: Path, spec: DummySpec, *, overwrite: bool = False) -> DummyApp:
    """Generate the app `spec` describes into `folder` and return it."""
    app = generate_dag(spec)
    write_app(app, folder, overwrite=overwrite)
    return app
