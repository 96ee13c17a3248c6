"""The outbox journal: what was queued and not acknowledged comes back after a restart, field for field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from jupiter.runtime.spool import OutboxJournal, OutboxRecord


def test_unacknowledged_records_come_back_whole(tmp_path: Path) -> None:
    journal = OutboxJournal(str(tmp_path / "outbox.log"))
    assert journal.recover() == []
    kept = OutboxRecord("a-1", "node2", {"kind": "file", "frame": "f1", "idx": 0, "born": 1.5}, "/w/d1/x", "/w/d1")
    done = OutboxRecord("a-2", "home", {"kind": "file", "frame": "f1", "idx": 1}, "/w/d1/y", None)
    journal.add([kept, done])
    journal.ack(["a-2"])
    journal.close()
    again = OutboxJournal(str(tmp_path / "outbox.log"))
    recovered = again.recover()
    again.close()
    assert recovered == [kept]
    assert [field.name for field in dataclasses.fields(OutboxRecord)] == [
        "ident",
        "dest",
        "header",
        "payload",
        "release",
    ], "OutboxJournal writes these fields by hand: keep _line in step with OutboxRecord"
