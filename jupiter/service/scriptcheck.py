"""Checking an app's task scripts without running them in our own process.

Importing user code can do anything (print, hang, exit, crash the
interpreter), so the scripts are imported in a child Python process that
reports, per script, whether it imports and has `task(filename, pathin,
pathout)` (and a zero-argument `main()` if it has one). Run as
`python -m jupiter.service.scriptcheck` with a JSON request on stdin.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

from jupiter.model.errors import InputError

TIMEOUT_SECONDS = 60.0


def _problem_line(script: Path, exc: BaseException) -> int | None:
    """Line of the script where an import failure started, if it is in the script."""
    if isinstance(exc, SyntaxError) and exc.filename == str(script):
        return exc.lineno
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if Path(frame.filename) == script]
    return lines[-1] if lines else None


def _check_one(task: str, script: Path) -> dict[str, Any]:
    """Import one script and check its functions; runs in the child process."""
    spec = importlib.util.spec_from_file_location(f"_jupiter_check_{task}", script)
    if spec is None or spec.loader is None:
        return {"line": None, "message": "cannot be loaded as a Python module"}
    module = importlib.util.module_from_spec(spec)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            spec.loader.exec_module(module)
    # User code may raise anything, SystemExit included; it is reported, not hidden.
    except BaseException as exc:  # noqa: BLE001
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return {
            "line": _problem_line(script, exc),
            "message": f"fails to import ({text}); fix the script or add what it needs to requirements.txt",
        }
    func = getattr(module, "task", None)
    if not callable(func):
        return {
            "line": None,
            "message": "defines no function `task`; add `def task(filename, pathin, pathout)` "
            "returning the list of output paths",
        }
    line = getattr(getattr(func, "__code__", None), "co_firstlineno", None)
    try:
        inspect.signature(func).bind("input.txt", "/in", "/out")
    except TypeError:
        return {
            "line": line,
            "message": f"task{inspect.signature(func)} has the wrong arguments; Jupiter calls "
            "task(filename, pathin, pathout)",
        }
    except ValueError:
        pass  # builtins without a signature cannot be checked; they are callable
    main = getattr(module, "main", None)
    if main is not None:
        main_line = getattr(getattr(main, "__code__", None), "co_firstlineno", None)
        if not callable(main):
            return {"line": None, "message": "`main` is not a function; make it `def main()` or remove it"}
        try:
            inspect.signature(main).bind()
        except TypeError:
            return {
                "line": main_line,
                "message": f"main{inspect.signature(main)} must take no arguments; it runs the task on sample data",
            }
        except ValueError:
            pass
    return {"line": None, "message": None}


def _child(request: dict[str, Any]) -> dict[str, Any]:
    scripts_dir = request["scripts_dir"]
    sys.path.insert(0, scripts_dir)
    return {task: _check_one(task, Path(path)) for task, path in request["scripts"].items()}


def _environment(python_path: Path | None) -> dict[str, str] | None:
    if python_path is None:
        return None
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(python_path), env.get("PYTHONPATH"))))
    return env


def check_scripts(
    scripts_dir: Path, scripts: dict[str, Path], timeout: float = TIMEOUT_SECONDS, python_path: Path | None = None
) -> list[InputError]:
    """Import every script in a child process; return one InputError per broken script.

    `python_path`: the app's installed requirements (`jupiter.service.app_env`), searched first.
    """
    request = {
        "scripts_dir": str(scripts_dir.resolve()),
        "scripts": {task: str(path.resolve()) for task, path in scripts.items()},
    }
    try:
        done = subprocess.run(  # argument list, our own interpreter
            [sys.executable, "-m", "jupiter.service.scriptcheck"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=scripts_dir,
            check=False,
            env=_environment(python_path),
        )
    except subprocess.TimeoutExpired:
        return [
            InputError(
                scripts_dir,
                None,
                f"importing the scripts took more than {timeout:.0f} s; move slow work from module level into task()",
            )
        ]
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [
            InputError(
                scripts_dir,
                None,
                f"importing the scripts crashed the checker (exit {done.returncode}: {tail}); "
                "a script kills the interpreter at import time",
            )
        ]
    errors = []
    for task, path in scripts.items():
        result = report[task]
        if result["message"]:
            errors.append(InputError(path, result["line"], result["message"]))
    return errors


if __name__ == "__main__":
    sys.stdout.write(json.dumps(_child(json.load(sys.stdin))) + "\n")
