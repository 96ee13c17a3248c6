"""Building the plan every agent of a deployment reads, from the resolved spec.

The plan (`jupiter.model.plan`) carries the DAG as the runtime needs it, the
mapping, every agent's address, and one typed section per concern: pricing
(with the cost model controllers price with: default costs at start, the
measured problem after profiling), another transfer method's settings, the
profilers' settings, home's store and the emulated testbed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jupiter.mapping import Problem
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import HelperSpec, NodeAddress, Plan, PlanPricing, PlanTransfer, TaskSpec
from jupiter.service.planning import default_problem


def pricing_plan(spec: DeploymentSpec, problem: Problem | None = None) -> PlanPricing | None:
    """Pricing CIRCE's section (None without pricing); without a measured problem, default costs and no links."""
    if spec.pricing is None:
        return None
    return PlanPricing(
        scheme=spec.pricing.scheme,
        aggregate=spec.pricing.aggregate,
        settings=spec.pricing.settings,
        problem=problem if problem is not None else default_problem(spec),
        network=problem is not None,
    )


def build_plan(
    spec: DeploymentSpec,
    deployment_id: str,
    mapping: Mapping[str, str],
    addresses: Mapping[str, NodeAddress],
    layout: DeploymentLayout | None = None,
    reprofile: bool = False,
    app_env: Path | None = None,
) -> Plan:
    """The plan of a deployment (`layout`: where home's SQLite store goes; None = no store).

    Each task's worker mode (`auto` already resolved, `App.workers`) and
    limits: scripts/config.json's per-task value, else its app-wide one, else
    `[RUNTIME]`'s. Helpers run on the first home
    node: they are not part of the mapping problem (no execution profile, they
    never finish), and home is known, and running, before any task starts,
    whatever the mapping. `app_env`: the app's installed requirements (local backend).
    """
    app = spec.app
    dag = app.dag
    settings = app.scripts.settings
    tasks = {
        task.name: TaskSpec(
            name=task.name,
            num_inputs=task.num_inputs,
            flag=task.flag,
            children=task.children,
            parents=dag.parents(task.name),
            script=str(app.script_path(task.name).resolve()),
            worker=app.workers.get(task.name, "resident"),
            timeout=settings.timeout_of(task.name, spec.runtime.task_timeout),
            memory=settings.memory_of(task.name, spec.runtime.task_memory),
        )
        for task in dag
    }
    helpers = {
        helper.name: HelperSpec(
            name=helper.name,
            script=helper.script.resolve().relative_to(app.path.resolve()).as_posix(),
            args=helper.args,
            node=spec.homes[0],
        )
        for helper in app.helpers.values()
    }
    transfer = None
    if spec.transfer.method != "http":
        keys = spec.transfer
        # Another transfer method copies each file into the receiver's staging folder first
        # (jupiter.runtime.staging); folders are relative to the deployment folder, which every
        # backend gives its agents at the same path.
        transfer = PlanTransfer(
            user=keys.user,
            port=keys.port,
            key_file=str(keys.key_file) if keys.key_file else None,
            known_hosts=str(keys.known_hosts) if keys.known_hosts else None,
            staging={node: f"nodes/{node}/staging" for node in addresses},
        )
    homes = spec.homes
    store = None
    if layout is not None:
        store = spec.profiling.store_spec(layout.home(homes[0], homes[0]).store)
    return Plan(
        deployment=deployment_id,
        app_name=app.name,
        app_path=str(app.path.resolve()),
        tasks=tasks,
        order=dag.order,
        mapping=dict(mapping),
        nodes=dict(addresses),
        ingress=spec.ingress,
        home=homes[0],
        queue_size=spec.runtime.queue_size,
        retries=spec.runtime.retries,
        receiver_stats=spec.runtime.receiver_stats,
        transfer=spec.transfer.method,
        transfer_settings=transfer,
        pricing=pricing_plan(spec),
        homes=homes,
        profiling=spec.profiling.plan(reprofile),
        store=store,
        testbed=spec.testbed,
        limits=spec.limits,
        control=spec.runtime.control,
        helpers=helpers,
        app_env=str(app_env) if app_env is not None else "",
        umask=spec.umask,
        io_names=app.io_names,
    )
