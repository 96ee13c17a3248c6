"""Where profiles and runtime statistics live at home: SQLite (default) or MongoDB.

`open_store(settings)` opens the store a deployment's plan or config names:
`{"kind": "sqlite", "path": ...}` or `{"kind": "mongodb", "url": ..., "database": ...}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jupiter.store.base import ProfileStore, StoreError
from jupiter.store.sqlite import SCHEMA_VERSION, SqliteStore

__all__ = ["SCHEMA_VERSION", "ProfileStore", "SqliteStore", "StoreError", "open_store"]


def open_store(settings: Mapping[str, Any]) -> ProfileStore:
    """The store described by `settings` (see the module docstring)."""
    kind = settings.get("kind", "sqlite")
    if kind == "sqlite":
        return SqliteStore(settings["path"])
    if kind == "mongodb":
        # Imported here so that pymongo is only loaded when MongoDB is chosen.
        from jupiter.store.mongo import MongoStore  # noqa: PLC0415

        return MongoStore(str(settings["url"]), str(settings.get("database", "jupiter")))
    raise StoreError(f"unknown store kind {kind!r}; use sqlite or mongodb")
