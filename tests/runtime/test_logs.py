"""Agents' logs: untrusted text escaped, refusals rate-limited, files rotated by size."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupiter.backends.rotating_log import RotatingLog, rotated
from jupiter.runtime.logs import OneLineFormatter, RefusalLog, clean, untrusted

FORGED = "x\n2026-01-01 00:00:00,000 node1 INFO forged\r\u2028\x1b[31mred\x00"


def test_untrusted_text_stays_on_one_line_and_is_clipped() -> None:
    assert clean(FORGED) == "x\\x0a2026-01-01 00:00:00,000 node1 INFO forged\\x0d\\u2028\\x1b[31mred\\x00"
    assert untrusted("kind\n") == "'kind\\x0a'"
    assert untrusted(12) == "12"
    assert untrusted(["a"]) == "['a']"
    long = clean("a" * 1000, limit=100)
    assert long == "a" * 80 + "... (920 more)"
    assert len(untrusted("b" * 10_000)) < 100


def test_every_log_record_is_one_line_but_tracebacks_keep_theirs() -> None:
    formatter = OneLineFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("jupiter", logging.WARNING, __file__, 1, "refused %s", (FORGED,), None)
    assert "\n" not in formatter.format(record)
    try:
        raise ValueError("inside")
    except ValueError:
        failed = logging.LogRecord("jupiter", logging.ERROR, __file__, 1, "a\nb", (), sys.exc_info())
    text = formatter.format(failed)
    assert text.startswith("ERROR a\\x0ab\nTraceback (most recent call last):")
    assert text.endswith("ValueError: inside")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_refusals_are_logged_once_per_interval_then_summarised(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    refusals = RefusalLog(logging.getLogger("test.refusals"), interval=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, "test.refusals"):
        for index in range(500):
            refusals.refused(FORGED, ("127.0.0.1", 5000), f"unknown message kind {index}")
        clock.now += 9.0
        refusals.tick()  # the interval has not ended: nothing yet
        assert len(caplog.records) == 1
        clock.now += 1.0
        refusals.tick()
        refusals.refused("ping", "peer", "unauthenticated")  # a new interval: logged in full again
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "refused 'x\\x0a2026-01-01 00:00:00,000 node1 INFO forged\\x0d\\u2028\\x1b[31mred\\x00' "
        "from ('127.0.0.1', 5000): unknown message kind 0",
        "refused 499 more messages in the last 10 s (the last: 'x\\x0a2026-01-01 00:00:00,000 node1 INFO "
        "forged\\x0d\\u2028\\x1b[31mred\\x00' from ('127.0.0.1', 5000): unknown message kind 499)",
        "refused 'ping' from peer: unauthenticated",
    ]
    assert refusals.total == 501


def test_a_quiet_interval_writes_no_summary(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    refusals = RefusalLog(logging.getLogger("test.quiet"), interval=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, "test.quiet"):
        refusals.refused("a", "p", "r")
        clock.now += 20
        refusals.tick()
        refusals.tick()
    assert len(caplog.records) == 1


def test_a_log_is_rotated_at_its_size_keeping_max_log_files(tmp_path: Path) -> None:
    path = tmp_path / "node1.log"
    log = RotatingLog(path, size=100, keep=3)
    for index in range(10):
        log.write(f"line {index:02d} {'x' * 30}\n".encode())  # 39 bytes: two lines per file
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node1.log", "node1.log.1", "node1.log.2"]
    assert path.read_text().splitlines()[0].startswith("line 08")
    assert rotated(path, 1).read_text().splitlines()[0].startswith("line 06")
    assert rotated(path, 2).read_text().splitlines()[0].startswith("line 04")
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())


def test_a_log_kept_in_one_file_starts_again_and_continues_where_it_was(tmp_path: Path) -> None:
    path = tmp_path / "node1.log"
    log = RotatingLog(path, size=10, keep=1)
    log.write(b"0123456789")
    log.write(b"abc\n")
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["node1.log"]
    assert path.read_bytes() == b"abc\n"
    again = RotatingLog(path, size=10, keep=2)  # a restarted supervisor appends to the same file
    again.write(b"defghij\n")
    again.close()
    assert (path.read_bytes(), rotated(path, 1).read_bytes()) == (b"defghij\n", b"abc\n")
    with pytest.raises(ValueError, match="at least 1"):
        RotatingLog(path, size=0, keep=1)


@pytest.mark.processes
def test_the_supervisor_writes_each_agents_output_through_a_rotating_log(tmp_path: Path) -> None:
    # A stand-in agent that writes 2000 lines of output and then waits to be stopped.
    chatty = "import sys, time\nfor i in range(2000): print(f'line {i:04d}', flush=True)\ntime.sleep(600)\n"
    (tmp_path / "agents.json").write_text(json.dumps({"node1": [sys.executable, "-c", chatty]}))
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "jupiter.backends.supervisor", "--max-log", "3", "--log-size", "2000", str(tmp_path)]
    )
    log = tmp_path / "logs" / "node1.log"
    deadline = time.time() + 60
    try:
        while time.time() < deadline and not (log.exists() and "line 1999" in log.read_text()):
            time.sleep(0.05)
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == ["node1.log", "node1.log.1", "node1.log.2"]
    assert log.read_text().splitlines()[-1] == "line 1999"
    assert all(p.stat().st_size <= 2000 for p in (tmp_path / "logs").iterdir())
    # The three files hold the newest lines, in order and whole.
    lines = [line for name in reversed(files) for line in (tmp_path / "logs" / name).read_text().splitlines()]
    assert lines == [f"line {i:04d}" for i in range(2000 - len(lines), 2000)]
