"""A port where something else than an agent's control plane answers: named, not a traceback."""

from __future__ import annotations

import socket
import threading

import pytest

from jupiter.backends.control import DirectTransport, Unreachable


def test_a_port_answered_by_a_non_http_server_is_unreachable_with_a_hint() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def answer() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(1024)
            # What an agent's data plane answers an HTTP request with.
            connection.sendall(b'{"ok": false, "refusal": "refused", "error": "protocol error"}\n')

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        transport = DirectTransport({"node1": ("127.0.0.1", port)})
        with pytest.raises(Unreachable) as caught:
            transport.request("node1", "GET", "/health", None, "", "", 5.0)
    finally:
        thread.join(10)
        server.close()
    message = str(caught.value)
    assert message.startswith(
        f"agent node1 does not answer at http://127.0.0.1:{port}/health: what answers there is not HTTP"
    )
    assert message.endswith(f"is another program on port {port}?")
