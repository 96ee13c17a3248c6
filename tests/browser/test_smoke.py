"""Smoke test of the browser tier: a page fed by server-sent events updates in headless Chromium.

The server is the test's own (http.server in a thread), so this checks the
tier itself: Playwright, the Debian Chromium, EventSource over localhost,
and that teardown leaves no thread or socket behind under filterwarnings=error.
"""

from __future__ import annotations

import http.server
import itertools
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    # Only for annotations: a module-level import would turn a missing Playwright
    # into a collection error that stops every tier, not a failure of this one.
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>sse smoke</title></head>
<body>
<p>count: <span id="count">none</span></p>
<script>
  const source = new EventSource("/events");
  source.onmessage = (event) => { document.getElementById("count").textContent = event.data; };
</script>
</body></html>
"""
# Seconds between two events; short so the test is quick, long enough not to busy a 2-core machine.
TICK = 0.05
# Bounds one stream (about a minute) so a handler never loops forever if teardown is missed.
MAX_EVENTS = 1200


class SseServer(http.server.ThreadingHTTPServer):
    """Serves PAGE at / and a counter as an event stream at /events until `stop` is set."""

    # Handler threads are joined by server_close(): none outlives the test.
    daemon_threads = False
    block_on_close = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stop = threading.Event()
        # Shared by every connection, so an EventSource reconnect continues upwards
        # instead of starting again at 1 (which would look like the counter going back).
        self.counter = itertools.count(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: SseServer

    def do_GET(self) -> None:
        if self.path == "/":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)
        elif self.path == "/events":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self._stream()
        else:
            self.send_error(404)

    def _stream(self) -> None:
        for _ in range(MAX_EVENTS):
            try:
                self.wfile.write(f"data: {next(self.server.counter)}\n\n".encode())
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return  # the page went away; nothing left to send to
            if self.server.stop.wait(TICK):
                return

    def log_message(self, format: str, *args: object) -> None:
        """Keep the request log out of the test output."""


@pytest.fixture
def sse_server() -> Iterator[SseServer]:
    server = SseServer()
    thread = threading.Thread(target=server.serve_forever, name="sse-server")
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join()


def count(page: Page) -> str | None:
    return page.text_content("#count")


def test_sse_counter_moves_in_the_browser(browser_page: Page, sse_server: SseServer) -> None:
    browser_page.goto(sse_server.url)

    browser_page.wait_for_function("() => /^[0-9]+$/.test(document.getElementById('count').textContent)")
    first = int(count(browser_page) or "")
    browser_page.wait_for_function("(first) => Number(document.getElementById('count').textContent) > first", arg=first)
    later = int(count(browser_page) or "")

    assert later > first >= 1
    assert browser_page.evaluate("() => source.readyState") == 1  # EventSource.OPEN: still streaming
