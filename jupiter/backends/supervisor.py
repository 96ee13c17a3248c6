"""Keeps a deployment's local agents running.

`jupiter deploy` starts this program in a session of its own; it starts one
agent per node, restarts any agent that exits (a crash or `kill -9`), and on
SIGTERM stops them all and exits. Because every agent is in the
supervisor's session, `jupiter teardown` can stop the whole deployment by
process group even if the CLI that deployed it has crashed.

Run as `python -m jupiter.backends.supervisor [--daemon] [--max-log N]
[--log-size BYTES] DEPLOYMENT_DIR`; it reads `agents.json` (node ->
argument list) and writes `pids.json`. An agent whose name is in the
`held/` folder is not restarted (fault injection).

Each agent's output (its standard output and error) comes to the supervisor
through a pipe, read by one thread per agent process, and goes into
`logs/<node>.log`, rotated at `--log-size` bytes with `--max-log` files kept
(`[OTHER] LOG_FILE_SIZE` and `MAX_LOG`, `jupiter.backends.rotating_log`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from jupiter.backends.rotating_log import RotatingLog

POLL_SECONDS = 0.1
STOP_GRACE_SECONDS = 5.0
DRAIN_SECONDS = 5.0
"""Seconds the last lines of stopped agents get to reach their logs."""
LOG_SIZE = 10 * 1024**2
MAX_LOG = 10


class Supervisor:
    """Starts, watches and restarts agent processes."""

    def __init__(self, root: Path, log_size: int = LOG_SIZE, max_log: int = MAX_LOG) -> None:
        self.root = root
        self.specs: dict[str, list[str]] = json.loads((root / "agents.json").read_text())
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, list[float]] = {name: [] for name in self.specs}
        self.log_size = log_size
        self.max_log = max_log
        self.logs: dict[str, RotatingLog] = {}
        self.pumps: list[threading.Thread] = []
        self.stopping = False
        self.held: set[str] = set()

    def _start(self, node: str) -> None:
        log = self.logs.get(node)
        if log is None:
            (self.root / "logs").mkdir(exist_ok=True)
            log = RotatingLog(self.root / "logs" / f"{node}.log", self.log_size, self.max_log)
            self.logs[node] = log
        process = subprocess.Popen(  # noqa: S603 - argument list built by deploy
            self.specs[node], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        assert process.stdout is not None
        pump = threading.Thread(target=log.pump, args=(process.stdout,), name=f"log-{node}", daemon=True)
        pump.start()
        self.pumps = [*(thread for thread in self.pumps if thread.is_alive()), pump]
        self.processes[node] = process

    def _write_pids(self) -> None:
        pids = {node: process.pid for node, process in self.processes.items()}
        tmp = self.root / ".pids.json.tmp"
        tmp.write_text(json.dumps({"supervisor": os.getpid(), "agents": pids}))
        tmp.replace(self.root / "pids.json")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> None:
        """Start every agent and keep them up until told to stop."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for node in self.specs:
            self._start(node)
        self._write_pids()
        while not self.stopping:
            time.sleep(POLL_SECONDS)
            changed = False
            for node, process in list(self.processes.items()):
                code = process.poll()
                if code is None or self.stopping or node in self.held:
                    continue
                if (self.root / "held" / node).exists():
                    # Fault injection (`jupiter kill NODE`): this node stays down.
                    self.held.add(node)
                    sys.stderr.write(f"supervisor: agent {node} exited with code {code}; held down\n")
                    sys.stderr.flush()
                    continue
                now = time.time()
                recent = [t for t in self.restarts[node] if now - t < 10]
                self.restarts[node] = [*recent, now]
                if len(recent) >= 5:
                    # Crash loop: slow down rather than spin.
                    time.sleep(1.0)
                sys.stderr.write(f"supervisor: agent {node} exited with code {code}; restarting\n")
                sys.stderr.flush()
                self._start(node)
                changed = True
            if changed:
                self._write_pids()
        self.stop()

    def stop(self) -> None:
        """SIGTERM every agent, then SIGKILL what is left after a grace period."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.time() + STOP_GRACE_SECONDS
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        deadline = time.time() + DRAIN_SECONDS
        for pump in self.pumps:
            pump.join(max(0.0, deadline - time.time()))
        for log in self.logs.values():
            log.close()


def daemonize(root: Path) -> None:
    """Detach into a session of our own, print our pid, and send output to the log.

    The caller does not keep a child process: the supervisor is re-parented
    to init, and its pid is the process group id of the whole deployment.
    """
    pid = os.fork()
    if pid:
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()
        os._exit(0)
    os.setsid()
    log = os.open(root / "supervisor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def main(argv: list[str]) -> None:
    """`python -m jupiter.backends.supervisor [--daemon] [--max-log N] [--log-size BYTES] DEPLOYMENT_DIR`."""
    parser = argparse.ArgumentParser(prog="python -m jupiter.backends.supervisor")
    parser.add_argument("--daemon", action="store_true", help="detach and print the pid")
    parser.add_argument("--max-log", type=int, default=MAX_LOG, help="log files kept per agent")
    parser.add_argument("--log-size", type=int, default=LOG_SIZE, help="bytes at which a log is rotated")
    parser.add_argument("root", type=Path, help="deployment folder")
    args = parser.parse_args(argv)
    if args.daemon:
        daemonize(args.root)
    Supervisor(args.root, args.log_size, args.max_log).run()


if __name__ == "__main__":
    main(sys.argv[1:])
