"""The MongoDB profile store (pymongo), with the original's collection names.

Jupiter v4 kept its profiles in MongoDB: the network profiler's fits in
`droplet_network_profiler`, the resource profiler's figures in
`central_resource_profiler`, the execution profiler's times in
`execution_profiler`. This adapter uses the same collections (plus
`network_samples` and `runtime_statistics`) behind the same interface as the
SQLite store, selected with `[PROFILING] STORE = mongodb`.

Tested with mongomock (an in-memory stand-in for a MongoDB server, passed in
as `client`), against the same test suite as the SQLite store; no test needs
a running server. This is the only module that imports pymongo (an
import-linter contract keeps it so).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pymongo
import pymongo.errors

from jupiter.model.events import Event, from_json
from jupiter.store.base import ExecutionRecord, LinkRecord, ProfileStore, ResourceRecord, StoreError

NETWORK = "droplet_network_profiler"
RESOURCES = "central_resource_profiler"
EXECUTION = "execution_profiler"
SAMPLES = "network_samples"
RUNTIME = "runtime_statistics"


class MongoStore(ProfileStore):
    """Profiles and runtime statistics in a MongoDB database."""

    def __init__(self, url: str = "mongodb://127.0.0.1:27017/", database: str = "jupiter", client: Any = None) -> None:
        self.client = client if client is not None else pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
        self.db = self.client[database]
        try:
            self.db.command("ping")
        except pymongo.errors.PyMongoError as exc:
            raise StoreError(f"MongoDB at {url} does not answer: {exc}") from None

    @staticmethod
    def _plain(document: Mapping[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in document.items() if key != "_id"}

    def put_network(self, links: Iterable[LinkRecord], samples: Iterable[tuple[str, str, int, float]] = ()) -> None:
        docs = [dict(link) for link in links]
        if docs:
            self.db[NETWORK].insert_many(docs)
        rows = [{"src": s, "dst": d, "size": z, "seconds": t} for s, d, z, t in samples]
        if rows:
            self.db[SAMPLES].insert_many(rows)

    def get_network_data(self) -> dict[tuple[str, str], LinkRecord]:
        out: dict[tuple[str, str], LinkRecord] = {}
        for doc in self.db[NETWORK].find().sort([("time", 1), ("_id", 1)]):
            out[(doc["src"], doc["dst"])] = self._plain(doc)
        return out

    def network_samples(self) -> list[tuple[str, str, int, float]]:
        return [
            (str(d["src"]), str(d["dst"]), int(d["size"]), float(d["seconds"]))
            for d in self.db[SAMPLES].find().sort("_id", 1)
        ]

    def put_resources(self, resources: Mapping[str, ResourceRecord]) -> None:
        docs = [dict(record, node=node) for node, record in resources.items()]
        if docs:
            self.db[RESOURCES].insert_many(docs)

    def get_resource_data(self) -> dict[str, ResourceRecord]:
        out: dict[str, ResourceRecord] = {}
        for doc in self.db[RESOURCES].find().sort([("time", 1), ("_id", 1)]):
            record = self._plain(doc)
            out[record.pop("node")] = record
        return out

    def put_execution(self, node: str, tasks: Mapping[str, ExecutionRecord]) -> None:
        docs = [dict(record, task=task, node=node) for task, record in tasks.items()]
        if docs:
            self.db[EXECUTION].insert_many(docs)

    def get_execution_data(self) -> dict[str, dict[str, ExecutionRecord]]:
        out: dict[str, dict[str, ExecutionRecord]] = {}
        for doc in self.db[EXECUTION].find().sort([("time", 1), ("_id", 1)]):
            record = self._plain(doc)
            task, node = record.pop("task"), record.pop("node")
            out.setdefault(task, {})[node] = record
        return out

    def add_events(self, events: Iterable[Event]) -> int:
        docs = [{"event": event.to_json(), "type": event.type} for event in events]
        if docs:
            self.db[RUNTIME].insert_many(docs)
        return len(docs)

    def events(self, kind: str | None = None) -> list[Event]:
        query = {} if kind is None else {"type": kind}
        return [from_json(doc["event"]) for doc in self.db[RUNTIME].find(query).sort("_id", 1)]

    def close(self) -> None:
        self.client.close()
