"""Soak: stream frames through network_monitoring_app while agents are killed and every port is attacked.

    .venv/bin/python bench/soak/soak.py --frames 300                   # a small run (a few minutes)
    .venv/bin/python bench/soak/soak.py                                # the full soak: 5000 frames
    .venv/bin/python bench/soak/soak.py --frames 1000 --oversize 200M  # with large unauthenticated payloads

On the local backend (home and `--nodes` compute nodes, the app's 14 tasks
dealt round-robin as a static mapping), the bench submits `--frames`
frames, each a sample input under a name of its own, in batches of
`--batch`, `--rate` frames a second, and meanwhile

* every `--kill-every` seconds SIGKILLs the agent of a random node, home
  included (the supervisor restarts it: its frames must survive);
* every `--attack-every` seconds attacks every agent's data and control
  ports: random bytes, a header announcing `--oversize` bytes without a
  token (then as many bytes sent, up to `--oversize-send`), unauthenticated
  `file` messages with forged kinds, a header length over the limit,
  unauthenticated and oversized HTTP requests, raw garbage over HTTP, and
  `--idle` connections left open without a word;
* samples every agent's resident memory twice a second.

When every frame is back (or `--timeout`), it prints, from home's event
log and output folders: frames lost (accepted by home, never finished),
duplicated (finished twice, or an input finished in two frames),
mixed (a report that is not exactly the reference report of its frame's
input, `jupiter.tools.traffic`), failed; each agent's peak RSS; and the
attacks: connections the agents refused or closed, and attacks that found
the agent down. Lost, duplicated and mixed must be 0, 0, 0: the exit code is
1 otherwise. A submit that home's death interrupted is resubmitted only for
the inputs home's event log does not show as started (submit is not
idempotent yet), and counted. The load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from jupiter.model.bundled import example_apps
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.events import FrameDone, FrameFailed, FrameSubmitted, read_events
from jupiter.model.workspace import load_workspace
from jupiter.runtime.protocol import encode
from jupiter.service.deploy import deploy, teardown
from jupiter.service.record import Deployment, DeploymentError
from jupiter.service.run import flush_events, home_frames, submit_data
from jupiter.tools.traffic import report_for

APP = "network_monitoring_app"
ANSWER_SECONDS = 1.0
"""How long an attack waits for the agent's answer (silence counts as refused: the agent waits for more)."""
UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def size(text: str) -> int:
    text = text.strip().upper().rstrip("B")
    unit = text[-1] if text and text[-1] in UNITS else ""
    return int(text[: len(text) - len(unit)]) * UNITS[unit]


@dataclass
class Tally:
    """What the background threads saw (the attack counts are shared by the attackers: `seen` locks)."""

    kills: Counter[str] = field(default_factory=Counter)
    attacks: Counter[str] = field(default_factory=Counter)
    """`refused`: connections an agent answered with a refusal or closed; `answered`: answered otherwise
    (they should all be refusals); `down`: attacks that found the agent down (being restarted)."""
    rss: dict[str, int] = field(default_factory=dict)
    resubmitted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self, outcome: str) -> None:
        with self.lock:
            self.attacks[outcome] += 1


def workdir(root: Path, nodes: int, queue: int) -> Path:
    app = root / "app_specific_files" / APP
    shutil.copytree(example_apps()[APP], app)
    names = [f"node{i}" for i in range(1, nodes + 1)]
    (root / "nodes.txt").write_text("home localhost\n" + "".join(f"{name} localhost\n" for name in names))
    tasks = [line.split()[0] for line in (app / "configuration.txt").read_text().splitlines()[1:] if line.strip()]
    (root / "mapping.txt").write_text("".join(f"{task} {names[i % nodes]}\n" for i, task in enumerate(tasks)))
    (root / "jupiter_config.ini").write_text(
        f"[CONFIG]\nSTATIC_MAPPING = 1\n[DEPLOY]\nAPP = app_specific_files/{APP}\nMAPPING = mapping.txt\n"
        f"[OTHER]\nTASK_QUEUE_SIZE = {queue}\n"
    )
    return root


def agent_pids(deployment: Deployment) -> dict[str, int]:
    with contextlib.suppress(OSError, ValueError):
        return {node: int(pid) for node, pid in json.loads(deployment.layout.pids.read_text())["agents"].items()}
    return {}


def killer(deployment: Deployment, every: float, stop: threading.Event, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    nodes = sorted(deployment.nodes)
    while not stop.wait(every):
        node = rng.choice(nodes)
        pid = agent_pids(deployment).get(node)
        if pid is None:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            tally.kills[node] += 1


def _exchange(host: str, port: int, data: bytes, tally: Tally, read: bool = True) -> None:
    """Send `data` on a new connection and see how the agent takes it."""
    try:
        with socket.create_connection((host, port), timeout=ANSWER_SECONDS) as sock:
            with contextlib.suppress(OSError):
                sock.sendall(data)
            if not read:
                tally.seen("refused")
                return
            answer = b""
            with contextlib.suppress(OSError):
                answer = sock.recv(4096)
            refused = (
                not answer
                or b'"ok": false' in answer
                or answer.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4", b"HTTP/1.1 5"))
            )
            if refused:
                tally.seen("refused")
            else:
                tally.seen("answered")
    except OSError:
        tally.seen("down")


def _oversized(host: str, port: int, announced: int, send: int, tally: Tally) -> None:
    """A header announcing `announced` payload bytes, no token; then up to `send` of them."""
    header = json.dumps({"kind": "file", "name": "big.bin", "size": announced, "sum": "0"}).encode()
    try:
        with socket.create_connection((host, port), timeout=ANSWER_SECONDS) as sock:
            sock.sendall(struct.pack(">I", len(header)) + header)
            chunk = b"\0" * 65536
            sent = 0
            with contextlib.suppress(OSError):
                while sent < send:
                    sock.sendall(chunk[: min(len(chunk), send - sent)])
                    sent += len(chunk)
            with contextlib.suppress(OSError):
                sock.recv(4096)
            tally.seen("refused")
    except OSError:
        tally.seen("down")


def attacker(deployment: Deployment, node: str, args: argparse.Namespace, stop: threading.Event, tally: Tally) -> None:
    """Attack one agent's ports every `--attack-every` seconds (one such thread per agent)."""
    rng = random.Random(f"{args.seed}-{node}")
    address = deployment.nodes[node]
    data, control = (address.host, address.data_port), (address.host, address.control_port)
    forged = "file\n2026-01-01 00:00:00,000 home INFO forged line"
    idle: list[socket.socket] = []
    try:
        while not stop.wait(args.attack_every):
            _exchange(*data, rng.randbytes(256), tally)
            _exchange(*data, encode({"kind": forged, "token": "wrong", "name": "x"}, b"payload"), tally)
            _exchange(*data, struct.pack(">I", 2**31) + b"{}", tally)
            _oversized(*data, args.oversize, args.oversize_send, tally)
            _exchange(*control, b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n", tally)
            _exchange(*control, b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n", tally)
            _exchange(*control, rng.randbytes(512) + b"\r\n\r\n", tally)
            # This round's idle connections replace the last round's (the agents close idle ones too).
            for sock in idle:
                sock.close()
            idle = []
            for _ in range(args.idle):
                with contextlib.suppress(OSError):
                    idle.append(socket.create_connection(control, timeout=ANSWER_SECONDS))
                    idle.append(socket.create_connection(data, timeout=ANSWER_SECONDS))
    finally:
        for sock in idle:
            sock.close()


def sampler(deployment: Deployment, stop: threading.Event, tally: Tally) -> None:
    while not stop.wait(0.5):
        for node, pid in agent_pids(deployment).items():
            with contextlib.suppress(psutil.Error):
                tally.rss[node] = max(tally.rss.get(node, 0), psutil.Process(pid).memory_info().rss)


def started_inputs(deployment: Deployment) -> set[str]:
    events = read_events(deployment.home_dir / "events.jsonl", types=[FrameSubmitted.type])
    return {event.input for event in events if isinstance(event, FrameSubmitted)}


def submit_all(
    deployment: Deployment, files: list[tuple[str, bytes]], batch: int, rate: float, tally: Tally
) -> list[str]:
    """Submit every file, `rate` a second; a batch cut by home's death is completed with what home did not start."""
    accepted: list[str] = []
    began = time.time()
    for start in range(0, len(files), batch):
        if rate > 0:
            time.sleep(max(0.0, began + start / rate - time.time()))
        pending = files[start : start + batch]
        while pending:
            try:
                accepted += submit_data(deployment, pending)
                pending = []
            except DeploymentError:
                time.sleep(1.0)  # home is being restarted; its event log says what it started
                with contextlib.suppress(OSError):
                    begun = started_inputs(deployment)
                    left = [item for item in pending if item[0] not in begun]
                    tally.resubmitted += len(left) if len(left) < len(pending) else 0
                    pending = left
    return accepted


def wait_all(deployment: Deployment, total: int, timeout: float) -> dict[str, Any]:
    deadline = time.time() + timeout
    counts: dict[str, Any] = {}
    while time.time() < deadline:
        with contextlib.suppress(DeploymentError, KeyError):
            counts = home_frames(deployment)
            if counts["done"] + counts["failed"] >= total:
                return counts
        time.sleep(0.5)
    return counts


def verdict(deployment: Deployment, inputs: dict[str, bytes]) -> dict[str, int]:
    """Lost, duplicated, mixed and failed frames, from home's event log and outputs."""
    events = list(read_events(deployment.home_dir / "events.jsonl"))
    submitted = {e.frame: e.input for e in events if isinstance(e, FrameSubmitted)}
    done = Counter(e.frame for e in events if isinstance(e, FrameDone))
    failed = {e.frame for e in events if isinstance(e, FrameFailed)}
    per_input = Counter(submitted[frame] for frame in done if frame in submitted)
    mixed = 0
    for frame in done:
        name = submitted.get(frame, "")
        folder = deployment.home_dir / "output" / frame
        reports = [p for p in folder.iterdir() if not p.name.startswith(".")] if folder.is_dir() else []
        expected = report_for(inputs[name].decode(), name) if name in inputs else None
        if len(reports) != 1 or expected is None or reports[0].read_text() != expected:
            mixed += 1
    return {
        "lost": len([frame for frame in submitted if frame not in done and frame not in failed]),
        "duplicated": sum(count - 1 for count in done.values()) + sum(n - 1 for n in per_input.values()),
        "mixed": mixed,
        "failed": len(failed),
        "started": len(submitted),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--nodes", type=int, default=4, help="compute nodes besides home")
    parser.add_argument("--batch", type=int, default=10, help="files per submit")
    parser.add_argument("--rate", type=float, default=5.0, help="frames submitted per second (0: all at once)")
    parser.add_argument("--queue", type=int, default=64, help="[OTHER] TASK_QUEUE_SIZE")
    parser.add_argument("--kill-every", type=float, default=4.0, help="seconds between kills (0: none)")
    parser.add_argument("--attack-every", type=float, default=2.0, help="seconds between attack rounds (0: none)")
    parser.add_argument("--oversize", type=size, default=size("200M"), help="payload size an attack announces")
    parser.add_argument("--oversize-send", type=size, default=size("1M"), help="bytes of it really sent")
    parser.add_argument("--idle", type=int, default=20, help="idle connections per port and round")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="jupiter-soak-"))
    root.mkdir(parents=True, exist_ok=True)
    work = workdir(root, args.nodes, args.queue)
    samples = sorted((work / "app_specific_files" / APP / "sample_input").iterdir())
    inputs = {
        f"s{i:05d}-{samples[i % len(samples)].name}": samples[i % len(samples)].read_bytes() for i in range(args.frames)
    }
    spec = resolve_spec(load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None))
    deployment = deploy(spec, timeout=120)
    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=sampler, args=(deployment, stop, tally), daemon=True)]
    if args.kill_every > 0:
        threads.append(threading.Thread(target=killer, args=(deployment, args.kill_every, stop, tally, args.seed)))
    if args.attack_every > 0:
        for node in sorted(deployment.nodes):
            threads.append(threading.Thread(target=attacker, args=(deployment, node, args, stop, tally)))
    started = time.time()
    try:
        for thread in threads:
            thread.start()
        accepted = submit_all(deployment, list(inputs.items()), args.batch, args.rate, tally)
        counts = wait_all(deployment, args.frames, args.timeout - (time.time() - started))
        stop.set()
        for thread in threads:
            thread.join(30)
        time.sleep(2.0)  # the last restarted agent comes up before the flush
        with contextlib.suppress(DeploymentError):
            flush_events(deployment)
        seconds = time.time() - started
        result = verdict(deployment, inputs)
    finally:
        stop.set()
        teardown(deployment)
    load = os.getloadavg()[0]
    print(
        f"{args.frames} frames ({len(accepted)} accepted in home's answers, {tally.resubmitted} resubmitted after an "
        f"interrupted submit) in {seconds:.0f} s; home counted {counts.get('done', '?')} done, "
        f"{counts.get('failed', '?')} failed (load average {load:.2f})"
    )
    print(
        f"lost {result['lost']}, duplicated {result['duplicated']}, mixed {result['mixed']}, "
        f"failed {result['failed']} (of {result['started']} started)"
    )
    print("kills: " + (", ".join(f"{node} {count}" for node, count in sorted(tally.kills.items())) or "none"))
    print("peak RSS: " + ", ".join(f"{node} {rss / 1024**2:.0f} MB" for node, rss in sorted(tally.rss.items())))
    print(
        f"attacks: {tally.attacks['refused']} connections refused or closed by the agents, "
        f"{tally.attacks['answered']} answered otherwise, {tally.attacks['down']} found the agent down"
    )
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"deployment folder kept in {deployment.root}")
    return 0 if (result["lost"], result["duplicated"], result["mixed"]) == (0, 0, 0) else 1


if __name__ == "__main__":
    sys.exit(main())
