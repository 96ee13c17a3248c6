"""The browser tier: a Playwright page in Debian's headless Chromium, for the live dashboard.

Tests here are marked `browser`. They need Playwright (a dev dependency) and
Chromium at $JUPITER_CHROMIUM (default /usr/bin/chromium, which
`scripts/setup-browser` installs). Without either they FAIL with a message
saying how to get it: a missing browser in CI must not pass as a skip.

Playwright's own browser download is never used (it needs a CDN that CI may
not reach); Playwright drives the Debian build through `executable_path`.
Playwright already adds `--headless` (Chromium's new headless mode, the only
one left in the full binary) and a fresh temporary `--user-data-dir` that it
deletes on close; passing `--user-data-dir` in `args` is an error there.

Playwright is imported inside the fixture, not at module level, so that a
machine without it fails these tests only instead of stopping the collection
of every tier.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM_ENV = "JUPITER_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
# The first seven are those scripts/setup-browser checks with; keep them in
# step. Without the background-networking, component-update and sync flags
# Chromium keeps calling Google's services, which on a closed network stall or
# fill the log; QUIC is off so it sends no UDP probes either.
# The resolver rule makes every host but localhost and 127.0.0.1 unreachable
# (addresses included: the rule applies to literals too), so a page that
# reaches for a CDN fails at once with ERR_NAME_NOT_RESOLVED instead of waiting
# on the network: the dashboard must work offline, from vendored files only.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)
# Playwright's default is 30 s; stated here so that a busy 2-core CI machine
# gets a known bound on every wait, not an implicit one.
PAGE_TIMEOUT_MS = 30_000
SETUP_HINT = "run scripts/setup-browser"


def chromium_path() -> Path:
    """The Chromium executable this tier drives, from $JUPITER_CHROMIUM or the Debian default."""
    return Path(os.environ.get(CHROMIUM_ENV, DEFAULT_CHROMIUM))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless Chromium per test module; each test gets its own context from it.

    Not one per session: Playwright's sync API keeps an event loop running in
    this thread while it is open, and tests of other tiers call `asyncio.run`.

    A browser start costs up to a second or so on a busy machine, a new context
    (fresh cookies, storage and cache) a few milliseconds, so tests stay
    isolated without paying for a browser each.
    """
    # Each failure is raised outside its `except`, so the report is the one-line
    # message and not a chained traceback of Playwright's internals.
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        missing: str | None = str(exc)
    else:
        missing = None
    if missing is not None:
        pytest.fail(f"the browser tier needs Playwright ({missing}); run scripts/setup-env dev", pytrace=False)
    executable = chromium_path()
    if not os.access(executable, os.X_OK):
        pytest.fail(f"the browser tier needs Chromium at {executable} (${CHROMIUM_ENV}); {SETUP_HINT}", pytrace=False)
    with sync_playwright() as playwright:
        browser: Browser | None = None
        try:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=list(CHROMIUM_ARGS))
        except Error as exc:
            failed = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if browser is None:
            pytest.fail(f"Chromium at {executable} did not start headless: {failed}; {SETUP_HINT}", pytrace=False)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium: Browser) -> Iterator[Page]:
    """A fresh page in its own browser context, closed (with the context) after the test."""
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        yield page
    finally:
        context.close()
