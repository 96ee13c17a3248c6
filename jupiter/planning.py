"""Turning a workspace into a mapping problem and asking the configured mapper.

Until profiles exist, the problem uses default costs that make every choice
explicit: each task takes `DEFAULT_EXEC_SECONDS` on every compute node, each
edge carries `DEFAULT_EDGE_BYTES`, and a transfer between two different
nodes costs `DEFAULT_LINK_SECONDS` (zero on the same node). With them, HEFT
spreads independent tasks over the nodes and keeps chains together. Only
compute nodes run tasks; home and data-source nodes never do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from jupiter.errors import InputError
from jupiter.mapping import Edge, LinkCost, Problem, Schedule, evaluate_mapping, get_mapper
from jupiter.model.workspace import Workspace
from jupiter.profiles import problem_from_profile

DEFAULT_EXEC_SECONDS = 1.0
DEFAULT_EDGE_BYTES = 1024.0
DEFAULT_LINK_SECONDS = 0.5


def default_problem(workspace: Workspace) -> Problem:
    """The mapping problem with default costs (no profiles)."""
    dag = workspace.app.dag
    nodes = tuple(node.name for node in workspace.nodes.compute)
    links = {(src, dst): LinkCost(a=0.0, b=0.0, c=DEFAULT_LINK_SECONDS) for src in nodes for dst in nodes if src != dst}
    return Problem(
        tasks=dag.order,
        nodes=nodes,
        exec_times=tuple(tuple(DEFAULT_EXEC_SECONDS for _ in nodes) for _ in dag.order),
        edges=tuple(Edge(parent, child, DEFAULT_EDGE_BYTES) for parent, child in dag.edges),
        links=links,
    )


def mapper_for(workspace: Workspace, problem: Problem) -> tuple[str, dict[str, object]]:
    """The configured mapper's name and parameters."""
    config = workspace.config
    name = config.scheduler
    settings = config.mapper
    params: dict[str, object] = {}
    if name == "heft_modified":
        cap = settings.max_task_allowed or math.ceil(len(problem.tasks) / len(problem.nodes))
        params["max_tasks_per_node"] = cap
    elif name == "wave_random":
        params = {"seed": settings.seed, "initial": dict(workspace.app.input_nodes) or None}
    elif name == "wave_greedy":
        params = {
            "initial": dict(workspace.app.input_nodes) or None,
            "w_net": settings.w_net,
            "w_cpu": settings.w_cpu,
            "w_mem": settings.w_mem,
        }
    elif name == "best":
        params["seed"] = settings.seed
    elif name == "static":
        raise InputError(
            config.path, None, "SCHEDULER = static needs a mapping file; set STATIC_MAPPING = 1 and [DEPLOY] MAPPING"
        )
    return name, params


def schedule_workspace(workspace: Workspace, problem: Problem | None = None) -> Schedule:
    """Map the workspace's DAG with the configured mapper."""
    problem = problem or default_problem(workspace)
    name, params = mapper_for(workspace, problem)
    return get_mapper(name, **params).schedule(problem)


def schedule_profile(
    workspace: Workspace, profile: Mapping[str, Any], mapping: Mapping[str, str] | None = None
) -> Schedule:
    """Map from measurements: the profile document's problem, scheduled by the configured mapper.

    With `mapping` (found elsewhere, e.g. by distributed WAVE) the problem
    only times it, so every mapping comes with a predicted makespan.
    """
    problem = problem_from_profile(profile, "<profile>")
    if mapping is not None:
        return evaluate_mapping(problem, mapping, mapper=workspace.config.scheduler)
    return schedule_workspace(workspace, problem)


def map_workspace(workspace: Workspace) -> dict[str, str]:
    """Task -> node with the configured mapper on default costs, in topological order."""
    schedule = schedule_workspace(workspace)
    return {task: schedule.node_of(task) for task in workspace.app.dag.order}
