"""What one id per request costs: polls (``GET /v1/responses/{id}``) through the whole app, in this
process, called as ASGI (no sockets: only the app is measured), in three variants measured in
turns in the same run: without the request-id middleware (the baseline), with it but its log line
off, and with it logging one line a request to a file at INFO (as ``leeway serve`` does). Prints
µs a poll (median of the rounds, and the spread) and the ratio of polls/s to the baseline.

    .venv/bin/python bench/request_log.py [--polls 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import FAKE_MODEL, add_keys, fake_settings

from leeway.app import build_app
from leeway.settings import Settings

VARIANTS = ("no middleware", "ids, no log line", "ids + log line")


async def call(app: Any, method: str, path: str, key: str, body: bytes = b"") -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {key}".encode()), (b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def bare(app: Any) -> Any:
    """The same app without its user middleware (the request ids)."""
    app.user_middleware = []
    app.middleware_stack = None
    return app


async def polls(app: Any, key: str, job_id: str, n: int) -> float:
    """Seconds a poll, over ``n`` polls."""
    start = time.perf_counter()
    for _ in range(n):
        status, _ = await call(app, "GET", f"/v1/responses/{job_id}", key)
        assert status == 200
    return (time.perf_counter() - start) / n


async def main(settings: Settings, key: str, n: int, rounds: int) -> None:
    folder = settings.data_dir
    log_file = folder / "requests.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    requests_log = logging.getLogger("leeway.requests")
    requests_log.addHandler(handler)
    requests_log.setLevel(logging.INFO)
    requests_log.propagate = False
    apps = {"with": build_app(settings), "without": bare(build_app(settings))}
    async with (
        apps["with"].router.lifespan_context(apps["with"]),
        apps["without"].router.lifespan_context(apps["without"]),
    ):
        body = orjson.dumps({"model": FAKE_MODEL, "input": "hi", "background": True})
        _, made = await call(apps["with"], "POST", "/v1/responses", key, body)
        job_id = orjson.loads(made)["id"]
        await polls(apps["with"], key, job_id, 200)  # warm both
        await polls(apps["without"], key, job_id, 200)
        times: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for _ in range(rounds):
            times[VARIANTS[0]].append(await polls(apps["without"], key, job_id, n))
            requests_log.disabled = True
            times[VARIANTS[1]].append(await polls(apps["with"], key, job_id, n))
            requests_log.disabled = False
            times[VARIANTS[2]].append(await polls(apps["with"], key, job_id, n))
    base = statistics.median(times[VARIANTS[0]])
    print(f"{n} polls x {rounds} rounds, in turns; {sum(1 for _ in log_file.open())} lines logged")
    print(f"{'variant':<20} {'µs/poll':>9} {'spread':>15} {'polls/s vs baseline':>20}")
    for variant, seen in times.items():
        median = statistics.median(seen)
        spread = f"{min(seen) * 1e6:.0f}–{max(seen) * 1e6:.0f}"
        print(f"{variant:<20} {median * 1e6:>9.0f} {spread:>15} {base / median:>19.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = fake_settings(Path(tempfile.mkdtemp(prefix="leeway-bench-")))
    [key] = add_keys(settings, "bench")
    asyncio.run(main(settings, key, args.polls, args.rounds))
