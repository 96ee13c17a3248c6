"""`--output text|json`, shared by every command that has a machine-readable form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from jupiter.model.outputs import dumps

OUTPUT_OPTION = click.option(
    "--output",
    "-o",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people; json prints one JSON document on stdout (schema in docs/events.md).",
)


def echo_json(document: Mapping[str, Any]) -> None:
    """Print a document on stdout (progress and warnings stay on stderr)."""
    click.echo(dumps(document))
