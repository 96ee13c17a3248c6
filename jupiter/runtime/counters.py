"""Per-task progress counters of an agent, as `jupiter status` shows them, and the file keeping them.

A restarted agent rebuilds most of its counters from its folders: the
frames waiting, queued and running from its inbox, the frames done and
failed from `done.log`. What no folder tells — the peak of frames held,
extensions' counters such as pricing's decisions — is kept in
`counters.json` (:class:`SavedCounters`), rewritten (atomically, only when
it changed) once a second and when the agent stops; a crash loses at most
the last second of those.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class TaskCounters:
    """One task's frames on one node."""

    waiting: int = 0
    """Frames with some but not all inputs."""
    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    peak: int = 0
    """Most frames held at once (waiting, queued or running)."""

    @property
    def held(self) -> int:
        """Frames the task holds now (waiting, queued or running): what TASK_QUEUE_SIZE bounds."""
        return self.waiting + self.queued + self.running

    def to_json(self) -> dict[str, int]:
        return asdict(self)


class SavedCounters:
    """The counters an agent's folders cannot rebuild, in one small JSON file (module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written = ""

    def load(self) -> dict[str, Any]:
        """What was saved last ({} when nothing was, or the file is unreadable: counters start again)."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, data: Mapping[str, Any]) -> None:
        """Write `data` (a temporary name, then rename) unless it is what the file holds already."""
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        if text == self._written:
            return
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text(text)
        os.replace(temporary, self.path)
        self._written = text


def whole_numbers(data: object) -> dict[str, int]:
    """The entries of a saved mapping that are whole numbers (anything else in the file is ignored)."""
    if not isinstance(data, dict):
        return {}
    return {str(key): value for key, value in data.items() if isinstance(value, int) and not isinstance(value, bool)}
