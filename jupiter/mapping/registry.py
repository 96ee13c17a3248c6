"""Mappers by name, so configuration files and the CLI can pick one with a string.

The registry is an immutable mapping of name -> factory built once at import;
factories take the mapper's keyword parameters (``static`` needs ``mapping``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from jupiter.mapping.base import Mapper
from jupiter.mapping.best import BestMapper
from jupiter.mapping.cpop import CpopMapper
from jupiter.mapping.fastest_node import FastestNodeMapper
from jupiter.mapping.heft import HeftMapper
from jupiter.mapping.heft_modified import HeftModifiedMapper
from jupiter.mapping.minmin import MinMinMapper
from jupiter.mapping.peft import PeftMapper
from jupiter.mapping.static import StaticMapper
from jupiter.mapping.stream import StreamMapper
from jupiter.mapping.wave import WaveGreedyMapper, WaveRandomMapper

MapperFactory = Callable[..., Mapper]

_REGISTRY: Mapping[str, MapperFactory] = MappingProxyType(
    {
        "heft": HeftMapper,
        "heft_modified": HeftModifiedMapper,
        "wave_random": WaveRandomMapper,
        "wave_greedy": WaveGreedyMapper,
        "static": StaticMapper,
        "cpop": CpopMapper,
        "peft": PeftMapper,
        "minmin": MinMinMapper,
        "fastest_node": FastestNodeMapper,
        "best": BestMapper,
        "stream": StreamMapper,
    }
)


def mapper_names() -> tuple[str, ...]:
    """Every registered mapper name, in a stable order."""
    return tuple(_REGISTRY)


def get_mapper(name: str, **params: Any) -> Mapper:
    """A mapper by registry name, built with ``params`` (ValueError for an unknown name)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise ValueError(f"unknown scheduler {name!r}; choose one of: {known}") from None
    try:
        return factory(**params)
    except TypeError as exc:
        raise ValueError(f"scheduler {name!r} does not take these parameters: {exc}") from None
