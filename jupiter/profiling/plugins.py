"""Finding a profiler or a transfer method by the name `[CONFIG] PROFILER` / `TRANSFER` gives.

A built-in (`drupe`; `scp`) or an import path `package.module:Factory` of a
class or function: a profiler factory takes the profile store, a transfer
factory takes `TransferSettings` (the protocols are in
`jupiter.profiling.interface`). `jupiter validate` imports the plug-ins once
to check them (`jupiter.service.plugin_check`); the agents import them here
when they start.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import MappingProxyType

from jupiter.profiling.interface import DataTransfer, DrupeProfiler, Profiler, TransferSettings
from jupiter.store import ProfileStore

ProfilerFactory = Callable[[ProfileStore], Profiler]

BUILTIN: Mapping[str, ProfilerFactory] = MappingProxyType({"drupe": DrupeProfiler})


def get_profiler(name: str, store: ProfileStore, plugins: Mapping[str, ProfilerFactory] | None = None) -> Profiler:
    """The profiler `[CONFIG] PROFILER` names, reading from `store`.

    `name` is a built-in (`drupe`), a key of `plugins`, or an import path
    `package.module:Factory` of a class or function taking the store.
    """
    factories = {**BUILTIN, **(plugins or {})}
    if name.lower() in factories:
        return factories[name.lower()](store)
    module_name, colon, attribute = name.partition(":")
    if not colon:
        raise KeyError(f"no profiler called {name!r}; use one of {sorted(factories)} or `package.module:Factory`")
    factory: ProfilerFactory = getattr(importlib.import_module(module_name), attribute)
    return factory(store)


TransferFactory = Callable[[TransferSettings], DataTransfer]


def _scp(settings: TransferSettings) -> DataTransfer:
    from jupiter.profiling.scp import ScpTransfer  # noqa: PLC0415 - paramiko only when SCP is used

    return ScpTransfer(settings)


BUILTIN_TRANSFERS: Mapping[str, TransferFactory] = MappingProxyType({"scp": _scp})


def get_transfer(name: str, settings: TransferSettings) -> DataTransfer:
    """The transfer method `[CONFIG] TRANSFER` names, other than `http` (the agents' own data plane).

    `name` is a built-in (`scp`) or an import path `package.module:Factory`
    of a class or function taking the settings.
    """
    if name.lower() in BUILTIN_TRANSFERS:
        return BUILTIN_TRANSFERS[name.lower()](settings)
    module_name, colon, attribute = name.partition(":")
    if not colon:
        raise KeyError(
            f"no transfer method called {name!r}; use one of {sorted(BUILTIN_TRANSFERS)} or `package.module:Factory`"
        )
    factory: TransferFactory = getattr(importlib.import_module(module_name), attribute)
    return factory(settings)
