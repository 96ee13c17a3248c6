"""Per-task progress counters of an agent, as `jupiter status` shows them."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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
