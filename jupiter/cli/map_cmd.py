"""`jupiter map`: compute a mapping from a profile or problem file and show the prediction."""

from __future__ import annotations

import json
from pathlib import Path

import click

from jupiter.cli.context import CliContext, pass_context
from jupiter.cli.output import OUTPUT_OPTION, echo_json
from jupiter.mapping import Problem, Schedule, check, get_mapper, mapper_names
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.errors import InputError
from jupiter.model.outputs import map_document, node_load
from jupiter.model.problem_files import load_problem, load_profile, problem_from_profile
from jupiter.model.workspace import Workspace
from jupiter.service.profiles import cache_path, cached


def report_lines(problem: Problem, schedule: Schedule, scheduler: str) -> list[str]:
    """The text `jupiter map` prints: mapping table, makespan, per-node load table."""
    tw = max([4, *(len(t) for t in problem.tasks)])
    nw = max([4, *(len(n) for n in problem.nodes)])
    lines = [f"{'task':<{tw}}  {'node':<{nw}}  {'start':>10}  {'finish':>10}"]
    for task in problem.tasks:
        p = schedule.placements[task]
        lines.append(f"{task:<{tw}}  {p.node:<{nw}}  {p.start:>10.3f}  {p.finish:>10.3f}")
    lines.append("")
    lines.append(f"scheduler {scheduler}: predicted makespan {schedule.makespan:.3f} s")
    lines.append("")
    lines.append(f"{'node':<{nw}}  {'tasks':>5}  {'busy (s)':>10}  {'util':>6}")
    for node, count, busy, util in node_load(problem, schedule):
        lines.append(f"{node:<{nw}}  {count:>5}  {busy:>10.3f}  {util:>6.1%}")
    return lines


def write_outputs(out: Path, problem: Problem, schedule: Schedule, scheduler: str) -> None:
    """`mapping.txt` (the original's `task node` lines) and `mapping.json` (what `--output json` prints)."""
    out.mkdir(parents=True, exist_ok=True)
    doc = map_document(problem, schedule, scheduler)
    (out / "mapping.txt").write_text("".join(f"{t} {n}\n" for t, n in doc["mapping"].items()), encoding="utf-8")
    (out / "mapping.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def check_against_app(problem: Problem, workspace: Workspace, source: Path) -> None:
    """A profile or problem must be of the app named on the command line: the same tasks and edges."""
    dag = workspace.app.dag
    tasks, measured = set(dag.order), set(problem.tasks)
    fix = f"profile it again with `jupiter profile {workspace.app.name}`, or name the app it is of"
    if tasks != measured:
        missing = sorted(tasks - measured)
        extra = sorted(measured - tasks)
        what = "; ".join(
            part
            for part in (
                f"no figures for {', '.join(missing)}" if missing else "",
                f"tasks {', '.join(extra)} are not in it" if extra else "",
            )
            if part
        )
        raise InputError(source, None, f"is not a profile of {workspace.app.name} ({what}); {fix}")
    edges = {(parent, child) for parent, child in dag.edges}
    if edges != {(edge.parent, edge.child) for edge in problem.edges}:
        raise InputError(source, None, f"has other DAG edges than {workspace.app.name}'s configuration.txt; {fix}")


@click.command("map")
@click.option("--profile", "profile_path", type=click.Path(path_type=Path, dir_okay=False), help="Profile file (JSON).")
@click.option("--problem", "problem_path", type=click.Path(path_type=Path, dir_okay=False), help="Problem file (JSON).")
@click.option(
    "--scheduler",
    default="best",
    show_default=True,
    type=click.Choice([n for n in mapper_names() if n != "static"]),
    help="Mapping algorithm.",
)
@click.option("--max-tasks-per-node", type=click.IntRange(min=1), default=None, help="Cap on tasks per node.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write mapping.txt and mapping.json here.",
)
@click.option(
    "--gantt", "gantt_path", type=click.Path(path_type=Path, dir_okay=False), help="Draw the schedule to this PNG."
)
@pass_context
@OUTPUT_OPTION
def map_command(
    ctx: CliContext,
    profile_path: Path | None,
    problem_path: Path | None,
    scheduler: str,
    max_tasks_per_node: int | None,
    out_dir: Path | None,
    gantt_path: Path | None,
    output: str,
) -> None:
    """Map the DAG onto the nodes and print the predicted schedule and load.

    With an APP, the working folder is checked as `jupiter validate` checks
    it, and the profile must be of that app; without a profile file, the
    app's cached profile (the one its last deployment measured) is mapped.
    """
    if profile_path is not None and problem_path is not None:
        raise click.UsageError("give exactly one of --profile FILE or --problem FILE")
    # An app named on the command line gets validate's checks first: a broken app is not worth a mapping.
    workspace = ctx.workspace() if ctx.app_path is not None else None
    source = profile_path or problem_path
    if source is None:
        if workspace is None:
            raise click.UsageError(
                "give exactly one of --profile FILE or --problem FILE (or an APP whose profile is cached)"
            )
        spec = resolve_spec(workspace)
        reused = cached(spec)
        if reused is None:
            name = workspace.app.name
            raise click.UsageError(
                f"no profile of {name} is cached here yet; measure one with `jupiter profile {name}`, "
                "or give --profile FILE or --problem FILE"
            )
        click.echo(f"mapping {reused.source}", err=True)
        source = cache_path(spec)
        problem = problem_from_profile(reused.document, source)
    else:
        problem = load_profile(source) if profile_path is not None else load_problem(source)
    if workspace is not None:
        check_against_app(problem, workspace, source)
    if max_tasks_per_node is not None:
        limits = {
            n: min(max_tasks_per_node, problem.max_tasks_per_node.get(n, max_tasks_per_node)) for n in problem.nodes
        }
        problem = problem.with_limits(limits)
    try:
        schedule = get_mapper(scheduler).schedule(problem)
    except ValueError as exc:
        raise InputError(source, None, f"{scheduler} cannot map this problem: {exc}") from None
    check(problem, schedule)  # a failure here is a bug in a mapper, not a user error
    # With --output json, stdout holds the document alone; what was written is said on stderr.
    said = output == "json"
    if said:
        echo_json(map_document(problem, schedule, scheduler))
    else:
        for line in report_lines(problem, schedule, scheduler):
            click.echo(line)
    if out_dir is not None:
        write_outputs(out_dir, problem, schedule, scheduler)
        click.echo(f"wrote {out_dir / 'mapping.txt'} and {out_dir / 'mapping.json'}", err=said)
    if gantt_path is not None:
        from jupiter.report.gantt import draw_gantt  # noqa: PLC0415 - matplotlib only when asked

        draw_gantt(problem, schedule, gantt_path)
        click.echo(f"wrote {gantt_path}", err=said)
