"""A mapping given by the user (the original's STATIC_MAPPING), timed like any other."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from jupiter.mapping.base import Mapper
from jupiter.mapping.evaluator import evaluate_mapping
from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Schedule


class StaticMapper(Mapper):
    """A fixed task -> node mapping, scheduled by the fixed-mapping evaluator.

    Not an algorithm from a paper: it reproduces Jupiter v4's static mapping
    file so its predicted makespan can be compared with the schedulers'.
    """

    name = "static"

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping: Mapping[str, str] = MappingProxyType(dict(mapping))

    def schedule(self, problem: Problem) -> Schedule:
        """Time the given mapping (ValueError if it misses a task or names a bad node)."""
        return evaluate_mapping(problem, self.mapping, mapper=self.name)

    def __repr__(self) -> str:
        return f"StaticMapper({len(self.mapping)} tasks)"
