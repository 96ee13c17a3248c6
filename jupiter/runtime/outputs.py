"""Which files are a task's outputs: only regular files inside the frame's `pathout`.

`task()` returns the paths of its outputs (relative to `pathout`, or
absolute). Each must be a regular file — not a symbolic link, a folder or
anything else — whose real path lies inside `pathout`: `../../etc/hostname`,
`/etc/passwd` or a link to `/etc/shadow` would otherwise be read by the agent
and sent to the task's children and home. Anything else fails the frame.

A task that returns nothing (`None` or `[]`) has its outputs found the way
the original found them, which forwarded every file closed in the output
folder and ignored `task()`'s return value: the regular files it wrote
directly in `pathout`, in name order (names starting with `.` and folders
are left out). FLAG's rules are then the same as for returned outputs; with
FLAG false the i-th file by name goes to the i-th child (the original sent
them in the order they were closed, which the file system does not keep, so
name them to sort in child order, e.g. `0_left.txt`, `1_right.txt`).

This runs in the agent, not in the worker: the worker runs user code, which
could make it answer anything.
"""

from __future__ import annotations

import os
import stat


def _refusal(task: str, verb: str, shown: str, path: str, folder: str) -> str | None:
    """Why `path` (as the task named it, `shown`; `verb`: returned or wrote) is not an output, or None."""
    fix = "write outputs into pathout and return their paths"
    who = f"{task} {verb}"
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return f"{who} {shown!r}, which does not exist; {fix}"
    except OSError as exc:
        return f"{who} {shown!r}, which cannot be read ({exc.strerror}); {fix}"
    if stat.S_ISLNK(info.st_mode):
        return f"{who} {shown!r}, a symbolic link; only regular files inside pathout are sent ({fix})"
    if not stat.S_ISREG(info.st_mode):
        return f"{who} {shown!r}, which is not a regular file; {fix}"
    real = os.path.realpath(path)
    if os.path.commonpath([real, folder]) != folder:
        return f"{who} {shown!r}, which is outside its pathout; only files inside pathout are sent ({fix})"
    return None


def task_outputs(task: str, pathout: str, returned: list[str] | None) -> tuple[list[str], bool] | str:
    """(output paths, whether they were found in pathout rather than returned), or why the frame fails."""
    folder = os.path.realpath(pathout)
    if returned:
        paths = []
        for output in returned:
            path = os.path.join(pathout, output)  # an absolute path stays as it is
            problem = _refusal(task, "returned", output, path, folder)
            if problem is not None:
                return problem
            paths.append(os.path.realpath(path))
        return paths, False
    found = []
    with os.scandir(pathout) as entries:
        names = sorted(entry.name for entry in entries if not entry.name.startswith("."))
    for name in names:
        path = os.path.join(pathout, name)
        if os.path.isdir(path) and not os.path.islink(path):
            continue  # a scratch folder of the task, not an output
        problem = _refusal(task, "wrote", name, path, folder)
        if problem is not None:
            return problem
        found.append(os.path.realpath(path))
    return found, True
