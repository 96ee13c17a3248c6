"""Data-plane server choice: how many 1 KiB files per second each candidate accepts.

Candidates, all receiving on 127.0.0.1 and writing each file to disk the way
an agent does (temporary name, then a link under the real name):
- ours: raw asyncio streams, length-prefixed JSON header + payload, one
  answer line per message (what the agents use), one message per round trip;
- ours, batched: the same with 64 messages per round trip (what agents do
  when frames stream);
- aiohttp: an asyncio HTTP server, one POST per file, keep-alive client;
- Flask: the control plane's stack (werkzeug threaded server), one POST per file.

Usage: python bench/runtime/dataplane.py [--messages 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import logging
import os
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupiter.backends.local import free_ports
from jupiter.model.plan import NodeAddress, Plan, TaskSpec
from jupiter.runtime.peers import Peer
from jupiter.runtime.protocol import Outgoing
from jupiter.runtime.spool import store_input

PAYLOAD = b"x" * 1024
TOKEN = secrets.token_hex(16)


def _plan(root: str, port: int) -> Plan:
    script = os.path.join(root, "t.py")
    with open(script, "w") as handle:
        handle.write("def task(f, i, o):\n    return []\n")
    return Plan(
        deployment="bench",
        app_name="bench",
        app_path=root,
        tasks={"t": TaskSpec("t", 1, True, ("home",), (), script)},
        order=("t",),
        mapping={"t": "n1"},
        nodes={"n1": NodeAddress("n1", "compute", "127.0.0.1", port, free_ports(1)[0])},
        ingress=("t",),
        home="n1",
    )


def bench_ours(messages: int, batch: int) -> float:
    from jupiter.model.layout import DeploymentLayout
    from jupiter.runtime.agent import Agent

    async def main() -> float:
        with tempfile.TemporaryDirectory() as root:
            port = free_ports(1)[0]
            agent = Agent(_plan(root, port), "n1", TOKEN, DeploymentLayout(Path(root)))
            agent.recover()
            # Only the data server: no workers, so received frames just wait.
            server = await asyncio.start_server(agent.handle_connection, "127.0.0.1", port)
            peer = Peer("n1", "127.0.0.1", port, pool_size=1)
            headers = [
                {
                    "kind": "file",
                    "token": TOKEN,
                    "frame": f"f{i}",
                    "task": "t",
                    "src": "home",
                    "idx": 0,
                    "name": "in.bin",
                }
                for i in range(messages)
            ]
            start = time.perf_counter()
            for first in range(0, messages, batch):
                parts = [Outgoing.of(header, PAYLOAD) for header in headers[first : first + batch]]
                outcome, _ = await peer.send_batch(parts, TOKEN)
                assert not any(outcome), outcome
            elapsed = time.perf_counter() - start
            await peer.close()
            server.close()
            agent.outbox.journal.close()
            agent.inbox.close()
            return messages / elapsed

    return asyncio.run(main())


def _serve_thread(target: Callable[[], Any]) -> None:
    threading.Thread(target=target, daemon=True).start()


def bench_aiohttp(messages: int) -> float:
    from aiohttp import ClientSession, web

    async def main() -> float:
        with tempfile.TemporaryDirectory() as root:
            port = free_ports(1)[0]
            counter = iter(range(10**9))

            async def receive(request: web.Request) -> web.Response:
                data = await request.read()
                folder = os.path.join(root, f"d{next(counter)}")
                os.mkdir(folder)
                store_input(folder, "f", "home@0", "in.bin", data)
                return web.json_response({"ok": True})

            app = web.Application()
            app.router.add_post("/file", receive)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            async with ClientSession() as session:
                start = time.perf_counter()
                for _ in range(messages):
                    async with session.post(f"http://127.0.0.1:{port}/file", data=PAYLOAD) as response:
                        await response.read()
                elapsed = time.perf_counter() - start
            await runner.cleanup()
            return messages / elapsed

    return asyncio.run(main())


def bench_flask(messages: int) -> float:
    from flask import Flask, jsonify, request
    from werkzeug.serving import make_server

    with tempfile.TemporaryDirectory() as root:
        port = free_ports(1)[0]
        app = Flask("bench")
        counter = iter(range(10**9))

        @app.post("/file")
        def receive() -> Any:
            folder = os.path.join(root, f"d{next(counter)}")
            os.mkdir(folder)
            store_input(folder, "f", "home@0", "in.bin", request.get_data())
            return jsonify({"ok": True})

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = make_server("127.0.0.1", port, app, threaded=True)
        _serve_thread(server.serve_forever)
        connection = http.client.HTTPConnection("127.0.0.1", port)
        start = time.perf_counter()
        for _ in range(messages):
            connection.request("POST", "/file", body=PAYLOAD)
            connection.getresponse().read()
        elapsed = time.perf_counter() - start
        server.shutdown()
        return messages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    candidates: dict[str, Callable[[], float]] = {
        "ours (1 per round trip)": lambda: bench_ours(args.messages, 1),
        "ours (batches of 64)": lambda: bench_ours(args.messages, 64),
        "aiohttp POST": lambda: bench_aiohttp(args.messages),
        "Flask/werkzeug POST": lambda: bench_flask(args.messages),
    }
    rates: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.rounds):
        for name, run in candidates.items():
            rates[name].append(run())
    base = statistics.median(rates["Flask/werkzeug POST"])
    print(f"{args.messages} files of 1 KiB, median of {args.rounds} rounds (interleaved)")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:<26} {median:>9.0f} files/s   x{median / base:.1f} vs Flask")


if __name__ == "__main__":
    main()
