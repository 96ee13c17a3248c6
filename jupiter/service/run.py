"""Using a running deployment: submitting frames, waiting for them, flushing statistics; and `jupiter run`.

Every call goes through the deployment's one control client, whatever the
backend. `run` is the whole job: deploy, show where the live dashboard is,
submit every input (split among the homes under pricing) by an arrival
pattern (all at once, one at a time, or a Poisson or fixed-rate stream:
`stream`, `jupiter.service.pacing`), wait for every frame without polling (home's long poll),
flush every agent's statistics, fetch home's files where this machine
cannot read them, summarise into `summary.json`, tear down.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupiter.backends.base import Progress
from jupiter.backends.control import Unreachable
from jupiter.model.app import outside_app
from jupiter.model.arrivals import Arrivals
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.errors import InputError
from jupiter.model.inputs import files_per_frame, group_frames
from jupiter.model.plan import Plan
from jupiter.service.dashboard import dashboard_lines
from jupiter.service.deploy import READY_TIMEOUT, deploy, private_files, teardown
from jupiter.service.pacing import one_by_one, pace
from jupiter.service.record import Deployment, DeploymentError
from jupiter.service.summary import RunSummary, summarize, write_summary

UPLOAD_BATCH = 64
"""Frames per upload to home."""
UPLOAD_BYTES = 64 * 1024**2
"""Bytes per upload to home (a bigger frame goes alone)."""
UPLOAD_TIMEOUT = 300.0
SUBMIT_ATTEMPTS = 6
"""Tries of one part of an upload while home does not answer (it restarts within seconds)."""
SUBMIT_BACKOFF = 0.5
FLUSH_TIMEOUT = 30.0
PROGRESS_SECONDS = 0.5
"""How often a waiting `run` or `submit` looks at the frames' progress."""
BURST = Arrivals()
"""Every frame at once."""


def collect_inputs(spec: DeploymentSpec, inputs: Path | None, frames: int | None) -> list[list[Path]]:
    """The frames to submit (each its input files): sample_input/ (or a folder), repeated to `frames` frames.

    Files are read only when they are sent, so a thousand frames of a big
    sample cost nothing until then.
    """
    if inputs is not None:
        if not inputs.is_dir():
            raise InputError(inputs, None, "inputs folder not found")
        paths = sorted(p for p in inputs.iterdir() if p.is_file() and not p.name.startswith("."))
        if not paths:
            raise InputError(inputs, None, "inputs folder is empty; put one file per frame in it")
    else:
        paths = list(spec.app.sample_inputs)
        for path in paths:
            # Checked when the app was loaded; again here, where the files are read to be sent.
            target = outside_app(spec.app.path, path)
            if target is not None:
                raise InputError(
                    path,
                    None,
                    f"is a symbolic link to {target}, outside the app folder; copy the file into sample_input/",
                )
    try:
        groups = group_frames(paths, files_per_frame(spec.app.dag, spec.ingress))
    except ValueError as exc:
        raise InputError(inputs or spec.app.path / "sample_input", None, str(exc)) from None
    count = frames if frames is not None else len(groups)
    return [groups[i % len(groups)] for i in range(count)]


def frames_of(deployment: Deployment, files: Sequence[Path], one_frame: bool = False) -> list[list[Path]]:
    """The frames `jupiter submit FILE...` starts: each file, or (`one_frame`) all of them together.

    When the app's entry tasks wait for several files per frame, files are
    grouped by name (`jupiter.model.inputs`), as home groups files dropped into
    its input folder.
    """
    if one_frame:
        return [list(files)]
    plan = Plan.load(deployment.layout.plan)
    per_frame = max((plan.tasks[task].num_inputs for task in plan.ingress if task in plan.tasks), default=1)
    try:
        return group_frames(list(files), per_frame)
    except ValueError as exc:
        raise InputError(None, None, str(exc)) from None


def _check_home(deployment: Deployment, home: str | None) -> str:
    home = home or deployment.home
    if home not in deployment.homes:
        raise InputError(
            None, None, f"{home} is not a home node of this deployment; use one of: {', '.join(deployment.homes)}"
        )
    return home


Content = Path | tuple[str, bytes]
"""One input file of a frame: a file on disk (read as it is sent), or a name and bytes."""


def _name(content: Content) -> str:
    return content.name if isinstance(content, Path) else content[0]


def _size(content: Content) -> int:
    return content.stat().st_size if isinstance(content, Path) else len(content[1])


@dataclass
class Submission:
    """One `submit`: the frames to start, the id that makes retrying it safe, and what home answered so far."""

    frames: Sequence[Sequence[Content]]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    """Frame i is sent with the client id `<id>-<i>`: home starts each id once, however often it is sent."""
    started: list[str] = field(default_factory=list)
    """Frame ids home gave, in order (for the frames confirmed so far)."""
    again: int = 0
    """Frames home had started already (a retry of the same submission)."""


def submit_data(deployment: Deployment, files: Sequence[tuple[str, bytes]], home: str | None = None) -> list[str]:
    """Send input files held in memory (name, bytes), one frame each; returns the frame ids."""
    return submit(deployment, [[item] for item in files], home)


def submit(
    deployment: Deployment,
    frames: Sequence[Sequence[Content]] | Submission,
    home: str | None = None,
    attempts: int = SUBMIT_ATTEMPTS,
) -> list[str]:
    """Send frames (their input files) to a home node (default: the first); returns the frame ids home gave.

    Uploads go in parts of at most UPLOAD_BATCH frames and UPLOAD_BYTES,
    each file read from disk as it is sent. A part that fails (home
    restarting, a lost connection) is sent again with the same client ids,
    so no frame starts twice; when it still fails, the error says which
    frames started and how to send the rest again (`jupiter submit
    --retry-id`).
    """
    home = _check_home(deployment, home)
    submission = frames if isinstance(frames, Submission) else Submission(frames)
    start = len(submission.started)
    while start < len(submission.frames):
        end, size = start, 0
        while end < len(submission.frames) and end - start < UPLOAD_BATCH and (end == start or size < UPLOAD_BYTES):
            size += sum(_size(content) for content in submission.frames[end])
            end += 1
        part = submission.frames[start:end]
        manifest = [{"id": f"{submission.id}-{start + index}", "files": len(files)} for index, files in enumerate(part)]
        files = [
            (_name(content), content if isinstance(content, Path) else content[1])
            for frame in part
            for content in frame
        ]
        answer = _upload(deployment, home, files, manifest, submission, attempts)
        submission.started += [item["frame"] for item in answer["frames"]]
        submission.again += sum(1 for item in answer["frames"] if item.get("started") is False)
        start = end
    return list(submission.started)


def _upload(
    deployment: Deployment,
    home: str,
    files: list[tuple[str, Path | bytes]],
    manifest: list[dict[str, Any]],
    submission: Submission,
    attempts: int,
) -> dict[str, Any]:
    """One part of a submission, sent again (same ids) while home does not answer."""
    problem = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(min(SUBMIT_BACKOFF * 2 ** (attempt - 1), 5.0))
        try:
            answer = deployment.control.upload(
                home, "/submit", files, {"manifest": json.dumps(manifest)}, UPLOAD_TIMEOUT
            )
        except Unreachable as exc:
            problem = str(exc)
            continue
        if isinstance(answer, dict) and isinstance(answer.get("frames"), list):
            return answer
        why = answer.get("error", answer) if isinstance(answer, dict) else answer
        if not str(why).startswith("home is full"):
            raise DeploymentError(f"home {home} refused the files: {str(why)[:200]}")
        problem = str(why)
    done = len(submission.started)
    if done:
        shown = ", ".join(submission.started[:3]) + (", ..." if done > 3 else "")
        started = f"{done} of {len(submission.frames)} frames started ({shown})"
    else:
        started = f"none of {len(submission.frames)} frames was confirmed"
    raise DeploymentError(
        f"home {home} did not take the files ({problem}); {started}; send the rest again with the same "
        f"command and `--retry-id {submission.id}` (frames home already started are not started twice)"
    )


def wait_frames(deployment: Deployment, count: int, timeout: float, home: str | None = None) -> dict[str, Any]:
    """Wait (at a home, without polling) until `count` of its frames finished, or `timeout` seconds."""
    node = _check_home(deployment, home)
    path = f"/frames/wait?count={count}&timeout={timeout:.3f}"
    try:
        # The long poll is given more time than it waits (through an API server, a round trip more).
        counts = deployment.control.get(node, path, timeout + 10)
    except Unreachable as exc:
        raise DeploymentError(str(exc)) from None
    if not isinstance(counts, dict) or "error" in counts:
        why = counts.get("error") if isinstance(counts, dict) else counts
        raise DeploymentError(f"home {node} did not count its frames: {why}")
    return counts


def home_frames(deployment: Deployment) -> dict[str, Any]:
    """Home's frame counters."""
    try:
        answer = deployment.control.get(deployment.home, "/status", 10.0)
    except Unreachable as exc:
        raise DeploymentError(str(exc)) from None
    frames: dict[str, Any] = answer["frames"]
    return frames


def flush_events(deployment: Deployment) -> list[str]:
    """Make every agent send its pending statistics to home, then the homes write them out.

    Returns the compute nodes that did not answer (e.g. killed with pricing,
    whose frames went elsewhere); a home that does not answer is an error.
    """
    homes = deployment.homes
    silent: list[str] = []
    for node in [*(n for n in deployment.nodes if n not in homes), *homes]:
        try:
            answer = deployment.control.post(node, "/flush", {}, FLUSH_TIMEOUT)
            problem = f"agent {node} refused /flush: {answer['error']}" if "error" in answer else ""
        except Unreachable as exc:
            problem = str(exc)
        if problem and node in homes:
            raise DeploymentError(f"home {node} did not flush its statistics: {problem}")
        if problem:
            silent.append(node)
    return silent


def run(
    spec: DeploymentSpec,
    inputs: Path | None = None,
    frames: int | None = None,
    timeout: float = 600.0,
    progress: Progress = lambda _: None,
    on_frames: Callable[[int, int], None] = lambda done, total: None,
    keep: bool = False,
    ready_timeout: float = READY_TIMEOUT,
    arrivals: Arrivals = BURST,
) -> RunSummary:
    """Deploy, submit every input by the arrival pattern, wait for all frames, summarise (and write summary.json),
    tear down (every file private, `[DEPLOY] UMASK`).

    `arrivals` (`jupiter.model.arrivals`): every frame at once (the
    default); `sequential`, each frame only when the previous one is done
    (as the original's demo did, so every frame runs alone and its makespan
    is what a single-frame prediction speaks of); or a Poisson or fixed-rate
    stream.
    """
    files = collect_inputs(spec, inputs, frames)
    with private_files(spec.umask):
        return _run(spec, files, timeout, progress, on_frames, keep, ready_timeout, arrivals)


def _run(
    spec: DeploymentSpec,
    files: list[list[Path]],
    timeout: float,
    progress: Progress,
    on_frames: Callable[[int, int], None],
    keep: bool,
    ready_timeout: float,
    arrivals: Arrivals,
) -> RunSummary:
    # Periodic re-profiling would compete with the frames being measured: never during `run`.
    deployment = deploy(spec, timeout=ready_timeout, progress=progress, reprofile=False)
    try:
        for line in dashboard_lines(deployment):
            progress(line)
        if arrivals.pattern != "burst":
            progress(f"submitting {len(files)} frames: {arrivals.describe()}")
        started = time.time()
        stream(deployment, files, arrivals, timeout, on_frames, progress=progress)
        flush_events(deployment)
        try:
            deployment.handle.fetch_home_files()
        except Unreachable as exc:
            raise DeploymentError(str(exc)) from None
        summary = summarize(deployment, started, arrivals)
        write_summary(deployment, summary)
    finally:
        if not keep:
            teardown(deployment)
    return summary


def _late(deployment: Deployment, missing: int, total: int, timeout: float) -> DeploymentError:
    return DeploymentError(
        f"{missing} of {total} frames did not finish within {timeout:.0f} s; see the logs in {deployment.layout.logs}"
    )


def stream(
    deployment: Deployment,
    frames: Sequence[Sequence[Content]],
    arrivals: Arrivals,
    timeout: float,
    on_frames: Callable[[int, int], None] = lambda done, total: None,
    on_sent: Callable[[list[int], list[str]], None] = lambda indices, ids: None,
    wait: bool = True,
    progress: Progress = lambda _: None,
) -> list[str]:
    """Submit frames by an arrival pattern (`jupiter.service.pacing`), the homes taking turns; returns their ids.

    With `wait`, returns once every frame finished (frames finished at the
    homes since the call began are counted); DeploymentError when that
    takes longer than `timeout` seconds. `on_sent(indices, ids)` after each
    upload; `on_frames(done, total)` as frames finish.
    """
    homes = deployment.homes
    deadline = time.time() + timeout
    # Frames the homes had finished before: a long-lived deployment's earlier ones are not these.
    before = {home: _finished(wait_frames(deployment, 0, 0.0, home)) for home in homes}
    sent = dict.fromkeys(homes, 0)
    ids = [""] * len(frames)

    def send(indices: list[int]) -> None:
        for turn, home in enumerate(homes):
            mine = [index for index in indices if index % len(homes) == turn]
            if mine:
                for index, frame in zip(mine, submit(deployment, [frames[i] for i in mine], home), strict=True):
                    ids[index] = frame
                sent[home] += len(mine)
        on_sent(indices, [ids[index] for index in indices])

    def finished(longest: float) -> int:
        """Frames of this call finished, waiting up to `longest` seconds (split among the homes) for the rest."""
        wait_each = max(0.0, min(longest, deadline - time.time())) / len(homes)
        return sum(
            _finished(wait_frames(deployment, before[home] + sent[home], wait_each, home)) - before[home]
            for home in homes
        )

    def check(done: int) -> None:
        on_frames(done, len(frames))
        if done < len(frames) and time.time() > deadline:
            raise _late(deployment, len(frames) - done, len(frames), timeout)

    if arrivals.pattern == "sequential":
        one_by_one(len(frames), lambda index: send([index]), finished, check)
    else:
        looked = [time.monotonic()]

        def tick() -> None:
            # Between paced uploads: move the progress bar (and give up at the deadline) twice a second.
            if time.monotonic() - looked[0] >= PROGRESS_SECONDS:
                looked[0] = time.monotonic()
                check(finished(0.0))

        pace(arrivals.offsets(len(frames)), send, tick)
    if wait:
        progress(f"submitted {len(frames)} frames to deployment {deployment.id}; waiting for them")
        while (done := finished(PROGRESS_SECONDS)) < len(frames):
            check(done)
        on_frames(done, len(frames))
    return ids


def _finished(counts: Mapping[str, Any]) -> int:
    return int(counts["done"]) + int(counts["failed"])


def profile(
    spec: DeploymentSpec, out: Path, timeout: float = READY_TIMEOUT, progress: Progress = lambda _: None
) -> dict[str, Any]:
    """`jupiter profile`: start agents, run the profilers alone, write the profile file, tear down.

    It always measures (and the new profile replaces the cached one).
    """
    spec = spec.with_static_mapping(None).with_profile(None, fresh=True)
    deployment = deploy(spec, timeout=timeout, progress=progress, reprofile=False, map_tasks=False)
    try:
        document: dict[str, Any] = json.loads(deployment.layout.profile.read_text())
    finally:
        teardown(deployment)
    out.write_text(json.dumps(document, indent=2))
    return document
