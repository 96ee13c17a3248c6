"""Where a task's outputs go: the routing policy of an agent.

Without pricing every child task runs on the node the mapping gave it, so
a record's destination is fixed when the record is made and nothing is ever
sent elsewhere (`MappedRouter`). Pricing CIRCE chooses per frame instead
(`jupiter.runtime.extensions.pricing.PricingRouter`): it places records on
the cheapest node, reroutes what a node could not take, and learns from
each finished task.
"""

from __future__ import annotations

from typing import Any, Protocol

from jupiter.runtime.protocol import Refusal
from jupiter.runtime.spool import OutboxRecord


class Router(Protocol):
    """The routing policy the task runners and the outbox consult."""

    async def place(self, records: list[OutboxRecord]) -> list[OutboxRecord]:
        """The records with their destinations chosen."""
        ...

    async def reroute(self, dest: str, batch: list[OutboxRecord], errors: dict[str, Refusal]) -> list[OutboxRecord]:
        """Of a batch `dest` did not take, the records still to settle here (the others went elsewhere)."""
        ...

    def task_finished(self, task: str, answers: list[dict[str, Any]]) -> None:
        """A worker ran `task` on some frames (its answers have `ok`, `execute`, `finish`)."""
        ...


class MappedRouter:
    """Every task on its mapped node; nothing is rerouted."""

    async def place(self, records: list[OutboxRecord]) -> list[OutboxRecord]:
        return records

    async def reroute(self, dest: str, batch: list[OutboxRecord], errors: dict[str, Refusal]) -> list[OutboxRecord]:
        return batch

    def task_finished(self, task: str, answers: list[dict[str, Any]]) -> None:
        """Nothing to learn."""
