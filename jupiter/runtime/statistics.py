"""Home's statistics writer: the event log, the original's statistics files, and the store.

Every event home records goes, as one line, to `events.jsonl` (the record
`jupiter.model.events` defines) and, where the original had one, to its
statistics file: `runtime_tasks.txt` (`Task_name local_input_file
Enter_time Execute_time Finish_time Elapse_time Duration_time Waiting_time`,
with `Worker_node` first under pricing), `runtime_transfer_sender.txt` and
`runtime_transfer_receiver.txt` (`Node_name Transfer_Type File_Path
Time_stamp`, -1 = failed). When the app's `name_convert.txt` has an `input`
row, `local_input_file` names the frame as the original did, after the app
input it came from (`1botnet` for `1botnet.ipsum` of an app whose input is
`botnet`, `jupiter.model.app.frame_name`); otherwise it lists the files the
task was called with. Events are also added to the deployment's store
(`jupiter.store`) in one transaction per `save` (home calls it every second),
and periodic re-profiles land in the store's profile tables.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import OrderedDict
from typing import IO

from jupiter.model import events
from jupiter.model.app import frame_name
from jupiter.model.events import Event, FrameSubmitted, NetworkProfile, ResourceProfile, TaskRun, Transfer
from jupiter.model.layout import HomeLayout
from jupiter.model.plan import StoreSpec
from jupiter.store import ProfileStore, StoreError, open_store

log = logging.getLogger("jupiter.home")

TASKS_HEADER = "Task_name local_input_file Enter_time Execute_time Finish_time Elapse_time Duration_time Waiting_time"
TRANSFER_HEADER = "Node_name Transfer_Type File_Path Time_stamp"
FRAME_NAMES = 10_000
"""Frames whose input names home keeps for `local_input_file` (the most recent; memory stays flat)."""


class StatisticsWriter:
    """Writes one home's statistics (module docstring)."""

    def __init__(
        self,
        layout: HomeLayout,
        store: StoreSpec | None,
        priced: bool,
        receiver_stats: bool,
        transfer: str,
        io_names: tuple[str, str] | None = None,
    ) -> None:
        self.layout = layout
        self.io_names = io_names
        self.frame_names: OrderedDict[str, str] = OrderedDict()
        """Frame -> its name in the statistics (`io_names` only), for the latest FRAME_NAMES frames."""
        self.store_spec = store
        self.priced = priced
        self.receiver_stats = receiver_stats
        self.transfer = transfer
        self.files: dict[str, IO[str]] = {}
        self.unsaved: list[Event] = []
        """Events recorded since the last save to the store."""
        self.store: ProfileStore | None = None
        self.store_failed = False

    def open(self) -> None:
        """Open (append to) the files; a new file gets the original's header line."""
        self.layout.dir.mkdir(parents=True, exist_ok=True)
        headers: dict[str, str | None] = {
            "runtime_tasks.txt": ("Worker_node " if self.priced else "") + TASKS_HEADER,
            "runtime_transfer_sender.txt": TRANSFER_HEADER,
            "events.jsonl": None,
        }
        if self.receiver_stats:
            headers["runtime_transfer_receiver.txt"] = TRANSFER_HEADER
        for name, header in headers.items():
            path = self.layout.statistics(name)
            fresh = not path.exists()
            handle = path.open("a", buffering=1)
            if fresh and header:
                handle.write(header + "\n")
            self.files[name] = handle

    def write(self, event: Event, line: str | None = None) -> None:
        """Record one event (`line`: the event as it came, already a valid encoding of it)."""
        self.files["events.jsonl"].write((line or events.encode(event)) + "\n")
        if self.store_spec is not None and not self.store_failed:
            self.unsaved.append(event)
        if isinstance(event, FrameSubmitted) and self.io_names is not None:
            self.frame_names[event.frame] = frame_name(event.input, self.io_names)
            if len(self.frame_names) > FRAME_NAMES:
                self.frame_names.popitem(last=False)
        elif isinstance(event, TaskRun):
            # A frame started again under pricing (`<frame>-r<n>`) is still the same input.
            named = self.frame_names.get(event.frame) or self.frame_names.get(event.frame.rsplit("-r", 1)[0])
            files = named or ",".join(event.files) or "-"
            worker = f"{event.node} " if self.priced else ""
            enter, execute, finish = event.enter, event.execute, event.finish
            self.files["runtime_tasks.txt"].write(
                f"{worker}{event.task} {files} {enter:.6f} {execute:.6f} {finish:.6f} "
                f"{finish - enter:.6f} {finish - execute:.6f} {execute - enter:.6f}\n"
            )
        elif isinstance(event, Transfer):
            handle = self.files.get(f"runtime_transfer_{event.side}.txt")
            if handle is not None:
                shown = "-1" if event.failed else f"{event.time:.6f}"
                handle.write(f"{event.node} {self.transfer} {event.path} {shown}\n")

    def flush(self) -> None:
        for handle in self.files.values():
            handle.flush()
        self.save()

    def save(self) -> None:
        """Add the events recorded since the last call to the store (one transaction).

        A store home cannot open or write (e.g. a path of the CLI's machine
        inside a pod) is reported once; the files stay the record then.
        """
        if not self.unsaved or self.store_spec is None:
            return
        batch, self.unsaved = self.unsaved, []
        try:
            if self.store is None:
                self.store = open_store(self.store_spec)
            self.store.add_events(batch)
            for event in batch:
                if isinstance(event, NetworkProfile):
                    self.store.put_network([dict(link) for link in event.links], list(event.samples))
                elif isinstance(event, ResourceProfile):
                    self.store.put_resources(
                        {
                            event.node: {
                                "cpu": event.cpu,
                                "memory": event.memory,
                                "samples": event.samples,
                                "time": event.time,
                            }
                        }
                    )
        except (OSError, sqlite3.Error, StoreError) as exc:
            self.store_failed = True
            log.error("runtime statistics are not saved in the store (%s); they stay in %s", exc, self.layout.dir)

    def close(self) -> None:
        self.save()
        if self.store is not None:
            self.store.close()
        for handle in self.files.values():
            handle.close()
