"""The local backend: every agent is a child process on 127.0.0.1.

Each node gets its own folder under the deployment folder, two free ports
(data plane and control plane), and one agent process, all watched by a
supervisor (`jupiter.backends.supervisor`) that restarts crashed agents.
The deployment is found again from its folder, so `status`, `submit` and
`teardown` work from any later CLI invocation.

Files in transit between tasks (each node's inbox and the outputs waiting to
be delivered) live in a *spool* folder, by default in memory (`/dev/shm`)
when the machine has it. Every hop of a frame creates and deletes a few
small files; on an ext4 file system without a journal, as many virtual
machines' disks are, creating a file scans past every inode deleted in the
last half minute (the kernel's `recently_deleted` check), so a stream of
frames slowed itself down by up to four times, depending on the minute. A
tmpfs has no such cost, and nothing there outlives the deployment: agents
that crash and restart find it as they left it, and teardown removes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jupiter.backends.base import Backend, BackendError, Handle
from jupiter.model.errors import InputError
from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import NodeAddress, Plan

HOST = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on the loopback interface right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def agent_argv(root: Path, node: str, spool: Path | None = None) -> list[str]:
    """Command line of one agent."""
    return [
        sys.executable,
        "-m",
        "jupiter.runtime.node",
        "--plan",
        str(root / "plan.json"),
        "--node",
        node,
        "--root",
        str(root),
        *(["--spool", str(spool)] if spool is not None else []),
    ]


MEMORY_FOLDER = Path("/dev/shm")  # noqa: S108 - only a parent: make_spool uses mkdtemp (0700, unique)
SPOOL_PREFIX = "jupiter-spool-"


def in_memory(folder: Path) -> bool:
    """Whether `folder` is the mount point of a writable tmpfs (from /proc/mounts)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 4 and fields[1] == str(folder) and fields[2] == "tmpfs":
                return "rw" in fields[3].split(",") and os.access(folder, os.W_OK)
    return False


def make_spool(deployment: str, parent: Path | None, config: Path | None = None) -> Path | None:
    """The deployment's spool folder (module docstring): under `parent`, else in memory when possible.

    None: no separate spool, the files in transit stay in the deployment folder.
    `config`: the file `parent` comes from (`[DEPLOY] SPOOL_DIR`), named when it cannot be used.
    """
    if parent is None:
        if not in_memory(MEMORY_FOLDER):
            return None
        parent = MEMORY_FOLDER
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{deployment}-", dir=parent))
    except OSError as exc:
        raise InputError(
            config,
            None,
            f"[DEPLOY] SPOOL_DIR: cannot make a folder in {parent} ({exc.strerror or exc}); "
            "name a folder you can write in, or leave SPOOL_DIR empty",
        ) from exc


def remove_spool(spool: Path) -> None:
    """Remove a spool folder made by `make_spool` (and nothing else)."""
    if spool.name.startswith(SPOOL_PREFIX):
        shutil.rmtree(spool, ignore_errors=True)


def start_supervisor(root: Path, log_size: int = 10 * 1024**2, max_log: int = 10) -> int:
    """Start the detached supervisor; returns its pid (= the deployment's process group id).

    It writes each agent's output into `logs/<node>.log`, rotated at `log_size` bytes, `max_log` files kept.
    """
    logs = ["--log-size", str(log_size), "--max-log", str(max_log)]
    done = subprocess.run(  # noqa: S603 - argument list, our own interpreter
        [sys.executable, "-m", "jupiter.backends.supervisor", "--daemon", *logs, str(root)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=root,
        timeout=30,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        raise BackendError(f"cannot start the supervisor: {done.stderr.strip() or done.stdout.strip()}")
    return int(done.stdout.strip())


def group_members(pgid: int) -> list[int]:
    """Pids of live processes in a process group (read from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            state, group = fields[0], int(fields[2])
            if group == pgid and state != "Z":
                members.append(int(entry.name))
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_group(pgid: int, grace: float = 10.0) -> None:
    """Stop every process of a deployment: SIGTERM, wait, then SIGKILL. Raises if any survive."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.time() + grace
    while group_members(pgid) and time.time() < deadline:
        time.sleep(0.05)
    if group_members(pgid):
        _signal_group(pgid, signal.SIGKILL)
        deadline = time.time() + 5
        while group_members(pgid) and time.time() < deadline:
            time.sleep(0.05)
    left = group_members(pgid)
    if left:
        raise BackendError(f"processes {left} of the deployment would not stop; kill them by hand")


def alive(pid: int) -> bool:
    """Whether a pid names a live (non-zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class LocalHandle(Handle):
    """A deployment of supervised local processes, found again by its process group."""

    backend = "local"

    def running(self) -> bool:
        return bool(group_members(int(self.info["pgid"])))

    def stop(self) -> list[str]:
        pgid = int(self.info["pgid"])
        members = group_members(pgid)
        stop_group(pgid)
        if self.info.get("spool"):
            remove_spool(Path(self.info["spool"]))  # files in transit: nothing there outlives the deployment
        return [f"process {pid}" for pid in members]

    def kill_node(self, node: str) -> int:
        """Fault injection: SIGKILL one node's agent and keep it down (the supervisor does not restart it).

        Returns the killed pid. Its task workers exit when their pipe closes.
        """
        layout = self.attachment.layout
        layout.held.mkdir(exist_ok=True)
        (layout.held / node).touch()
        pids = json.loads(layout.pids.read_text())["agents"]
        if node not in pids:
            raise BackendError(f"node {node} has no agent process in this deployment")
        pid = int(pids[node])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return pid


class LocalBackend(Backend):
    """Agents as supervised child processes on 127.0.0.1 (the default backend)."""

    name = "local"
    handle = LocalHandle
    tasks_use_app_environment = True

    def addresses(self, nodes: list[tuple[str, str]]) -> dict[str, NodeAddress]:
        ports = free_ports(2 * len(nodes))
        return {
            name: NodeAddress(name, role, HOST, ports[2 * i], ports[2 * i + 1]) for i, (name, role) in enumerate(nodes)
        }

    def start(self, layout: DeploymentLayout, plan: Plan, nodes: list[str]) -> dict[str, Any]:
        # `[DEPLOY] SPOOL_DIR` (None: in memory when possible); the config file is named when it cannot be used.
        spool = make_spool(plan.deployment, self.spec.spool_dir, self.spec.config_path)
        root = layout.root
        try:
            layout.agents.write_text(json.dumps({name: agent_argv(root, name, spool) for name in nodes}))
            runtime = self.spec.runtime
            info: dict[str, Any] = {"pgid": start_supervisor(root, runtime.log_file_size, runtime.max_log)}
        except BaseException:
            if spool is not None:
                remove_spool(spool)
            raise
        if spool is not None:
            info["spool"] = str(spool)
        return info
