"""The home node's extension: frames in and out, statistics, and the routes the CLI uses.

Home composes a frame tracker (`jupiter.runtime.frames`: starts frames,
counts their final outputs) and a statistics writer
(`jupiter.runtime.statistics`: the event log, the original's statistics
files, the store). It answers `event` messages (agents' statistics, one
JSON line per event, each validated against its record before it is
written; the answer tells the agent the oldest frame still in flight, so it
can forget older ones), takes `submit` messages (an input file) and the
frames' final outputs (files for the `home` task, streamed to disk), and
adds the routes `POST /submit`, `GET /frames/wait` and `GET /home/archive`.
Files dropped into `home/input/` start frames too (grouped by name when an
entry task waits for several files per frame).

`POST /submit` takes `multipart/form-data`: the files (field `file`, each
streamed to disk as it arrives) and, optionally, a `manifest` field — a
JSON list of `{"id": <client id>, "files": <count>}`, one per frame, in the
order of the files — so a client that retries an interrupted upload with
the same ids starts no frame twice. Without a manifest every file is a
frame (or files are grouped by name, `jupiter.model.inputs`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import shutil
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from jupiter.model import events
from jupiter.model.events import Event, EventError, is_frame_id
from jupiter.model.inputs import group_by_name, prefix
from jupiter.model.layout import HomeLayout
from jupiter.runtime.archive import pack_home_folder, statistics_sizes
from jupiter.runtime.frames import FrameTracker, Submitted
from jupiter.runtime.logs import untrusted
from jupiter.runtime.protocol import Message, Refusal, refusal_reply, safe_name
from jupiter.runtime.routes import HttpError, Request, Routes, Upload
from jupiter.runtime.services import AcceptHandler, AgentServices, Extension, RequestHandler, ResultHandler
from jupiter.runtime.spool import SpaceWatch
from jupiter.runtime.statistics import StatisticsWriter

log = logging.getLogger("jupiter.home")

INPUT_POLL_SECONDS = 0.1
STATISTICS_SECONDS = 1.0
"""How often home adds the events it recorded to the deployment's store, in one transaction."""
WAIT_LIMIT = 25.0
"""Longest `/frames/wait` long poll (below the control plane's call timeout)."""


class Home(Extension):
    """The home node's part of the agent (module docstring)."""

    name = "home"

    def __init__(self, services: AgentServices) -> None:
        self.services = services
        plan = services.plan
        self.layout: HomeLayout = services.deployment.home(services.node, plan.home)
        self.writer = StatisticsWriter(
            self.layout, plan.store, plan.priced, plan.receiver_stats, plan.transfer, plan.io_names
        )
        self.tracker = FrameTracker(services, self.layout, self.record)
        self.space = SpaceWatch(str(self.layout.dir), plan.limits.spool_free)
        ingress = [plan.tasks[task] for task in plan.ingress if task in plan.tasks]
        self.per_frame = max((task.num_inputs for task in ingress), default=1)
        """Input files per frame (more than one when an entry task waits for several)."""
        self.observers: list[Callable[[Event], None]] = []
        """Also shown every recorded event (the node wires the dashboard here); each must be cheap."""

    def record(self, event: Event, line: str | None = None) -> None:
        """Record one event: write it, let the tracker see it (a failed task fails its frame), and the observers."""
        self.writer.write(event, line)
        self.tracker.observe(event)
        for observe in self.observers:
            observe(event)

    # --------------------------------------------------------------- messages

    def accepts(self) -> Mapping[str, AcceptHandler]:
        return {"submit": self._submit}

    def requests(self) -> Mapping[str, RequestHandler]:
        return {"event": self._events}

    def results(self) -> ResultHandler | None:
        return self.tracker.begin_result

    async def _events(self, message: Message) -> bytes:
        """Agents' statistics: each line is checked against its record, then written as it came.

        The answer carries the oldest frame still in flight here (`oldest`):
        the agent forgets what it remembers of older ones.
        """
        oldest = {"oldest": self.tracker.oldest()}
        try:
            lines = message.payload.decode().splitlines()
        except UnicodeDecodeError:
            return refusal_reply(Refusal.refused("event payload is not UTF-8 JSON lines"))
        bad = 0
        reason = ""
        for line in lines:
            try:
                event = events.decode(line)
            except EventError as exc:
                bad += 1
                reason = reason or str(exc)
                continue
            self.record(event, line)
        if bad:
            log.warning("dropped %d of %d events that are not valid: %s", bad, len(lines), reason[:200])
        return refusal_reply(None, **oldest)

    async def _submit(self, message: Message) -> Refusal | None:
        low = self.space.low()
        if low is not None:
            return Refusal.full(low)
        await self.tracker.submit(str(message.header["name"]), message.payload)
        return None

    # ----------------------------------------------------------------- routes

    def add_routes(self, routes: Routes) -> None:
        limits = self.services.plan.limits
        routes.post(
            "/submit",
            self._submit_route,
            uploads=lambda: str(self.layout.frames / ".uploads"),
            max_bytes=limits.max_payload * 4,
        )
        routes.get("/frames/wait", self._wait_route)
        routes.get("/home/archive", self._archive_route)

    def _frames_of(self, request: Request) -> list[tuple[str, list[Upload]]]:
        """An upload's frames: (client id, files) each, from its manifest or by the files' names."""
        for upload in request.files:
            if not safe_name(upload.name):
                raise HttpError(400, f"unsafe file name {upload.name[:80]!r}: plain names only")
        manifest = request.form.get("manifest")
        if manifest is None:
            try:
                return [
                    ("", group) for group in group_by_name(request.files, lambda upload: upload.name, self.per_frame)
                ]
            except ValueError as exc:
                raise HttpError(400, str(exc)) from None
        try:
            entries = json.loads(manifest)
        except json.JSONDecodeError:
            raise HttpError(400, "manifest is not JSON: send a list of {id, files}") from None
        if not isinstance(entries, list) or not all(
            isinstance(entry, dict)
            and isinstance(entry.get("files"), int)
            and entry["files"] >= 1
            and (entry.get("id", "") == "" or is_frame_id(entry.get("id")))
            for entry in entries
        ):
            raise HttpError(400, "manifest entries are {id: <letters, digits, '-', '_'>, files: <count>}")
        if sum(entry["files"] for entry in entries) != len(request.files):
            raise HttpError(
                400, f"the manifest names {sum(e['files'] for e in entries)} files, the upload has {len(request.files)}"
            )
        frames = []
        start = 0
        for entry in entries:
            frames.append((str(entry.get("id", "")), list(request.files[start : start + entry["files"]])))
            start += entry["files"]
        return frames

    def _submit_route(self, request: Request) -> Any:
        low = self.space.low()
        if low is not None:
            raise HttpError(503, f"home is full ({low}); submit again later")
        frames = self._frames_of(request)
        for _, files in frames:
            if len(files) != self.per_frame:
                names = ", ".join(upload.name for upload in files)
                raise HttpError(400, f"a frame of this app has {self.per_frame} files, not {len(files)} ({names})")
        # One call into the event loop for the whole upload: frames start in order, none half-way.
        started: list[Submitted] = self.services.on_loop(self._start_uploads(frames))
        return {
            "frames": [
                {"name": ",".join(upload.name for upload in files), "frame": result.frame, "started": result.started}
                for (_, files), result in zip(frames, started, strict=True)
            ]
        }

    async def _start_uploads(self, frames: list[tuple[str, list[Upload]]]) -> list[Submitted]:
        """Move each frame's uploaded files into a frame folder of their own, then start the frame."""
        started = []
        for client, files in frames:
            folder = self.tracker.frame_folder()
            paths = []
            for upload in files:
                path = f"{folder}/{upload.name}"
                os.replace(upload.path, path)
                paths.append(path)
            started.append(await self.tracker.start(paths, folder, client))
        return started

    def _wait_route(self, request: Request) -> Any:
        count = request.integer("count", 0)
        timeout = min(request.number("timeout", 10.0), WAIT_LIMIT)
        return self.services.on_loop(self.tracker.wait_finished(count, timeout), WAIT_LIMIT + 5)

    def _archive_route(self, _: Request) -> Any:
        async def snapshot() -> dict[str, int]:
            # Home writes its statistics on the loop, a whole line per write: sizes taken
            # here, after the flush, end on a line, however much is written meanwhile.
            await self.flush()
            return statistics_sizes(self.layout.dir)

        archive = pack_home_folder(self.layout.dir, self.services.on_loop(snapshot()))  # in this thread
        return {"home": self.services.node, "archive": base64.b64encode(archive).decode("ascii")}

    # -------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self.writer.open()
        self.tracker.recover()
        # Uploads a crash interrupted (their request never answered: the client sends them again).
        shutil.rmtree(self.layout.frames / ".uploads", ignore_errors=True)

    def loops(self) -> list[Coroutine[Any, Any, Any]]:
        return [self._watch_inputs(), self._keep_statistics()]

    async def _watch_inputs(self) -> None:
        """Start a frame for every file (or group of files, one frame's) that appears in `home/input/`."""
        inbox = self.layout.input
        inbox.mkdir(parents=True, exist_ok=True)
        while True:
            waiting: dict[str, list[Path]] = {}
            for path in sorted(inbox.iterdir()):
                if path.name.startswith(".") or not path.is_file():
                    continue
                if not safe_name(path.name):
                    log.error("ignoring input %s: plain names only", untrusted(path.name))
                    path.rename(path.with_name(f".rejected-{path.name}"))
                    continue
                waiting.setdefault(prefix(path.name) if self.per_frame > 1 else path.name, []).append(path)
            for found in waiting.values():
                # A frame of several files starts once all of them are there.
                group = found
                while len(group) >= self.per_frame and self.space.low() is None:
                    files, group = group[: self.per_frame], group[self.per_frame :]
                    folder = self.tracker.frame_folder()
                    paths = []
                    for path in files:
                        moved = f"{folder}/{path.name}"
                        shutil.move(str(path), moved)
                        paths.append(moved)
                    await self.tracker.start(paths, folder)
            await asyncio.sleep(INPUT_POLL_SECONDS)

    async def _keep_statistics(self) -> None:
        """Save recorded events to the store every STATISTICS_SECONDS."""
        while True:
            await asyncio.sleep(STATISTICS_SECONDS)
            self.writer.save()

    def status(self) -> Mapping[str, Any]:
        return {"frames": self.tracker.counts()}

    async def flush(self) -> None:
        self.writer.flush()

    async def stop(self) -> None:
        self.writer.close()

    async def restart_frames(self, why: str) -> int:
        """Pricing: start every frame in flight again (wired to pricing's dead-node watch by the node)."""
        return await self.tracker.restart_frames(why)
