"""Using a running deployment: submitting frames, waiting for them, flushing statistics; and `jupiter run`.

Every call goes through the deployment's one control client, whatever the
backend. `run` is the whole job: deploy, show where the live dashboard is,
submit every input (split among the homes under pricing; all at once, or
one at a time), wait for every frame without polling (home's long poll),
flush every agent's statistics, fetch home's files where this machine
cannot read them, summarise into `summary.json`, tear down.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jupiter.backends.base import Progress
from jupiter.backends.control import Unreachable
from jupiter.model.deployment_spec import DeploymentSpec
from jupiter.model.errors import InputError
from jupiter.service.dashboard import dashboard_lines
from jupiter.service.deploy import READY_TIMEOUT, deploy, teardown
from jupiter.service.record import Deployment, DeploymentError
from jupiter.service.summary import RunSummary, summarize, write_summary

UPLOAD_BATCH = 64
"""Files per upload to home."""
FLUSH_TIMEOUT = 30.0


def collect_inputs(spec: DeploymentSpec, inputs: Path | None, frames: int | None) -> list[tuple[str, bytes]]:
    """The files to submit: sample_input/ (or a folder), repeated to `frames` frames."""
    if inputs is not None:
        if not inputs.is_dir():
            raise InputError(inputs, None, "inputs folder not found")
        paths = sorted(p for p in inputs.iterdir() if p.is_file() and not p.name.startswith("."))
        if not paths:
            raise InputError(inputs, None, "inputs folder is empty; put one file per frame in it")
    else:
        paths = list(spec.app.sample_inputs)
    files = [(path.name, path.read_bytes()) for path in paths]
    count = frames if frames is not None else len(files)
    return [files[i % len(files)] for i in range(count)]


def _check_home(deployment: Deployment, home: str | None) -> str:
    home = home or deployment.home
    if home not in deployment.homes:
        raise InputError(
            None, None, f"{home} is not a home node of this deployment; use one of: {', '.join(deployment.homes)}"
        )
    return home


def submit(deployment: Deployment, files: Sequence[tuple[str, bytes]], home: str | None = None) -> list[str]:
    """Send input files to a home node (default: the first); each starts one frame. Returns the frame ids."""
    home = _check_home(deployment, home)
    frames: list[str] = []
    for start in range(0, len(files), UPLOAD_BATCH):
        try:
            answer = deployment.control.upload(home, "/submit", files[start : start + UPLOAD_BATCH])
        except Unreachable as exc:
            raise DeploymentError(str(exc)) from None
        if not isinstance(answer, dict) or "frames" not in answer:
            why = answer.get("error", answer) if isinstance(answer, dict) else answer
            raise DeploymentError(f"home {home} refused the files: {str(why)[:200]}")
        frames += [item["frame"] for item in answer["frames"]]
    return frames


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
    sequential: bool = False,
) -> RunSummary:
    """Deploy, submit every input, wait for all frames, summarise (and write summary.json), tear down.

    `sequential`: submit each frame only when the previous one is done (as
    the original's demo did), so every frame runs alone and its makespan is
    what a single-frame prediction speaks of.
    """
    files = collect_inputs(spec, inputs, frames)
    # Periodic re-profiling would compete with the frames being measured: never during `run`.
    deployment = deploy(spec, timeout=ready_timeout, progress=progress, reprofile=False)
    try:
        for line in dashboard_lines(deployment):
            progress(line)
        started = time.time()
        deadline = started + timeout
        if sequential:
            _one_at_a_time(deployment, files, deadline, timeout, on_frames)
        else:
            _all_at_once(deployment, files, deadline, timeout, on_frames)
        flush_events(deployment)
        try:
            deployment.handle.fetch_home_files()
        except Unreachable as exc:
            raise DeploymentError(str(exc)) from None
        summary = summarize(deployment, started)
        write_summary(deployment, summary)
    finally:
        if not keep:
            teardown(deployment)
    return summary


def _late(deployment: Deployment, missing: int, total: int, timeout: float) -> DeploymentError:
    return DeploymentError(
        f"{missing} of {total} frames did not finish within {timeout:.0f} s; see the logs in {deployment.layout.logs}"
    )


def _all_at_once(
    deployment: Deployment,
    files: list[tuple[str, bytes]],
    deadline: float,
    timeout: float,
    on_frames: Callable[[int, int], None],
) -> None:
    """Submit every frame at once (split among the homes), then wait until all finished."""
    # Several homes (pricing): each injects its share of the frames and gets those back.
    homes = deployment.homes
    shares = {home: files[index :: len(homes)] for index, home in enumerate(homes)}
    for home, share in shares.items():
        if share:
            submit(deployment, share, home)
    while True:
        # Wake at least twice a second to move the progress bar.
        finished = 0
        for home, share in shares.items():
            wait = min(0.5 / len(homes), max(0.0, deadline - time.time()))
            counts = wait_frames(deployment, len(share), wait, home)
            finished += counts["done"] + counts["failed"]
        on_frames(finished, len(files))
        if finished >= len(files):
            return
        if time.time() > deadline:
            raise _late(deployment, len(files) - finished, len(files), timeout)


def _one_at_a_time(
    deployment: Deployment,
    files: list[tuple[str, bytes]],
    deadline: float,
    timeout: float,
    on_frames: Callable[[int, int], None],
) -> None:
    """Submit each frame when the previous one finished (homes take turns)."""
    homes = deployment.homes
    sent = dict.fromkeys(homes, 0)
    for index, item in enumerate(files):
        home = homes[index % len(homes)]
        submit(deployment, [item], home)
        sent[home] += 1
        while True:
            counts = wait_frames(deployment, sent[home], min(5.0, max(0.0, deadline - time.time())), home)
            if counts["done"] + counts["failed"] >= sent[home]:
                break
            if time.time() > deadline:
                raise _late(deployment, len(files) - index, len(files), timeout)
        on_frames(index + 1, len(files))


def profile(
    spec: DeploymentSpec, out: Path, timeout: float = READY_TIMEOUT, progress: Progress = lambda _: None
) -> dict[str, Any]:
    """`jupiter profile`: start agents, run the profilers alone, write the profile file, tear down."""
    spec = spec.with_static_mapping(None)
    deployment = deploy(spec, timeout=timeout, progress=progress, reprofile=False, map_tasks=False)
    try:
        document: dict[str, Any] = json.loads(deployment.layout.profile.read_text())
    finally:
        teardown(deployment)
    out.write_text(json.dumps(document, indent=2))
    return document
