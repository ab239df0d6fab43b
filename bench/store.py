"""Claims/s and completed jobs/s on SQLite and PostgreSQL, with 1 and 4 dispatcher processes.

For each store and process count: N queued jobs are written first (not timed), then the processes
start together and either only claim (what a dispatcher does to fill 32 sequences: read the queue,
then ``claim_ids`` of the 32 most urgent, until the queue is empty: claims/s is jobs leased per
second) or run the real ``Dispatcher`` on the instant fake engine until every job is
completed (jobs/s end to end: peek, policy, claim, generate, finish). PostgreSQL is a throwaway
server on loopback (tests/pg.py); SQLite is one file shared by the processes. Prints a table, with
each row's ratio to SQLite with one process. Target: ≥ 2,000 jobs/s on PostgreSQL, 4 dispatchers.

    .venv/bin/python bench/store.py [--jobs 8000] [--parallel 64]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import tempfile
import time
from dataclasses import replace
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import make_job
from tests.pg import PgServer

from leeway.engines import local_id
from leeway.engines.fake import FakeEngine
from leeway.jobs import Status
from leeway.pieces import PieceLog
from leeway.scheduler.dispatcher import Dispatcher
from leeway.store import open_store

MODEL = "fake-model"


async def fill(where: str, jobs: int) -> None:
    store = open_store(where)
    now = time.time()
    batch = [replace(make_job(created_at=now), model=MODEL) for _ in range(jobs)]
    for i in range(0, jobs, 500):
        await asyncio.gather(*(store.create(j) for j in batch[i : i + 500]))
    await store.close()


async def claimer(store: Any) -> None:
    while True:
        now = time.time()
        waiting = sorted(await store.queued(MODEL, 128, now), key=lambda j: j.deadline)
        if not waiting:
            return
        await store.claim_ids(MODEL, [j.id for j in waiting[:32]], now)


async def dispatcher(store: Any, parallel: int) -> None:
    engine = FakeEngine(
        MODEL, parallel=parallel, tokens=4, id=local_id(MODEL)
    )  # each process its own
    await engine.start()
    d = Dispatcher(store, [engine], PieceLog(), lease_seconds=30, poll_seconds=0.02)
    d.start()
    while await store.queue_depths() or d.running(MODEL):  # noqa: ASYNC110 - polls the store
        await asyncio.sleep(0.02)
    await d.stop()
    await engine.close()


def worker(where: str, mode: str, parallel: int, go: Event, ready: Any, ends: Any) -> None:
    async def run() -> None:
        store = open_store(where)
        await store.count_keys()  # connected (and migrated) before the clock starts
        ready.put(1)
        go.wait()  # every process starts at once (nothing else runs on this loop yet)
        await (claimer(store) if mode == "claim" else dispatcher(store, parallel))
        ends.put(time.time())
        await store.close()

    asyncio.run(run())


async def completed(where: str) -> int:
    store = open_store(where)
    try:
        pool = await store.driver.connection() if store.dialect == "postgres" else None
        sql = "SELECT count(*) FROM jobs WHERE status = 'completed'"
        if pool is not None:
            return int(await pool.fetchval(sql))
        return int(store.driver._reader.execute(sql).fetchone()[0])
    finally:
        await store.close()


def measure(where: str, mode: str, processes: int, jobs: int, parallel: int) -> float:
    asyncio.run(fill(where, jobs))
    ctx = mp.get_context("spawn")
    go, ready, ends = ctx.Event(), ctx.Queue(), ctx.Queue()
    procs = [
        ctx.Process(target=worker, args=(where, mode, parallel, go, ready, ends))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    start = time.time()
    go.set()
    last = max(ends.get(timeout=600) for _ in procs)
    for p in procs:
        p.join()
    if mode == "dispatch":
        assert asyncio.run(completed(where)) >= jobs, "not every job completed"
    return jobs / (last - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8000)
    parser.add_argument("--parallel", type=int, default=64, help="fake engine sequences")
    args = parser.parse_args()
    rows: list[tuple[str, int, float, float]] = []
    with PgServer.start() as pg, tempfile.TemporaryDirectory() as tmp:
        for kind in ("sqlite", "postgres"):
            for processes in (1, 4):
                rates = []
                for mode in ("claim", "dispatch"):
                    where = (
                        pg.create_database()
                        if kind == "postgres"
                        else str(Path(tmp) / f"{kind}-{processes}-{mode}.db")
                    )
                    rates.append(measure(where, mode, processes, args.jobs, args.parallel))
                rows.append((kind, processes, rates[0], rates[1]))
    base = rows[0]
    print(f"{args.jobs} jobs, fake engine ({args.parallel} sequences, 4 tokens) per process")
    print(f"{'store':<10}{'procs':>6}{'claims/s':>10}{'jobs/s':>9}{'claims×':>9}{'jobs×':>7}")
    for kind, processes, claims, done in rows:
        print(
            f"{kind:<10}{processes:>6}{claims:>10.0f}{done:>9.0f}"
            f"{claims / base[2]:>9.2f}{done / base[3]:>7.2f}"
        )
    print(f"target: ≥ 2,000 jobs/s on postgres with 4 processes ({Status.COMPLETED.value})")


if __name__ == "__main__":
    main()
