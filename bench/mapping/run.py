"""Benchmark of jupiter.mapping against SAGA (anrg-saga 2.1.0) on the same instances.

    python bench/mapping/run.py --quick      # ~100-task instances, a few minutes
    python bench/mapping/run.py --full       # 100/300/1000 tasks + timing, ~8 minutes with the cache

SAGA needs Python >= 3.12 and is under a non-commercial licence, so it is
never a dependency of Jupiter: this script creates ``bench/mapping/.venv-saga``
on demand (with the 3.12 interpreter given by --python312 or $SAGA_PYTHON),
installs anrg-saga and wfcommons there, and runs SAGA and the WfCommons
generator in subprocesses, exchanging instances as JSON. Both sides solve the
same related-machines instance: exec = cost/speed, comm = size/link speed,
self-links free (our quadratic links with a = c = 0, b = 1/speed).

Results are cached in ``bench/mapping/cache/`` (SAGA makespans per instance)
so re-running after changing our code only re-runs our side.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

Json = dict[str, Any]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from jupiter.mapping import (  # noqa: E402
    BestMapper,
    CpopMapper,
    FastestNodeMapper,
    HeftMapper,
    Mapper,
    MinMinMapper,
    PeftMapper,
    Problem,
    related_machines,
)
from jupiter.mapping.generate import random_instance, scale_to_ccr  # noqa: E402

VENV = HERE / ".venv-saga"
CACHE = HERE / "cache"
RECIPES = ["montage", "epigenomics", "cycles", "srasearch", "genome", "seismology", "soykb", "blast"]
SAGA_NAMES = ["heft", "cpop", "peft", "minmin", "fastest_node"]
DEFAULT_PY312 = "/root/.pyenv/versions/3.12.1/bin/python"


def venv_python(py312: str) -> Path:
    """The venv's interpreter, creating the venv and installing SAGA on first use."""
    py = VENV / "bin" / "python"
    if not py.exists():
        print(f"creating {VENV} with {py312} ...", flush=True)
        subprocess.run([py312, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "anrg-saga==2.1.0", "wfcommons==1.6"], check=True)
    return py


def saga_env() -> dict[str, str]:
    # SAGA iterates frozensets: a fixed hash seed makes its tie-breaks repeatable.
    return {**os.environ, "PYTHONHASHSEED": "0"}


def workflows(py: Path, specs: list[str]) -> dict[str, Json]:
    """WfCommons task graphs by "recipe:n:seed", generated once and cached."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / "workflows.json"
    have: dict[str, Json] = json.loads(path.read_text()) if path.exists() else {}
    missing = [s for s in specs if s not in have]
    if missing:
        tmp = CACHE / "workflows.new.json"
        subprocess.run([str(py), str(HERE / "wf_worker.py"), str(tmp), *missing], check=True, env=saga_env())
        have.update(json.loads(tmp.read_text()))
        tmp.unlink()
        path.write_text(json.dumps(have))
    return {s: have[s] for s in specs}


def network(n_nodes: int, seed: int) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """Random heterogeneous nodes (speed 1..4) and a full mesh of links (speed 1..4)."""
    rng = random.Random(1000 + seed)
    nodes = {f"n{k}": rng.uniform(1.0, 4.0) for k in range(n_nodes)}
    names = list(nodes)
    links = {(u, v): rng.uniform(1.0, 4.0) for i, u in enumerate(names) for v in names[i + 1 :]}
    return nodes, links


def instances(py: Path, sizes: list[int], node_counts: list[int], ccrs: list[float]) -> list[Json]:
    """Every benchmark instance as plain JSON-able data."""
    specs = [f"{r}:{n}:1" for r in RECIPES for n in sizes]
    graphs = workflows(py, specs)
    out = []
    for n in sizes:
        for family in [*RECIPES, "random"]:
            if family == "random":
                base = random_instance(n, 4, seed=n)
                tasks, edges = base.task_costs, base.edges
            else:
                g = graphs[f"{family}:{n}:1"]
                tasks, edges = g["tasks"], [tuple(e) for e in g["edges"]]
            for k, nn in enumerate(node_counts):
                nodes, links = network(nn, seed=n * 100 + k)
                for ccr in ccrs:
                    out.append(
                        {
                            "name": f"{family}/{n}/{nn}n/ccr{ccr}",
                            "family": family,
                            "size": n,
                            "tasks": tasks,
                            "edges": scale_to_ccr(tasks, nodes, edges, links, ccr),
                            "nodes": nodes,
                            "links": [[u, v, s] for (u, v), s in links.items()],
                        }
                    )
    return out


def run_saga(py: Path, insts: list[Json], only: list[str] | None = None, tag: str = "saga") -> dict[str, Json]:
    """SAGA results per instance name (cached per instance, except timing runs)."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{tag}.json"
    have: dict[str, Json] = json.loads(path.read_text()) if path.exists() and tag != "timing" else {}
    todo = [i for i in insts if i["name"] not in have]
    if todo:
        print(f"running SAGA on {len(todo)} instances ...", flush=True)
        src, dst = CACHE / f"{tag}.in.json", CACHE / f"{tag}.out.json"
        src.write_text(json.dumps(todo))
        cmd = [str(py), str(HERE / "saga_worker.py"), str(src), str(dst)]
        if only:
            cmd += ["--only", ",".join(only)]
        subprocess.run(cmd, check=True, env=saga_env(), stdout=subprocess.DEVNULL)
        for row in json.loads(dst.read_text()):
            have[row["name"]] = row
        path.write_text(json.dumps(have))
        src.unlink()
        dst.unlink()
    return {i["name"]: have[i["name"]] for i in insts}


def to_problem(inst: Json) -> Problem:
    links = {(u, v): s for u, v, s in inst["links"]}
    return related_machines(inst["tasks"], inst["nodes"], [tuple(e) for e in inst["edges"]], links)


def lower_bound(inst: Json) -> float:
    """max(critical path at the fastest speed, total work / total speed); communication ignored."""
    fastest = max(inst["nodes"].values())
    cost = inst["tasks"]
    children: dict[str, list[str]] = defaultdict(list)
    indeg = dict.fromkeys(cost, 0)
    for p, c, _ in inst["edges"]:
        children[p].append(c)
        indeg[c] += 1
    longest = {t: cost[t] / fastest for t in cost}
    ready = [t for t, d in indeg.items() if d == 0]
    while ready:
        t = ready.pop()
        for c in children[t]:
            longest[c] = max(longest[c], longest[t] + cost[c] / fastest)
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
    critical = max(longest.values())
    return float(max(critical, sum(cost.values()) / sum(inst["nodes"].values())))


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


#: Our mapper that computes each SAGA scheduler's schedule; MinMin gets SAGA's tie order.
def saga_twins(task_set_order: list[str]) -> dict[str, Mapper]:
    return {
        "heft": HeftMapper(comm_average="saga"),
        "cpop": CpopMapper(variant="saga"),
        "peft": PeftMapper(variant="saga"),
        "minmin": MinMinMapper(tie_order=task_set_order),
        "fastest_node": FastestNodeMapper(),
    }


def quality(py: Path, insts: list[Json], saga: dict[str, Json], best_work: int) -> None:
    orders = run_saga(py, insts, only=["order"], tag="order")
    rows = []
    for inst in insts:
        # Same instance, tasks listed in SAGA's topological order and nodes in its
        # node-set order: SAGA breaks ties by these (hash-seeded) iteration orders,
        # and ours by the given order, so equal values then tie the same way.
        o = orders[inst["name"]]
        p = to_problem(
            {
                **inst,
                "tasks": {t: inst["tasks"][t] for t in o["topo"]},
                "nodes": {n: inst["nodes"][n] for n in o["nodes"]},
            }
        )
        s = saga[inst["name"]]
        twins = saga_twins(o["tasks"])
        rel = {n: abs(m.schedule(p).makespan - s[n]) / s[n] for n, m in twins.items()}
        t0 = time.perf_counter()
        best = BestMapper(work=best_work, extra=[twins["minmin"]]).schedule(p).makespan
        best_time = time.perf_counter() - t0
        ref = min(s[n] for n in SAGA_NAMES)
        lb = lower_bound(inst)
        rows.append(
            {
                "family": inst["family"],
                "size": inst["size"],
                "rel": rel,
                "paper_heft_ratio": HeftMapper().schedule(p).makespan / s["heft"],
                "best_ratio": best / ref,
                "headroom": ref >= 1.1 * lb,
                "best_lb": best / lb,
                "best_time": best_time,
            }
        )
        print(".", end="", flush=True)
    print()
    eq_cols = {"heft": "=heft", "cpop": "=cpop", "peft": "=peft", "minmin": "=minmin", "fastest_node": "=fastest"}
    header = (
        f"{'family':<12}{'n':>4}"
        + "".join(f"{c:>9}" for c in eq_cols.values())
        + f"{'paperHEFT':>10}{'best/min5':>10}{'max':>7}{'<=1':>6}{'n_hr':>6}{'hr gm':>7}{'hr max':>7}"
        f"{'best/LB':>8}{'best s':>8}"
    )
    print(header)
    print("-" * len(header))
    by: dict[str, list[Json]] = defaultdict(list)
    for r in rows:
        by[r["family"]].append(r)
    if len({r["size"] for r in rows}) > 1:
        for r in rows:
            by[f"ALL {r['size']}"].append(r)
    by["ALL"] = rows
    worst_rel = dict.fromkeys(eq_cols, 0.0)
    for fam, rs in by.items():
        hr = [r["best_ratio"] for r in rs if r["headroom"]]
        equal = {a: sum(r["rel"][a] <= 1e-6 for r in rs) for a in eq_cols}
        eqs = "".join(f"{f'{k}/{len(rs)}':>9}" for k in equal.values())
        for a in eq_cols:
            worst_rel[a] = max(worst_rel[a], *(r["rel"][a] for r in rs))
        print(
            f"{fam:<12}{len(rs):>4}{eqs}"
            f"{geomean([r['paper_heft_ratio'] for r in rs]):>10.4f}"
            f"{geomean([r['best_ratio'] for r in rs]):>10.4f}{max(r['best_ratio'] for r in rs):>7.3f}"
            f"{sum(r['best_ratio'] <= 1 + 1e-9 for r in rs) / len(rs):>6.0%}"
            f"{len(hr):>6}{geomean(hr):>7.3f}{max(hr, default=float('nan')):>7.3f}"
            f"{geomean([r['best_lb'] for r in rs]):>8.3f}{statistics.median(r['best_time'] for r in rs):>8.2f}"
        )
    print(
        "=X: instances where our SAGA variant of X has SAGA's makespan within 1e-6 relative"
        f" (largest relative gaps: {', '.join(f'{a} {v:.1e}' for a, v in worst_rel.items())});\n"
        "paperHEFT: geomean of our paper-averaged HEFT over SAGA HEFT;"
        " best/min5: our best over min(SAGA HEFT, CPoP, PEFT, MinMin, FastestNode) (geomean, max, share <= 1);\n"
        "n_hr/hr gm/hr max: same on instances with headroom (min5 >= 1.1 LB); best/LB: geomean;"
        f" best s: median seconds of `best` (work {best_work:,})."
    )


def median_time(fn: Callable[[], object], repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def timing(py: Path, sizes: list[int], repeat: int) -> None:
    print("\nscheduling time, random DAGs, 16 nodes, CCR 1 (medians; `best` with its default effort)")
    for n in sizes:
        base = random_instance(n, 16, ccr=1.0, seed=7)
        inst = {
            "name": f"timing/{n}",
            "tasks": base.task_costs,
            "edges": base.edges,
            "nodes": base.node_speeds,
            "links": [[u, v, s] for (u, v), s in base.link_speeds.items()],
        }
        saga_times = []
        for r in range(repeat):
            res = run_saga(py, [{**inst, "name": f"timing/{n}/{r}"}], only=["heft"], tag="timing")
            saga_times.append(res[f"timing/{n}/{r}"]["heft_time"])
        p = base.problem()
        ours = median_time(partial(HeftMapper(comm_average="saga").schedule, p), max(3, repeat))
        saga_t = statistics.median(saga_times)
        # `best` runs ten mappers then a bounded local search: once is enough to time it.
        best_t = median_time(partial(BestMapper().schedule, p), 1)
        print(
            f"  {n:>6} tasks: ours {ours * 1000:8.1f} ms   SAGA HEFT {saga_t * 1000:9.1f} ms"
            f"   speed-up {saga_t / ours:5.1f}x   best {best_t:6.2f} s"
        )
    big = random_instance(10_000, 64, ccr=1.0, seed=8).problem()
    t = median_time(lambda: HeftMapper().schedule(big), 3)
    print(f"  10000 tasks x 64 nodes: ours {t:.2f} s (HEFT)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="~100-task instances only (default)")
    mode.add_argument("--full", action="store_true", help="100, 300 and 1000 tasks plus 5000-task timing")
    ap.add_argument("--python312", default=os.environ.get("SAGA_PYTHON", DEFAULT_PY312))
    ap.add_argument("--best-work", type=int, default=4_000_000, help="search effort of `best`")
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args()
    py = venv_python(args.python312)
    sizes = [100, 300, 1000] if args.full else [100]
    insts = instances(py, sizes, [4, 8, 16], [0.1, 1.0, 5.0])
    saga = run_saga(py, insts)
    print(f"{len(insts)} instances: WfCommons {', '.join(RECIPES)} + random; sizes {sizes}; 4/8/16 nodes; CCR 0.1/1/5")
    quality(py, insts, saga, args.best_work)
    if not args.no_timing:
        timing(py, [1000, 5000] if args.full else [1000], 3)


if __name__ == "__main__":
    main()
