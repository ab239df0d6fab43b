"""How fast is a large batch accepted, and how much memory does taking it in cost the server?

Builds a 100,000-request batch of about 100 MB and one of about 256 MB (the cap), posts each to
`leeway serve --engine fake`, and prints the time until the server answered "accepted", requests
accepted per second, and the server's peak RSS growth over its RSS just before the post, next to the
body size. Baseline, in this process: parsing the same body whole with orjson (what a server that
reads the body into memory does at the least), its time and its RSS growth.
Targets: 100,000 requests accepted in ≤ 10 s; RSS growth ≤ 1.5× the body (≤ 0.5× the real goal).

    .venv/bin/python bench/batch_ingest.py [--requests 100000]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.server import LeewayServer

MODEL = "fake-model"
CONFIG = f"""
max_batch_bytes = 268435456

[[models]]
id = "{MODEL}"
engine = "fake"
context = 8192
"""
MIB = 1024 * 1024


def body(requests: int, target_bytes: int) -> bytes:
    pad = max(0, target_bytes // requests - 190)
    words = ("lorem ipsum dolor sit amet " * (pad // 27 + 1))[:pad]
    items = [
        {
            "custom_id": f"request-{i}",
            "params": {
                "model": MODEL,
                "max_output_tokens": 64,
                "input": [{"role": "user", "content": f"Question {i}: {words}"}],
                "metadata": {"completion_window": "flex"},
            },
        }
        for i in range(requests)
    ]
    return orjson.dumps({"endpoint": "/v1/responses", "label": "bench", "requests": items})


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def reset_peak(pid: int) -> None:
    """Start VmHWM from the current RSS (Linux: writing 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def baseline(data: bytes) -> tuple[float, float]:
    """Seconds and RSS growth (MiB) to parse the body whole in this process."""
    gc.collect()
    me = os.getpid()
    reset_peak(me)
    before = rss_kb(me, "VmRSS")
    start = time.perf_counter()
    parsed = orjson.loads(data)
    seconds = time.perf_counter() - start
    grown = (rss_kb(me, "VmHWM") - before) / 1024
    del parsed
    return seconds, grown


def post(data: bytes, requests: int) -> tuple[float, float]:
    """Seconds until a fresh server accepted the batch, and its peak RSS growth (MiB)."""
    with tempfile.TemporaryDirectory() as tmp:
        server = LeewayServer(Path(tmp), CONFIG).start()
        assert server.proc is not None
        try:
            headers = {"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"}
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=600) as http:
                time.sleep(1)
                reset_peak(server.proc.pid)
                before = rss_kb(server.proc.pid, "VmRSS")
                start = time.perf_counter()
                r = http.post("/batches", content=data)
                seconds = time.perf_counter() - start
                grown = (rss_kb(server.proc.pid, "VmHWM") - before) / 1024
        finally:
            server.stop()
    assert r.status_code == 200, r.text[:500]
    assert r.json()["request_counts"] == requests
    return seconds, grown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    args = parser.parse_args()
    rows = []
    for target in (100 * 1000 * 1000, 256 * MIB - 4 * MIB):
        data = body(args.requests, target)
        base_s, base_mb = baseline(data)
        seconds, grown = post(data, args.requests)
        rows.append((len(data) / MIB, seconds, grown, base_s, base_mb))
        del data
    print(f"\n{args.requests:,} requests per batch (fake engine; RSS growth over the server's RSS)")
    print(
        f"{'body MiB':>9} {'accepted s':>11} {'req/s':>8} {'RSS +MiB':>9} {'RSS/body':>9}"
        f" {'orjson s':>9} {'orjson +MiB':>12} {'orjson RSS/body':>16}"
    )
    for mb, seconds, grown, base_s, base_mb in rows:
        print(
            f"{mb:9.1f} {seconds:11.2f} {args.requests / seconds:8.0f} {grown:9.1f}"
            f" {grown / mb:9.2f} {base_s:9.2f} {base_mb:12.1f} {base_mb / mb:16.2f}"
        )


if __name__ == "__main__":
    main()
