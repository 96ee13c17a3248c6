"""The context object every command receives from the `jupiter` group."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from jupiter.model.workspace import Workspace, load_workspace


@dataclass
class CliContext:
    """Options of the `jupiter` group, shared by every command."""

    config_path: Path
    nodes_path: Path
    app_path: Path | None
    verbose: int

    def workspace(self, scripts: bool = True) -> Workspace:
        """Load and validate the working folder the options point to."""
        return load_workspace(self.config_path, self.nodes_path, self.app_path, scripts=scripts)


pass_context = click.make_pass_decorator(CliContext)
