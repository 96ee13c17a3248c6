"""WAVE: distributed, controller-driven task appointment (Jupiter v4's wave_random/wave_greedy).

In a deployment every node runs a WAVE instance; the controller of a task
(one of its parents) appoints the nodes of the children it controls as soon
as it knows its own node. This module holds the *decision* a controller makes
(:func:`appoint_children`, called by the distributed runtime) and an offline
simulation of the whole wave (:class:`WaveRandomMapper`,
:class:`WaveGreedyMapper`) that the benchmark and ``jupiter map`` use. Times
come from the fixed-mapping evaluator so the schedule passes the checker.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from jupiter.mapping.base import Mapper
from jupiter.mapping.evaluator import evaluate_mapping
from jupiter.mapping.problem import Problem, Resources
from jupiter.mapping.schedule import Schedule

#: Greedy WAVE only considers nodes whose delay is within this factor of the best one.
DELAY_SPREAD = 15.0


@dataclass(frozen=True)
class RandomPolicy:
    """Appoint uniformly at random among the candidates (``random_WAVE``)."""

    rng: random.Random


@dataclass(frozen=True)
class GreedyPolicy:
    """Appoint the cheapest candidate: ``w_net·delay + w_cpu·cpu% + w_mem·mem%`` (``greedy_WAVE``).

    Only candidates whose delay is at most ``spread`` times the smallest
    delay are eligible; ties go to the candidate listed first.
    """

    w_net: float = 1.0
    w_cpu: float = 1.0
    w_mem: float = 1.0
    spread: float = DELAY_SPREAD


Policy = RandomPolicy | GreedyPolicy


def select_controllers(problem: Problem) -> dict[str, str]:
    """Controller (a parent) of every non-root task, by the original's selection routine.

    Tasks are visited in topological order. If exactly one parent of a task is
    already a controller, it controls this task too (fewer controllers, fewer
    messages); if none or several are, the parent with the smallest
    topological index is appointed.
    """
    pos = {t: i for i, t in enumerate(problem.topological_order)}
    controllers: set[str] = set()
    out: dict[str, str] = {}
    for task in problem.topological_order:
        parents = problem.parents(task)
        if not parents:
            continue
        already = [p for p in parents if p in controllers]
        chosen = already[0] if len(already) == 1 else min(parents, key=pos.__getitem__)
        controllers.add(chosen)
        out[task] = chosen
    return out


def appoint_children(
    controller_task: str,
    controller_node: str | None,
    children: Sequence[str],
    candidates: Sequence[str] | Mapping[str, Sequence[str]],
    link_delay: Mapping[str, float],
    resources: Mapping[str, Resources],
    policy: Policy,
) -> dict[str, str]:
    """The node each child of ``controller_task`` should run on (one controller's decision).

    ``candidates`` are the nodes allowed for every child (or per child);
    ``link_delay`` maps a candidate to the delay in seconds from
    ``controller_node`` (a candidate without a delay counts as delay 0 when no
    candidate has one, and is skipped otherwise); ``resources`` gives CPU and
    memory in percent (missing = 0). Pure: the random policy draws only from
    its own ``rng``.
    """
    out: dict[str, str] = {}
    for child in children:
        cands = list(candidates[child] if isinstance(candidates, Mapping) else candidates)
        if not cands:
            raise ValueError(f"controller {controller_task!r} has no candidate node for child {child!r}")
        if isinstance(policy, RandomPolicy):
            out[child] = policy.rng.choice(cands)
        else:
            out[child] = _greedy_pick(controller_task, child, cands, link_delay, resources, policy)
    return out


def _greedy_pick(
    controller_task: str,
    child: str,
    cands: list[str],
    link_delay: Mapping[str, float],
    resources: Mapping[str, Resources],
    policy: GreedyPolicy,
) -> str:
    known = [n for n in cands if n in link_delay and math.isfinite(link_delay[n])]
    if any(n in link_delay for n in cands):
        if not known:
            raise ValueError(f"controller {controller_task!r} cannot reach any candidate node of {child!r}")
        delays = {n: link_delay[n] for n in known}
    else:
        delays = dict.fromkeys(cands, 0.0)
    limit = policy.spread * min(delays.values())
    best, best_cost = "", math.inf
    for n, d in delays.items():
        if d > limit:
            continue
        res = resources.get(n, Resources())
        cost = policy.w_net * d + policy.w_cpu * res.cpu + policy.w_mem * res.memory
        if cost < best_cost:
            best, best_cost = n, cost
    return best


class _WaveMapper(Mapper):
    """Offline simulation of a WAVE run followed by list-scheduled timing."""

    def __init__(
        self,
        policy_kind: str,
        *,
        seed: int,
        initial: Mapping[str, str] | None,
        weights: tuple[float, float, float],
        spread: float,
        include_own_node: bool,
        probe_bytes: float | None,
    ) -> None:
        self._kind = policy_kind
        self.seed = seed
        self.initial: Mapping[str, str] = MappingProxyType(dict(initial or {}))
        self.weights = weights
        self.spread = spread
        self.include_own_node = include_own_node
        self.probe_bytes = probe_bytes

    def _policy(self) -> Policy:
        if self._kind == "random":
            return RandomPolicy(random.Random(self.seed))
        return GreedyPolicy(*self.weights, spread=self.spread)

    def mapping(self, problem: Problem) -> dict[str, str]:
        """Run the wave offline and return task -> node."""
        policy = self._policy()
        counts = dict.fromkeys(problem.nodes, 0)

        def candidates(task: str) -> list[str]:
            # A node that reached its task limit stops volunteering, as a full worker would.
            allowed = [
                n for n in problem.allowed_nodes(task) if (lim := problem.node_limit(n)) is None or counts[n] < lim
            ]
            if not allowed:
                raise ValueError(f"WAVE: no node with room can run task {task!r}")
            return allowed

        out: dict[str, str] = {}
        controller_of = select_controllers(problem)
        for task in problem.topological_order:
            if task in controller_of:
                continue
            if task in self.initial:
                node = self.initial[task]
                if node not in problem.node_index:
                    raise ValueError(f"WAVE initial placement puts {task!r} on unknown node {node!r}")
            else:
                node = appoint_children("", None, [task], candidates(task), {}, problem.resources, policy)[task]
            out[task] = node
            counts[node] += 1
        controlled: dict[str, list[str]] = {}
        for child, ctrl in controller_of.items():
            controlled.setdefault(ctrl, []).append(child)
        # Controllers act in topological order, so each knows its own node already.
        for ctrl in problem.topological_order:
            kids = controlled.get(ctrl)
            if not kids:
                continue
            here = out[ctrl]
            for child in kids:
                cands = candidates(child)
                size = self.probe_bytes if self.probe_bytes is not None else problem.edge_size(ctrl, child)
                delay = {n: problem.transfer_time(size, here, n) for n in cands if n != here or self.include_own_node}
                if not delay:  # the controller's node is the only candidate
                    delay = {here: 0.0}
                node = appoint_children(ctrl, here, [child], cands, delay, problem.resources, policy)[child]
                out[child] = node
                counts[node] += 1
        return out

    def schedule(self, problem: Problem) -> Schedule:
        """WAVE mapping, timed by the fixed-mapping evaluator."""
        return evaluate_mapping(problem, self.mapping(problem), mapper=self.name)


class WaveRandomMapper(_WaveMapper):
    """WAVE with random appointment (ANRGUSC/WAVE ``random_WAVE``, Jupiter v4 WAVE_RANDOM).

    Controllers are chosen as in the original; each controller appoints every
    child it controls uniformly among the nodes that can run it. ``seed`` makes
    runs reproducible; ``initial`` places root tasks (the app's
    ``input_node.txt``), otherwise roots are drawn the same way.
    """

    name = "wave_random"

    def __init__(self, seed: int = 0, initial: Mapping[str, str] | None = None) -> None:
        super().__init__(
            "random",
            seed=seed,
            initial=initial,
            weights=(1.0, 1.0, 1.0),
            spread=DELAY_SPREAD,
            include_own_node=True,
            probe_bytes=None,
        )

    def __repr__(self) -> str:
        return f"WaveRandomMapper(seed={self.seed})"


class WaveGreedyMapper(_WaveMapper):
    """WAVE with greedy appointment (ANRGUSC/WAVE ``greedy_WAVE``, Jupiter v4 WAVE_GREEDY).

    A controller keeps its neighbours' delays, CPU and memory use; among the
    neighbours whose delay is within ``spread`` (15) times the smallest one it
    appoints the one with the lowest ``w_net·delay + w_cpu·cpu% + w_mem·mem%``.
    Delay is the transfer time of ``probe_bytes`` (default: the edge's own data
    size). The controller's own node is a neighbour only if
    ``include_own_node``. Roots without an ``initial`` node get the node with
    the lowest resource cost.
    """

    name = "wave_greedy"

    def __init__(
        self,
        initial: Mapping[str, str] | None = None,
        *,
        w_net: float = 1.0,
        w_cpu: float = 1.0,
        w_mem: float = 1.0,
        spread: float = DELAY_SPREAD,
        include_own_node: bool = False,
        probe_bytes: float | None = None,
    ) -> None:
        super().__init__(
            "greedy",
            seed=0,
            initial=initial,
            weights=(w_net, w_cpu, w_mem),
            spread=spread,
            include_own_node=include_own_node,
            probe_bytes=probe_bytes,
        )

    def __repr__(self) -> str:
        w = self.weights
        return f"WaveGreedyMapper(w_net={w[0]}, w_cpu={w[1]}, w_mem={w[2]}, spread={self.spread})"
