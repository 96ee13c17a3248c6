"""Aggregate one partition of a frame into time bins of per-flow volumes.

Input: one partition file written by local_pro (ipsumdump lines under a `!`
header). Output `<frame>_aggregate<K>.txt`: the header carried on (frame,
packets, span, partition) plus `!bin_seconds`, then for every time bin of the
frame's span, empty bins included,

    bin <start> <packets> <bytes> <flows>
    flow <start> <src> <sport> <dst> <dport> <proto> <packets> <bytes>

with one `flow` line per 5-tuple seen in the bin, sorted. Bins start at the
frame's first second, so the bins of all partitions line up.

aggregate0, aggregate1 and aggregate2 are the same program; PARTITION only
checks that local_pro's outputs were routed to the right copy.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from types import ModuleType

PARTITION = 1
BIN_SECONDS = 1
CARRIED = ("frame", "packets", "span", "partition")

Flow = tuple[str, str, str, str, str]


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


def task(filename: str, pathin: str, pathout: str) -> list[str]:
    """Bin the partition `filename` into per-second packet, byte and flow volumes."""
    kind, headers, rows = read_table(Path(pathin, filename))
    if kind != "IPSummaryDump" or "partition" not in headers:
        raise ValueError(f"{filename}: expected a partition written by local_pro")
    partition = int(headers["partition"].split()[0])
    if partition != PARTITION:
        raise ValueError(
            f"{filename} holds partition {partition} but this is aggregate{PARTITION}; "
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
    lines = ["!aggregate"] + [f"!{key} {headers[key]}" for key in CARRIED] + [f"!bin_seconds {BIN_SECONDS}"]
    for index in range(count):
        start = first + index * BIN_SECONDS
        lines.append(f"bin {start} {packets[index]} {volume[index]} {len(flows[index])}")
        for key in sorted(flows[index]):
            n_packets, n_bytes = flows[index][key]
            lines.append(f"flow {start} {' '.join(key)} {n_packets} {n_bytes}")
    stem = Path(filename).stem.rsplit("_", 1)[0]
    path = Path(pathout, f"{stem}_aggregate{partition}.txt")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [str(path.resolve())]


def _sibling(name: str) -> ModuleType:
    """Import another task script of this app, for running the upstream tasks in main()."""
    path = Path(__file__).resolve().with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_network_monitoring_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_sample(workdir: Path) -> list[str]:
    """Run local_pro then this task on the first sample input; outputs go under `workdir`."""
    source = Path(_sibling("local_pro").run_sample(workdir)[PARTITION])
    out = workdir / f"aggregate{PARTITION}"
    out.mkdir(parents=True, exist_ok=True)
    return task(source.name, str(source.parent), str(out))


def main() -> None:
    """Run the task on sample data and print where its outputs went."""
    for path in run_sample(Path(tempfile.mkdtemp(prefix=f"jupiter_aggregate{PARTITION}_"))):
        print(path)


if __name__ == "__main__":
    main()
