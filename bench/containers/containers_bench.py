"""Figures of the container path: image size, build time (cold and cached), deploy-to-first-output, makespans.

Usage (needs a Docker engine and the base image: scripts/setup-docker):

    .venv/bin/python bench/containers/containers_bench.py [--frames 30] [--app network_monitoring_app]

Prints one line per figure. The app runs on the default nodes.txt (home +
four compute nodes) with a static mapping-free deploy (profile -> map ->
dispatch, as `jupiter run` does), first on the local backend, then on the
docker backend, with the same inputs repeated to `--frames` frames.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from jupiter import deployment as service
from jupiter.backends.docker import build_image
from jupiter.model.workspace import Workspace, load_workspace
from jupiter.resources import data_dir

BASE_IMAGE = "jupiter-base:bookworm"


def workspace_for(root: Path, app: str, backend: str) -> Workspace:
    shutil.copytree(data_dir() / "app_specific_files" / app, root / "app_specific_files" / app, dirs_exist_ok=True)
    shutil.copy(data_dir() / "nodes.txt", root / "nodes.txt")
    text = (data_dir() / "jupiter_config.ini").read_text()
    text = text.replace("APP = app_specific_files/network_monitoring_app", f"APP = app_specific_files/{app}")
    text = text.replace("BACKEND = local", f"BACKEND = {backend}\nBASE_IMAGE = {BASE_IMAGE}\nIMAGE_TAG = bench")
    text = text.replace("STATE_DIR = .jupiter", f"STATE_DIR = .{backend}")
    (root / "jupiter_config.ini").write_text(text)
    return load_workspace(root / "jupiter_config.ini", root / "nodes.txt", None)


def first_output_seconds(workspace: Workspace) -> float:
    """Seconds from calling deploy to the first frame's final output at home."""
    sample = workspace.app.sample_inputs[0]
    started = time.monotonic()
    deployment = service.deploy(workspace, timeout=120)
    try:
        service.submit(deployment, [(sample.name, sample.read_bytes())])
        while service.home_frames(deployment)["done"] < 1:
            if time.monotonic() - started > 300:
                raise RuntimeError("no output within 300 s")
            time.sleep(0.02)
        return time.monotonic() - started
    finally:
        service.teardown(deployment)


def summary_nodes(summary: service.RunSummary) -> list[str]:
    """Nodes the run's mapping used (mappings come from each run's own profile, so they may differ)."""
    return [node for node, _mean, _runs in summary.task_means.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--app", default="network_monitoring_app")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jupiter-bench-") as tmp:
        root = Path(tmp)
        docker_ws = workspace_for(root, args.app, "docker")
        cold = build_image(docker_ws, no_cache=True)
        cached = build_image(docker_ws)
        print(f"image {cold.image}: {cold.size / 1e6:.0f} MB")
        print(f"build, cold (no layer cache; wheels from pip's cache): {cold.seconds:.1f} s")
        print(f"build, cached (nothing changed): {cached.seconds:.1f} s")
        print(f"deploy -> first output, docker backend: {first_output_seconds(docker_ws):.2f} s")
        local_ws = workspace_for(root, args.app, "local")
        print(f"deploy -> first output, local backend: {first_output_seconds(local_ws):.2f} s")
        for name, workspace in (("local", local_ws), ("docker", docker_ws)):
            summary = service.run(workspace, frames=args.frames)
            print(
                f"{name:>6}: {summary.done}/{summary.frames} frames, "
                f"makespan p50 {summary.makespan_p50 * 1000:.1f} ms, p95 {summary.makespan_p95 * 1000:.1f} ms, "
                f"throughput {summary.throughput:.1f} frames/s, mapping {sorted(set(summary_nodes(summary)))}"
            )


if __name__ == "__main__":
    main()
