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

The copies fusion_center0, fusion_center1 and fusion_center2 differ only in PARTITION,
which main() uses to pick its upstream task.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
import tempfile
from pathlib import Path
from types import ModuleType

PARTITION = 0
DETECTORS = {"simple_detector": "simple", "astute_detector": "astute"}
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


def task(filename: list[str], pathin: str, pathout: str) -> list[str]:
    """Combine one simple and one astute detector output of the same partition and frame."""
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
    lines = ["!fusion_center"] + [f"!{key} {headers[key]}" for key in CARRIED]
    for start in sorted(flagged):
        score = math.fsum(value for _, value in flagged[start])
        detectors = "+".join(short for short, _ in flagged[start])
        lines.append(f"anomaly {start} {score!r} {detectors}")
    partition = headers["partition"].split()[0]
    stem = Path(sorted(filename)[0]).stem.rsplit("_", 1)[0]
    path = Path(pathout, f"{stem}_fusion{partition}.txt")
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
    pathin = workdir / f"fusion_center{PARTITION}" / "in"
    pathin.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for parent in (f"simple_detector{PARTITION}", f"astute_detector{PARTITION}"):
        source = Path(_sibling(parent).run_sample(workdir)[0])
        shutil.copyfile(source, pathin / source.name)
        names.append(source.name)
    out = workdir / f"fusion_center{PARTITION}" / "out"
    out.mkdir(parents=True, exist_ok=True)
    return task(names, str(pathin), str(out))


def main() -> None:
    """Run the task on sample data and print where its outputs went."""
    for path in run_sample(Path(tempfile.mkdtemp(prefix=f"jupiter_fusion_center{PARTITION}_"))):
        print(path)


if __name__ == "__main__":
    main()
