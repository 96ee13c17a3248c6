"""The profile store's interface: what the profilers and the runtime keep at home.

Profiles (one quadratic fit per link, CPU/memory per node, per task and node
the execution time and output sizes) and runtime statistics (the event log)
are kept as plain JSON-like records, so that any backend can hold them and
no layer below the store needs to know its types. Every `put_*` appends;
every `get_*` returns the latest record per key, so periodic re-profiling
keeps a history and readers always see the newest figures.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from typing import Any

from jupiter.model.events import Event

LinkRecord = dict[str, Any]
"""{src, dst, a, b, c, points, time}."""
ResourceRecord = dict[str, Any]
"""{cpu, memory, samples, time}."""
ExecutionRecord = dict[str, Any]
"""{seconds, output_bytes: {child: bytes}, runs, time}."""


class StoreError(Exception):
    """The store cannot be opened or used (wrong schema version, unreachable server)."""


class ProfileStore(abc.ABC):
    """Where profiles and runtime statistics live (SQLite by default, MongoDB optionally)."""

    @abc.abstractmethod
    def put_network(self, links: Iterable[LinkRecord], samples: Iterable[tuple[str, str, int, float]] = ()) -> None:
        """Record link fits and optionally the raw (src, dst, size, seconds) samples behind them."""

    @abc.abstractmethod
    def get_network_data(self) -> dict[tuple[str, str], LinkRecord]:
        """The latest fit of every link, by (src, dst)."""

    @abc.abstractmethod
    def network_samples(self) -> list[tuple[str, str, int, float]]:
        """Every raw sample recorded, oldest first."""

    @abc.abstractmethod
    def put_resources(self, resources: Mapping[str, ResourceRecord]) -> None:
        """Record CPU and memory figures per node."""

    @abc.abstractmethod
    def get_resource_data(self) -> dict[str, ResourceRecord]:
        """The latest figures of every node."""

    @abc.abstractmethod
    def put_execution(self, node: str, tasks: Mapping[str, ExecutionRecord]) -> None:
        """Record one node's execution profile (task -> record)."""

    @abc.abstractmethod
    def get_execution_data(self) -> dict[str, dict[str, ExecutionRecord]]:
        """The latest execution record of every (task, node), as task -> node -> record."""

    @abc.abstractmethod
    def add_events(self, events: Iterable[Event]) -> int:
        """Record runtime statistics events (the event log's records); returns how many."""

    @abc.abstractmethod
    def events(self, kind: str | None = None) -> list[Event]:
        """Recorded events, oldest first, optionally of one type only."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> ProfileStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
