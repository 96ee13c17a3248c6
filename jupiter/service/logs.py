"""`jupiter logs`: every agent's log on any backend, interleaved by time, optionally followed.

Each backend's handle reads one node's log from a cursor (`Handle.read_log`:
the log files of the local backend, the engine's logs on docker, the pods'
logs on kubernetes); this module merges the nodes' lines by time, keeps
those since `--since`, and with `follow` asks again every `interval` seconds
for what was written since. Without a running deployment it reads the last
deployment's saved logs (the local backend's files stay after teardown; the
docker backend keeps each container's output there).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from jupiter.backends.base import LogCursor, LogLine
from jupiter.model.errors import InputError
from jupiter.service.deployments import choose, entries, find_entry
from jupiter.service.record import Deployment, DeploymentError, DeploymentRecord

FOLLOW_INTERVAL = 0.5
"""Seconds between two reads of the logs when following them."""
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float) -> float:
    """`--since`: a duration back from now (`90s`, `10m`, `2h`, `1d`) or a local time (`2026-12-04T01:27:00`)."""
    match = _DURATION.match(text.strip())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise InputError(
            None, None, f"--since {text!r}: give a duration (30s, 10m, 2h, 1d) or a time (2026-12-04T01:27:00)"
        ) from None


def deployment_for_logs(state_dir: Path, wanted: str | None = None) -> tuple[Deployment, bool]:
    """The deployment whose logs are read, and whether it is running.

    `wanted` (`--deployment ID`) names one in any state; else the latest
    running one, else the newest one with a record (its saved logs).
    """
    if wanted is not None:
        entry = find_entry(state_dir, wanted)
        if entry.record is None:
            raise DeploymentError(f"deployment {entry.id} has no record (its deploy failed early); see {entry.root}")
        return Deployment(entry.record), entry.state.name == "RUNNING"
    try:
        return choose(state_dir).deployment, True
    except DeploymentError:
        recorded = [entry for entry in entries(state_dir) if entry.record is not None]
        if not recorded:
            raise DeploymentError(
                f"no deployment has run here ({state_dir}); start one with `jupiter deploy`"
            ) from None
        return Deployment(recorded[-1].record or DeploymentRecord.load(recorded[-1].root)), False


def check_nodes(deployment: Deployment, nodes: Sequence[str]) -> list[str]:
    """The nodes asked for (every node when none), each known to the deployment."""
    unknown = [node for node in nodes if node not in deployment.nodes]
    if unknown:
        raise InputError(
            None,
            None,
            f"no node {unknown[0]!r} in deployment {deployment.id}; its nodes: {', '.join(deployment.nodes)}",
        )
    return list(nodes) or list(deployment.nodes)


def interleave(batches: Sequence[list[LogLine]], order: Sequence[str]) -> list[LogLine]:
    """Lines of several nodes merged by time (a line without one keeps its place after its node's previous line)."""
    rank = {node: index for index, node in enumerate(order)}
    keyed = []
    for lines in batches:
        previous = -math.inf
        for sequence, line in enumerate(lines):
            previous = line.time if not math.isnan(line.time) else previous
            keyed.append(((previous, rank.get(line.node, len(rank)), sequence), line))
    keyed.sort(key=lambda item: item[0])
    return [line for _, line in keyed]


class LogReader:
    """Reads the logs of some nodes of a deployment from where it last stopped."""

    def __init__(self, deployment: Deployment, nodes: Sequence[str]) -> None:
        self.deployment = deployment
        self.nodes = list(nodes)
        self.cursors: dict[str, LogCursor] = dict.fromkeys(self.nodes)

    def read(self) -> list[LogLine]:
        """Every line written since the last call (all of them the first time), interleaved by time."""
        handle = self.deployment.handle
        batches = []
        for node in self.nodes:
            lines, self.cursors[node] = handle.read_log(node, self.cursors[node])
            batches.append(lines)
        return interleave(batches, self.nodes)


def log_lines(
    reader: LogReader,
    since: float | None,
    follow: bool,
    interval: float = FOLLOW_INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[LogLine]:
    """The lines of the nodes' logs since `since` (None: all); with `follow`, then new lines as they come."""
    while True:
        for line in reader.read():
            if since is None or (not math.isnan(line.time) and line.time >= since):
                yield line
        if not follow:
            return
        sleep(interval)


def format_line(line: LogLine, width: int) -> str:
    """How `jupiter logs` prints a line: the node, then the line as the agent wrote it."""
    return f"{line.node:<{width}} | {line.text}"
