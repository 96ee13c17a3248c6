"""Figures of the container path: image size, build time (cold and cached), deploy-to-first-output, makespans.

Usage (needs a Docker engine and the base image: scripts/setup-docker):

    .venv/bin/python bench/containers/containers_bench.py [--frames 30] [--app network_monitoring_app]
    .venv/bin/python bench/containers/containers_bench.py --shaping-only

Prints one line per figure. The app runs on the default nodes.txt (home +
four compute nodes) with a static mapping-free deploy (profile -> map ->
dispatch, as `jupiter run` does), first on the local backend, then on the
docker backend, with the same inputs repeated to `--frames` frames.

Link shaping: two nodes, node1's uplink `10mbit 20ms`; the time node1 takes
to send 25 kB and 2 MB to home, on the docker backend (bandwidth by `tc`,
latency by the agents) measured by a bare TCP transfer between the
containers and by the agents' network profiler, and on the local backend
(both emulated by the agents).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from jupiter.backends.docker import LABEL_DEPLOYMENT, LABEL_NODE
from jupiter.backends.docker_client import DockerEngine
from jupiter.backends.image_build import build_image
from jupiter.model.bundled import data_dir
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.workspace import Workspace, load_workspace
from jupiter.service.deploy import deploy, teardown
from jupiter.service.run import home_frames, run, submit_data
from jupiter.service.summary import RunSummary

BASE_IMAGE = "jupiter-base:bookworm"
UPLINK = "10mbit 20ms"
SIZES = (25_000, 2_000_000)

# A byte sink and a timed sender, run inside the containers with the image's python.
SINK = """
import socket
server = socket.create_server(("0.0.0.0", 9999))
while True:
    conn, _ = server.accept()
    while conn.recv(1 << 16):
        pass
    conn.sendall(b"ok")
    conn.close()
"""
SEND = """
import os, socket, sys, time
host, size, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
payload = os.urandom(size)
for _ in range(runs):
    for _ in range(100):
        try:
            conn = socket.create_connection((host, 9999))
            break
        except OSError:
            time.sleep(0.05)
    started = time.perf_counter()
    conn.sendall(payload)
    conn.shutdown(socket.SHUT_WR)
    conn.recv(2)
    print(time.perf_counter() - started)
    conn.close()
"""


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
    deployment = deploy(resolve_spec(workspace), timeout=120)
    try:
        submit_data(deployment, [(sample.name, sample.read_bytes())])
        while home_frames(deployment)["done"] < 1:
            if time.monotonic() - started > 300:
                raise RuntimeError("no output within 300 s")
            time.sleep(0.02)
        return time.monotonic() - started
    finally:
        teardown(deployment)


def summary_nodes(summary: RunSummary) -> list[str]:
    """Nodes the run's mapping used (mappings come from each run's own profile, so they may differ)."""
    return [node for node, _mean, _runs in summary.task_means.values()]


def two_nodes(root: Path, app: str, backend: str) -> Workspace:
    """home and node1 (every task on node1), node1's uplink shaped; a static mapping in root/mapping.txt."""
    workspace_for(root, app, backend)
    (root / "nodes.txt").write_text("home localhost\nnode1 localhost\n")
    (root / "testbed.ini").write_text(f"[uplinks]\nnode1 = {UPLINK}\n")
    config = (root / "jupiter_config.ini").read_text().replace("TESTBED =", "TESTBED = testbed.ini")
    (root / "jupiter_config.ini").write_text(config.replace("STATIC_MAPPING = 0", "STATIC_MAPPING = 1"))
    workspace = load_workspace(root / "jupiter_config.ini", root / "nodes.txt", None)
    (root / "mapping.txt").write_text("".join(f"{task} node1\n" for task in workspace.app.dag.order))
    return workspace


def shaping_figures(root: Path, app: str, backend: str) -> None:
    """Median seconds node1 takes to send each of SIZES to home (direct TCP on docker; the agents' profiler)."""
    workspace = two_nodes(root, app, backend)
    deployment = deploy(resolve_spec(workspace, root / "mapping.txt"), timeout=120)
    try:
        if backend == "docker":
            engine = DockerEngine()
            containers = {
                state.labels[LABEL_NODE]: engine.client.containers.get(state.name)
                for state in engine.containers(f"{LABEL_DEPLOYMENT}={deployment.id}")
            }
            containers["home"].exec_run(["python3", "-c", SINK], detach=True)
            home = deployment.info["public_hosts"]["home"]
            for size in SIZES:
                _, out = containers["node1"].exec_run(["python3", "-c", SEND, home, str(size), "5"])
                assert isinstance(out, bytes)  # not streamed
                seconds = statistics.median(float(line) for line in out.decode().split())
                print(f"docker, tc only (bare TCP), {size / 1e6:g} MB node1 -> home: {seconds * 1000:.1f} ms")
        body = {"peers": ["home"], "sizes": list(SIZES), "samples": 5}
        answer = deployment.control.post("node1", "/profile/network", body, 300.0)
        for size in SIZES:
            seconds = statistics.median(s for _src, _dst, sent, s in answer["samples"] if sent == size)
            what = "tc bandwidth + agents' latency" if backend == "docker" else "agents' emulation"
            print(f"{backend}, {what} (profiler), {size / 1e6:g} MB node1 -> home: {seconds * 1000:.1f} ms")
    finally:
        teardown(deployment)


def base_size() -> int:
    """Bytes of the base image."""
    return DockerEngine().image_size(BASE_IMAGE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--app", default="network_monitoring_app")
    parser.add_argument("--shaping-only", action="store_true", help="only the link shaping figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jupiter-bench-") as tmp:
        root = Path(tmp)
        docker_ws = workspace_for(root, args.app, "docker")
        if not args.shaping_only:
            cold = build_image(resolve_spec(docker_ws), no_cache=True)
            print(f"image {cold.image}: {cold.size / 1e6:.0f} MB (base {BASE_IMAGE}: {base_size() / 1e6:.0f} MB)")
            print(f"build, cold (no layer cache; wheels from pip's cache): {cold.seconds:.1f} s")
        cached = build_image(resolve_spec(docker_ws))
        print(f"build, cached (nothing changed): {cached.seconds:.1f} s")
        print(
            f"link node1 -> home: {UPLINK}; the testbed says "
            + ", ".join(f"{size / 1e6:g} MB in {(0.020 + size * 8 / 10e6) * 1000:.1f} ms" for size in SIZES)
        )
        for backend in ("docker", "local"):
            (root / f"shaping-{backend}").mkdir()
            shaping_figures(root / f"shaping-{backend}", args.app, backend)
        if args.shaping_only:
            return
        print(f"deploy -> first output, docker backend: {first_output_seconds(docker_ws):.2f} s")
        local_ws = workspace_for(root, args.app, "local")
        print(f"deploy -> first output, local backend: {first_output_seconds(local_ws):.2f} s")
        for name, workspace in (("local", local_ws), ("docker", docker_ws)):
            summary = run(resolve_spec(workspace), frames=args.frames)
            print(
                f"{name:>6}: {summary.done}/{summary.frames} frames, "
                f"makespan p50 {summary.makespan_p50 * 1000:.1f} ms, p95 {summary.makespan_p95 * 1000:.1f} ms, "
                f"throughput {summary.throughput:.1f} frames/s, mapping {sorted(set(summary_nodes(summary)))}"
            )


if __name__ == "__main__":
    main()
