"""Where profiles and runtime statistics live at home: SQLite (default) or MongoDB.

`open_store(spec)` opens the store a deployment's plan names
(`jupiter.model.plan.StoreSpec`: a SQLite file, or a MongoDB database).
"""

from __future__ import annotations

from jupiter.model.plan import StoreSpec
from jupiter.store.base import ProfileStore, StoreError
from jupiter.store.sqlite import SCHEMA_VERSION, SqliteStore

__all__ = ["SCHEMA_VERSION", "ProfileStore", "SqliteStore", "StoreError", "open_store"]


def open_store(spec: StoreSpec) -> ProfileStore:
    """The store `spec` describes (see the module docstring)."""
    if spec.kind == "sqlite":
        return SqliteStore(spec.path)
    if spec.kind == "mongodb":
        # Imported here so that pymongo is only loaded when MongoDB is chosen.
        from jupiter.store.mongo import MongoStore  # noqa: PLC0415

        return MongoStore(spec.url, spec.database)
    raise StoreError(f"unknown store kind {spec.kind!r}; use sqlite or mongodb")
