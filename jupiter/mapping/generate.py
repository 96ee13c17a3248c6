"""Random problem instances for tests and benchmarks (pure, seeded).

Instances are in the related-machines model so they can be handed to SAGA
unchanged: a task has a cost, a node a speed, a link a speed, and the data
sizes are scaled so that the communication-to-computation ratio (mean
transfer time of an edge over mean execution time of a task, both averaged
over nodes/links) equals ``ccr``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from jupiter.mapping.problem import Problem, related_machines


@dataclass(frozen=True)
class RelatedInstance:
    """A related-machines instance: costs, speeds, edges with sizes, link speeds."""

    task_costs: dict[str, float]
    node_speeds: dict[str, float]
    edges: list[tuple[str, str, float]]
    link_speeds: dict[tuple[str, str], float]

    def problem(self) -> Problem:
        """The equivalent :class:`Problem` (exec = cost/speed, comm = size/link speed)."""
        return related_machines(self.task_costs, self.node_speeds, self.edges, self.link_speeds)


def scale_to_ccr(
    task_costs: dict[str, float],
    node_speeds: dict[str, float],
    edges: list[tuple[str, str, float]],
    link_speeds: dict[tuple[str, str], float],
    ccr: float,
) -> list[tuple[str, str, float]]:
    """Rescale edge sizes so mean transfer time / mean execution time equals ``ccr``."""
    if not edges or ccr <= 0:
        return [(p, c, 0.0) for p, c, _ in edges]
    mean_exec = (
        sum(task_costs.values()) / len(task_costs) * (sum(1.0 / s for s in node_speeds.values()) / len(node_speeds))
    )
    inv_link = [1.0 / s for s in link_speeds.values()]
    mean_inv_link = sum(inv_link) / len(inv_link) if inv_link else 0.0
    mean_comm = sum(s for _, _, s in edges) / len(edges) * mean_inv_link
    factor = ccr * mean_exec / mean_comm if mean_comm > 0 else 0.0
    return [(p, c, s * factor) for p, c, s in edges]


def random_instance(
    n_tasks: int,
    n_nodes: int,
    *,
    ccr: float = 1.0,
    seed: int = 0,
    density: float = 0.15,
    window: int = 12,
    speed_spread: float = 4.0,
) -> RelatedInstance:
    """A random layered-looking DAG on heterogeneous nodes with a full mesh of links.

    Each task takes parents among the ``window`` tasks before it with
    probability ``density`` (at least one unless it is among the first few),
    giving DAGs with several entries, several exits and realistic depth.
    """
    rng = random.Random(seed)
    tasks = [f"t{i}" for i in range(n_tasks)]
    costs = {t: rng.uniform(1.0, 100.0) for t in tasks}
    edges: list[tuple[str, str, float]] = []
    for i in range(1, n_tasks):
        lo = max(0, i - window)
        parents = [j for j in range(lo, i) if rng.random() < density]
        if not parents and rng.random() < 0.9:
            parents = [rng.randrange(lo, i)]
        edges.extend((tasks[j], tasks[i], rng.uniform(1.0, 100.0)) for j in parents)
    nodes = [f"n{k}" for k in range(n_nodes)]
    speeds = {n: rng.uniform(1.0, speed_spread) for n in nodes}
    links = {
        (nodes[u], nodes[v]): rng.uniform(1.0, speed_spread) for u in range(n_nodes) for v in range(u + 1, n_nodes)
    }
    return RelatedInstance(costs, speeds, scale_to_ccr(costs, speeds, edges, links, ccr), links)
