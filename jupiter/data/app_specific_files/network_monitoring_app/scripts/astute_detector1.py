"""ASTUTE detector: flag bins where many flows change volume together.

ASTUTE (Silveira, Diot, Taft and Govindan, "ASTUTE: Detecting a Different
Class of Traffic Anomalies", SIGCOMM CCR 40(4), 2010) assumes that, between
two consecutive time bins, the volume changes of the F flows active in either
bin balance out (flow volume equilibrium). With delta_f = packets of flow f
in the second bin minus packets in the first, it computes

    K = mean(delta) * sqrt(F) / std(delta)        (sample std, F - 1)

and rejects equilibrium when |K| > THRESHOLD. Many small synchronised
changes (a port scan starting or stopping: dozens of new one-packet flows)
give a large |K|; one huge flow (a flood) does not, which is why the
app fuses this detector with the volume one. A positive K is charged to the
later bin of the pair (traffic appeared), a negative K to the earlier bin
(traffic vanished after it). When std is 0 but the mean is not, |K| is
infinite. Pairs with fewer than 2 flows are not tested.

Output `<frame>_astute<K>.txt`: `!astute_detector`, the carried header,
`!threshold`, then `anomaly <bin_start> <score>` per flagged bin (score =
largest |K| charged to the bin, written with repr()).

The copies astute_detector0, astute_detector1 and astute_detector2 differ only in PARTITION,
which main() uses to pick its upstream task.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import tempfile
from pathlib import Path
from types import ModuleType

PARTITION = 1
THRESHOLD = 4.0
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


def task(filename: str, pathin: str, pathout: str) -> list[str]:
    """Test flow volume equilibrium between each pair of consecutive bins of `filename`."""
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
        if statistic is None or abs(statistic) <= THRESHOLD:
            continue
        charged = second if statistic > 0 else first
        scores[charged] = max(scores.get(charged, 0.0), abs(statistic))
    lines = ["!astute_detector"] + [f"!{key} {headers[key]}" for key in CARRIED]
    lines.append(f"!threshold {THRESHOLD!r}")
    lines += [f"anomaly {start} {scores[start]!r}" for start in sorted(scores)]
    partition = headers["partition"].split()[0]
    stem = Path(filename).stem.rsplit("_", 1)[0]
    path = Path(pathout, f"{stem}_astute{partition}.txt")
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
    out = workdir / f"astute_detector{PARTITION}"
    out.mkdir(parents=True, exist_ok=True)
    return task(source.name, str(source.parent), str(out))


def main() -> None:
    """Run the task on sample data and print where its outputs went."""
    for path in run_sample(Path(tempfile.mkdtemp(prefix=f"jupiter_astute_detector{PARTITION}_"))):
        print(path)


if __name__ == "__main__":
    main()
