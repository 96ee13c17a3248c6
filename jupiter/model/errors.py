"""Domain exceptions.

Every problem Jupiter reports to a user is one of these. The CLI turns them
into a single line on stderr and an exit code, so messages must say where the
problem is and how to fix it, never just what went wrong.
"""

from __future__ import annotations

from pathlib import Path


class JupiterError(Exception):
    """Base of every error Jupiter reports to a user."""

    exit_code = 1


class InputError(JupiterError):
    """A user-supplied file or option is wrong; the message names where and how to fix."""

    exit_code = 2

    def __init__(self, path: Path | str | None, line: int | None, message: str) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.message = message
        super().__init__(str(self))

    def location(self) -> str:
        """`file:line` (or just `file`) of the problem, empty when unknown."""
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}" if self.line is not None else str(self.path)

    def __str__(self) -> str:
        where = self.location()
        return f"{where}: {self.message}" if where else self.message


class ValidationFailed(JupiterError):
    """One or more inputs are invalid; carries every problem found, one per line."""

    exit_code = 2

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))
