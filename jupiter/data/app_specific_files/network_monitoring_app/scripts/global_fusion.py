"""Exit task: merge the three partitions' fused anomalies into the frame's report.

Inputs (3, in any order): the outputs of fusion_center0..2, recognised by
their `!fusion_center` first line and `!partition` header. A time bin is in
the report when any partition flagged it; its score is the sum of the
partitions' combined scores, and the partitions that flagged it are listed
with the detectors that did, e.g. `p0:simple+astute p2:astute`.

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

from __future__ import annotations

import importlib.util
import math
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

PARTITIONS = 3
FRAME_FACTS = ("frame", "packets", "span", "bin_seconds")


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


def utc(start: int) -> str:
    """ISO 8601 UTC time of a Unix second."""
    return datetime.fromtimestamp(start, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def task(filename: list[str], pathin: str, pathout: str) -> list[str]:
    """Write the frame's anomaly report from the three fusion_center outputs."""
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
    stem = Path(sorted(filename)[0]).stem.rsplit("_", 1)[0]
    path = Path(pathout, f"{stem}_report.txt")
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
    """Run the whole DAG on the first sample input; outputs go under `workdir`."""
    pathin = workdir / "global_fusion" / "in"
    pathin.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for partition in range(PARTITIONS):
        source = Path(_sibling(f"fusion_center{partition}").run_sample(workdir)[0])
        shutil.copyfile(source, pathin / source.name)
        names.append(source.name)
    out = workdir / "global_fusion" / "out"
    out.mkdir(parents=True, exist_ok=True)
    return task(names, str(pathin), str(out))


def main() -> None:
    """Run the whole DAG on sample data and print where the report went."""
    for path in run_sample(Path(tempfile.mkdtemp(prefix="jupiter_global_fusion_"))):
        print(path)


if __name__ == "__main__":
    main()
