"""`jupiter logs`: each backend's handle reads a node's log from a cursor; lines interleave by time."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

from jupiter.backends.base import Attachment, LogLine, agent_line_time, engine_line_time
from jupiter.backends.docker import DockerHandle
from jupiter.backends.local import LocalHandle
from jupiter.model.errors import InputError
from jupiter.model.layout import DeploymentLayout
from jupiter.model.plan import NodeAddress
from jupiter.service.logs import format_line, interleave, log_lines, parse_since

NODES = {name: NodeAddress(name, "compute", "127.0.0.1", 1, 2) for name in ("home", "node1")}


def _at(text: str) -> float:
    return time.mktime(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


def _attachment(root: Path, info: dict[str, Any] | None = None) -> Attachment:
    layout = DeploymentLayout(root)
    layout.logs.mkdir(parents=True, exist_ok=True)
    return Attachment("dep", layout, NODES, "tok", info or {})


def test_a_local_log_is_read_from_where_it_stopped_whole_lines_only(tmp_path: Path) -> None:
    handle = LocalHandle(_attachment(tmp_path, {"pgid": 1}))
    log = tmp_path / "logs" / "node1.log"
    log.write_text(
        "2026-12-04 01:27:00,250 node1 INFO agent node1 ready\n"
        "2026-12-04 01:27:01,500 node1 ERROR task split failed\n"
        "Traceback (most recent call last):\n"
        "2026-12-04 01:27:02,000 node1 INFO still writi"
    )
    lines, cursor = handle.read_log("node1", None)
    assert [(line.time, line.text) for line in lines] == [
        (_at("2026-12-04 01:27:00") + 0.25, "2026-12-04 01:27:00,250 node1 INFO agent node1 ready"),
        (_at("2026-12-04 01:27:01") + 0.5, "2026-12-04 01:27:01,500 node1 ERROR task split failed"),
        # A line without a time of its own (a traceback's) has its previous line's.
        (_at("2026-12-04 01:27:01") + 0.5, "Traceback (most recent call last):"),
    ]
    with log.open("a") as handle_file:
        handle_file.write("ng\n")
    more, cursor = handle.read_log("node1", cursor)
    assert [line.text for line in more] == ["2026-12-04 01:27:02,000 node1 INFO still writing"]
    assert handle.read_log("node1", cursor) == ([], cursor)
    assert handle.read_log("home", None) == ([], None)  # no log yet


def test_lines_of_several_nodes_interleave_by_time() -> None:
    home = [LogLine(1.0, "home", "a"), LogLine(3.0, "home", "c"), LogLine(math.nan, "home", "c2")]
    node = [LogLine(math.nan, "node1", "early"), LogLine(2.0, "node1", "b"), LogLine(3.0, "node1", "c'")]
    merged = interleave([home, node], ["home", "node1"])
    assert [line.text for line in merged] == ["early", "a", "b", "c", "c2", "c'"]
    assert format_line(merged[1], 5) == "home  | a"


def test_since_takes_a_duration_or_a_time() -> None:
    assert parse_since("90s", 1000.0) == 910.0
    assert parse_since("10m", 1000.0) == 400.0
    assert parse_since("1.5h", 10_000.0) == 4600.0
    assert parse_since("2026-12-04T01:27:00", 0.0) == _at("2026-12-04 01:27:00")
    with pytest.raises(InputError) as caught:
        parse_since("yesterday", 0.0)
    assert str(caught.value) == (
        "--since 'yesterday': give a duration (30s, 10m, 2h, 1d) or a time (2026-12-04T01:27:00)"
    )


def test_following_reads_again_and_since_drops_older_lines(tmp_path: Path) -> None:
    handle = LocalHandle(_attachment(tmp_path, {"pgid": 1}))
    log = tmp_path / "logs" / "node1.log"
    log.write_text("2026-12-04 01:27:00,000 node1 INFO old\n2026-12-04 01:28:00,000 node1 INFO new\n")

    class Reader:
        calls = 0

        def read(self) -> list[LogLine]:
            self.calls += 1
            lines, self.cursor = handle.read_log("node1", getattr(self, "cursor", None))
            return lines

    reader = Reader()
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        with log.open("a") as out:
            out.write(f"2026-12-04 01:29:0{len(naps)},000 node1 INFO more\n")
        if len(naps) == 2:
            raise KeyboardInterrupt  # what Ctrl-C does to `logs -f`

    since = _at("2026-12-04 01:27:30")
    seen = []
    with pytest.raises(KeyboardInterrupt):
        for line in log_lines(reader, since, follow=True, interval=0.25, sleep=nap):  # type: ignore[arg-type]
            seen.append(line.text.rsplit(" ", 1)[1])
    assert seen == ["new", "more"]
    assert naps == [0.25, 0.25]


class FakeEngine:
    """The engine calls DockerHandle.read_log makes: whether a container exists, its timestamped lines since."""

    def __init__(self, lines: list[str], exists: bool = True) -> None:
        self.lines = lines
        self.present = exists
        self.asked: list[float | None] = []

    def exists(self, name: str) -> bool:
        assert name == "jupiter-dep-node1"
        return self.present

    def log_lines(self, name: str, since: float | None = None) -> list[str]:
        self.asked.append(since)
        return list(self.lines)


def test_docker_reads_the_engines_timestamped_lines_once_each(tmp_path: Path) -> None:
    engine = FakeEngine(
        [
            "2026-12-04T00:27:00.123456789Z 2026-12-04 01:27:00,123 node1 INFO agent node1 ready",
            "2026-12-04T00:27:01.000000001Z Traceback (most recent call last):",
        ]
    )
    info = {"deployment_id": "dep", "containers": {"node1": "jupiter-dep-node1"}}
    handle = DockerHandle(_attachment(tmp_path, info), engine_factory=lambda: engine)  # type: ignore[arg-type, return-value]
    lines, cursor = handle.read_log("node1", None)
    stamp, _ = engine_line_time("2026-12-04T00:27:01.000000001Z x")
    assert [line.text for line in lines] == [
        "2026-12-04 01:27:00,123 node1 INFO agent node1 ready",
        "Traceback (most recent call last):",
    ]
    assert cursor == stamp == pytest.approx(lines[1].time)
    # The engine answers `since` to the second: the lines already read are dropped here.
    again, cursor = handle.read_log("node1", cursor)
    assert again == [] and engine.asked == [None, stamp]
    # After teardown the container is gone; its output was kept in logs/node1.log.
    (tmp_path / "logs" / "node1.log").write_text("2026-12-04 01:27:00,123 node1 INFO agent node1 ready\n")
    engine.present = False
    saved, _ = handle.read_log("node1", None)
    assert [line.time for line in saved] == [agent_line_time(saved[0].text, 0.0)]


def test_engine_timestamps() -> None:
    stamp, text = engine_line_time("2026-12-04T00:27:00.5Z hello world")
    assert (stamp % 60, text) == (0.5, "hello world")
    assert math.isnan(engine_line_time("no timestamp here")[0])
