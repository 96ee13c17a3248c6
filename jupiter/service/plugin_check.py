"""Importing the plug-ins a config names, to check them before anything starts.

`[CONFIG] TRANSFER` and `PROFILER` may name a plug-in `package.module:Factory`
(the original's integration interface). Parsing the config checks only that
spelling: importing a module runs its code, which the model layer never does.
`jupiter validate`, and every command that loads a working folder, calls
`check_plugins` so a plug-in that cannot load is reported as `file:line`
before any agent starts. Which keys take plug-ins, and what their factories
are called with, comes from the `Plugin` rows of `jupiter.model.schema`.
"""

from __future__ import annotations

import importlib

from jupiter.model.config import JupiterConfig
from jupiter.model.errors import InputError
from jupiter.model.schema import SETTINGS, Plugin


def _field_value(config: JupiterConfig, dotted: str) -> object:
    value: object = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def check_plugins(config: JupiterConfig) -> list[InputError]:
    """One error per plug-in that does not import or has no such factory (empty: all load)."""
    errors: list[InputError] = []
    for setting in SETTINGS:
        if not isinstance(setting.kind, Plugin) or setting.field is None:
            continue
        value = _field_value(config, setting.field)
        if not isinstance(value, str) or ":" not in value:
            continue
        module_name, _, attribute = value.partition(":")
        line = config.line_of(setting.section, setting.key)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - a plug-in's import may fail in any way; it is reported
            errors.append(
                InputError(
                    config.path,
                    line,
                    f"{setting.key}: cannot import {module_name} ({type(exc).__name__}: {exc}); install it, "
                    "or add its folder to PYTHONPATH, where `jupiter` and the agents run",
                )
            )
            continue
        if not callable(getattr(module, attribute, None)):
            errors.append(
                InputError(
                    config.path,
                    line,
                    f"{setting.key}: {module_name} has no class or function {attribute} (taking {setting.kind.takes})",
                )
            )
    return errors
