"""Commands that run applications: deploy, status, submit, teardown, run, agent."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import click

from jupiter.cli.context import CliContext, pass_context
from jupiter.cli.output import OUTPUT_OPTION, echo_json
from jupiter.report import write_report
from jupiter.runtime.node import main as agent_main
from jupiter.service import deploy as deploying
from jupiter.service import faults
from jupiter.service import run as running
from jupiter.service.dashboard import dashboard_lines
from jupiter.service.record import Deployment, find
from jupiter.service.status import status, status_document
from jupiter.service.summary import RunSummary

MAPPING_OPTION = click.option(
    "--mapping",
    "mapping_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Static mapping file (`task node` lines) instead of the configured mapper.",
)


def _progress(message: str) -> None:
    click.echo(message, err=True)


@click.command("deploy")
@MAPPING_OPTION
@click.option(
    "--timeout",
    type=float,
    default=deploying.READY_TIMEOUT,
    show_default=True,
    help="Seconds to wait for every agent to come up.",
)
@pass_context
def deploy_command(ctx: CliContext, mapping_file: Path | None, timeout: float) -> None:
    """Start one agent per node, map the tasks, and return when all are ready."""
    deployment = deploying.deploy(ctx.spec(mapping_file), timeout=timeout, progress=_progress)
    click.echo(f"deployment {deployment.id} is running ({len(deployment.nodes)} agents)")
    click.echo(f"submit files with `jupiter submit FILE...` or drop them into {deployment.home_layout().input}")
    for line in dashboard_lines(deployment):
        click.echo(line)


@click.command("status")
@click.option("--watch", "-w", is_flag=True, help="Refresh until Ctrl-C: in place on a terminal, else printed again.")
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="Seconds between refreshes."
)
@OUTPUT_OPTION
@pass_context
def status_command(ctx: CliContext, watch: bool, interval: float, output: str) -> None:
    """Show nodes, mapping, per-task counters and throughput of the running deployment."""
    deployment = ctx.deployment()
    if not watch:
        _show_status(deployment, output)
        return
    on_terminal = sys.stdout.isatty()
    try:
        while True:
            if on_terminal and output == "text":
                click.clear()
            _show_status(deployment, output, compact=True)
            if output == "text":
                click.echo(f"-- {time.strftime('%H:%M:%S')}, every {interval:g} s; Ctrl-C stops")
                if not on_terminal:
                    click.echo("")
            time.sleep(interval)
    except KeyboardInterrupt:
        return  # the deployment keeps running: watching it ended, nothing else


def _show_status(deployment: Deployment, output: str, compact: bool = False) -> None:
    """One status report: the table, or (`--output json`) its document (one line each when `compact`)."""
    report = status(deployment)
    if output == "json":
        document = status_document(deployment, report)
        if compact:
            click.echo(json.dumps(document))  # one line per refresh (JSON lines)
        else:
            echo_json(document)
        return
    for line in status_lines(deployment, report):
        click.echo(line)


def status_lines(deployment: Deployment, report: dict[str, Any]) -> list[str]:
    """The status table and its summary lines."""
    lines = [
        f"deployment {deployment.id}  app {deployment.record.app}",
        f"{'node':<12} {'role':<8} {'pid':>7} {'task':<22} {'waiting':>7} {'queued':>6} "
        f"{'running':>7} {'done':>6} {'failed':>6}",
    ]
    for node, agent in report["agents"].items():
        if "error" in agent:
            lines.append(f"{node:<12} unreachable: {agent['error']}")
            continue
        tasks = agent["tasks"] or {"-": None}
        for task, counts in tasks.items():
            numbers = (
                f"{counts['waiting']:>7} {counts['queued']:>6} {counts['running']:>7} {counts['done']:>6} "
                f"{counts['failed']:>6}"
                if counts
                else ""
            )
            lines.append(f"{node:<12} {agent['role']:<8} {agent['pid']:>7} {task:<22} {numbers}")
    home = report["agents"].get(deployment.home, {})
    pricing = home.get("pricing")
    if pricing:
        lines.append(
            f"pricing: {pricing['scheme']} ({pricing['aggregate']}); dead: {', '.join(pricing['dead']) or 'none'}"
        )
        for node, price in pricing["reports"].items():
            lines.append(
                f"  {node:<12} report {price['age']:.2f} s old  slowdown {price['slowdown']:.2f}  "
                f"backlog {price['backlog']:.3f} s  cpu {price['cpu']:.0%}  memory {price['memory']:.0%}"
            )
    frames = home.get("frames")
    if frames:
        window = frames.get("throughput_window", 0.0)
        over = f" over the last {window:.0f} s" if window else ""
        lines.append(
            f"frames: {frames['submitted']} submitted, {frames['done']} done, {frames['failed']} failed, "
            f"{frames['in_flight']} in flight; throughput {frames['throughput']:.2f} frames/s{over}; "
            f"makespan p50 {frames['makespan_p50']:.3f} s, p95 {frames['makespan_p95']:.3f} s"
        )
    return lines


@click.command("submit")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--home", default=None, help="Home node that injects the frames and gets them back (default: home).")
@pass_context
def submit_command(ctx: CliContext, files: tuple[Path, ...], home: str | None) -> None:
    """Send input files to home; each file starts one frame."""
    frames = running.submit(ctx.deployment(), [(path.name, path.read_bytes()) for path in files], home)
    for path, frame in zip(files, frames, strict=True):
        click.echo(f"{frame} {path.name}")


@click.command("speed")
@click.argument("node")
@click.argument("factor", type=click.FloatRange(min=0.0, min_open=True, max=1.0))
@pass_context
def speed_command(ctx: CliContext, node: str, factor: float) -> None:
    """Change NODE's emulated speed FACTOR (0-1] while the deployment runs (testbed emulation)."""
    click.echo(f"{node} now runs at speed {faults.set_speed(ctx.deployment(), node, factor):g}")


@click.command("kill")
@click.argument("node")
@pass_context
def kill_command(ctx: CliContext, node: str) -> None:
    """Kill NODE's agent and keep it down (fault injection, local backend)."""
    pid = faults.kill_node(ctx.deployment(), node)
    click.echo(f"killed the agent of {node} (pid {pid}); it will not be restarted")


@click.command("teardown")
@pass_context
def teardown_command(ctx: CliContext) -> None:
    """Stop every process of the running deployment."""
    deployment = find(ctx.state_dir(), required=False)
    if deployment is None:
        click.echo("nothing to tear down")
        return
    stopped = deploying.teardown(deployment)
    noun = "processes" if deployment.record.backend == "local" else "objects"
    click.echo(f"deployment {deployment.id} stopped ({len(stopped)} {noun}); its files stay in {deployment.root}")


@click.command("run")
@click.option(
    "--inputs",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder of input files (default: the app's sample_input/).",
)
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    default=None,
    help="Number of frames; the inputs are repeated to reach it.",
)
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds to wait for all frames.")
@click.option("--keep", is_flag=True, help="Leave the deployment running afterwards.")
@click.option("--report", "report", is_flag=True, help="Write report.html and charts into <deployment>/report/.")
@click.option("--sequential", is_flag=True, help="Submit each frame when the previous one is done (each runs alone).")
@MAPPING_OPTION
@OUTPUT_OPTION
@pass_context
def run_command(
    ctx: CliContext,
    inputs: Path | None,
    frames: int | None,
    timeout: float,
    keep: bool,
    report: bool,
    sequential: bool,
    mapping_file: Path | None,
    output: str,
) -> None:
    """Deploy, stream every input through the DAG, print a summary (and write summary.json), tear down."""
    spec = ctx.spec(mapping_file)
    total = len(running.collect_inputs(spec, inputs, frames))
    with click.progressbar(length=total, label="frames", file=sys.stderr) as bar:
        shown = 0

        def advance(done: int, _total: int) -> None:
            nonlocal shown
            if done > shown:
                bar.update(done - shown)
                shown = done

        summary = running.run(
            spec,
            inputs=inputs,
            frames=frames,
            timeout=timeout,
            progress=_progress,
            on_frames=advance,
            keep=keep,
            sequential=sequential,
        )
    if output == "json":
        echo_json(summary.document)
        _after_run(summary, report, err=True)
        return
    click.echo(
        f"{summary.done} of {summary.frames} frames done, {summary.failed} failed in {summary.seconds:.2f} s "
        f"({summary.throughput:.2f} frames/s)"
    )
    if not math.isnan(summary.makespan_p50):
        click.echo(f"makespan per frame: p50 {summary.makespan_p50:.3f} s, p95 {summary.makespan_p95:.3f} s")
    work, waiting = summary.figure("work"), summary.figure("waiting")
    if not math.isnan(work):
        click.echo(f"per frame p50: work {work:.3f} s (execution and transfers), waiting {waiting:.3f} s (queues)")
    click.echo(f"{'task':<22} {'node':<20} {'runs':>5} {'mean s':>9}")
    for task, (node, mean, runs) in summary.task_means.items():
        click.echo(f"{task:<22} {node:<20} {runs:>5} {mean:>9.4f}")
    if len(summary.per_home) > 1:
        click.echo("frames back per home: " + ", ".join(f"{home} {count}" for home, count in summary.per_home.items()))
    if summary.restarted:
        click.echo(f"{summary.restarted} frames were started again after a node stopped answering")
    _after_run(summary, report, err=False)


def _after_run(summary: RunSummary, report: bool, err: bool) -> None:
    """Failures, where the files are, the report; exit 1 when a frame failed."""
    for error in summary.errors[:10]:
        click.echo(f"failed: {error}", err=True)
    click.echo(f"outputs in {summary.output_dir}; summary in {summary.output_dir.parent / 'summary.json'}", err=err)
    if report:
        root = summary.output_dir.parent.parent  # output_dir is <deployment>/home/output
        click.echo(f"report written to {write_report(root, root / 'report')}", err=err)
    if summary.failed:
        raise click.exceptions.Exit(1)


@click.command("agent", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def agent_command(args: tuple[str, ...]) -> None:
    """Run the agent of one node (started by the backends): --plan FILE --node NAME --root DIR."""
    agent_main(list(args))
