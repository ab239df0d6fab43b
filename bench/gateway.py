"""The gateway alone, under the reference client's shape: N background Responses requests at
concurrency C (AsyncOpenAI + aiohttp + a semaphore, as in shared/seeds/000), then one poll of each.

Against `leeway serve --engine fake` (instant engine: only the gateway and the store are measured)
and, in the same run, against the baseline (bench/baseline_app.py: FastAPI, validation, one
synchronous=FULL SQLite commit per request). Prints creates/s, polls/s, create p50/p99 latency,
errors, the ratios, and Leeway's peak RSS; then polls/s again with a lean client (raw aiohttp),
since on two shared cores the SDK client itself is what limits the polls. Targets: creates ≥ 1.0× baseline, polls ≥ 3,000/s,
peak RSS ≤ 1 GB, zero errors.

    .venv/bin/python bench/gateway.py [--requests 20000] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import openai
from openai import AsyncOpenAI, DefaultAioHttpClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.server import LeewayServer, free_port  # noqa: E402


@dataclass
class Result:
    creates_per_s: float
    polls_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    ids: list[str]
    lean_polls_per_s: float = 0.0


async def drive(base_url: str, key: str, model: str, n: int, concurrency: int) -> Result:
    async with AsyncOpenAI(
        base_url=base_url, api_key=key, max_retries=0, http_client=DefaultAioHttpClient()
    ) as client:
        gate, latencies, errors = asyncio.Semaphore(concurrency), [], 0

        async def create(i: int) -> str | None:
            nonlocal errors
            async with gate:
                start = time.perf_counter()
                try:
                    r = await client.responses.create(
                        model=model,
                        input=[{"role": "user", "content": f"TASK {i}: hello"}],
                        max_output_tokens=16,
                        background=True,
                    )
                except openai.OpenAIError:  # counted, not raised: the run goes on
                    errors += 1
                    return None
                latencies.append(time.perf_counter() - start)
                return r.id

        async def poll(rid: str) -> None:
            nonlocal errors
            async with gate:
                try:
                    await client.responses.retrieve(rid)
                except openai.OpenAIError:  # counted, not raised: the run goes on
                    errors += 1

        start = time.perf_counter()
        ids = [i for i in await asyncio.gather(*(create(i) for i in range(n))) if i]
        created = time.perf_counter() - start
        start = time.perf_counter()
        await asyncio.gather(*(poll(i) for i in ids))
        polled = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return Result(n / created, len(ids) / polled, q[49] * 1000, q[98] * 1000, errors, ids)


async def lean_polls(base_url: str, key: str, ids: list[str], concurrency: int) -> float:
    """Polls/s the server sustains when the client is cheap (raw aiohttp, no SDK): on two shared
    cores the SDK client, not the server, limits the polls above."""
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        gate = asyncio.Semaphore(concurrency)

        async def poll(rid: str) -> None:
            async with gate, session.get(f"{base_url}/responses/{rid}") as r:
                await r.read()
                assert r.status == 200, r.status

        start = time.perf_counter()
        await asyncio.gather(*(poll(rid) for rid in ids))
        return len(ids) / (time.perf_counter() - start)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_baseline(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "BASELINE_DB": str(tmp / "baseline.db")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.baseline_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url + "/v1/models", timeout=1)
            return proc, url + "/v1"
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("baseline did not start")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    model = "HuggingFaceTB/SmolLM2-135M-Instruct"
    with tempfile.TemporaryDirectory() as tmp:
        leeway = LeewayServer(Path(tmp) / "leeway", args=("--engine", "fake")).start()
        baseline, base_url = start_baseline(Path(tmp))
        try:
            lw = asyncio.run(
                drive(leeway.base_url, leeway.key, model, args.requests, args.concurrency)
            )
            lw.lean_polls_per_s = asyncio.run(
                lean_polls(leeway.base_url, leeway.key, lw.ids, args.concurrency)
            )
            assert leeway.proc is not None
            rss = peak_rss_mb(leeway.proc.pid)
            bl = asyncio.run(drive(base_url, "none", model, args.requests, args.concurrency))
            bl.lean_polls_per_s = asyncio.run(
                lean_polls(base_url, "none", bl.ids, args.concurrency)
            )
        finally:
            leeway.stop()
            baseline.terminate()
            baseline.wait()

    print(
        f"\n{args.requests:,} background creates at concurrency {args.concurrency}, then one "
        "poll of each"
    )
    print(
        f"{'':>9} {'creates/s':>10} {'polls/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7} "
        f"{'polls/s (lean client)':>22}"
    )
    for name, r in (("leeway", lw), ("baseline", bl)):
        print(
            f"{name:>9} {r.creates_per_s:>10.0f} {r.polls_per_s:>9.0f} {r.p50_ms:>7.1f} "
            f"{r.p99_ms:>7.1f} {r.errors:>7} {r.lean_polls_per_s:>22.0f}"
        )
    print(
        f"{'ratio':>9} {lw.creates_per_s / bl.creates_per_s:>10.2f} "
        f"{lw.polls_per_s / bl.polls_per_s:>9.2f} {'':>23} "
        f"{lw.lean_polls_per_s / bl.lean_polls_per_s:>22.2f}"
    )
    print(f"leeway peak RSS: {rss:.0f} MB")


if __name__ == "__main__":
    main()
