"""`validate` names module-level state a task script changes (issue 14, item 7)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from jupiter.model.app import load_app
from jupiter.model.script_state import find_state

# The shape of the original's simpledetector: a module-level dict per host, filled by task().
DETECTOR = textwrap.dedent(
    """\
    import os
    from collections import defaultdict

    THRESHOLD = 10
    NAMES = ("a", "b")
    counts = defaultdict(int)
    seen = []
    cache = {}
    total = 0


    def task(filename, pathin, pathout):
        global total
        for line in open(os.path.join(pathin, filename)):
            counts[line.split()[0]] += 1
        seen.append(filename)
        total = total + 1
        local = {}
        local["x"] = 1
        return []


    def shadow(cache):
        cache["k"] = 1
    """
)


def test_finds_changed_containers_and_globals() -> None:
    found = [(f.name, f.defined, f.function, f.line, f.how) for f in find_state(DETECTOR)]
    assert found == [
        ("counts", 6, "task", 15, "is changed in place"),
        ("seen", 7, "task", 16, "is changed in place"),
        ("total", 9, "task", 13, "is rebound through `global`"),
    ]


def test_reads_and_locals_are_not_state() -> None:
    source = textwrap.dedent(
        """\
        TABLE = {"a": 1}
        ITEMS = [1, 2]


        def task(filename, pathin, pathout):
            ITEMS = []
            ITEMS.append(TABLE["a"])
            return [ITEMS]
        """
    )
    assert find_state(source) == []


DAG = "2\ndetect 1 true home\nplain 1 true home\n"


def _app(tmp_path: Path, config_json: str | None = None) -> Path:
    app = tmp_path / "demo"
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "sample_input" / "a.txt").write_text("a\n")
    (app / "configuration.txt").write_text("2\ndetect 1 true home\nplain 1 true home\n")
    (app / "scripts" / "detect.py").write_text(DETECTOR)
    (app / "scripts" / "plain.py").write_text("def task(filename, pathin, pathout):\n    return []\n")
    if config_json is not None:
        (app / "scripts" / "config.json").write_text(config_json)
    return app


def test_app_warnings_say_what_each_worker_mode_does(tmp_path: Path) -> None:
    script = tmp_path / "demo" / "scripts" / "detect.py"
    app = load_app(_app(tmp_path))
    # By default (`auto`) the script that changes module-level state runs fresh, the other resident.
    assert app.workers == {"detect": "fresh", "plain": "resident"}
    assert app.warnings[0] == (
        f"{script}:15: module-level `counts` is changed in place in task() (line 6); the task therefore runs every "
        "frame in a fresh copy of the imported script, as the original did, so changes are lost after each frame; "
        'set "worker": "resident" in scripts/config.json if they should carry over'
    )
    assert len(app.warnings) == 3
    (tmp_path / "demo" / "scripts" / "config.json").write_text('{"worker": "fresh"}')
    fresh = load_app(tmp_path / "demo")
    assert fresh.workers == {"detect": "fresh", "plain": "fresh"}
    assert fresh.warnings[0].endswith(
        "(line 6); every frame runs in a fresh copy of the imported script (as in the original), so changes are "
        'lost after each frame; set "worker": "resident" in scripts/config.json if they should carry over'
    )
    (tmp_path / "demo" / "scripts" / "config.json").write_text('{"worker": {"detect": "resident"}}')
    resident = load_app(tmp_path / "demo")
    assert resident.workers == {"detect": "resident", "plain": "resident"}
    assert resident.warnings[2] == (
        f"{script}:13: module-level `total` is rebound through `global` in task() (line 9); it runs in a "
        'resident worker, so what one frame leaves there the next frame sees; set "worker": "fresh" in '
        "scripts/config.json to start every frame from the imported script, as the original did"
    )


def test_a_script_that_does_not_parse_is_left_to_the_import_check(tmp_path: Path) -> None:
    app = _app(tmp_path)
    (app / "scripts" / "detect.py").write_text("def task(:\n")
    assert load_app(app).warnings == ()
