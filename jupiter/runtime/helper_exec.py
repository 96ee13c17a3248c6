"""Start a helper program tied to the agent's life: `python -m jupiter.runtime.helper_exec -- PROGRAM ARGS...`.

The kernel is asked to kill this process when the agent that started it
dies (`jupiter.runtime.processes.die_with_parent`), then the helper's own
program replaces it (`exec`), keeping the request. Done in a process of its
own rather than between fork and exec of the agent, which runs threads.
"""

from __future__ import annotations

import os
import sys

from jupiter.runtime.processes import die_with_parent


def main(argv: list[str]) -> None:
    """Exec `argv` (after a leading `--`) once the death signal is set."""
    program = argv[1:] if argv[:1] == ["--"] else argv
    if not program:
        sys.stderr.write("usage: python -m jupiter.runtime.helper_exec -- PROGRAM [ARGS...]\n")
        sys.exit(2)
    die_with_parent()
    try:
        os.execvp(program[0], program)  # noqa: S606 - an argument list the agent built from the plan
    except OSError as exc:
        sys.stderr.write(f"cannot start {program[0]}: {exc.strerror}\n")
        sys.exit(127)


if __name__ == "__main__":
    main(sys.argv[1:])
