"""Synthetic traffic for `network_monitoring_app`, and the report it must produce.

Traffic files use the text format of `ipsumdump -tsSdDlpF` (what the original
app read): `!` comment lines, then one packet per line with 8 fields

    timestamp ip_src sport ip_dst dport ip_len ip_proto tcp_flags
    1313005230.004512 10.0.0.17 51234 198.51.100.20 443 1500 T PA

(timestamp in Unix seconds with microseconds; ports `-` for ICMP; ip_len in
bytes; ip_proto `T`, `U`, `I` or a number; tcp_flags `-` for non-TCP).

`generate` makes a seeded frame of background traffic (client flows that come
and go, each a Poisson packet process) with injected anomalies: a UDP flood
(one huge flow: a volume anomaly) and a TCP SYN port scan (dozens of new
one-packet flows each second: an equilibrium anomaly). `SAMPLES` are the
frames shipped in the app's `sample_input/`; regenerate them with

    python -m jupiter.tools.traffic samples jupiter/data/app_specific_files/network_monitoring_app/sample_input

`expected_report` computes the report the app's DAG writes for an input
file, byte for byte, straight from the packets: an independent
implementation of the same definitions (partition by CRC-32 of the source,
1-second bins, k-sigma volume detector, ASTUTE, fusion by normalised score)
that tests compare the DAG's output against.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

FIELDS = "timestamp ip_src sport ip_dst dport ip_len ip_proto tcp_flags"

# The app's parameters; they must match the constants in its scripts.
PARTITIONS = 3
BIN_SECONDS = 1
SIMPLE_THRESHOLD = 3.0
ASTUTE_THRESHOLD = 4.0

# Background services: (destination port, protocol). 443 twice: HTTPS dominates.
SERVICES = ((80, "T"), (443, "T"), (443, "T"), (22, "T"), (53, "U"))


@dataclass(frozen=True, order=True)
class Packet:
    """One packet of a traffic summary; `usec` is the Unix time in microseconds."""

    usec: int
    src: str
    sport: int | None
    dst: str
    dport: int | None
    length: int
    proto: str
    flags: str | None

    def line(self) -> str:
        """The packet as an ipsumdump `-tsSdDlpF` line."""
        seconds, micros = divmod(self.usec, 1_000_000)
        return " ".join(
            (
                f"{seconds}.{micros:06d}",
                self.src,
                "-" if self.sport is None else str(self.sport),
                self.dst,
                "-" if self.dport is None else str(self.dport),
                str(self.length),
                self.proto,
                self.flags or "-",
            )
        )


@dataclass(frozen=True)
class Anomaly:
    """An injected anomaly: `rate` packets per second from `source` to `target`."""

    kind: Literal["flood", "scan"]
    start: int
    """First second it is active (Unix time)."""
    duration: int
    """Number of whole seconds it lasts."""
    rate: int
    source: str
    target: str

    @property
    def seconds(self) -> range:
        """The Unix seconds (= 1-second time bins) in which it sends packets."""
        return range(self.start, self.start + self.duration)


@dataclass(frozen=True)
class TrafficSpec:
    """Everything that determines a generated frame."""

    seed: int
    start: int = 1313005200
    """Unix second the frame starts at (this one is 2011-08-10 19:40:00 UTC)."""
    duration: int = 60
    """Length of the frame in seconds."""
    clients: int = 24
    servers: int = 10
    flows: int = 40
    """Background flows active at any moment, on average."""
    mean_lifetime: float = 30.0
    """Mean lifetime of a background flow in seconds (exponential)."""
    rates: tuple[float, float] = (0.4, 1.6)
    """Range of a background flow's packet rate (packets per second, uniform)."""
    anomalies: tuple[Anomaly, ...] = ()


def _background(rng: random.Random, spec: TrafficSpec) -> list[Packet]:
    clients = [f"10.0.0.{10 + i}" for i in range(spec.clients)]
    servers = [f"198.51.100.{20 + i}" for i in range(spec.servers)]
    horizon = float(spec.duration)
    # Flows already running at time 0 (exponential lifetimes are memoryless, so
    # their remaining life has the same law), then arrivals at the rate that
    # keeps `spec.flows` alive on average.
    lives = [(-1.0, rng.expovariate(1.0 / spec.mean_lifetime)) for _ in range(spec.flows)]
    arrivals = spec.flows / spec.mean_lifetime
    moment = rng.expovariate(arrivals)
    while moment < horizon:
        lives.append((moment, moment + rng.expovariate(1.0 / spec.mean_lifetime)))
        moment += rng.expovariate(arrivals)
    packets: list[Packet] = []
    for begin, end in lives:
        client, server = rng.choice(clients), rng.choice(servers)
        dport, proto = rng.choice(SERVICES)
        sport = rng.randint(1024, 65535)
        rate = rng.uniform(*spec.rates)
        times: list[float] = []
        moment = begin if begin >= 0.0 else rng.expovariate(rate)
        while moment < min(end, horizon):
            times.append(moment)
            moment += rng.expovariate(rate)
        for index, moment in enumerate(times):
            flags: str | None
            if proto == "U":
                flags, length = None, rng.randint(60, 512)
            elif index == 0 and begin >= 0.0:
                flags, length = "S", 60
            elif index == len(times) - 1 and end < horizon:
                flags, length = "FA", 52
            else:
                flags = rng.choice(("A", "PA"))
                length = 52 if flags == "A" else rng.randint(100, 1500)
            usec = spec.start * 1_000_000 + int(moment * 1_000_000)
            packets.append(Packet(usec, client, sport, server, dport, length, proto, flags))
    return packets


def _anomaly(rng: random.Random, anomaly: Anomaly) -> list[Packet]:
    packets: list[Packet] = []
    sport = rng.randint(20000, 60000)
    port = 0
    for second in anomaly.seconds:
        for index in range(anomaly.rate):
            # Evenly spread over the second with a little jitter.
            usec = second * 1_000_000 + int((index + rng.random()) * 1_000_000 / anomaly.rate)
            if anomaly.kind == "flood":
                length = rng.randint(1200, 1400)
                packets.append(Packet(usec, anomaly.source, sport, anomaly.target, 80, length, "U", None))
            else:
                port += 1
                packets.append(Packet(usec, anomaly.source, sport, anomaly.target, port, 44, "T", "S"))
    return packets


def generate(spec: TrafficSpec) -> list[Packet]:
    """The packets of one frame, sorted by time; the same spec always gives the same list."""
    rng = random.Random(spec.seed)
    packets = _background(rng, spec)
    for anomaly in spec.anomalies:
        packets += _anomaly(rng, anomaly)
    return sorted(packets)


def render(spec: TrafficSpec, packets: Sequence[Packet]) -> str:
    """The packets as an ipsumdump text file."""
    header = [
        "!IPSummaryDump 1.3",
        f'!creator "jupiter.tools.traffic seed={spec.seed}"',
        f"!data {FIELDS}",
    ]
    return "\n".join(header + [packet.line() for packet in packets]) + "\n"


def write_traffic(path: Path, spec: TrafficSpec) -> Path:
    """Generate the frame `spec` into the file `path`."""
    path.write_text(render(spec, generate(spec)), encoding="utf-8")
    return path


_DAY = 1313005200

# A k-sigma detector on noisy background has false positives now and then; these
# seeds were picked (about one in ten qualifies) so that each sample's report lists
# exactly the injected anomalies, which makes the samples easy to read and lets the
# tests check precision as well as recall.
SAMPLES: dict[str, TrafficSpec] = {
    "flood.ipsum": TrafficSpec(
        seed=14,
        start=_DAY,
        anomalies=(Anomaly("flood", _DAY + 24, 3, 300, "203.0.113.7", "198.51.100.21"),),
    ),
    "scan.ipsum": TrafficSpec(
        seed=5,
        start=_DAY + 1200,
        anomalies=(Anomaly("scan", _DAY + 1200 + 31, 5, 80, "203.0.113.66", "10.0.0.23"),),
    ),
    "mixed.ipsum": TrafficSpec(
        seed=13,
        start=_DAY + 2400,
        anomalies=(
            Anomaly("flood", _DAY + 2400 + 12, 4, 250, "203.0.113.9", "198.51.100.24"),
            Anomaly("scan", _DAY + 2400 + 41, 4, 100, "203.0.113.80", "10.0.0.31"),
        ),
    ),
}
"""The frames in network_monitoring_app's sample_input/, by file name."""


def write_samples(folder: Path) -> list[Path]:
    """Write every frame of SAMPLES into `folder`; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_traffic(folder / name, spec) for name, spec in SAMPLES.items()]


# --- The reference: the app's report computed directly from the packets. ---

_TIMESTAMP = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_NUMBER = re.compile(r"[0-9]+")

Flow = tuple[str, str, str, str, str]


@dataclass
class _Partition:
    """Per-bin totals of one partition over the frame's bins."""

    packets: list[int]
    volume: list[int]
    flows: list[dict[Flow, int]]


def _parse(text: str) -> tuple[list[tuple[int, list[str]]], int]:
    """Valid packets as (second, fields) and the number of unparsable lines."""
    packets: list[tuple[int, list[str]]] = []
    skipped = 0
    for line in text.splitlines():
        if not line.strip() or line.startswith("!"):
            continue
        fields = line.split()
        ports_ok = len(fields) == 8 and all(p == "-" or _NUMBER.fullmatch(p) for p in (fields[2], fields[4]))
        if not ports_ok or not _TIMESTAMP.fullmatch(fields[0]) or not _NUMBER.fullmatch(fields[5]):
            skipped += 1
            continue
        packets.append((int(fields[0].split(".")[0]), fields))
    return packets, skipped


def _zscores(values: list[int]) -> list[float]:
    if not values:
        return []
    mean = math.fsum(values) / len(values)
    std = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / len(values))
    return [abs(value - mean) / std if std != 0.0 else 0.0 for value in values]


def _astute(before: dict[Flow, int], after: dict[Flow, int]) -> float | None:
    keys = before.keys() | after.keys()
    if len(keys) < 2:
        return None
    deltas = [after.get(key, 0) - before.get(key, 0) for key in keys]
    mean = math.fsum(deltas) / len(keys)
    variance = math.fsum((delta - mean) ** 2 for delta in deltas) / (len(keys) - 1)
    if variance == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean * math.sqrt(len(keys)) / math.sqrt(variance)


def _detect(part: _Partition, starts: list[int]) -> dict[int, tuple[list[float], list[str]]]:
    """Normalised scores and detector names of each flagged bin of one partition."""
    flagged: dict[int, tuple[list[float], list[str]]] = {}
    for start, by_packets, by_bytes in zip(starts, _zscores(part.packets), _zscores(part.volume), strict=True):
        score = max(by_packets, by_bytes)
        if score > SIMPLE_THRESHOLD:
            flagged[start] = ([score / SIMPLE_THRESHOLD], ["simple"])
    charged: dict[int, float] = {}
    for index in range(len(starts) - 1):
        statistic = _astute(part.flows[index], part.flows[index + 1])
        if statistic is not None and abs(statistic) > ASTUTE_THRESHOLD:
            start = starts[index + 1] if statistic > 0 else starts[index]
            charged[start] = max(charged.get(start, 0.0), abs(statistic))
    for start, statistic in charged.items():
        scores, names = flagged.setdefault(start, ([], []))
        scores.append(statistic / ASTUTE_THRESHOLD)
        names.append("astute")
    return flagged


def report_for(text: str, frame: str) -> str:
    """The report network_monitoring_app writes for the traffic `text` of the frame `frame`."""
    packets, skipped = _parse(text)
    if packets:
        first = min(second for second, _ in packets)
        count = (max(second for second, _ in packets) - first) // BIN_SECONDS + 1
    else:
        first, count = 0, 0
    parts = [_Partition([0] * count, [0] * count, [{} for _ in range(count)]) for _ in range(PARTITIONS)]
    for second, fields in packets:
        part = parts[zlib.crc32(fields[1].encode("utf-8")) % PARTITIONS]
        index = (second - first) // BIN_SECONDS
        part.packets[index] += 1
        part.volume[index] += int(fields[5])
        key = (fields[1], fields[2], fields[3], fields[4], fields[6])
        part.flows[index][key] = part.flows[index].get(key, 0) + 1
    starts = [first + index * BIN_SECONDS for index in range(count)]
    merged: dict[int, list[tuple[int, float, str]]] = {}
    for number, part in enumerate(parts):
        for start, (scores, names) in _detect(part, starts).items():
            merged.setdefault(start, []).append((number, math.fsum(scores), "+".join(names)))
    lines = [
        "# Jupiter network anomaly report",
        f"frame: {frame}",
        f"packets: {len(packets)} ({skipped} unparsable lines skipped)",
        f"bins: {count} of {BIN_SECONDS} s from {first} to {starts[-1]}" if count else "bins: 0",
        f"anomalous bins: {len(merged)}",
        f"{'bin_start':>10}  {'utc':<20}  {'score':>9}  partitions",
    ]
    for start in sorted(merged):
        total = math.fsum(score for _, score, _ in merged[start])
        when = datetime.fromtimestamp(start, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        who = " ".join(f"p{number}:{names}" for number, _, names in merged[start])
        lines.append(f"{start:>10}  {when:<20}  {total:>9.3f}  {who}")
    return "\n".join(lines) + "\n"


def expected_report(input_path: Path | str) -> str:
    """The exact text global_fusion writes for the frame read from `input_path`."""
    path = Path(input_path)
    return report_for(path.read_text(encoding="utf-8"), path.name)


@dataclass(frozen=True)
class ReportRow:
    """One anomalous bin of a report."""

    start: int
    score: float
    partitions: dict[int, tuple[str, ...]]
    """Detectors that flagged the bin, by partition."""


def parse_report(text: str) -> list[ReportRow]:
    """The anomalous bins listed in a report written by global_fusion."""
    rows: list[ReportRow] = []
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["bin_start", "utc"])
    for line in lines[header + 1 :]:
        start, _utc, score, *who = line.split()
        partitions: dict[int, tuple[str, ...]] = {}
        for item in who:
            number, _, names = item.partition(":")
            partitions[int(number.removeprefix("p"))] = tuple(names.split("+"))
        rows.append(ReportRow(int(start), float(score), partitions))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """`samples DIR` writes SAMPLES into DIR; `report FILE` prints FILE's expected report."""
    parser = argparse.ArgumentParser(
        prog="python -m jupiter.tools.traffic", description=(__doc__ or "").splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    samples = commands.add_parser("samples", help="write the sample frames into a folder")
    samples.add_argument("folder", type=Path)
    report = commands.add_parser("report", help="print the report the app must write for a traffic file")
    report.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    if args.command == "samples":
        for path in write_samples(args.folder):
            print(f"wrote {path}")
    else:
        sys.stdout.write(expected_report(args.file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
