"""The home node's extension: frames in and out, statistics, and the routes the CLI uses.

Home composes a frame tracker (`jupiter.runtime.frames`: starts frames,
counts their final outputs) and a statistics writer
(`jupiter.runtime.statistics`: the event log, the original's statistics
files, the store). It takes three kinds of messages — `event` (agents'
statistics, one JSON line per event, each validated against its record
before it is written), `submit` (an input file), and files for the `home`
task (final outputs) — and adds the routes `POST /submit`, `GET
/frames/wait` and `GET /home/archive`. Files dropped into `home/input/`
start frames too.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from jupiter.model import events
from jupiter.model.events import Event, EventError
from jupiter.model.layout import HomeLayout
from jupiter.runtime.archive import pack_home_folder, statistics_sizes
from jupiter.runtime.frames import FrameTracker
from jupiter.runtime.protocol import Message, Refusal, safe_name
from jupiter.runtime.routes import HttpError, Request, Routes
from jupiter.runtime.services import AcceptHandler, AgentServices, Extension
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
        self.writer = StatisticsWriter(self.layout, plan.store, plan.priced, plan.receiver_stats, plan.transfer)
        self.tracker = FrameTracker(services, self.layout, self.record)
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
        return {"event": self._events, "submit": self._submit, "result": self._result}

    async def _events(self, message: Message) -> Refusal | None:
        """Agents' statistics: each line is checked against its record, then written as it came."""
        try:
            lines = message.payload.decode().splitlines()
        except UnicodeDecodeError:
            return Refusal.refused("event payload is not UTF-8 JSON lines")
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
        return None

    async def _submit(self, message: Message) -> Refusal | None:
        await self.tracker.submit(str(message.header["name"]), message.payload)
        return None

    async def _result(self, message: Message) -> Refusal | None:
        return self.tracker.accept_result(message.header, message.payload)

    # ----------------------------------------------------------------- routes

    def add_routes(self, routes: Routes) -> None:
        routes.post("/submit", self._submit_route)
        routes.get("/frames/wait", self._wait_route)
        routes.get("/home/archive", self._archive_route)

    def _submit_route(self, request: Request) -> Any:
        files = []
        for name, data in request.files:
            if not safe_name(name):
                raise HttpError(400, f"unsafe file name {name!r}: plain names only")
            files.append((name, data))
        # One call into the event loop for the whole upload: frames start in order, none half-way.
        ids = self.services.on_loop(self.tracker.submit_many(files))
        return {"frames": [{"name": name, "frame": frame} for (name, _), frame in zip(files, ids, strict=True)]}

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

    def loops(self) -> list[Coroutine[Any, Any, Any]]:
        return [self._watch_inputs(), self._keep_statistics()]

    async def _watch_inputs(self) -> None:
        """Start a frame for every file that appears in `home/input/`."""
        inbox = self.layout.input
        inbox.mkdir(parents=True, exist_ok=True)
        while True:
            for path in sorted(inbox.iterdir()):
                if path.name.startswith(".") or not path.is_file():
                    continue
                if not safe_name(path.name):
                    log.error("ignoring input %s: plain names only", path.name)
                    path.rename(path.with_name(f".rejected-{path.name}"))
                    continue
                data = path.read_bytes()
                path.unlink()
                await self.tracker.submit(path.name, data)
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
