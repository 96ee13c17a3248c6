"""Volume detector: flag time bins whose traffic deviates more than k standard deviations.

Input: one aggregate file. For the series of per-bin packet counts and the
series of per-bin byte counts of the partition, each bin gets the z-score
|x - mean| / std (population std; 0 when the series is flat). A bin is
anomalous when the larger of its two z-scores exceeds THRESHOLD. Floods and
other sudden volume changes show up here.

Output `<frame>_simple<K>.txt`: `!simple_detector` (fusion_center recognises
its inputs by this first line, not by their order), the carried header,
`!threshold`, `!stats` (mean and std of packets and bytes), then one line
`anomaly <bin_start> <score>` per flagged bin; scores are written with
repr() so that they read back exactly.

The copies simple_detector0, simple_detector1 and simple_detector2 differ only in PARTITION,
which main() uses to pick its upstream task.
"""

from __future__ import annotations

import importlib.util
import math
import tempfile
from pathlib import Path
from types import ModuleType

PARTITION = 1
THRESHOLD = 3.0
CARRIED = ("frame", "packets", "span", "partition", "bin_seconds")


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


def task(filename: str, pathin: str, pathout: str) -> list[str]:
    """Flag the bins of the aggregate `filename` whose packet or byte count is an outlier."""
    kind, headers, rows = read_table(Path(pathin, filename))
    if kind != "aggregate":
        raise ValueError(f"{filename}: expected an aggregate file, got {kind or 'no header'}")
    bins = [row for row in rows if row[0] == "bin"]
    starts = [int(row[1]) for row in bins]
    packets = [int(row[2]) for row in bins]
    volume = [int(row[3]) for row in bins]
    packet_mean, packet_std = mean_std(packets)
    byte_mean, byte_std = mean_std(volume)
    lines = ["!simple_detector"] + [f"!{key} {headers[key]}" for key in CARRIED]
    lines.append(f"!threshold {THRESHOLD!r}")
    lines.append(f"!stats packets {packet_mean!r} {packet_std!r} bytes {byte_mean!r} {byte_std!r}")
    for start, by_packets, by_bytes in zip(starts, zscores(packets), zscores(volume), strict=True):
        score = max(by_packets, by_bytes)
        if score > THRESHOLD:
            lines.append(f"anomaly {start} {score!r}")
    partition = headers["partition"].split()[0]
    stem = Path(filename).stem.rsplit("_", 1)[0]
    path = Path(pathout, f"{stem}_simple{partition}.txt")
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
    """Run the upstream tasks then this one on the first sample input, under `workdir`."""
    source = Path(_sibling(f"aggregate{PARTITION}").run_sample(workdir)[0])
    out = workdir / f"simple_detector{PARTITION}"
    out.mkdir(parents=True, exist_ok=True)
    return task(source.name, str(source.parent), str(out))


def main() -> None:
    """Run the task on sample data and print where its outputs went."""
    for path in run_sample(Path(tempfile.mkdtemp(prefix=f"jupiter_simple_detector{PARTITION}_"))):
        print(path)


if __name__ == "__main__":
    main()
