"""Entry point of an agent process: `python -m jupiter.runtime.node` (or `jupiter agent`).

Chooses the home or the plain agent for the node, starts its data and control
planes, and runs until SIGTERM or SIGINT, then stops cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from jupiter.runtime.agent import Agent, log
from jupiter.runtime.control import start_control_plane
from jupiter.runtime.home import HomeAgent
from jupiter.runtime.plan import Plan


async def serve(agent: Agent) -> None:
    """Run an agent until SIGTERM or SIGINT."""
    await agent.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stopping.set)
    control = start_control_plane(agent, loop)
    log.info(
        "agent %s ready: data port %d, control port %d",
        agent.node,
        agent.address.data_port,
        agent.address.control_port,
    )
    await agent.stopping.wait()
    control.shutdown()
    await agent.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point of `jupiter agent` (also `python -m jupiter.runtime.agent`)."""
    parser = argparse.ArgumentParser(prog="jupiter agent", description="Run the agent of one node.")
    parser.add_argument("--plan", type=Path, required=True, help="deployment plan (plan.json)")
    parser.add_argument("--node", required=True, help="name of this node in nodes.txt")
    parser.add_argument("--root", type=Path, required=True, help="deployment folder")
    parser.add_argument(
        "--spool", type=Path, default=None, help="folder for the files in transit (default: the deployment folder)"
    )
    args = parser.parse_args(argv)
    # The control plane runs in threads; a short switch interval keeps a busy
    # request handler from holding the event loop off the GIL for 5 ms.
    sys.setswitchinterval(0.0005)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.node} %(levelname)s %(message)s")
    token = os.environ.get("JUPITER_TOKEN") or (args.root / "token").read_text().strip()
    plan = Plan.load(args.plan)
    if args.node not in plan.nodes:
        parser.error(f"node {args.node!r} is not in the plan")
    agent: Agent
    if args.node in plan.all_homes:
        agent = HomeAgent(plan, args.node, token, args.root, args.spool)
    else:
        agent = Agent(plan, args.node, token, args.root, args.spool)
    asyncio.run(serve(agent))


if __name__ == "__main__":
    main()
