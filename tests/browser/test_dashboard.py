"""The live dashboard of a real deployment (local backend, agent processes) in headless Chromium.

Frames stream through the fan app while the page is open; the test logs in
with the one-time link `jupiter deploy` prints, and checks that the task
stream gets bars (the page counts those it holds and those it drew on the
canvas) and that the counters move. It also checks that the page and its
data stay closed to a browser that has not logged in, and that a login link
works once.
"""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jupiter.model.deployment_spec import resolve_spec
from jupiter.model.workspace import load_workspace
from jupiter.service.dashboard import dashboard_links
from jupiter.service.deploy import deploy, teardown
from jupiter.service.record import Deployment
from jupiter.service.run import submit_data
from tests.runtime.conftest import DAG, JOIN, LOWER, MAPPING, NODES, SPLIT, UPPER

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.processes]

SUBMIT_EVERY = 0.25
"""Seconds between two frames while the page is open (a light stream for a busy 2-core machine)."""
URL = re.compile(r"^dashboard: (http://127\.0\.0\.1:\d+/dashboard/login\?code=[A-Za-z0-9_-]+)$")


def _workdir(root: Path) -> Path:
    app = root / "app_specific_files" / "fan"
    (app / "scripts").mkdir(parents=True)
    (app / "sample_input").mkdir()
    (app / "configuration.txt").write_text(DAG)
    for name, source in (("split", SPLIT), ("upper", UPPER), ("lower", LOWER), ("join", JOIN)):
        (app / "scripts" / f"{name}.py").write_text(source)
    (app / "sample_input" / "a.txt").write_text("frame a\n")
    (root / "nodes.txt").write_text(NODES)
    (root / "mapping.txt").write_text(MAPPING)
    (root / "jupiter_config.ini").write_text(
        "[CONFIG]\nSTATIC_MAPPING = 1\n[DEPLOY]\nAPP = app_specific_files/fan\nMAPPING = mapping.txt\n"
    )
    return root


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    root = _workdir(tmp_path)
    workspace = load_workspace(root / "jupiter_config.ini", root / "nodes.txt", None)
    deployed = deploy(resolve_spec(workspace), timeout=60)
    try:
        yield deployed
    finally:
        teardown(deployed)


@pytest.fixture
def stream(deployment: Deployment) -> Iterator[None]:
    """Frames submitted one after another in the background while the test runs."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def feed() -> None:
        count = 0
        while not stop.wait(SUBMIT_EVERY):
            count += 1
            try:
                submit_data(deployment, [(f"in{count}.txt", f"frame {count}\n".encode())])
            except Exception as exc:  # noqa: BLE001 - kept and raised by the test, with its type
                failures.append(exc)
                return

    thread = threading.Thread(target=feed, name="frames")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    assert failures == []


def _link(deployment: Deployment) -> str:
    first = dashboard_links(deployment)[0]
    match = URL.match(first)
    assert match is not None, first
    return match.group(1)


def _number(page: Page, selector: str) -> int:
    return int(page.text_content(selector) or "-1")


def test_the_task_stream_gets_bars_and_the_counters_move(
    deployment: Deployment, stream: None, browser_page: Page
) -> None:
    page = browser_page
    page.goto(_link(deployment))
    # The login link set the session cookie and led to the page itself.
    assert page.url.endswith("/dashboard/")
    page.wait_for_function("() => document.getElementById('connection').textContent === 'live'")
    assert page.text_content("#app") == "fan"
    page.wait_for_function("() => Number(document.body.dataset.bars) > 0")
    page.wait_for_function("() => Number(document.body.dataset.drawn) > 0")
    done = _number(page, "#done")
    page.wait_for_function("(first) => Number(document.getElementById('done').textContent) > first", arg=done)
    assert _number(page, "#submitted") >= _number(page, "#done") > done >= 0
    assert _number(page, "#failed") == 0
    # Bars are task runs on the mapped nodes, each of a task of the DAG.
    bars = page.evaluate("() => window.jupiterDashboard.state.bars.map((b) => [b.task, b.node, b.ok])")
    expected = {"split": "node1", "upper": "node2", "lower": "node3", "join": "node1"}
    assert bars and all(expected[task] == node and ok for task, node, ok in bars)
    # The DAG shows each task with its node.
    boxes = page.eval_on_selector_all("#dag g[data-task]", "gs => gs.map((g) => g.textContent)")
    assert sorted(boxes)[0].startswith("join@ node1")
    # The CPU chart got every node's reports (agents report every 2 s).
    page.wait_for_function("() => Object.keys(window.jupiterDashboard.state.resources).length === 4", timeout=20_000)


def test_the_dashboard_is_closed_without_a_login_and_a_link_works_once(
    deployment: Deployment, chromium: Browser
) -> None:
    link = _link(deployment)
    base = link.split("/dashboard/")[0]
    for path, status in (("/dashboard/events", 401), ("/dashboard/snapshot", 401), ("/dashboard/", 401)):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + path, timeout=10)
        assert refused.value.code == status
        refused.value.close()
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(base + "/dashboard/")
        assert "jupiter dashboard" in (page.text_content("body") or "")
        page.goto(link)
        assert page.url.endswith("/dashboard/")
        again = page.goto(link)
        assert again is not None and again.status == 403
        assert "used already or has expired" in (page.text_content("body") or "")
    finally:
        context.close()
