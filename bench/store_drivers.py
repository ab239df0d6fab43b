"""asyncpg or psycopg 3 for the PostgreSQL store? The store's own workload on each, same database.

Creates with idempotency keys (each a transaction: the job, then its key), claims of 32 jobs by id,
and a finish per job, each phase from 64 concurrent tasks over a pool of 8 connections, on a
throwaway PostgreSQL on loopback (tests/pg.py). Prints operations per second per phase and driver,
and the ratio of the two.

    .venv/bin/python bench/store_drivers.py [--jobs 4000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from tests.conftest import make_job
from tests.pg import PgServer

from leeway.jobs import Finish, Output, Usage
from leeway.store import Result
from leeway.store.queries import load_queries, migrations, numbered
from leeway.store.rows import job_row, result_row

Q = load_queries("postgres")
TASKS, POOL, CHUNK = 64, 8, 32
DONE = Result(Output("hello", Finish.STOP), Usage(5, 1))


def pyformat(sql: str) -> str:
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)


async def fan_out(items: list[Any], fn: Callable[[Any], Awaitable[None]]) -> float:
    queue = list(reversed(items))
    start = time.perf_counter()

    async def worker() -> None:
        while queue:
            await fn(queue.pop())

    await asyncio.gather(*(worker() for _ in range(TASKS)))
    return len(items) / (time.perf_counter() - start)


def workload(n: int) -> tuple[list[dict[str, Any]], list[list[str]]]:
    model = f"model-{time.monotonic_ns()}"  # each run claims only its own jobs
    rows = [job_row(replace(make_job(), model=model)) for _ in range(n)]
    ids = [r["id"] for r in rows]
    return rows, [ids[i : i + CHUNK] for i in range(0, n, CHUNK)]


async def run_asyncpg(url: str, n: int) -> dict[str, float]:
    rows, chunks = workload(n)
    insert, key = numbered(Q["insert_job"]), numbered(Q["insert_idempotency_key"])
    claim, finish = numbered(Q["claim_ids"]), numbered(Q["finish"])
    pool = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL)
    claimed: list[tuple[str, str]] = []

    async def create(row: dict[str, Any]) -> None:
        k = {"tenant": row["tenant"], "key": row["id"], "fingerprint": "f", "subject": row["id"]}
        async with pool.acquire() as c, c.transaction():
            await c.execute(insert.sql, *insert.args(row))
            await c.execute(key.sql, *key.args({**k, "now": 1.0}))

    async def claim_ids(ids: list[str]) -> None:
        params = {"ids": ids, "model": rows[0]["model"], "token": "t", "expires": 9e9, "now": 1.0}
        found = await pool.fetch(claim.sql, *claim.args(params))
        claimed.extend((r["id"], "t") for r in found)

    async def finish_one(held: tuple[str, str]) -> None:
        params = {"id": held[0], "token": held[1], "now": 2.0, **result_row(DONE)}
        assert await pool.fetchrow(finish.sql, *finish.args(params)) is not None

    rates = {
        "creates/s": await fan_out(rows, create),
        "claims of 32/s": await fan_out(chunks, claim_ids),
        "finishes/s": await fan_out(claimed, finish_one),
    }
    await pool.close()
    return rates


async def run_psycopg(url: str, n: int) -> dict[str, float]:
    rows, chunks = workload(n)
    insert, key = pyformat(Q["insert_job"]), pyformat(Q["insert_idempotency_key"])
    claim, finish = pyformat(Q["claim_ids"]), pyformat(Q["finish"])
    pool = AsyncConnectionPool(
        url, min_size=POOL, max_size=POOL, kwargs={"row_factory": dict_row}, open=False
    )
    await pool.open()
    claimed: list[tuple[str, str]] = []

    async def create(row: dict[str, Any]) -> None:
        k = {"tenant": row["tenant"], "key": row["id"], "fingerprint": "f", "subject": row["id"]}
        async with pool.connection() as c, c.transaction():
            await c.execute(insert, row)
            await c.execute(key, {**k, "now": 1.0})

    async def claim_ids(ids: list[str]) -> None:
        params = {"ids": ids, "model": rows[0]["model"], "token": "t", "expires": 9e9, "now": 1.0}
        async with pool.connection() as c:
            found = await (await c.execute(claim, params)).fetchall()
        claimed.extend((r["id"], "t") for r in found)

    async def finish_one(held: tuple[str, str]) -> None:
        params = {"id": held[0], "token": held[1], "now": 2.0, **result_row(DONE)}
        async with pool.connection() as c:
            assert await (await c.execute(finish, params)).fetchone() is not None

    rates = {
        "creates/s": await fan_out(rows, create),
        "claims of 32/s": await fan_out(chunks, claim_ids),
        "finishes/s": await fan_out(claimed, finish_one),
    }
    await pool.close()
    return rates


async def migrate(url: str) -> None:
    conn = await asyncpg.connect(url)
    for _, sql in migrations("postgres"):
        await conn.execute(sql)
    await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {"asyncpg": {}, "psycopg": {}}
    with PgServer.start() as pg:
        url = pg.create_database()
        asyncio.run(migrate(url))
        for _ in range(args.rounds):  # interleaved, so both see the same machine noise
            for name, run in (("asyncpg", run_asyncpg), ("psycopg", run_psycopg)):
                for phase, rate in asyncio.run(run(url, args.jobs)).items():
                    results[name].setdefault(phase, []).append(rate)
    print(
        f"psycopg {psycopg.__version__}, asyncpg {asyncpg.__version__}; {args.jobs} jobs, best of {args.rounds}"
    )
    print(f"{'phase':<16}{'asyncpg':>10}{'psycopg':>10}{'ratio':>8}")
    for phase in results["asyncpg"]:
        a, p = max(results["asyncpg"][phase]), max(results["psycopg"][phase])
        print(f"{phase:<16}{a:>10.0f}{p:>10.0f}{a / p:>8.2f}")


if __name__ == "__main__":
    main()
