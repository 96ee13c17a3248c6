#!/usr/bin/env python3
"""Generate a dummy Jupiter app: a layered random DAG of tasks that burn CPU and write files.

Example (the committed dummy_app):

    python scripts/generate_dummy_app.py jupiter/data/app_specific_files/dummy_app \\
        --tasks 10 --layers 4 --fan-out 3 --seed 4 --force

Each task burns its CPU time measured with time.process_time(), divided by the
environment variable JUPITER_SPEED_FACTOR (default 1.0) at run time. The
generator itself is jupiter.tools.dummy; this is only its command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

# Run from a checkout without installing: make the repository's package importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jupiter.tools.dummy import DummySpec, generate_app


def parse_args(argv: Sequence[str] | None) -> tuple[Path, DummySpec, bool]:
    """The output folder, the spec and --force from the command line."""
    defaults = DummySpec()
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("folder", type=Path, help="app folder to create (must not exist or be empty)")
    parser.add_argument("--tasks", type=int, default=defaults.tasks, help="number of tasks (%(default)s)")
    parser.add_argument("--layers", type=int, default=None, help="number of layers (default: about sqrt(tasks))")
    parser.add_argument("--max-width", type=int, default=None, help="most tasks in one layer (no limit)")
    parser.add_argument("--fan-out", type=int, default=defaults.fan_out, help="most children of a task (%(default)s)")
    parser.add_argument("--entries", type=int, default=defaults.entries, help="entry tasks (%(default)s)")
    parser.add_argument(
        "--false-ratio",
        type=float,
        default=defaults.false_ratio,
        help="chance that a task with 2+ children uses FLAG false (%(default)s)",
    )
    parser.add_argument(
        "--extra-edges",
        type=float,
        default=defaults.extra_edges,
        help="chance that a task gets one more child, for fan-in and skip edges (%(default)s)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (%(default)s)")
    parser.add_argument(
        "--cpu-seconds",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=defaults.cpu_seconds,
        help="range of a task's CPU seconds at speed 1 (%(default)s)",
    )
    parser.add_argument(
        "--output-bytes",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=defaults.output_bytes,
        help="range of an output's size (%(default)s)",
    )
    parser.add_argument("--samples", type=int, default=defaults.samples, help="sample inputs (%(default)s)")
    parser.add_argument(
        "--sample-bytes",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=defaults.sample_bytes,
        help="range of a sample input's size (%(default)s)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing app folder")
    args = parser.parse_args(argv)
    try:
        spec = DummySpec(
            tasks=args.tasks,
            layers=args.layers,
            max_width=args.max_width,
            fan_out=args.fan_out,
            entries=args.entries,
            false_ratio=args.false_ratio,
            extra_edges=args.extra_edges,
            seed=args.seed,
            cpu_seconds=(args.cpu_seconds[0], args.cpu_seconds[1]),
            output_bytes=(args.output_bytes[0], args.output_bytes[1]),
            samples=args.samples,
            sample_bytes=(args.sample_bytes[0], args.sample_bytes[1]),
        )
    except ValueError as exc:
        parser.error(str(exc))
    return args.folder, spec, args.force


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the app; exit code 0 on success, 2 on bad options or a non-empty folder."""
    folder, spec, force = parse_args(argv)
    if not force and folder.is_dir() and any(folder.iterdir()):
        hint = "choose another folder or pass --force to replace the app in it"
        print(f"error: {folder} is not empty; {hint}", file=sys.stderr)
        return 2
    try:
        app = generate_app(folder, spec, overwrite=force)
    except (ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    edges = sum(len([c for c in task.children if c != "home"]) for task in app.tasks)
    layers = 1 + max(task.layer for task in app.tasks)
    print(f"wrote {len(app.tasks)} tasks in {layers} layers ({edges} edges) to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
