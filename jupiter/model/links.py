"""The link list (`[PROFILING] LINKS`, the original's `link_list.txt`): which links the network profiler probes.

One `source destination` pair per line (a `SOURCE DESTINATION` header line
is allowed); both must be nodes with an agent, and a link joins two
different nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jupiter.model.errors import InputError
from jupiter.model.textfile import read_text


def parse_link_list(path: Path, agents: Sequence[str]) -> list[tuple[str, str]]:
    """The links of a link list file; InputError naming file:line on the first bad line."""
    links: list[tuple[str, str]] = []
    for number, raw in enumerate(read_text(path, "link list").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InputError(path, number, f"expected `source destination`, got {line!r}")
        if parts[0].upper().startswith("SOURCE"):
            continue
        for name in parts:
            if name not in agents:
                raise InputError(path, number, f"node {name!r} has no agent; use nodes of nodes.txt: {sorted(agents)}")
        if parts[0] == parts[1]:
            raise InputError(path, number, f"a link joins two different nodes, not {parts[0]} to itself")
        links.append((parts[0], parts[1]))
    return links
