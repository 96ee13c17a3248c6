"""Testbed files: an emulated heterogeneous network for the local backend.

A testbed file gives each node a *speed factor* and each link a *bandwidth*
and *latency*, so that profiling and mapping see a heterogeneous network on
one machine (the agents apply it, see `jupiter.runtime.emulation`)::

    [nodes]
    # name = speed factor: 1 = this machine, 0.25 = four times slower
    node1 = 1
    node2 = 0.25

    [uplinks]
    # node = bandwidth latency; every transfer the node sends shares its uplink
    default = 100mbit 1ms
    node2 = 10mbit 20ms

    [links]
    # src -> dst = bandwidth latency (one direction; `*` matches any node);
    # a link has a capacity of its own, not shared with the sender's other links
    node1 -> node2 = 1gbit 0ms
    * -> home = 1gbit 0ms

Bandwidths are bits per second with tc's suffixes (`bit`, `kbit`, `mbit`,
`gbit`; also `kbps`/`mbps` = bytes); latencies take `us`, `ms` or `s`. A
node not listed runs at speed 1; a transfer matching no link and no uplink
is not shaped. The most specific rule wins: an exact link, then `src -> *`,
then `* -> dst`, then `* -> *`, then the sender's uplink, then `default`.
"""

from __future__ import annotations

import configparser
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupiter.model.errors import InputError

TESTBED_FORMAT = "jupiter-testbed"

_BANDWIDTH = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmg]?)(bit|bps)$", re.IGNORECASE)
_LATENCY = re.compile(r"^(\d+(?:\.\d+)?)\s*(us|ms|s)$", re.IGNORECASE)
_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}
_TIME = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_SECTIONS = ("nodes", "uplinks", "links")


@dataclass(frozen=True)
class LinkShape:
    """How one emulated link behaves: bytes per second and one-way latency in seconds."""

    bandwidth: float
    """Bytes per second (`inf` = no bandwidth limit)."""
    latency: float
    """Seconds added once per transfer."""
    shared_by: str
    """Key of the capacity a transfer holds while it is on the wire (a link, or a sender's uplink)."""

    def seconds(self, size: int) -> float:
        """Time on the wire for `size` bytes, latency included."""
        return self.latency + size / self.bandwidth


@dataclass(frozen=True)
class Testbed:
    """A parsed testbed file (plain data, also carried in the deployment plan)."""

    __test__ = False  # not a pytest test class, despite the name

    speeds: Mapping[str, float] = field(default_factory=dict)
    uplinks: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """node (or `default`) -> (bytes/s, latency s)."""
    links: Mapping[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    """(src, dst) with `*` wildcards -> (bytes/s, latency s)."""
    path: str = ""
    kernel_bandwidth: bool = False
    """The kernel shapes the bandwidths (docker's `tc`); the agents emulate latencies only."""

    def speed(self, node: str) -> float:
        """Speed factor of a node (1 when not listed)."""
        return self.speeds.get(node, 1.0)

    def shape(self, src: str, dst: str) -> LinkShape | None:
        """The shape of the link src -> dst, or None when the transfer is not shaped."""
        for key in ((src, dst), (src, "*"), ("*", dst), ("*", "*")):
            if key in self.links:
                bandwidth, latency = self.links[key]
                return LinkShape(bandwidth, latency, f"link:{src}->{dst}")
        for name in (src, "default"):
            if name in self.uplinks:
                bandwidth, latency = self.uplinks[name]
                return LinkShape(bandwidth, latency, f"uplink:{src}")
        return None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (for the plan); inverse of :meth:`from_json`."""
        return {
            "format": TESTBED_FORMAT,
            "path": self.path,
            "speeds": dict(self.speeds),
            "uplinks": {node: list(shape) for node, shape in self.uplinks.items()},
            "links": [[src, dst, bw, lat] for (src, dst), (bw, lat) in self.links.items()],
            "kernel_bandwidth": self.kernel_bandwidth,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Testbed:
        """Inverse of :meth:`to_json`."""
        return cls(
            speeds={str(k): float(v) for k, v in data.get("speeds", {}).items()},
            uplinks={str(k): (float(v[0]), float(v[1])) for k, v in data.get("uplinks", {}).items()},
            links={(str(s), str(d)): (float(bw), float(lat)) for s, d, bw, lat in data.get("links", [])},
            path=str(data.get("path", "")),
            kernel_bandwidth=bool(data.get("kernel_bandwidth", False)),
        )


def parse_bandwidth(text: str) -> float:
    """Bytes per second of `10mbit`, `1gbit`, `500kbps` (...); ValueError with the fix otherwise."""
    match = _BANDWIDTH.match(text.strip())
    if not match:
        raise ValueError(f"bandwidth {text!r} must look like 10mbit, 1gbit or 500kbit (bits per second)")
    value = float(match.group(1)) * _SCALE[match.group(2).lower()]
    if value <= 0:
        raise ValueError(f"bandwidth {text!r} must be positive")
    # `bit` is bits per second, `bps` bytes per second (as tc spells them).
    return value / 8 if match.group(3).lower() == "bit" else value


def parse_latency(text: str) -> float:
    """Seconds of `10ms`, `0ms`, `1.5s`, `200us`; ValueError with the fix otherwise."""
    match = _LATENCY.match(text.strip())
    if not match:
        raise ValueError(f"latency {text!r} must look like 10ms, 200us or 0.5s")
    return float(match.group(1)) * _TIME[match.group(2).lower()]


def _line_numbers(text: str) -> dict[tuple[str, str], int]:
    lines: dict[tuple[str, str], int] = {}
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            lines[(section, "")] = number
        elif line and line[0] not in "#;":
            lines[(section, re.split(r"=", line, maxsplit=1)[0].strip())] = number
    return lines


def _shape(path: Path, line: int | None, value: str) -> tuple[float, float]:
    parts = value.split()
    if len(parts) != 2:
        raise InputError(path, line, f"expected `bandwidth latency` such as `10mbit 5ms`, got {value!r}")
    try:
        return parse_bandwidth(parts[0]), parse_latency(parts[1])
    except ValueError as exc:
        raise InputError(path, line, str(exc)) from None


def parse_testbed(path: Path, known_nodes: tuple[str, ...] | None = None) -> Testbed:
    """Read a testbed file (INI, or the JSON of `Testbed.to_json`); InputError naming file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, None, f"cannot read the testbed file: {exc.strerror or exc}") from None
    if text.lstrip().startswith("{"):
        try:
            return Testbed.from_json(json.loads(text))
        except (json.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
            raise InputError(path, None, f"not a valid JSON testbed: {exc}") from None
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None)
        raise InputError(path, line, f"cannot parse the testbed file: {exc.message}") from None
    lines = _line_numbers(text)
    nodes = set(known_nodes or ())

    def check_node(section: str, key: str, name: str) -> None:
        if known_nodes is not None and name not in nodes and name not in ("*", "default"):
            raise InputError(
                path, lines.get((section, key)), f"node {name!r} is not in nodes.txt; use one of {sorted(nodes)}"
            )

    for section in parser.sections():
        if section.lower() not in _SECTIONS:
            raise InputError(
                path, lines.get((section.lower(), "")), f"unknown section [{section}]; use [nodes], [uplinks], [links]"
            )
    speeds: dict[str, float] = {}
    uplinks: dict[str, tuple[float, float]] = {}
    links: dict[tuple[str, str], tuple[float, float]] = {}
    for section in parser.sections():
        kind = section.lower()
        for key, value in parser.items(section):
            line = lines.get((kind, key))
            if kind == "nodes":
                check_node(kind, key, key)
                try:
                    speed = float(value)
                except ValueError:
                    raise InputError(
                        path, line, f"speed of {key} must be a number such as 0.5, got {value!r}"
                    ) from None
                if not 0 < speed <= 1:
                    raise InputError(
                        path,
                        line,
                        f"speed of {key} is {speed}; use a factor in (0, 1] relative to this machine "
                        "(0.25 = four times slower), as a node cannot run faster than the CPU it is emulated on",
                    )
                speeds[key] = speed
            elif kind == "uplinks":
                check_node(kind, key, key)
                uplinks[key] = _shape(path, line, value)
            else:
                src, arrow, dst = key.partition("->")
                src, dst = src.strip(), dst.strip()
                if not arrow or not src or not dst:
                    raise InputError(path, line, f"a link is written `src -> dst = bandwidth latency`, got {key!r}")
                check_node(kind, key, src)
                check_node(kind, key, dst)
                links[(src, dst)] = _shape(path, line, value)
    return Testbed(speeds=speeds, uplinks=uplinks, links=links, path=str(path))
