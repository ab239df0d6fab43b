"""Do pollers slow the dispatcher? The same work through `leeway serve --engine fake` (each job 16
tokens at 10 ms per token, 32 sequences: the engine, not the gateway, sets the pace), once alone
then while the jobs are polled: "reference" polls each job once a second through 200 connections
(the docs' client), "hammer" has 200 pollers polling as fast as the server answers. Prints jobs/s
(first create to last result stored, read from the server's database), polls/s, and the ratio to
the run without pollers.

    .venv/bin/python bench/pollers.py [--jobs 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.server import LeewayServer

MODEL = "fake-model"
CONFIG = f"""
[[models]]
id = "{MODEL}"
engine = "fake"
parallel = 32
fake_tokens = 16
fake_delay = 0.01
"""


async def run(server: LeewayServer, jobs: int, mode: str) -> tuple[float, int]:
    headers = {"Authorization": f"Bearer {server.key}"}
    connector = aiohttp.TCPConnector(limit=400)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as http:
        gate = asyncio.Semaphore(200)

        async def create(i: int) -> str:
            async with (
                gate,
                http.post(
                    f"{server.base_url}/responses",
                    json={"model": MODEL, "input": f"job {i}", "background": True},
                ) as r,
            ):
                return str((await r.json())["id"])

        start = time.time()
        ids = await asyncio.gather(*(create(i) for i in range(jobs)))
        polls = 0
        done = asyncio.Event()

        async def hammer(k: int) -> None:  # as fast as the server answers
            nonlocal polls
            while not done.is_set():
                async with http.get(f"{server.base_url}/responses/{ids[(k * 7 + polls) % jobs]}"):
                    polls += 1

        async def reference(rid: str) -> None:  # the docs' client: each id once a second
            nonlocal polls
            while not done.is_set():
                async with gate, http.get(f"{server.base_url}/responses/{rid}"):
                    polls += 1
                await asyncio.sleep(1)

        if mode == "hammer":
            tasks = [asyncio.create_task(hammer(k)) for k in range(200)]
        elif mode == "reference":
            tasks = [asyncio.create_task(reference(rid)) for rid in ids]
        else:
            tasks = []
        with sqlite3.connect(server.data_dir / "leeway.db") as db:
            while True:
                (left,) = db.execute(
                    "SELECT count(*) FROM jobs WHERE status IN ('queued', 'in_progress')"
                ).fetchone()
                if left == 0:
                    break
                await asyncio.sleep(0.2)
            (last,) = db.execute("SELECT max(completed_at) FROM jobs").fetchone()
        done.set()
        await asyncio.gather(*tasks)
    return jobs / (last - start), polls


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    modes = ("alone", "reference", "hammer")
    rows = []
    for mode in modes * 2:  # alternated: the machine is noisy
        with tempfile.TemporaryDirectory() as tmp:
            server = LeewayServer(Path(tmp), CONFIG).start()
            try:
                rows.append((mode, *asyncio.run(run(server, args.jobs, mode))))
            finally:
                server.stop()
    best = {m: max(r[1] for r in rows if r[0] == m) for m in modes}
    print(f"\n{args.jobs} jobs, fake engine (32 sequences x 16 tokens x 10 ms), best of 2 each")
    print(f"{'pollers':>10} {'jobs/s':>8} {'polls/s':>8} {'vs alone':>9}")
    for mode, rate, polls in rows:
        print(
            f"{mode:>10} {rate:>8.1f} {polls * rate / args.jobs:>8.0f} {rate / best['alone']:>9.2f}"
        )


if __name__ == "__main__":
    main()
