"""What does a delivery cost beyond the POST itself? The same N POSTs to the same loopback receiver
(a minimal asyncio HTTP/1.1 server in this process), at the same concurrency, twice: "raw" is
aiohttp posting a fixed body; "sender" is Leeway's sender draining N deliveries from a real SQLite
outbox (lease, render, sign with standardwebhooks, resolve and check the address, POST, record the
attempt in the store). Prints deliveries/s and the ratio to raw.

    .venv/bin/python bench/webhooks.py [--deliveries 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from leeway.settings import WebhookSettings
from leeway.store import open_store
from leeway.webhooks.guard import Guard
from leeway.webhooks.http import HttpPoster
from leeway.webhooks.outbox import Delivery
from leeway.webhooks.sender import Sender

BODY = (
    b'{"id":"resp_x","object":"response","status":"completed","output_text":"' + b"x" * 600 + b'"}'
)
DELIVERED = "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'"
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(OK)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def raw(url: str, n: int, concurrency: int) -> float:
    left = n
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:  # `concurrency` workers, as the sender keeps that many going
            nonlocal left
            while left > 0:
                left -= 1
                headers = {"content-type": "application/json"}
                async with http.post(url, data=BODY, headers=headers) as r:
                    assert r.status == 200

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


async def sender(url: str, n: int, concurrency: int, folder: Path) -> float:
    store = open_store(folder / "bench.db")
    outbox = store
    config = WebhookSettings(
        allow=(ipaddress.ip_network("127.0.0.0/8"),), concurrency=concurrency, poll_seconds=0.01
    )
    now = time.time()
    for i in range(n):
        await outbox.enqueue(Delivery(f"whmsg_{i}", "t", "bench", str(i), url, "tok", now, now))

    async def render(tenant: str, subject: str) -> bytes:
        return BODY

    poster = HttpPoster(Guard(config.allow), timeout=30, connections=concurrency)
    s = Sender(outbox, {"bench": render}, poster, config)
    start = time.perf_counter()
    await s.start()
    with sqlite3.connect(folder / "bench.db") as db:
        while db.execute(DELIVERED).fetchone()[0] < n:  # noqa: ASYNC110 - another connection
            await asyncio.sleep(0.02)
    took = time.perf_counter() - start
    await s.stop()
    await store.close()
    return took


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    n, c = args.deliveries, args.concurrency
    with tempfile.TemporaryDirectory() as folder:
        base = await raw(url, n, c)
        ours = await sender(url, n, c, Path(folder))
    server.close()
    print(f"{'':8} {'deliveries/s':>12} {'vs raw':>7}")
    print(f"{'raw':8} {n / base:12.0f} {1.0:7.2f}")
    print(f"{'sender':8} {n / ours:12.0f} {base / ours:7.2f}")


if __name__ == "__main__":
    asyncio.run(main())
