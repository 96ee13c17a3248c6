"""The programs of network_monitoring_app; every task script in this folder delegates here.

configuration.txt splits each frame of traffic into PARTITIONS partitions by
source address and runs the same stages on every partition:

    local_pro -> aggregate<K> -> simple_detector<K> and astute_detector<K>
              -> fusion_center<K> -> global_fusion -> home

There is one function per stage, named after its tasks, whose docstring gives
the stage's input and output formats; the task scripts only bind their
partition K and call it. Files between stages are text: a `!<kind>` first
line, `!<key> <value>` header lines, then whitespace-separated rows (see
read_table). The `sample_*` functions run a stage and everything upstream of
it on sample data, for the scripts' main().

This module is not a task: it has no `task` function and no line in
configuration.txt. Jupiter puts the scripts folder on sys.path before it
imports a task script, which is how `import anomaly` finds it.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import shutil
import tempfile
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

PARTITIONS = 3
FIELDS = "timestamp ip_src sport ip_dst dport ip_len ip_proto tcp_flags"
BIN_SECONDS = 1
SIMPLE_THRESHOLD = 3.0
ASTUTE_THRESHOLD = 4.0

PARTITION_FACTS = ("frame", "packets", "span", "partition")
"""The header lines of local_pro's partitions that aggregate carries on."""
CARRIED = (*PARTITION_FACTS, "bin_seconds")
"""The header lines that the detectors and fusion_center carry on."""
FRAME_FACTS = ("frame", "packets", "span", "bin_seconds")
"""The header lines that all partitions of one frame share."""
DETECTORS = {"simple_detector": "simple", "astute_detector": "astute"}
"""fusion_center's inputs, by kind, with their short names in its output."""

Flow = tuple[str, str, str, str, str]

_TIMESTAMP = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_NUMBER = re.compile(r"[0-9]+")


# Shared by the stages.


def read_table(path: Path) -> tuple[str, dict[str, str], list[list[str]]]:
    """Kind (first `!` word), `!key value` headers and data rows of a stage file."""
    kind = ""
    headers: dict[str, str] = {}
    rows: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("!"):
            key, _, value = line[1:].partition(" ")
            if kind:
                headers[key] = value
            else:
                kind = key
        elif line.strip():
            rows.append(line.split())
    return kind, headers, rows


def header(kind: str, headers: dict[str, str], keys: tuple[str, ...]) -> list[str]:
    """The first lines of a stage file: `!kind`, then the `keys` of `headers` carried on."""
    return [f"!{kind}"] + [f"!{key} {headers[key]}" for key in keys]


def frame_stem(filename: str) -> str:
    """The frame's name in a stage file name: `flood` for `flood_aggregate0.txt`."""
    return Path(filename).stem.rsplit("_", 1)[0]


def write_lines(pathout: str, name: str, lines: list[str]) -> list[str]:
    """Write `lines` to `pathout/name`; the task's return value, a list of its one output."""
    path = Path(pathout, name)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [str(path.resolve())]


# local_pro


def parse_packet(line: str) -> list[str] | None:
    """The 8 fields of a packet line, or None when the line is not a valid packet."""
    fields = line.split()
    if len(fields) != 8:
        return None
    timestamp, _src, sport, _dst, dport, length, _proto, _flags = fields
    if not _TIMESTAMP.fullmatch(timestamp) or not _NUMBER.fullmatch(length):
        return None
    if any(port != "-" and not _NUMBER.fullmatch(port) for port in (sport, dport)):
        return None
    return fields


def partition_of(source: str) -> int:
    """Partition of a source address; stable across processes and machines."""
    return zlib.crc32(source.encode("utf-8")) % PARTITIONS


def local_pro(filename: str, pathin: str, pathout: str) -> list[str]:
    """Entry task: parse an ipsumdump traffic summary and split it into PARTITIONS partitions.

    Input (one file = one frame): the text that `ipsumdump -tsSdDlpF` prints, one
    packet per line with 8 whitespace-separated fields

        timestamp ip_src sport ip_dst dport ip_len ip_proto tcp_flags
        1313005230.004512 10.0.0.17 51234 198.51.100.20 443 1500 T PA

    where `timestamp` is Unix seconds with an optional fraction, ports are numbers
    or `-` (ICMP), `ip_len` is the IP length in bytes, `ip_proto` is `T`, `U`,
    `I` or a number and `tcp_flags` is `-` when the packet is not TCP. Lines
    starting with `!` are ipsumdump comments and are skipped; any other line that
    does not parse is counted as skipped.

    Packets are partitioned by a stable hash of the source address (CRC-32, not
    Python's per-process salted `hash()`), so every packet of a host lands in the
    same partition on every node. The task returns one file per partition, in
    partition order: configuration.txt lists `local_pro 1 false aggregate0
    aggregate1 aggregate2`, so the i-th output goes to aggregate<i>. Each
    partition file `<frame>_part<i>.txt` is itself an ipsumdump file whose `!`
    header also carries facts about the whole frame that the later stages pass
    on: its name, its packet and skipped-line counts and its time span in whole
    seconds (so that all partitions use the same time bins).
    """
    text = Path(pathin, filename).read_text(encoding="utf-8")
    partitions: list[list[str]] = [[] for _ in range(PARTITIONS)]
    seconds: list[int] = []
    skipped = 0
    for line in text.splitlines():
        if not line.strip() or line.startswith("!"):
            continue
        fields = parse_packet(line)
        if fields is None:
            skipped += 1
            continue
        seconds.append(int(fields[0].partition(".")[0]))
        partitions[partition_of(fields[1])].append(" ".join(fields))
    span = f"{min(seconds)} {max(seconds)}" if seconds else "none"
    stem = Path(filename).stem
    outputs: list[str] = []
    for index, lines in enumerate(partitions):
        facts = [
            "!IPSummaryDump 1.3",
            '!creator "jupiter network_monitoring_app local_pro"',
            f"!data {FIELDS}",
            f"!frame {filename}",
            f"!packets {len(seconds)} {skipped}",
            f"!span {span}",
            f"!partition {index} {PARTITIONS}",
        ]
        outputs += write_lines(pathout, f"{stem}_part{index}.txt", facts + lines)
    return outputs


# aggregate<K>


def aggregate(expected: int, filename: str, pathin: str, pathout: str) -> list[str]:
    """Aggregate one partition of a frame into time bins of per-flow volumes.

    Input: one partition file written by local_pro (ipsumdump lines under a `!`
    header). Output `<frame>_aggregate<K>.txt`: the header carried on (frame,
    packets, span, partition) plus `!bin_seconds`, then for every time bin of the
    frame's span, empty bins included,

        bin <start> <packets> <bytes> <flows>
        flow <start> <src> <sport> <dst> <dport> <proto> <packets> <bytes>

    with one `flow` line per 5-tuple seen in the bin, sorted. Bins start at the
    frame's first second, so the bins of all partitions line up.

    aggregate0, aggregate1 and aggregate2 are the same program; `expected`, the
    task's PARTITION, only checks that local_pro's outputs were routed to the
    right copy.
    """
    kind, headers, rows = read_table(Path(pathin, filename))
    if kind != "IPSummaryDump" or "partition" not in headers:
        raise ValueError(f"{filename}: expected a partition written by local_pro")
    partition = int(headers["partition"].split()[0])
    if partition != expected:
        raise ValueError(
            f"{filename} holds partition {partition} but this is aggregate{expected}; "
            "local_pro's children must be listed as aggregate0 aggregate1 aggregate2"
        )
    if headers["span"] == "none":
        first, count = 0, 0
    else:
        first, last = (int(field) for field in headers["span"].split())
        count = (last - first) // BIN_SECONDS + 1
    packets = [0] * count
    volume = [0] * count
    flows: list[dict[Flow, list[int]]] = [{} for _ in range(count)]
    for timestamp, src, sport, dst, dport, length, proto, _flags in rows:
        index = (int(timestamp.partition(".")[0]) - first) // BIN_SECONDS
        if not 0 <= index < count:
            raise ValueError(f"{filename}: packet at {timestamp} lies outside the frame's span")
        size = int(length)
        packets[index] += 1
        volume[index] += size
        totals = flows[index].setdefault((src, sport, dst, dport, proto), [0, 0])
        totals[0] += 1
        totals[1] += size
    lines = header("aggregate", headers, PARTITION_FACTS) + [f"!bin_seconds {BIN_SECONDS}"]
    for index in range(count):
        start = first + index * BIN_SECONDS
        lines.append(f"bin {start} {packets[index]} {volume[index]} {len(flows[index])}")
        for key in sorted(flows[index]):
            n_packets, n_bytes = flows[index][key]
            lines.append(f"flow {start} {' '.join(key)} {n_packets} {n_bytes}")
    return write_lines(pathout, f"{frame_stem(filename)}_aggregate{partition}.txt", lines)


# simple_detector<K>


def mean_std(values: list[int]) -> tuple[float, float]:
    """Mean and population standard deviation (0.0 and 0.0 for an empty series)."""
    if not values:
        return 0.0, 0.0
    mean = math.fsum(values) / len(values)
    return mean, math.sqrt(math.fsum((value - mean) ** 2 for value in values) / len(values))


def zscores(values: list[int]) -> list[float]:
    """|x - mean| / std for each value; all 0.0 when the series does not vary."""
    mean, std = mean_std(values)
    if std == 0.0:
        return [0.0] * len(values)
    return [abs(value - mean) / std for value in values]


def simple_detector(filename: str, pathin: str, pathout: str) -> list[str]:
    """Volume detector: flag time bins whose traffic deviates more than k standard deviations.

    Input: one aggregate file. For the series of per-bin packet counts and the
    series of per-bin byte counts of the partition, each bin gets the z-score
    |x - mean| / std (population std; 0 when the series is flat). A bin is
    anomalous when the larger of its two z-scores exceeds SIMPLE_THRESHOLD.
    Floods and other sudden volume changes show up here.

    Output `<frame>_simple<K>.txt`: `!simple_detector` (fusion_center recognises
    its inputs by this first line, not by their order), the carried header,
    `!threshold`, `!stats` (mean and std of packets and bytes), then one line
    `anomaly <bin_start> <score>` per flagged bin; scores are written with
    repr() so that they read back exactly.
    """
    kind, headers, rows = read_table(Path(pathin, filename))
    if kind != "aggregate":
        raise ValueError(f"{filename}: expected an aggregate file, got {kind or 'no header'}")
    bins = [row for row in rows if row[0] == "bin"]
    starts = [int(row[1]) for row in bins]
    packets = [int(row[2]) for row in bins]
    volume = [int(row[3]) for row in bins]
    packet_mean, packet_std = mean_std(packets)
    byte_mean, byte_std = mean_std(volume)
    lines = header("simple_detector", headers, CARRIED)
    lines.append(f"!threshold {SIMPLE_THRESHOLD!r}")
    lines.append(f"!stats packets {packet_mean!r} {packet_std!r} bytes {byte_mean!r} {byte_std!r}")
    for start, by_packets, by_bytes in zip(starts, zscores(packets), zscores(volume), strict=True):
        score = max(by_packets, by_bytes)
        if score > SIMPLE_THRESHOLD:
            lines.append(f"anomaly {start} {score!r}")
    partition = headers["partition"].split()[0]
    return write_lines(pathout, f"{frame_stem(filename)}_simple{partition}.txt", lines)


# astute_detector<K>


def astute_statistic(before: dict[str, int], after: dict[str, int]) -> float | None:
    """ASTUTE's K between two bins of per-flow packet counts; None with fewer than 2 flows."""
    flows = before.keys() | after.keys()
    count = len(flows)
    if count < 2:
        return None
    deltas = [after.get(flow, 0) - before.get(flow, 0) for flow in flows]
    mean = math.fsum(deltas) / count
    variance = math.fsum((delta - mean) ** 2 for delta in deltas) / (count - 1)
    if variance == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean * math.sqrt(count) / math.sqrt(variance)


def astute_detector(filename: str, pathin: str, pathout: str) -> list[str]:
    """ASTUTE detector: flag bins where many flows change volume together.

    ASTUTE (Silveira, Diot, Taft and Govindan, "ASTUTE: Detecting a Different
    Class of Traffic Anomalies", SIGCOMM CCR 40(4), 2010) assumes that, between
    two consecutive time bins, the volume changes of the F flows active in either
    bin balance out (flow volume equilibrium). With delta_f = packets of flow f
    in the second bin minus packets in the first, it computes

        K = mean(delta) * sqrt(F) / std(delta)        (sample std, F - 1)

    and rejects equilibrium when |K| > ASTUTE_THRESHOLD. Many small synchronised
    changes (a port scan starting or stopping: dozens of new one-packet flows)
    give a large |K|; one huge flow (a flood) does not, which is why the
    app fuses this detector with the volume one. A positive K is charged to the
    later bin of the pair (traffic appeared), a negative K to the earlier bin
    (traffic vanished after it). When std is 0 but the mean is not, |K| is
    infinite. Pairs with fewer than 2 flows are not tested.

    Output `<frame>_astute<K>.txt`: `!astute_detector`, the carried header,
    `!threshold`, then `anomaly <bin_start> <score>` per flagged bin (score =
    largest |K| charged to the bin, written with repr()).
    """
    kind, headers, rows = read_table(Path(pathin, filename))
    if kind != "aggregate":
        raise ValueError(f"{filename}: expected an aggregate file, got {kind or 'no header'}")
    starts = [int(row[1]) for row in rows if row[0] == "bin"]
    flows: dict[int, dict[str, int]] = {start: {} for start in starts}
    for row in rows:
        if row[0] == "flow":
            flows[int(row[1])][" ".join(row[2:7])] = int(row[7])
    scores: dict[int, float] = {}
    for first, second in itertools.pairwise(starts):
        statistic = astute_statistic(flows[first], flows[second])
        if statistic is None or abs(statistic) <= ASTUTE_THRESHOLD:
            continue
        charged = second if statistic > 0 else first
        scores[charged] = max(scores.get(charged, 0.0), abs(statistic))
    lines = header("astute_detector", headers, CARRIED)
    lines.append(f"!threshold {ASTUTE_THRESHOLD!r}")
    lines += [f"anomaly {start} {scores[start]!r}" for start in sorted(scores)]
    partition = headers["partition"].split()[0]
    return write_lines(pathout, f"{frame_stem(filename)}_astute{partition}.txt", lines)


# fusion_center<K>


def fusion_center(filename: list[str], pathin: str, pathout: str) -> list[str]:
    """Fuse the volume and ASTUTE detectors of one partition.

    Inputs (2, in any order): the outputs of simple_detector<K> and
    astute_detector<K>, told apart by their first line (`!simple_detector`,
    `!astute_detector`), never by their position in the list. A bin is anomalous
    when either detector flags it; its combined score is the sum, over the
    detectors that flagged it, of score / that detector's threshold, so every
    flagged bin scores above 1 and a bin both detectors agree on scores higher.

    Output `<frame>_fusion<K>.txt`: `!fusion_center`, the carried header, then
    `anomaly <bin_start> <score> <detectors>` per flagged bin, where detectors is
    `simple`, `astute` or `simple+astute`.
    """
    tables: dict[str, tuple[dict[str, str], list[list[str]]]] = {}
    for name in filename:
        kind, headers, rows = read_table(Path(pathin, name))
        if kind not in DETECTORS:
            raise ValueError(f"{name}: expected a simple_detector or astute_detector output, got {kind!r}")
        if kind in tables:
            raise ValueError(f"{name}: a second {kind} output; expected one simple and one astute")
        tables[kind] = (headers, rows)
    if set(tables) != set(DETECTORS):
        raise ValueError(f"got {sorted(tables)}; expected one simple and one astute detector output")
    headers = tables["simple_detector"][0]
    other = tables["astute_detector"][0]
    if any(headers[key] != other[key] for key in CARRIED):
        raise ValueError(f"inputs {filename} come from different frames or partitions")
    flagged: dict[int, list[tuple[str, float]]] = {}
    for kind, short in DETECTORS.items():
        table_headers, rows = tables[kind]
        threshold = float(table_headers["threshold"])
        for row in rows:
            if row[0] == "anomaly":
                flagged.setdefault(int(row[1]), []).append((short, float(row[2]) / threshold))
    lines = header("fusion_center", headers, CARRIED)
    for start in sorted(flagged):
        score = math.fsum(value for _, value in flagged[start])
        detectors = "+".join(short for short, _ in flagged[start])
        lines.append(f"anomaly {start} {score!r} {detectors}")
    partition = headers["partition"].split()[0]
    return write_lines(pathout, f"{frame_stem(sorted(filename)[0])}_fusion{partition}.txt", lines)


# global_fusion


def utc(start: int) -> str:
    """ISO 8601 UTC time of a Unix second."""
    return datetime.fromtimestamp(start, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def global_fusion(filename: list[str], pathin: str, pathout: str) -> list[str]:
    """Exit task: merge the partitions' fused anomalies into the frame's report.

    Inputs (PARTITIONS, in any order): the outputs of fusion_center0..2,
    recognised by their `!fusion_center` first line and `!partition` header. A
    time bin is in the report when any partition flagged it; its score is the
    sum of the partitions' combined scores, and the partitions that flagged it
    are listed with the detectors that did, e.g. `p0:simple+astute p2:astute`.

    Output `<frame>_report.txt`, a small text report (scores to 3 decimals; `inf`
    when ASTUTE saw a perfectly synchronised change):

        # Jupiter network anomaly report
        frame: flood.ipsum
        packets: 3512 (0 unparsable lines skipped)
        bins: 60 of 1 s from 1313005200 to 1313005259
        anomalous bins: 3
         bin_start  utc                       score  partitions
        1313005225  2011-08-10T19:40:25Z     12.345  p1:simple
    """
    tables: dict[int, tuple[dict[str, str], list[list[str]]]] = {}
    for name in filename:
        kind, headers, rows = read_table(Path(pathin, name))
        if kind != "fusion_center":
            raise ValueError(f"{name}: expected a fusion_center output, got {kind!r}")
        partition = int(headers["partition"].split()[0])
        if partition in tables:
            raise ValueError(f"{name}: partition {partition} arrived twice")
        tables[partition] = (headers, rows)
    if sorted(tables) != list(range(PARTITIONS)):
        raise ValueError(f"got partitions {sorted(tables)}; expected 0 to {PARTITIONS - 1}")
    facts = tables[0][0]
    if any(headers[key] != facts[key] for headers, _ in tables.values() for key in FRAME_FACTS):
        raise ValueError(f"inputs {filename} come from different frames")
    flagged: dict[int, list[tuple[int, float, str]]] = {}
    for partition in sorted(tables):
        for row in tables[partition][1]:
            if row[0] == "anomaly":
                flagged.setdefault(int(row[1]), []).append((partition, float(row[2]), row[3]))
    valid, skipped = facts["packets"].split()
    bin_seconds = int(facts["bin_seconds"])
    if facts["span"] == "none":
        bins_line = "bins: 0"
    else:
        first, last = (int(field) for field in facts["span"].split())
        count = (last - first) // bin_seconds + 1
        bins_line = f"bins: {count} of {bin_seconds} s from {first} to {first + (count - 1) * bin_seconds}"
    lines = [
        "# Jupiter network anomaly report",
        f"frame: {facts['frame']}",
        f"packets: {valid} ({skipped} unparsable lines skipped)",
        bins_line,
        f"anomalous bins: {len(flagged)}",
        f"{'bin_start':>10}  {'utc':<20}  {'score':>9}  partitions",
    ]
    for start in sorted(flagged):
        score = math.fsum(value for _, value, _ in flagged[start])
        who = " ".join(f"p{partition}:{detectors}" for partition, _, detectors in flagged[start])
        lines.append(f"{start:>10}  {utc(start):<20}  {score:>9.3f}  {who}")
    return write_lines(pathout, f"{frame_stem(sorted(filename)[0])}_report.txt", lines)


# Running on sample data, for the task scripts' main(). Each sample_* function
# runs its stage and every stage upstream of it on the first sample input, each
# stage in its own folder `workdir/<task>`, and returns the stage's outputs.


def _run_one(task: str, run: Callable[[str, str, str], list[str]], source: str, workdir: Path) -> list[str]:
    """Run a one-input stage on the file `source` where it lies; outputs go to workdir/<task>."""
    out = workdir / task
    out.mkdir(parents=True, exist_ok=True)
    return run(Path(source).name, str(Path(source).parent), str(out))


def _run_joined(
    task: str, run: Callable[[list[str], str, str], list[str]], sources: list[str], workdir: Path
) -> list[str]:
    """Run a many-input stage on copies of `sources` in workdir/<task>/in; outputs go to workdir/<task>/out."""
    pathin = workdir / task / "in"
    pathin.mkdir(parents=True, exist_ok=True)
    for source in sources:
        shutil.copyfile(source, pathin / Path(source).name)
    out = workdir / task / "out"
    out.mkdir(parents=True, exist_ok=True)
    return run([Path(source).name for source in sources], str(pathin), str(out))


def sample_local_pro(workdir: Path) -> list[str]:
    """Run local_pro on the first file of the app's sample_input/."""
    samples = Path(__file__).resolve().parent.parent / "sample_input"
    first = sorted(p for p in samples.iterdir() if p.is_file() and not p.name.startswith("."))[0]
    return _run_one("local_pro", local_pro, str(first), workdir)


def sample_aggregate(partition: int, workdir: Path) -> list[str]:
    """Run local_pro then aggregate<partition> on sample data."""
    source = sample_local_pro(workdir)[partition]
    return _run_one(f"aggregate{partition}", functools.partial(aggregate, partition), source, workdir)


def sample_simple_detector(partition: int, workdir: Path) -> list[str]:
    """Run the upstream tasks then simple_detector<partition> on sample data."""
    return _run_one(f"simple_detector{partition}", simple_detector, sample_aggregate(partition, workdir)[0], workdir)


def sample_astute_detector(partition: int, workdir: Path) -> list[str]:
    """Run the upstream tasks then astute_detector<partition> on sample data."""
    return _run_one(f"astute_detector{partition}", astute_detector, sample_aggregate(partition, workdir)[0], workdir)


def sample_fusion_center(partition: int, workdir: Path) -> list[str]:
    """Run the upstream tasks then fusion_center<partition> on sample data."""
    sources = [sample_simple_detector(partition, workdir)[0], sample_astute_detector(partition, workdir)[0]]
    return _run_joined(f"fusion_center{partition}", fusion_center, sources, workdir)


def sample_global_fusion(workdir: Path) -> list[str]:
    """Run the whole DAG on sample data."""
    sources = [sample_fusion_center(partition, workdir)[0] for partition in range(PARTITIONS)]
    return _run_joined("global_fusion", global_fusion, sources, workdir)


def print_sample_run(task: str, run: Callable[[Path], list[str]]) -> None:
    """The task scripts' main(): `run` in a new temporary folder, then print where its outputs went."""
    for path in run(Path(tempfile.mkdtemp(prefix=f"jupiter_{task}_"))):
        print(path)
