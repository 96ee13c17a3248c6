"""The original's sequence on running agents: profile -> map -> dispatch, each phase timed.

1. **Profile**: a profiling session (`jupiter.profiling.session`) asks every
   agent for its measurements through the deployment's control client,
   stores them at home and writes `profile.json` — unless a profile measured
   before will do (`--profile FILE`, or the cache of `jupiter.service.profiles`),
   which takes no time at all. A new profile goes into the cache.
2. **Map**: the configured scheduler maps the measured problem — in this
   process, or inside the cluster when the backend maps there (the
   kubernetes mapper Job), or among the agents (distributed WAVE,
   `jupiter.service.wave_driver`); every mapping is timed on the problem, so
   it comes with a predicted makespan (`mapping.json`).
3. **Dispatch**: the plan with the mapping (and, with pricing, the measured
   cost model) is written, published to the backend, and every agent starts
   the workers of its tasks.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from jupiter.backends.base import Progress
from jupiter.backends.control import Unreachable
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.plan import Plan
from jupiter.model.problem_files import problem_from_profile, problem_to_json
from jupiter.profiling.plugins import get_profiler
from jupiter.profiling.session import Call, ProfilingError, ProfilingSession, SessionSpec
from jupiter.service.planning import mapper_for, schedule_profile
from jupiter.service.plans import pricing_plan
from jupiter.service.profiles import profile_to_reuse, remember
from jupiter.service.record import Deployment, DeploymentError
from jupiter.service.wave_driver import wave_mapping
from jupiter.store import open_store


def session_spec(spec: DeploymentSpec, side_by_side: bool = False) -> SessionSpec:
    """What a profiling session of this deployment measures (`side_by_side`: what the backend allows)."""
    dag = spec.app.dag
    settings = spec.profiling
    parallel = settings.exec_parallel == "yes" or (settings.exec_parallel == "auto" and side_by_side)
    return SessionSpec(
        agents=list(spec.agents),
        compute=list(spec.compute),
        order=dag.order,
        edges=dag.edges,
        skip=frozenset(task for task in dag.order if not spec.app.scripts.profiled(task)),
        sizes=settings.sizes,
        samples=settings.samples,
        exec_runs=settings.exec_runs,
        links=list(settings.links) if settings.links is not None else None,
        timeout=settings.timeout,
        exec_budget=settings.exec_budget,
        parallel=parallel,
    )


def _caller(deployment: Deployment) -> Call:
    """How the profiling session reaches the agents: the deployment's control client, errors as DeploymentError."""
    control = deployment.control

    def call(node: str, method: str, path: str, body: Any, timeout: float) -> Any:
        try:
            return control.call(node, method, path, body, timeout)
        except Unreachable as exc:
            raise DeploymentError(str(exc)) from None

    return call


def profile_deployment(spec: DeploymentSpec, deployment: Deployment, progress: Progress) -> dict[str, Any]:
    """Run the profilers on a running deployment; returns the profile document (also in profile.json)."""
    call = _caller(deployment)

    store_spec = spec.profiling.store_spec(deployment.home_layout().store)
    with open_store(store_spec) as store:
        # `[CONFIG] PROFILER`: DRUPE's own figures, or a plug-in's (the original's integration interface).
        try:
            profiler = get_profiler(spec.profiling.profiler, store)
        except Exception as exc:  # noqa: BLE001 - user code: any failure is reported, with its type
            raise DeploymentError(f"profiler {spec.profiling.profiler} failed: {type(exc).__name__}: {exc}") from None
        session = ProfilingSession(session_spec(spec, deployment.handle.profiles_side_by_side), call, store)
        try:
            result = session.run(progress, profiler)
        except ProfilingError as exc:
            raise DeploymentError(str(exc)) from None
    deployment.layout.profile.write_text(json.dumps(result.profile, indent=2))
    if spec.profiling.cache:
        remember(spec, result.profile, deployment.id)
    return result.profile


def measured_or_reused(spec: DeploymentSpec, deployment: Deployment, progress: Progress) -> dict[str, Any]:
    """The profile to map from: one measured before when it will do (module docstring), else measured now."""
    reused = profile_to_reuse(spec)
    if reused is None:
        return profile_deployment(spec, deployment, progress)
    deployment.layout.profile.write_text(json.dumps(reused.document, indent=2))
    progress(f"reused {reused.source}; nothing measured (`--reprofile` measures again)")
    if spec.mapping.distributed:
        # Distributed WAVE's agents decide with their own link fits: those are measured again (quickly).
        started = time.time()
        store_spec = spec.profiling.store_spec(deployment.home_layout().store)
        with open_store(store_spec) as store:
            try:
                links = ProfilingSession(session_spec(spec), _caller(deployment), store).network()
            except ProfilingError as exc:
                raise DeploymentError(str(exc)) from None
        progress(f"profiled network for distributed WAVE: {len(links)} links in {time.time() - started:.2f} s")
    return reused.document


def dispatch(deployment: Deployment, plan: Plan) -> Deployment:
    """Give every agent its tasks under `plan` (and keep the plan for agents restarted later)."""
    plan.save(deployment.layout.plan)
    handle = deployment.handle
    try:
        handle.publish_plan(plan)
    except Unreachable as exc:
        raise DeploymentError(str(exc)) from None
    control = deployment.control
    # Nodes with helpers first: their helpers learn where every task runs before any task starts.
    helper_nodes = {helper.node for helper in plan.helpers.values()}
    for node in sorted(deployment.nodes, key=lambda name: name not in helper_nodes):
        try:
            if plan.pricing is not None and plan.pricing.problem is not None:
                model = {"problem": problem_to_json(plan.pricing.problem), "network": plan.pricing.network}
                answer = control.post(node, "/pricing/model", model, 60.0)
                if "error" in answer:
                    raise DeploymentError(f"agent {node} refused the cost model: {answer['error']}")
            answer = control.post(node, "/mapping", {"mapping": dict(plan.mapping)}, 60.0)
        except Unreachable as exc:
            raise DeploymentError(str(exc)) from None
        if "error" in answer:
            raise DeploymentError(f"agent {node} refused the mapping: {answer['error']}")
    record = dataclasses.replace(deployment.record, mapping=dict(plan.mapping))
    record.save()
    return Deployment(record, handle, deployment.progress)


def profile_map_dispatch(
    spec: DeploymentSpec, deployment: Deployment, progress: Progress, map_tasks: bool = True
) -> Deployment:
    """The original's sequence on running agents: profilers -> mapper -> dispatch, each phase timed."""
    profile = measured_or_reused(spec, deployment, progress)
    if not map_tasks:
        return deployment
    started = time.time()
    scheduler = spec.mapping.scheduler
    problem = problem_from_profile(profile, "<profile>")
    mapping: dict[str, str] | None = None
    if spec.mapping.distributed:
        mapping = wave_mapping(spec, deployment, profile, problem)
    elif deployment.handle.maps_in_cluster:  # e.g. kubernetes: the mapper runs as a Job on the cluster
        name, params = mapper_for(spec, problem)
        mapping = deployment.handle.map_in_cluster(problem_to_json(problem), name, params)
    schedule = schedule_profile(spec, profile, mapping)
    mapping = mapping or {task: schedule.node_of(task) for task in spec.app.dag.order}
    how = " by the agents (distributed WAVE)" if spec.mapping.distributed else ""
    progress(
        f"mapped {len(mapping)} tasks with {scheduler}{how} in {time.time() - started:.2f} s "
        f"(predicted makespan {schedule.makespan:.3f} s)"
    )
    predicted = {
        "scheduler": scheduler,
        "makespan": schedule.makespan,
        "mapping": mapping,
        "tasks": {p.task: {"node": p.node, "start": p.start, "finish": p.finish} for p in schedule.placements.values()},
    }
    deployment.layout.predicted.write_text(json.dumps(predicted, indent=2))
    started = time.time()
    plan = Plan.load(deployment.layout.plan)
    plan = dataclasses.replace(plan, mapping=mapping, pricing=pricing_plan(spec, problem) if plan.priced else None)
    deployment = dispatch(deployment, plan)
    progress(f"dispatched {len(mapping)} tasks to {len(set(mapping.values()))} nodes in {time.time() - started:.2f} s")
    return deployment
