"""Commands that run applications: deploy, status, submit, teardown, run, agent."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from jupiter.cli.context import DEPLOYMENT_OPTION, CliContext, pass_context
from jupiter.cli.output import OUTPUT_OPTION, echo_json
from jupiter.cli.signals import stopping_like_ctrl_c
from jupiter.model.arrivals import Arrivals
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.report import write_report
from jupiter.runtime.node import main as agent_main
from jupiter.service import deploy as deploying
from jupiter.service import faults
from jupiter.service import run as running
from jupiter.service.dashboard import dashboard_lines
from jupiter.service.deployments import entries
from jupiter.service.record import Deployment, DeploymentError
from jupiter.service.status import status, status_document
from jupiter.service.summary import RunSummary

MAPPING_OPTION = click.option(
    "--mapping",
    "mapping_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Static mapping file (`task node` lines) instead of the configured mapper.",
)


def profile_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--profile FILE` and `--reprofile` of deploy and run: map from a profile measured before, or measure."""
    command = click.option(
        "--reprofile",
        is_flag=True,
        help="Measure even when a cached profile of the same app, nodes and settings would do.",
    )(command)
    return click.option(
        "--profile",
        "profile_file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Map from this profile (`jupiter profile`'s, or a deployment's profile.json) instead of measuring.",
    )(command)


def spec_with_profile(
    ctx: CliContext, mapping_file: Path | None, profile_file: Path | None, reprofile: bool
) -> DeploymentSpec:
    """The spec of deploy/run with their profile options (usage errors for combinations that mean nothing)."""
    if profile_file is not None and reprofile:
        raise click.UsageError("give --profile FILE or --reprofile, not both")
    if profile_file is not None and mapping_file is not None:
        raise click.UsageError("--mapping deploys a fixed mapping and measures nothing; --profile is for mapping")
    return ctx.spec(mapping_file).with_profile(profile_file, reprofile)


def _progress(message: str) -> None:
    click.echo(message, err=True)


class FrameBar:
    """`run`'s progress bar of finished frames, on a terminal only.

    It appears with the first frames' news, once the deployment is up (the
    deploy's progress lines come first, each on its own line); where stderr
    is not a terminal there is no bar at all (a bar there is one lone label).
    """

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._bar: Any = None
        self._shown = 0

    def __enter__(self) -> FrameBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def advance(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if self._bar is None:
            self._bar = self._stack.enter_context(click.progressbar(length=total, label="frames", file=sys.stderr))
        if done > self._shown:
            self._bar.update(done - self._shown)
            self._shown = done


@click.command("deploy")
@MAPPING_OPTION
@profile_options
@click.option(
    "--timeout",
    type=float,
    default=deploying.READY_TIMEOUT,
    show_default=True,
    help="Seconds to wait for every agent to come up.",
)
@pass_context
def deploy_command(
    ctx: CliContext, mapping_file: Path | None, profile_file: Path | None, reprofile: bool, timeout: float
) -> None:
    """Start one agent per node, map the tasks, and return when all are ready."""
    spec = spec_with_profile(ctx, mapping_file, profile_file, reprofile)
    with stopping_like_ctrl_c():  # a deploy stopped while it starts leaves nothing running
        deployment = deploying.deploy(spec, timeout=timeout, progress=_progress)
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
@DEPLOYMENT_OPTION
@pass_context
def status_command(ctx: CliContext, watch: bool, interval: float, output: str, deployment_id: str | None) -> None:
    """Show nodes, mapping, per-task counters and throughput of a running deployment."""
    deployment = ctx.deployment(deployment_id)
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
    for node, agent in report["agents"].items():
        for name, helper in agent.get("helpers", {}).items():
            state = f"running as pid {helper['pid']}" if helper["running"] else "not running"
            exits = f", last exit code {helper['last_exit']}" if helper["last_exit"] is not None else ""
            times = "once" if helper["starts"] == 1 else f"{helper['starts']} times"
            lines.append(f"helper {name} on {node}: {state}, started {times}{exits}")
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


def arrival_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--burst`, `--sequential`, `--rate R [--arrivals poisson|fixed] [--seed N]`, `--interval S` (one at most)."""
    for option in reversed(
        [
            click.option("--burst", is_flag=True, help="Submit every frame at once (the default)."),
            click.option(
                "--sequential", is_flag=True, help="Submit each frame when the previous one is done (each runs alone)."
            ),
            click.option(
                "--rate",
                type=click.FloatRange(min=0.0, min_open=True),
                default=None,
                metavar="R",
                help="Submit a stream of R frames a second (Poisson arrivals; see --arrivals).",
            ),
            click.option(
                "--arrivals",
                "arrival_kind",
                type=click.Choice(["poisson", "fixed"]),
                default="poisson",
                show_default=True,
                help="With --rate: exponential gaps (Poisson) or a fixed interval.",
            ),
            click.option(
                "--interval",
                type=click.FloatRange(min=0.0, min_open=True),
                default=None,
                metavar="S",
                help="Submit one frame every S seconds.",
            ),
            click.option("--seed", type=int, default=0, show_default=True, help="Seed of the Poisson gaps (--rate)."),
        ]
    ):
        command = option(command)
    return command


def arrivals_from(
    burst: bool, sequential: bool, rate: float | None, arrival_kind: str, interval: float | None, seed: int
) -> Arrivals:
    """The arrival pattern the options ask for; a usage error when they ask for two."""
    chosen = [
        name
        for name, given in (
            ("--burst", burst),
            ("--sequential", sequential),
            ("--rate", rate is not None),
            ("--interval", interval is not None),
        )
        if given
    ]
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} are different arrival patterns; give one of them")
    if sequential:
        return Arrivals("sequential")
    if rate is not None:
        return Arrivals.poisson(rate, seed) if arrival_kind == "poisson" else Arrivals.fixed(rate)
    if interval is not None:
        return Arrivals.every(interval)
    return Arrivals()


@click.command("submit")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--home", default=None, help="Home node that injects the frames and gets them back (default: home).")
@click.option("--frame", "one_frame", is_flag=True, help="The FILES together are one frame (a multi-file frame).")
@click.option(
    "--retry-id",
    default=None,
    metavar="ID",
    help="Send an interrupted submit again: frames home already started under this id are not started twice.",
)
@arrival_options
@click.option(
    "--timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="With --sequential: seconds each frame may take; with --rate or --interval: seconds after the last is due.",
)
@DEPLOYMENT_OPTION
@pass_context
def submit_command(
    ctx: CliContext,
    files: tuple[Path, ...],
    home: str | None,
    one_frame: bool,
    retry_id: str | None,
    burst: bool,
    sequential: bool,
    rate: float | None,
    arrival_kind: str,
    interval: float | None,
    seed: int,
    timeout: float,
    deployment_id: str | None,
) -> None:
    """Send input files to home; each file (or group of files, with --frame) starts one frame.

    By default every frame goes at once; --sequential, --rate or --interval
    send them over time (each line is printed as its frame is sent).
    """
    arrivals = arrivals_from(burst, sequential, rate, arrival_kind, interval, seed)
    if arrivals.pattern != "burst" and (retry_id or home):
        raise click.UsageError(
            "--retry-id and --home go with frames sent at once, not with --sequential/--rate/--interval"
        )
    deployment = ctx.deployment(deployment_id)
    frames = running.frames_of(deployment, list(files), one_frame)
    if arrivals.pattern != "burst":
        planned = arrivals.offsets(len(frames))[-1] if arrivals.paced else 0.0
        limit = planned + (timeout * len(frames) if arrivals.pattern == "sequential" else timeout)

        def sent(indices: list[int], ids: list[str]) -> None:
            for index, frame in zip(indices, ids, strict=True):
                click.echo(f"{frame} {','.join(path.name for path in frames[index])}")

        running.stream(deployment, frames, arrivals, limit, on_sent=sent, wait=False)
        return
    submission = running.Submission(frames, id=retry_id) if retry_id else running.Submission(frames)
    ids = running.submit(deployment, submission, home)
    for frame_files, frame in zip(frames, ids, strict=True):
        click.echo(f"{frame} {','.join(path.name for path in frame_files)}")
    if submission.again:
        click.echo(f"{submission.again} of them had started already (same --retry-id); none started twice", err=True)


@click.command("speed")
@click.argument("node")
@click.argument("factor", type=click.FloatRange(min=0.0, min_open=True, max=1.0))
@DEPLOYMENT_OPTION
@pass_context
def speed_command(ctx: CliContext, node: str, factor: float, deployment_id: str | None) -> None:
    """Change NODE's emulated speed FACTOR (0-1] while the deployment runs (testbed emulation)."""
    click.echo(f"{node} now runs at speed {faults.set_speed(ctx.deployment(deployment_id), node, factor):g}")


@click.command("kill")
@click.argument("node")
@DEPLOYMENT_OPTION
@pass_context
def kill_command(ctx: CliContext, node: str, deployment_id: str | None) -> None:
    """Kill NODE's agent and keep it down (fault injection, local backend)."""
    pid = faults.kill_node(ctx.deployment(deployment_id), node)
    click.echo(f"killed the agent of {node} (pid {pid}); it will not be restarted")


@click.command("teardown")
@DEPLOYMENT_OPTION
@click.option("--all", "every", is_flag=True, help="Tear down every deployment of this folder that was not yet.")
@pass_context
def teardown_command(ctx: CliContext, deployment_id: str | None, every: bool) -> None:
    """Stop everything a deployment started (default: the only or latest running one)."""
    if every and deployment_id is not None:
        raise click.UsageError("give --deployment ID or --all, not both")
    if every:
        targets = [entry.attach() for entry in entries(ctx.state_dir()) if entry.state.active and entry.record]
    else:
        try:
            targets = [ctx.deployment(deployment_id, running=False)]
        except DeploymentError:
            if deployment_id is not None:
                raise
            targets = []
    if not targets:
        click.echo("nothing to tear down")
        return
    for deployment in targets:
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
@arrival_options
@MAPPING_OPTION
@profile_options
@OUTPUT_OPTION
@pass_context
def run_command(
    ctx: CliContext,
    inputs: Path | None,
    frames: int | None,
    timeout: float,
    keep: bool,
    report: bool,
    burst: bool,
    sequential: bool,
    rate: float | None,
    arrival_kind: str,
    interval: float | None,
    seed: int,
    mapping_file: Path | None,
    profile_file: Path | None,
    reprofile: bool,
    output: str,
) -> None:
    """Deploy, stream every input through the DAG, print a summary (and write summary.json), tear down.

    Frames go at once by default; --sequential, --rate R (Poisson, or
    --arrivals fixed) or --interval S stream them in (docs/streams.md).
    """
    arrivals = arrivals_from(burst, sequential, rate, arrival_kind, interval, seed)
    spec = spec_with_profile(ctx, mapping_file, profile_file, reprofile)
    with FrameBar() as bar, stopping_like_ctrl_c():  # SIGTERM and SIGHUP tear the deployment down, as Ctrl-C does
        summary = running.run(
            spec,
            inputs=inputs,
            frames=frames,
            timeout=timeout,
            progress=_progress,
            on_frames=bar.advance,
            keep=keep,
            arrivals=arrivals,
        )
    if output == "json":
        echo_json(summary.document)
        _after_run(summary, report, err=True)
        return
    click.echo(
        f"{summary.done} of {summary.frames} frames done, {summary.failed} failed in {summary.seconds:.2f} s "
        f"({summary.throughput:.2f} frames/s)"
    )
    for line in stream_lines(summary, arrivals):
        click.echo(line)
    click.echo(f"{'task':<22} {'node':<20} {'runs':>5} {'mean s':>9}")
    for task, (node, mean, runs) in summary.task_means.items():
        click.echo(f"{task:<22} {node:<20} {runs:>5} {mean:>9.4f}")
    if len(summary.per_home) > 1:
        click.echo("frames back per home: " + ", ".join(f"{home} {count}" for home, count in summary.per_home.items()))
    if summary.restarted:
        click.echo(f"{summary.restarted} frames were started again after a node stopped answering")
    _after_run(summary, report, err=False)


def stream_lines(summary: RunSummary, arrivals: Arrivals) -> list[str]:
    """How the frames came and the rate kept; latency percentiles, split into work and waiting."""
    sustained = summary.document.get("sustained", {})
    offered = summary.document.get("arrivals", {}).get("offered")
    line = f"arrivals: {arrivals.describe()}"
    if offered is not None:
        line += f"; offered {offered:.2f} frames/s"
    if sustained.get("rate") is not None:
        line += f"; sustained {sustained['rate']:.2f} frames/s"
    if sustained.get("kept_up") is not None:
        line += ", kept up" if sustained["kept_up"] else ", fell behind (frames queued: the mapping sustains less)"
    lines = [line]
    if math.isnan(summary.figure("latency")):
        return lines
    lines.append(f"{'latency per frame':<20} {'p50':>9} {'p95':>9} {'p99':>9}")
    for section, label in (("latency", "total"), ("work", "work"), ("waiting", "waiting")):
        figures = " ".join(f"{summary.figure(section, key):>8.3f}s" for key in ("p50", "p95", "p99"))
        what = {"work": "  (execution and transfers)", "waiting": "  (queues)"}.get(section, "")
        lines.append(f"  {label:<18} {figures}{what}")
    return lines


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
