"""A schedule: where and when each task runs.

A mapper returns one of these; the dispatcher only needs :meth:`Schedule.mapping`,
the report and the Gantt chart use the times. It is plain frozen data: whether
it is *feasible* is the job of :mod:`jupiter.mapping.checker`, not of this class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Placement:
    """One task placed on one node over ``[start, finish]`` seconds."""

    task: str
    node: str
    start: float
    finish: float


@dataclass(frozen=True)
class Schedule:
    """Placements keyed by task name, produced by the mapper named ``mapper``."""

    placements: Mapping[str, Placement]
    mapper: str = ""
    notes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "placements", MappingProxyType(dict(self.placements)))
        object.__setattr__(self, "notes", MappingProxyType(dict(self.notes)))

    @classmethod
    def from_placements(cls, placements: Iterable[Placement], mapper: str = "") -> Schedule:
        """Build a schedule from an iterable of placements."""
        return cls({p.task: p for p in placements}, mapper=mapper)

    @property
    def makespan(self) -> float:
        """Finish time of the last task (0 for an empty schedule)."""
        return max((p.finish for p in self.placements.values()), default=0.0)

    def mapping(self) -> dict[str, str]:
        """Task -> node, in placement order."""
        return {t: p.node for t, p in self.placements.items()}

    def node_of(self, task: str) -> str:
        """The node ``task`` runs on."""
        return self.placements[task].node

    def by_node(self) -> dict[str, list[Placement]]:
        """Placements grouped per node, each list sorted by start time."""
        acc: dict[str, list[Placement]] = {}
        for p in self.placements.values():
            acc.setdefault(p.node, []).append(p)
        for lst in acc.values():
            lst.sort(key=lambda p: (p.start, p.finish, p.task))
        return acc

    def renamed(self, mapper: str) -> Schedule:
        """The same placements credited to another mapper name."""
        return Schedule(self.placements, mapper=mapper, notes=self.notes)
