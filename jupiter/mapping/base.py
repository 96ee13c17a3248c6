"""The contract every mapper fulfils: ``schedule(problem) -> Schedule``.

Mappers are small immutable objects whose constructor takes the algorithm's
parameters; ``schedule`` is a pure function of the problem (random mappers
take their seed as a parameter), so the same inputs always give the same
schedule.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from jupiter.mapping.problem import Problem
from jupiter.mapping.schedule import Schedule


class Mapper(ABC):
    """Maps every task of a problem to a node and predicts start/finish times."""

    #: Registry name of the algorithm (``heft``, ``wave_greedy``, ...).
    name: str = ""

    @abstractmethod
    def schedule(self, problem: Problem) -> Schedule:
        """Return a feasible schedule of ``problem`` (raises ValueError if there is none)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
