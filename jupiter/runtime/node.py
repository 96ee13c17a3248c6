"""Entry point of an agent process: `python -m jupiter.runtime.node` (or `jupiter agent`).

This is the composition root: it builds the agent of one node with the
extensions its role and its deployment need, and wires those that
cooperate — home's dashboard sees every event home records and its frame
counters, home's frame tracker restarts the frames pricing finds stranded
on a dead node, distributed WAVE decides with the link fits the profilers
measured — then starts the data and control planes and runs until
SIGTERM or SIGINT, and stops cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import sys
from pathlib import Path

from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import Plan
from jupiter.runtime import logs
from jupiter.runtime.agent import Agent, log
from jupiter.runtime.control import start_control_plane
from jupiter.runtime.event_sink import RecordingSink
from jupiter.runtime.extensions.dashboard import Dashboard
from jupiter.runtime.extensions.distributed_wave import DistributedWave
from jupiter.runtime.extensions.home import Home
from jupiter.runtime.extensions.pricing import Pricing
from jupiter.runtime.extensions.probing import Probing


def build_agent(plan: Plan, node: str, token: str, root: Path, spool: Path | None = None) -> Agent:
    """The agent of `node` with its extensions, wired together (module docstring)."""
    agent = Agent(plan, node, token, DeploymentLayout(root, spool))
    home: Home | None = None
    if node in plan.all_homes:
        home = Home(agent)
        agent.extend(home)
        agent.use_sink(RecordingSink(home.record))
        dashboard = Dashboard(agent, counts=home.tracker.counts)
        agent.extend(dashboard)
        home.observers.append(dashboard.observe)
    if plan.priced:
        pricing = Pricing(agent, on_dead=home.restart_frames if home is not None else None)
        agent.extend(pricing)
        agent.use_router(pricing)
    probing = Probing(agent)
    agent.extend(probing)
    agent.extend(DistributedWave(agent, fits=lambda: probing.fits))
    return agent


def listening_on(plan: Plan, node: str, host: str) -> Plan:
    """The plan as `node`'s agent uses it when told to listen on `host` (`--bind`).

    One plan serves every pod of a cluster deployment (a plan per node would
    grow with nodes x tasks): each agent listens where it is told, and its
    peers reach it at the plan's address.
    """
    own = dataclasses.replace(plan.nodes[node], host=host)
    return dataclasses.replace(plan, nodes={**plan.nodes, node: own})


async def serve(agent: Agent) -> None:
    """Run an agent until SIGTERM or SIGINT."""
    await agent.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stopping.set)
    address = agent.address
    control = start_control_plane(
        agent.node, agent.token, agent.routes, address.host, address.control_port, agent.plan.control
    )
    log.info("agent %s ready: data port %d, control port %d", agent.node, address.data_port, address.control_port)
    await agent.stopping.wait()
    # In a thread: requests still running may be waiting for this event loop.
    await asyncio.to_thread(control.shutdown)
    await agent.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point of `jupiter agent` (also `python -m jupiter.runtime.node`)."""
    parser = argparse.ArgumentParser(prog="jupiter agent", description="Run the agent of one node.")
    parser.add_argument("--plan", type=Path, required=True, help="deployment plan (plan.json)")
    parser.add_argument("--node", required=True, help="name of this node in nodes.txt")
    parser.add_argument("--root", type=Path, required=True, help="deployment folder")
    parser.add_argument(
        "--spool", type=Path, default=None, help="folder for the files in transit (default: the deployment folder)"
    )
    parser.add_argument(
        "--bind",
        default=None,
        help="address to listen on instead of the plan's (a pod listens on 0.0.0.0; its peers use its DNS name)",
    )
    args = parser.parse_args(argv)
    # The control plane runs in threads; a short switch interval keeps a busy
    # request handler from holding the event loop off the GIL for 5 ms.
    sys.setswitchinterval(0.0005)
    logs.configure(args.node)
    token = os.environ.get("JUPITER_TOKEN") or (args.root / "token").read_text().strip()
    plan = Plan.load(args.plan)
    if args.node not in plan.nodes:
        parser.error(f"node {args.node!r} is not in the plan")
    # Everything this agent, its workers and helpers write is private unless [DEPLOY] UMASK says otherwise.
    os.umask(plan.umask)
    if args.bind:
        plan = listening_on(plan, args.node, args.bind)
    asyncio.run(serve(build_agent(plan, args.node, token, args.root, args.spool)))


if __name__ == "__main__":
    main()
