"""The Jinja environment of every template: strict, and every value escaped as JSON (valid YAML)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATE_ROOT = Path(__file__).parent


def _quote(value: Any) -> str:
    """A value as a JSON literal: a YAML scalar or flow collection that cannot break the document."""
    return json.dumps(value, sort_keys=True)


@cache
def environment() -> jinja2.Environment:
    """Templates under `dockerfiles/` and `templates/`; an unknown variable is an error, not an empty string."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_ROOT)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - YAML and Dockerfiles, escaped by the `q` filter
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = _quote
    return env


def render(template: str, **context: Any) -> str:
    """Render one template (a path relative to this package) with `context`."""
    return environment().get_template(template).render(**context)
