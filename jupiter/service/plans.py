"""Building the plan every agent of a deployment reads, from the resolved spec.

The plan (`jupiter.model.plan`) carries the DAG as the runtime needs it, the
mapping, every agent's address, and one typed section per concern: pricing
(with the cost model controllers price with: default costs at start, the
measured problem after profiling), another transfer method's settings, the
profilers' settings, home's store and the emulated testbed.
"""

from __future__ import annotations

from collections.abc import Mapping

from jupiter.mapping import Problem
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import NodeAddress, Plan, PlanPricing, PlanTransfer, TaskSpec
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
) -> Plan:
    """The plan of a deployment (`layout`: where home's SQLite store goes; None = no store)."""
    app = spec.app
    dag = app.dag
    tasks = {
        task.name: TaskSpec(
            name=task.name,
            num_inputs=task.num_inputs,
            flag=task.flag,
            children=task.children,
            parents=dag.parents(task.name),
            script=str(app.script_path(task.name).resolve()),
        )
        for task in dag
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
        io_names=app.io_names,
    )
