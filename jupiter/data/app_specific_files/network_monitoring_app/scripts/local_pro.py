"""Entry task: parse an ipsumdump traffic summary and split it into 3 partitions.

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
partition file is itself an ipsumdump file whose `!` header also carries
facts about the whole frame that the later stages pass on: its name, its
packet and skipped-line counts and its time span in whole seconds (so that
all partitions use the same time bins).
"""

from __future__ import annotations

import re
import tempfile
import zlib
from pathlib import Path

PARTITIONS = 3
FIELDS = "timestamp ip_src sport ip_dst dport ip_len ip_proto tcp_flags"

_TIMESTAMP = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_NUMBER = re.compile(r"[0-9]+")


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


def task(filename: str, pathin: str, pathout: str) -> list[str]:
    """Split the frame `filename` into PARTITIONS ipsumdump files, in partition order."""
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
        header = [
            "!IPSummaryDump 1.3",
            '!creator "jupiter network_monitoring_app local_pro"',
            f"!data {FIELDS}",
            f"!frame {filename}",
            f"!packets {len(seconds)} {skipped}",
            f"!span {span}",
            f"!partition {index} {PARTITIONS}",
        ]
        path = Path(pathout, f"{stem}_part{index}.txt")
        path.write_text("\n".join(header + lines) + "\n", encoding="utf-8")
        outputs.append(str(path.resolve()))
    return outputs


def run_sample(workdir: Path) -> list[str]:
    """Run on the first file of the app's sample_input/; outputs go under `workdir`."""
    samples = Path(__file__).resolve().parent.parent / "sample_input"
    first = sorted(p for p in samples.iterdir() if p.is_file() and not p.name.startswith("."))[0]
    out = workdir / "local_pro"
    out.mkdir(parents=True, exist_ok=True)
    return task(first.name, str(samples), str(out))


def main() -> None:
    """Run the task on sample data and print where its outputs went."""
    for path in run_sample(Path(tempfile.mkdtemp(prefix="jupiter_local_pro_"))):
        print(path)


if __name__ == "__main__":
    main()
