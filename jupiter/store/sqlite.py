"""The default profile store: one SQLite file at home, with a versioned schema.

SQLite because it is a real file that needs no server, survives the agents
and can be opened by any tool afterwards. The schema version lives in the
`meta` table; a file written by a newer schema is refused rather than
misread. Writers from several processes (the CLI profiling a deployment,
home recording periodic re-profiles) are serialised by SQLite's own locking.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

from jupiter.model.events import Event, decode, encode
from jupiter.store.base import ExecutionRecord, LinkRecord, ProfileStore, ResourceRecord, StoreError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS network (
    id INTEGER PRIMARY KEY, src TEXT NOT NULL, dst TEXT NOT NULL,
    a REAL NOT NULL, b REAL NOT NULL, c REAL NOT NULL, points INTEGER NOT NULL, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS network_samples (
    id INTEGER PRIMARY KEY, src TEXT NOT NULL, dst TEXT NOT NULL, size INTEGER NOT NULL, seconds REAL NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    id INTEGER PRIMARY KEY, node TEXT NOT NULL, cpu REAL NOT NULL, memory REAL NOT NULL,
    samples INTEGER NOT NULL, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS execution (
    id INTEGER PRIMARY KEY, task TEXT NOT NULL, node TEXT NOT NULL, seconds REAL NOT NULL,
    output_bytes TEXT NOT NULL, runs INTEGER NOT NULL, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runtime_events (
    id INTEGER PRIMARY KEY, type TEXT, node TEXT, task TEXT, frame TEXT, time REAL, data TEXT NOT NULL);
"""


class SqliteStore(ProfileStore):
    """Profiles and runtime statistics in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30.0)
            self.db.executescript(_SCHEMA)
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a Jupiter profile store ({exc})") from None
        if row is None:
            with self.db:
                self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            self.db.close()
            raise StoreError(
                f"{self.path}: schema version {row[0]} is newer than this Jupiter's ({SCHEMA_VERSION}); upgrade Jupiter"
            )

    @property
    def schema_version(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])

    def put_network(self, links: Iterable[LinkRecord], samples: Iterable[tuple[str, str, int, float]] = ()) -> None:
        with self.db:
            self.db.executemany(
                "INSERT INTO network (src, dst, a, b, c, points, time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (r["src"], r["dst"], r["a"], r["b"], r["c"], int(r.get("points", 0)), float(r.get("time", 0.0)))
                    for r in links
                ],
            )
            self.db.executemany(
                "INSERT INTO network_samples (src, dst, size, seconds) VALUES (?, ?, ?, ?)", list(samples)
            )

    def get_network_data(self) -> dict[tuple[str, str], LinkRecord]:
        out: dict[tuple[str, str], LinkRecord] = {}
        for src, dst, a, b, c, points, time in self.db.execute(
            "SELECT src, dst, a, b, c, points, time FROM network ORDER BY time, id"
        ):
            out[(src, dst)] = {"src": src, "dst": dst, "a": a, "b": b, "c": c, "points": points, "time": time}
        return out

    def network_samples(self) -> list[tuple[str, str, int, float]]:
        rows = self.db.execute("SELECT src, dst, size, seconds FROM network_samples ORDER BY id")
        return [(str(s), str(d), int(z), float(t)) for s, d, z, t in rows]

    def put_resources(self, resources: Mapping[str, ResourceRecord]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT INTO resources (node, cpu, memory, samples, time) VALUES (?, ?, ?, ?, ?)",
                [
                    (node, r["cpu"], r["memory"], int(r.get("samples", 0)), float(r.get("time", 0.0)))
                    for node, r in resources.items()
                ],
            )

    def get_resource_data(self) -> dict[str, ResourceRecord]:
        out: dict[str, ResourceRecord] = {}
        for node, cpu, memory, samples, time in self.db.execute(
            "SELECT node, cpu, memory, samples, time FROM resources ORDER BY time, id"
        ):
            out[node] = {"cpu": cpu, "memory": memory, "samples": samples, "time": time}
        return out

    def put_execution(self, node: str, tasks: Mapping[str, ExecutionRecord]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT INTO execution (task, node, seconds, output_bytes, runs, time) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        task,
                        node,
                        float(r["seconds"]),
                        json.dumps(r.get("output_bytes", {})),
                        int(r.get("runs", 1)),
                        float(r.get("time", 0.0)),
                    )
                    for task, r in tasks.items()
                ],
            )

    def get_execution_data(self) -> dict[str, dict[str, ExecutionRecord]]:
        out: dict[str, dict[str, ExecutionRecord]] = {}
        for task, node, seconds, output_bytes, runs, time in self.db.execute(
            "SELECT task, node, seconds, output_bytes, runs, time FROM execution ORDER BY time, id"
        ):
            out.setdefault(task, {})[node] = {
                "seconds": seconds,
                "output_bytes": json.loads(output_bytes),
                "runs": runs,
                "time": time,
            }
        return out

    def add_events(self, events: Iterable[Event]) -> int:
        rows = []
        for event in events:
            data = event.to_json()
            rows.append(
                (
                    event.type,
                    data.get("node"),
                    data.get("task"),
                    data.get("frame"),
                    data.get("time", data.get("finish")),
                    encode(event),
                )
            )
        with self.db:
            self.db.executemany(
                "INSERT INTO runtime_events (type, node, task, frame, time, data) VALUES (?, ?, ?, ?, ?, ?)", rows
            )
        return len(rows)

    def events(self, kind: str | None = None) -> list[Event]:
        if kind is None:
            rows = self.db.execute("SELECT data FROM runtime_events ORDER BY id")
        else:
            rows = self.db.execute("SELECT data FROM runtime_events WHERE type = ? ORDER BY id", (kind,))
        return [decode(data) for (data,) in rows]

    def close(self) -> None:
        self.db.close()
