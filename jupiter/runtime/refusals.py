"""Logging what peers send that is refused: escaped, truncated and rate-limited.

Whatever an unauthenticated or misbehaving peer puts in a header (a message
kind, a name) is untrusted text: it is shown with its control characters
escaped (so a line break cannot forge a log line of its own) and cut to a length. A flood of refused
messages must not become a flood of log lines: each kind of refusal is
logged at most once per interval, with the count of the ones not shown.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

INTERVAL = 5.0
"""Seconds between two log lines about the same kind of refusal."""
SHOWN = 120
"""Characters of untrusted text shown."""


def untrusted(value: object, limit: int = SHOWN) -> str:
    """An untrusted value as it may appear in a log: control and non-ASCII characters escaped, and short."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("unicode_escape", errors="backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class RefusalLog:
    """Rate-limited warnings about refused messages, one stream per reason."""

    log: logging.Logger
    interval: float = INTERVAL
    _last: dict[str, float] = field(default_factory=dict)
    _hidden: dict[str, int] = field(default_factory=dict)

    def refused(self, reason: str, kind: object, peer: object) -> None:
        """One refused message (`reason` is ours; `kind` and `peer` may be anything a peer sent)."""
        key = reason.split(":", 1)[0][:60]
        now = time.monotonic()
        if now - self._last.get(key, -self.interval) < self.interval:
            self._hidden[key] = self._hidden.get(key, 0) + 1
            return
        hidden = self._hidden.pop(key, 0)
        more = f" ({hidden} more like it in the last {self.interval:g} s)" if hidden else ""
        self._last[key] = now
        self.log.warning(
            "refused %s from %s: %s%s", untrusted(kind, 40), untrusted(peer, 60), untrusted(reason, 300), more
        )
