"""One test suite for both profile stores: SQLite (a real file) and MongoDB (mongomock)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mongomock
import pytest

from jupiter.model.events import Event, FrameDone, FrameSubmitted, TaskRun
from jupiter.model.plan import StoreSpec
from jupiter.store import SCHEMA_VERSION, ProfileStore, SqliteStore, StoreError, open_store
from jupiter.store.mongo import EXECUTION, NETWORK, RESOURCES, MongoStore


@pytest.fixture(params=["sqlite", "mongodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProfileStore]:
    opened: ProfileStore
    if request.param == "sqlite":
        opened = open_store(StoreSpec(kind="sqlite", path=str(tmp_path / "home" / "profiles.sqlite")))
    else:
        opened = MongoStore(client=mongomock.MongoClient())
    with opened:
        yield opened


def _link(src: str, dst: str, b: float, when: float) -> dict[str, object]:
    return {"src": src, "dst": dst, "a": 0.0, "b": b, "c": 0.01, "points": 12, "time": when}


def test_the_latest_fit_of_each_link_wins(store: ProfileStore) -> None:
    store.put_network([_link("n1", "n2", 1e-6, 1.0), _link("n2", "n1", 2e-6, 1.0)], [("n1", "n2", 1024, 0.011)])
    store.put_network([_link("n1", "n2", 3e-6, 2.0)])
    network = store.get_network_data()
    assert set(network) == {("n1", "n2"), ("n2", "n1")}
    assert network[("n1", "n2")]["b"] == 3e-6
    assert network[("n2", "n1")] == _link("n2", "n1", 2e-6, 1.0)
    assert store.network_samples() == [("n1", "n2", 1024, 0.011)]


def test_resources_latest_per_node(store: ProfileStore) -> None:
    store.put_resources({"n1": {"cpu": 10.0, "memory": 40.0, "samples": 5, "time": 1.0}})
    store.put_resources(
        {"n1": {"cpu": 20.0, "memory": 41.0, "samples": 9, "time": 2.0}, "n2": {"cpu": 1.0, "memory": 2.0}}
    )
    data = store.get_resource_data()
    assert data["n1"] == {"cpu": 20.0, "memory": 41.0, "samples": 9, "time": 2.0}
    assert data["n2"]["cpu"] == 1.0


def test_execution_by_task_then_node(store: ProfileStore) -> None:
    store.put_execution("n1", {"split": {"seconds": 0.5, "output_bytes": {"join": 100}, "runs": 2, "time": 1.0}})
    store.put_execution("n2", {"split": {"seconds": 2.0, "output_bytes": {"join": 110}, "runs": 2, "time": 1.0}})
    store.put_execution("n1", {"split": {"seconds": 0.4, "output_bytes": {"join": 100}, "runs": 2, "time": 3.0}})
    data = store.get_execution_data()
    assert data["split"]["n1"]["seconds"] == 0.4
    assert data["split"]["n2"]["output_bytes"] == {"join": 110}


def test_runtime_events_round_trip(store: ProfileStore) -> None:
    events: list[Event] = [
        FrameSubmitted(frame="f1", input="a.txt", time=1.0),
        TaskRun("split", "f1", "n1", ("a.txt",), 1.0, 1.05, 1.1, 1.2, True, None, "home"),
        FrameDone(frame="f1", input="a.txt", time=2.0, makespan=1.0, outputs=("out.txt",)),
    ]
    assert store.add_events(events) == 3
    assert store.events() == events
    assert store.events("task") == [events[1]]


def test_sqlite_is_a_real_versioned_file(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    store = SqliteStore(path)
    with store:
        store.put_resources({"n1": {"cpu": 1.0, "memory": 2.0}})
        assert store.schema_version == SCHEMA_VERSION
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT node, cpu FROM resources").fetchall() == [("n1", 1.0)]
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError, match="newer than this Jupiter's"):
        SqliteStore(path)


def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_text("not a database at all" * 100)
    with pytest.raises(StoreError, match="not a Jupiter profile store"):
        SqliteStore(path)


def test_mongo_uses_the_original_collection_names() -> None:
    client: Any = mongomock.MongoClient()
    with MongoStore(client=client, database="jupiter") as store:
        store.put_network([_link("n1", "n2", 1e-6, 1.0)])
        store.put_resources({"n1": {"cpu": 1.0, "memory": 2.0}})
        store.put_execution("n1", {"t": {"seconds": 1.0}})
        names = set(client["jupiter"].list_collection_names())
    assert {NETWORK, RESOURCES, EXECUTION} <= names
    assert (NETWORK, RESOURCES, EXECUTION) == (
        "droplet_network_profiler",
        "central_resource_profiler",
        "execution_profiler",
    )


def test_unknown_store_kind() -> None:
    with pytest.raises(StoreError, match="use sqlite or mongodb"):
        open_store(StoreSpec(kind="redis"))
