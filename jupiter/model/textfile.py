"""Reading the small line-oriented text files of the original formats.

All of them share the same needs: a clear error when the file is missing,
unreadable, not text or empty, and line numbers kept for later messages.
Blank lines and `#` comments are skipped, which old files never contain, so
they still load unchanged.
"""

from __future__ import annotations

from pathlib import Path

from jupiter.model.errors import InputError


def read_text(path: Path, what: str, missing: str = "create it or point to it with the right option") -> str:
    """Read a whole UTF-8 text file, turning OS and decoding failures into InputError.

    `missing`: how to fix a file that does not exist, for the message.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, None, f"{what} not found; {missing}") from None
    except IsADirectoryError:
        raise InputError(path, None, f"{what} is a folder, expected a file") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot read {what}: {exc.strerror}; check its permissions") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"{what} is not UTF-8 text (bad byte at offset {exc.start})") from None


def significant_lines(
    path: Path, what: str, missing: str = "create it or point to it with the right option"
) -> list[tuple[int, str]]:
    """Return `(line_number, stripped_text)` for every non-blank, non-comment line.

    Raises InputError when the file holds nothing significant at all.
    """
    text = read_text(path, what, missing)
    lines = [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise InputError(path, None, f"{what} is empty; see the format in docs/formats.md")
    return lines
