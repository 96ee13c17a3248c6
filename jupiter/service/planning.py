"""Turning a deployment spec into a mapping problem and asking the configured mapper.

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

from jupiter.mapping import Edge, LinkCost, Problem, Schedule, evaluate_mapping, get_mapper
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.errors import InputError
from jupiter.model.mapping_file import parse_mapping
from jupiter.model.problem_files import problem_from_profile

DEFAULT_EXEC_SECONDS = 1.0
DEFAULT_EDGE_BYTES = 1024.0
DEFAULT_LINK_SECONDS = 0.5


def default_problem(spec: DeploymentSpec) -> Problem:
    """The mapping problem with default costs (no profiles)."""
    dag = spec.app.dag
    nodes = spec.compute
    links = {(src, dst): LinkCost(a=0.0, b=0.0, c=DEFAULT_LINK_SECONDS) for src in nodes for dst in nodes if src != dst}
    return Problem(
        tasks=dag.order,
        nodes=nodes,
        exec_times=tuple(tuple(DEFAULT_EXEC_SECONDS for _ in nodes) for _ in dag.order),
        edges=tuple(Edge(parent, child, DEFAULT_EDGE_BYTES) for parent, child in dag.edges),
        links=links,
    )


def mapper_for(spec: DeploymentSpec, problem: Problem) -> tuple[str, dict[str, object]]:
    """The configured mapper's name and parameters."""
    name = spec.mapping.scheduler
    settings = spec.mapping.settings
    params: dict[str, object] = {}
    if name == "heft_modified":
        cap = settings.max_task_allowed or math.ceil(len(problem.tasks) / len(problem.nodes))
        params["max_tasks_per_node"] = cap
    elif name == "wave_random":
        params = {"seed": settings.seed, "initial": dict(spec.app.input_nodes) or None}
    elif name == "wave_greedy":
        params = {
            "initial": dict(spec.app.input_nodes) or None,
            "w_net": settings.w_net,
            "w_cpu": settings.w_cpu,
            "w_mem": settings.w_mem,
        }
    elif name == "best":
        params["seed"] = settings.seed
    elif name == "stream":
        params = {
            "rate": settings.stream_rate or None,
            "utilisation_cap": settings.stream_cap,
            "seed": settings.seed,
        }
    elif name == "static":
        raise InputError(
            spec.config_path,
            None,
            "SCHEDULER = static needs a mapping file; set STATIC_MAPPING = 1 and [DEPLOY] MAPPING",
        )
    return name, params


def schedule(spec: DeploymentSpec, problem: Problem | None = None) -> Schedule:
    """Map the DAG with the configured mapper (on default costs without a problem)."""
    problem = problem or default_problem(spec)
    name, params = mapper_for(spec, problem)
    return get_mapper(name, **params).schedule(problem)


def schedule_profile(
    spec: DeploymentSpec, profile: Mapping[str, Any], mapping: Mapping[str, str] | None = None
) -> Schedule:
    """Map from measurements: the profile document's problem, scheduled by the configured mapper.

    With `mapping` (found elsewhere, e.g. by distributed WAVE or a mapper Job)
    the problem only times it, so every mapping comes with a predicted makespan.
    """
    problem = problem_from_profile(profile, "<profile>")
    if mapping is not None:
        return evaluate_mapping(problem, mapping, mapper=spec.mapping.scheduler)
    return schedule(spec, problem)


def static_or_default_mapping(spec: DeploymentSpec) -> dict[str, str]:
    """The mapping to deploy without profiling: the static file, else the mapper on default costs."""
    if spec.mapping.static_file is not None:
        return parse_mapping(spec.mapping.static_file, spec.app.dag, spec.nodes)
    placed = schedule(spec)
    return {task: placed.node_of(task) for task in spec.app.dag.order}
