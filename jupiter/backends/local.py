"""The local backend: every agent is a child process on 127.0.0.1.

Each node gets its own folder under the deployment folder, two free ports
(data plane and control plane), and one agent process, all watched by a
supervisor (`jupiter.backends.supervisor`) that restarts crashed agents.
The deployment is found again from its folder, so `status`, `submit` and
`teardown` work from any later CLI invocation.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jupiter.errors import JupiterError
from jupiter.runtime.plan import NodeAddress, Plan

HOST = "127.0.0.1"


class BackendError(JupiterError):
    """The backend could not start or stop a deployment."""


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


def agent_argv(root: Path, node: str) -> list[str]:
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
    ]


def start_supervisor(root: Path) -> int:
    """Start the detached supervisor; returns its pid (= the deployment's process group id)."""
    done = subprocess.run(  # noqa: S603 - argument list, our own interpreter
        [sys.executable, "-m", "jupiter.backends.supervisor", "--daemon", str(root)],
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


def iter_logs(root: Path) -> Iterator[Path]:
    """Log files of a deployment, for error messages."""
    yield from sorted((root / "logs").glob("*.log"))


class LocalBackend:
    """Agents as supervised child processes on 127.0.0.1 (the default backend)."""

    name = "local"

    def addresses(self, nodes: list[tuple[str, str]]) -> dict[str, NodeAddress]:
        ports = free_ports(2 * len(nodes))
        return {
            name: NodeAddress(name, role, HOST, ports[2 * i], ports[2 * i + 1]) for i, (name, role) in enumerate(nodes)
        }

    def start(self, root: Path, plan: Plan, nodes: list[str]) -> dict[str, Any]:
        (root / "agents.json").write_text(json.dumps({name: agent_argv(root, name) for name in nodes}))
        return {"pgid": start_supervisor(root)}

    def running(self, info: dict[str, Any]) -> bool:
        return bool(group_members(int(info["pgid"])))

    def stop(self, info: dict[str, Any]) -> list[str]:
        pgid = int(info["pgid"])
        members = group_members(pgid)
        stop_group(pgid)
        return [f"process {pid}" for pid in members]

    def kill_node(self, root: Path, node: str) -> int:
        """Fault injection: SIGKILL one node's agent and keep it down (the supervisor does not restart it).

        Returns the killed pid. Its task workers exit when their pipe closes.
        """
        (root / "held").mkdir(exist_ok=True)
        (root / "held" / node).touch()
        pids = json.loads((root / "pids.json").read_text())["agents"]
        if node not in pids:
            raise KeyError(node)
        pid = int(pids[node])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return pid
