"""Frames flow: stages overlap, multi-file frames, several outputs per task, idempotent submits, a full spool."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupiter.backends.control import multipart
from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.events import FrameDone, FrameSubmitted, TaskRun, read_events
from jupiter.model.workspace import load_workspace
from jupiter.service.deploy import deploy, teardown
from jupiter.service.run import Submission, flush_events, run, submit, wait_frames

SLOW = textwrap.dedent(
    """
    import os, time


    def task(filename, pathin, pathout):
        time.sleep(0.25)
        out = os.path.join(pathout, filename)
        with open(out, "w") as handle:
            handle.write(open(os.path.join(pathin, filename)).read())
        return [out]
    """
)


def _workdir(
    root: Path, dag: str, scripts: dict[str, str], samples: dict[str, str], nodes: int, extra: str = ""
) -> Path:
    app = root / "app_specific_files" / "demo"
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "configuration.txt").write_text(dag)
    for name, source in scripts.items():
        (app / "scripts" / f"{name}.py").write_text(source)
    for name, text in samples.items():
        (app / "sample_input" / name).write_text(text)
    (root / "nodes.txt").write_text("home localhost\n" + "".join(f"node{i} localhost\n" for i in range(1, nodes + 1)))
    tasks = [line.split()[0] for line in dag.splitlines()[1:]]
    (root / "mapping.txt").write_text("".join(f"{task} node{1 + i % nodes}\n" for i, task in enumerate(tasks)))
    (root / "jupiter_config.ini").write_text(
        "[CONFIG]\nSTATIC_MAPPING = 1\n[DEPLOY]\nAPP = app_specific_files/demo\nMAPPING = mapping.txt\n" + extra
    )
    return root


@pytest.mark.processes
def test_a_frame_leaves_each_stage_as_soon_as_it_is_done(tmp_path: Path) -> None:
    """Eight frames through three slow stages on three nodes: the first is done before the last starts stage one.

    In lock-step (each stage running the whole burst before passing any frame
    on) the first frame would finish only after every frame left stage one.
    """
    dag = "3\nt1 1 true t2\nt2 1 true t3\nt3 1 true home\n"
    work = _workdir(tmp_path, dag, {"t1": SLOW, "t2": SLOW, "t3": SLOW}, {"a.txt": "a\n"}, nodes=3)
    summary = run(resolve_spec(load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None)), frames=8)
    assert (summary.done, summary.failed) == (8, 0)
    events = list(read_events(summary.output_dir.parent / "events.jsonl"))
    first_done = min(event.time for event in events if isinstance(event, FrameDone))
    last_frame = max(event.frame for event in events if isinstance(event, FrameSubmitted))
    (last_start,) = [e.execute for e in events if isinstance(e, TaskRun) and e.task == "t1" and e.frame == last_frame]
    assert first_done < last_start


STITCH = textwrap.dedent(
    """
    import os


    def task(filenames, pathin, pathout):
        parts = [open(os.path.join(pathin, name)).read().strip() for name in filenames]
        out = os.path.join(pathout, filenames[0].split("_")[0] + "_stitched.txt")
        open(out, "w").write("+".join(parts))
        return [out]
    """
)

TWO_OUTPUTS = textwrap.dedent(
    """
    import os


    def task(filename, pathin, pathout):
        text = open(os.path.join(pathin, filename)).read().strip()
        first, second = os.path.join(pathout, "x_first.txt"), os.path.join(pathout, "x_second.txt")
        open(first, "w").write(text + "1")
        open(second, "w").write(text + "2")
        return [first, second]
    """
)


@pytest.mark.processes
def test_multi_file_frames_and_several_outputs_per_task(tmp_path: Path) -> None:
    """An entry task waiting for two camera images per frame; a parent whose two outputs (FLAG true) feed one child.

    The samples `cam_left.txt`/`cam_right.txt` make one frame (the original's
    rule: files grouped by the name before `_`), so do `dog_left`/`dog_right`.
    """
    dag = "3\nstitch 2 true split\nsplit 1 true join\njoin 2 true home\n"
    scripts = {"stitch": STITCH, "split": TWO_OUTPUTS, "join": STITCH}
    samples = {"cam_left.txt": "L", "cam_right.txt": "R", "dog_left.txt": "l", "dog_right.txt": "r"}
    work = _workdir(tmp_path, dag, scripts, samples, nodes=2)
    summary = run(resolve_spec(load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None)))
    assert (summary.frames, summary.done, summary.failed) == (2, 2, 0)
    outputs = sorted(path.read_text() for path in summary.output_dir.rglob("*_stitched.txt"))
    assert outputs == ["L+R1+L+R2", "l+r1+l+r2"]
    # The output folders hold the outputs only.
    assert all(not path.name.startswith(".") for path in summary.output_dir.rglob("*"))


@pytest.mark.processes
def test_a_submit_sent_again_with_its_id_starts_no_frame_twice(fan_workdir: Path) -> None:
    workspace = load_workspace(fan_workdir / "jupiter_config.ini", fan_workdir / "nodes.txt", None)
    deployment = deploy(resolve_spec(workspace))
    try:
        files = []
        for index in range(5):
            path = fan_workdir / f"in{index}.txt"
            path.write_text(f"frame {index}\n")
            files.append([path])
        first = Submission(files)
        ids = submit(deployment, first)
        # The same submission again (as after a connection lost before home's answer): the same frames.
        again = Submission(files, id=first.id)
        assert submit(deployment, again) == ids
        assert again.again == 5
        # A new submission of the same files is new frames.
        assert len(set(submit(deployment, files)) | set(ids)) == 10
        counts = wait_frames(deployment, 10, 60.0)
        assert (counts["done"], counts["failed"], counts["submitted"]) == (10, 0, 10)
        flush_events(deployment)
    finally:
        teardown(deployment)


def test_upload_bodies_quote_file_names_and_read_files_as_they_are_sent(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 3_000_000)
    stream, content_type = multipart([('a"b\\c.txt', b"one"), ("big.bin", path)], {"manifest": json.dumps([])})
    body = stream.read_all()
    assert len(body) == stream.length
    boundary = content_type.split("boundary=")[1]
    assert b'filename="a\\"b\\\\c.txt"' in body
    assert body.count(f"--{boundary}".encode()) == 4  # manifest, two files, the end
    with pytest.raises(ValueError, match="line breaks"):
        multipart([("evil\r\nX-Injected: 1", b"")])


@contextlib.contextmanager
def _small_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"mounting a tmpfs needs root (CI runs as root): {done.stderr.strip()}"
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.processes
@pytest.mark.adversarial
def test_a_full_spool_holds_frames_back_and_loses_none(tmp_path: Path) -> None:
    """60 frames of 200 KB through a spool of 6 MB with a 3 MB watermark: every one is done, none failed."""
    dag = "2\nt1 1 true t2\nt2 1 true home\n"
    work = _workdir(
        tmp_path / "work",
        dag,
        {"t1": SLOW.replace("0.25", "0.02"), "t2": SLOW.replace("0.25", "0.02")},
        {"a.txt": "x" * 200_000},
        nodes=2,
        extra="SPOOL_DIR = spool\n[LIMITS]\nSPOOL_FREE = 3M\n",
    )
    with _small_tmpfs(work / "spool", "6m"):
        summary = run(resolve_spec(load_workspace(work / "jupiter_config.ini", work / "nodes.txt", None)), frames=60)
    assert (summary.frames, summary.done, summary.failed) == (60, 60, 0)
    # It did fill: some node held frames back.
    logs = list((work / ".jupiter").glob("*/logs/node*.log"))
    assert logs
    assert any("spool full" in log.read_text() for log in logs)
    shutil.rmtree(work / ".jupiter", ignore_errors=True)
