"""What every task of a generated dummy Jupiter app does: the task scripts call `run_task`.

The app's scripts (made by `jupiter.tools.dummy`) hold only their task's
parameters and import this module, so the logic exists once, here, and not as
a copy in every generated app.

A task burns CPU_SECONDS of CPU time, measured with time.process_time() and
divided by the speed factor in the environment variable JUPITER_SPEED_FACTOR (a positive
float, default 1.0; 0.5 emulates a node half as fast), then writes one output
per entry of OUTPUT_SIZES: text lines of a SHA-256 hash chain seeded by the
task's name, the output's index and the digests of its inputs (sorted, so the
order the inputs arrive in does not matter). Output names keep the frame's
name: `<frame>__<task>_<index>.txt`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

SPEED_ENV = "JUPITER_SPEED_FACTOR"


def speed_factor() -> float:
    """The node's speed relative to the one CPU_SECONDS was chosen for."""
    raw = os.environ.get(SPEED_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        speed = float(raw)
    except ValueError:
        raise ValueError(f"{SPEED_ENV}={raw!r} is not a number; set a positive float such as 0.5") from None
    if not 0.0 < speed < float("inf"):
        raise ValueError(f"{SPEED_ENV}={raw!r} must be a positive, finite number such as 0.5")
    return speed


def burn(name: str, seconds: float) -> None:
    """Keep the CPU busy for `seconds` of this process's CPU time."""
    deadline = time.process_time() + seconds
    block = name.encode()
    while time.process_time() < deadline:
        for _ in range(64):
            block = hashlib.sha256(block).digest()


def hash_chain(seed: bytes, size: int) -> bytes:
    """`size` bytes of text: lines of 64 hex digits of the SHA-256 chain that starts at `seed`."""
    lines: list[bytes] = []
    block = seed
    for _ in range(size // 65 + 1):
        block = hashlib.sha256(block).digest()
        lines.append(block.hex().encode("ascii") + b"\n")
    return b"".join(lines)[:size]


def run_task(
    name: str,
    num_inputs: int,
    cpu_seconds: float,
    output_sizes: tuple[int, ...],
    filename: str | list[str],
    pathin: str,
    pathout: str,
) -> list[str]:
    """One frame of task `name`: burn CPU, write the outputs, return their paths."""
    names = [filename] if isinstance(filename, str) else list(filename)
    if len(names) != num_inputs:
        raise ValueError(f"{name} takes {num_inputs} input(s), got {len(names)}: {names}")
    digests = sorted(hashlib.sha256(Path(pathin, item).read_bytes()).digest() for item in names)
    burn(name, cpu_seconds / speed_factor())
    frame = Path(sorted(names)[0].split("__")[0]).stem
    outputs: list[str] = []
    for index, size in enumerate(output_sizes):
        seed = hashlib.sha256(f"{name}:{index}:".encode() + b"".join(digests)).digest()
        path = Path(pathout, f"{frame}__{name}_{index}.txt")
        path.write_bytes(hash_chain(seed, size))
        outputs.append(str(path.resolve()))
    return outputs


def run_main(name: str, num_inputs: int, cpu_seconds: float, output_sizes: tuple[int, ...], script: str) -> None:
    """Run task `name` on the app's sample inputs and print where its outputs went."""
    samples_dir = Path(script).resolve().parent.parent / "sample_input"
    samples = sorted(p for p in samples_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    work = Path(tempfile.mkdtemp(prefix=f"jupiter_{name}_"))
    pathin, pathout = work / "in", work / "out"
    pathin.mkdir()
    pathout.mkdir()
    frame = samples[0].stem
    names: list[str] = []
    for index in range(num_inputs):
        # Stand-ins for the parents' outputs: sample files, named as one frame's files.
        item = samples[0].name if num_inputs == 1 else f"{frame}__input_{index}.txt"
        shutil.copyfile(samples[index % len(samples)], pathin / item)
        names.append(item)
    argument: str | list[str] = names[0] if num_inputs == 1 else names
    for path in run_task(name, num_inputs, cpu_seconds, output_sizes, argument, str(pathin), str(pathout)):
        print(path)
