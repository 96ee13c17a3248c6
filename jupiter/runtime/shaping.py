"""Link bandwidth shaped by the kernel (`tc`) inside a node's container, latency left to the agent.

The docker backend runs every node in its own container, so each node has a
network interface of its own (`eth0`) whose egress the kernel can shape. This
module turns the testbed file into `tc` commands for one node, and is the
entry point that applies them when the container starts::

    python -m jupiter.runtime.shaping --rules R --status S --user UID:GID -- python3 -m jupiter.runtime.node ...

How the testbed maps onto `tc`. Every peer the node sends to gets the shape
`Testbed.shape(node, peer)` gives; peers whose shape holds the same capacity
(`LinkShape.shared_by`: the node's uplink, or one link of its own) share one
HTB class whose rate (and ceiling) is that bandwidth, and a u32 filter on each
peer's container address sends its packets to that class. Each class holds a
TBF queue of the same rate with a burst of a few packets: TCP hands the
interface segments of up to 64 KB at once (GSO), HTB lets a whole one through
on credit, so a message of tens of kilobytes left at once and the link looked
infinitely fast for it; TBF splits such segments into packets, which HTB then
paces one by one. Traffic to anything
else (peers with no shape, this machine's CLI on the bridge's gateway) is not
classified and leaves unshaped (HTB `default 0`). The kernel has no netem
here, so latency is not shaped by `tc`: the agents keep emulating it (the
backend gives them the testbed with unlimited bandwidths,
:func:`kernel_bandwidth_testbed`), and bandwidth is not applied twice.

Why the rules come from a file and not the command line: filters need every
peer's address, known only once every container has started. The backend
starts the containers, reads their addresses, computes the commands
(:func:`egress_commands`, pure) and writes them where this entry point waits
for them. It runs them as root with the NET_ADMIN capability the backend
granted to this container only, drops to the agent's user (which leaves it
no capability), reports success or the refusal in the status file the backend
waits on, and only then becomes the agent (`exec`): the agent never serves
on an unshaped link. A restarted container applies the same rules again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jupiter.model.testbed import Testbed

DEVICE = "eth0"
"""A container's interface on its (only) network."""

TC = "tc"

RULES_FORMAT = "jupiter-shaping"

RULES_WAIT = 120.0
"""Seconds the entry point waits for its rules before giving up (the backend writes them within seconds)."""

_QUANTUM_RANGE = (1600, 200_000)
"""Bytes; HTB's own quantum (rate / 10) outside this range makes the kernel log a warning per class."""
_MIN_BURST = 3_100
"""Bytes of a class's TBF burst: two full Ethernet frames (a millisecond of the rate when that is more)."""

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class ShapingError(Exception):
    """`tc` refused a command (or is missing), so the node's links cannot be shaped."""


def rate_bits(bandwidth: float) -> int:
    """Bits per second of a bandwidth in bytes per second (tc's `...bit`)."""
    return max(1, round(bandwidth * 8))


def _tc(words: str) -> list[str]:
    """A tc argument list from space-separated words (names and addresses never contain spaces)."""
    return [TC, *words.split()]


def egress_commands(testbed: Testbed, node: str, peers: Mapping[str, str], device: str = DEVICE) -> list[list[str]]:
    """`tc` argument lists shaping `node`'s traffic to each peer (name -> IPv4 address); [] when nothing is shaped.

    One HTB class per capacity (a node's uplink, or a link of its own), in
    order of the capacity's key, so the commands are stable for a testbed.
    """
    classes: dict[str, tuple[float, list[str]]] = {}
    for peer in sorted(peers):
        shape = testbed.shape(node, peer) if peer != node else None
        if shape is None or not math.isfinite(shape.bandwidth):
            continue
        classes.setdefault(shape.shared_by, (shape.bandwidth, []))[1].append(peers[peer])
    if not classes:
        return []
    # Unclassified packets (HTB `default 0`) go out unshaped.
    commands = [_tc(f"qdisc add dev {device} root handle 1: htb default 0")]
    filters = []
    for minor, (_, (bandwidth, addresses)) in enumerate(sorted(classes.items()), start=1):
        classid = f"1:{minor:x}"  # tc reads minor numbers in hex
        rate = f"{rate_bits(bandwidth)}bit"
        quantum = min(max(round(bandwidth / 10), _QUANTUM_RANGE[0]), _QUANTUM_RANGE[1])
        burst = max(_MIN_BURST, round(bandwidth / 1000))
        tbf = f"tbf rate {rate} burst {burst} latency 1s"
        commands += [
            _tc(f"class add dev {device} parent 1: classid {classid} htb rate {rate} ceil {rate} quantum {quantum}"),
            _tc(f"qdisc add dev {device} parent {classid} handle {0x100 + minor:x}: {tbf}"),
        ]
        filters += [
            _tc(f"filter add dev {device} parent 1: protocol ip prio 1 u32 match ip dst {address}/32 flowid {classid}")
            for address in addresses
        ]
    return commands + filters


def shaped_nodes(testbed: Testbed, nodes: Sequence[str]) -> list[str]:
    """Nodes with at least one bandwidth-limited link to another of `nodes` (they need `tc`)."""
    return [
        node
        for node in nodes
        if any(
            (shape := testbed.shape(node, peer)) is not None and math.isfinite(shape.bandwidth)
            for peer in nodes
            if peer != node
        )
    ]


def kernel_bandwidth_testbed(testbed: Testbed) -> Testbed:
    """The testbed the agents get when `tc` shapes every bandwidth: latencies only.

    Bandwidths become unlimited (`inf`), so an agent's emulated transfer
    takes the link's latency and the real send through the shaped interface
    supplies the time on the wire; `kernel_bandwidth` says so to any reader.
    """
    return dataclasses.replace(
        testbed,
        uplinks={node: (math.inf, latency) for node, (_bandwidth, latency) in testbed.uplinks.items()},
        links={link: (math.inf, latency) for link, (_bandwidth, latency) in testbed.links.items()},
        kernel_bandwidth=True,
    )


@dataclass(frozen=True)
class Rules:
    """What one node's container runs before its agent starts (written by the docker backend)."""

    node: str
    commands: tuple[tuple[str, ...], ...]
    device: str = DEVICE

    def to_json(self) -> str:
        """JSON text; inverse of :meth:`from_json`."""
        data = {"format": RULES_FORMAT, "node": self.node, "device": self.device, "commands": self.commands}
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Rules:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        if data.get("format") != RULES_FORMAT:
            raise ValueError(f"not {RULES_FORMAT} rules")
        return cls(
            node=str(data["node"]),
            commands=tuple(tuple(str(arg) for arg in command) for command in data["commands"]),
            device=str(data.get("device", DEVICE)),
        )


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` under a temporary name, then rename (a reader never sees half a file)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


def _run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - argument list from the backend's rules, no shell
        list(command), capture_output=True, text=True, check=False, timeout=30
    )


def _hint(error: str) -> str:
    lowered = error.lower()
    if "operation not permitted" in lowered:
        return (
            "the container lacks the NET_ADMIN capability (the docker backend grants it to shaped nodes; "
            "a rootless or restricted engine may refuse it)"
        )
    if "unknown" in lowered or "not found" in lowered or "no such file" in lowered:
        return "this kernel lacks the HTB qdisc or the u32 classifier (modules sch_htb, cls_u32)"
    return "see `man tc-htb`"


def apply(rules: Rules, run: Runner = _run) -> None:
    """Run the rules' commands in order; ShapingError naming the command, tc's answer and what to do."""
    # A restarted container may find the qdisc of its previous run; start from the interface's default.
    # Deleting fails harmlessly when there is nothing to delete.
    try:
        run([TC, "qdisc", "del", "dev", rules.device, "root"])
    except FileNotFoundError:
        raise ShapingError(
            f"{rules.node}: this image has no `tc` (package iproute2), so its links cannot be shaped; "
            "rebuild the base image with scripts/setup-docker (or use a base image with iproute2) "
            "and the app image with `jupiter build`, or remove the bandwidths from the testbed"
        ) from None
    for command in rules.commands:
        done = run(command)
        if done.returncode != 0:
            answer = " / ".join((done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}").splitlines())
            raise ShapingError(
                f"{rules.node}: tc refused to shape its links: `{' '.join(command)}` answered {answer!r}: "
                f"{_hint(answer)}; remove the bandwidths from the testbed to run without tc"
            )


def drop_privileges(user: str) -> None:
    """Become `uid:gid` for good (no supplementary groups; root's capabilities are lost with its uid)."""
    uid_text, _, gid_text = user.partition(":")
    uid, gid = int(uid_text), int(gid_text or uid_text)
    if os.getuid() == uid and os.getgid() == gid:
        return
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    try:
        os.environ["HOME"] = pwd.getpwuid(uid).pw_dir
    except KeyError:  # a caller's uid unknown to the image: no home
        os.environ["HOME"] = "/"


def wait_for(path: Path, seconds: float) -> str:
    """The text of `path` once it exists; TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no shaping rules at {path} after {seconds:.0f} s")
        time.sleep(0.05)
    return path.read_text()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of a shaped node's container: wait for the rules, apply them, drop root, become the agent."""
    parser = argparse.ArgumentParser(
        prog="python -m jupiter.runtime.shaping", description="Shape this container's links with tc, then run COMMAND."
    )
    parser.add_argument("--rules", type=Path, required=True, help="rules file the docker backend writes")
    parser.add_argument("--status", type=Path, required=True, help="where to report success or tc's refusal")
    parser.add_argument("--user", required=True, help="UID:GID to run COMMAND as")
    parser.add_argument("--wait", type=float, default=RULES_WAIT, help="seconds to wait for the rules")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the agent's command line")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after `--`")
    try:
        rules = Rules.from_json(wait_for(args.rules, args.wait))
        apply(rules)
        error = ""
    except (ShapingError, TimeoutError, ValueError, KeyError, OSError, subprocess.TimeoutExpired) as exc:
        rules, error = Rules(node="", commands=()), str(exc)
    # The status is written as the agent's user, so it stays theirs in the deployment folder.
    drop_privileges(args.user)
    write_atomically(args.status, json.dumps({"ok": not error, "error": error, "commands": len(rules.commands)}))
    if error:
        print(f"jupiter shaping: {error}", file=sys.stderr, flush=True)
        raise SystemExit(1)
    print(f"jupiter shaping: {len(rules.commands)} tc commands applied to {rules.device}", file=sys.stderr, flush=True)
    os.execvp(command[0], command)  # noqa: S606 - the agent's own argument list


if __name__ == "__main__":
    main()
