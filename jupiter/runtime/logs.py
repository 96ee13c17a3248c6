"""What an agent writes to its log, when some of it comes from peers.

Peers send message kinds, names and reasons; tasks raise exceptions with
any text in them. None of it may forge a log line or flood the log:

* :func:`untrusted` quotes and clips a value a peer chose (a message kind,
  a file name), :func:`clean` escapes and clips a text that embeds such
  values (a refusal's reason);
* the agent's log formatter (:class:`OneLineFormatter`, installed by
  :func:`configure`) escapes every line break and control character of
  every message, so one record is one line whatever it holds (a traceback
  the agent itself logs keeps its lines);
* :class:`RefusalLog` writes the first refusal of each interval in full
  and then one summary line per interval with the count of the others, so
  a peer sending refused messages as fast as it can adds a line per
  interval, not one per message.

Where the log goes and how it is rotated is the backend's concern (the
local backend's supervisor, `[OTHER] MAX_LOG` and `LOG_FILE_SIZE`): the
agent writes to its standard error.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import Callable

_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
"""Everything but printable ASCII: line breaks of every kind (`\\n`, `\\r`, U+2028, U+0085), escapes, controls."""
REASON_LIMIT = 300
MESSAGE_LIMIT = 4000
"""Longest log message (before its traceback, if any)."""
REFUSAL_INTERVAL = 10.0
"""Seconds between summary lines of refused messages."""


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def clean(text: object, limit: int = REASON_LIMIT) -> str:
    """`text` as one line of printable ASCII (others escaped as `\\xNN`), clipped to `limit` characters."""
    escaped = _UNPRINTABLE.sub(_escape, str(text))
    if len(escaped) <= limit:
        return escaped
    return f"{escaped[: limit - 20]}... ({len(escaped) - limit + 20} more)"


def untrusted(value: object, limit: int = 80) -> str:
    """A value a peer chose, quoted (so where it ends is clear), escaped and clipped."""
    return f"'{clean(value, limit)}'" if isinstance(value, str) else clean(repr(value), limit)


class OneLineFormatter(logging.Formatter):
    """A formatter whose message part is always one line (module docstring)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = clean(record.message, MESSAGE_LIMIT)
        return super().formatMessage(record)


def configure(node: str, level: int = logging.INFO) -> None:
    """The agent's logging: one line per record on standard error, each naming the node."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(f"%(asctime)s {clean(node, 64)} %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class RefusalLog:
    """Refused messages, logged at most once per interval plus a summary (module docstring)."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = REFUSAL_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self.since: float | None = None
        """When the current interval began (its first refusal was logged in full)."""
        self.quiet = 0
        """Refusals in the current interval not logged one by one."""
        self.last = ""
        self.total = 0

    def refused(self, kind: object, peer: object, reason: object) -> None:
        """One refused message: logged in full if it is the first of its interval, else counted."""
        self.total += 1
        now = self.clock()
        if self.since is not None and now - self.since < self.interval:
            self.quiet += 1
            self.last = f"{untrusted(kind)} from {clean(peer, 80)}: {clean(reason)}"
            return
        self.summarise()
        self.since = now
        self.logger.warning("refused %s from %s: %s", untrusted(kind), clean(peer, 80), clean(reason))

    def summarise(self) -> None:
        """Write the summary of the interval's refusals not logged one by one, if any."""
        if self.quiet:
            self.logger.warning(
                "refused %d more messages in the last %.0f s (the last: %s)", self.quiet, self.interval, self.last
            )
        self.quiet = 0
        self.last = ""

    def tick(self) -> None:
        """Called periodically: close an interval that has ended, so its summary is not held back."""
        if self.since is not None and self.clock() - self.since >= self.interval:
            self.summarise()
            self.since = None

    async def run(self) -> None:
        """Tick every interval for the agent's lifetime."""
        while True:
            await asyncio.sleep(self.interval)
            self.tick()
