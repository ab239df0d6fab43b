"""Usage and cost queries over 1,000,000 recorded jobs, on SQLite and PostgreSQL, against a plain
``SELECT count(*) FROM jobs`` on the same database in the same run.

The jobs are written in bulk as running (4 tenants with 3 keys each, 2 models, 4 windows, 3
surfaces, finished at random over the last 30 days, priced; a tenth of them items of 40 batches,
each finishing within two hours), then
made final by ``UPDATE … SET status = 'completed'`` in chunks, so the roll-up is built by the
store's own trigger, as a finish builds it (the time that takes is printed too). Then each query is
timed ``--repeat`` times: the API's routes through HTTP (``build_app`` in this process, an admin
key), the budget check (one tenant's spend this month), and, for scale, the same daily totals
computed from the jobs table without the roll-up. Prints the median and the spread (min–max) in
milliseconds and each median's ratio to ``count(*)``. Target: every usage query under a second.

    .venv/bin/python bench/usage.py [--jobs 1000000] [--repeat 5] [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.testclient import TestClient
from tests.pg import PgServer

from leeway.app import build_app
from leeway.catalog import ModelConfig, Price
from leeway.jobs import Window
from leeway.keys import issue
from leeway.settings import Settings
from leeway.store import open_store
from leeway.usage import month_start

MODELS = ("model-a", "model-b")
TENANTS = ("team-a", "team-b", "team-c", "team-d")
SURFACES = ("responses", "chat", "messages")
DAYS = 30
CHUNK = 50_000
COLUMNS = (
    *("id", "tenant", "surface", "model", "status", "completion_window", "window_rank"),
    *("created_at", "deadline", "prompt_tokens", "request", "metadata", "echo", "started_at"),
    *("completed_at", "input_tokens", "output_tokens", "input_price", "output_price", "key_id"),
    *("batch_id", "custom_id", "batch_index", "attempts"),
)
PRICES = {w: Price(1.0 * f, 4.0 * f) for w, f in zip(Window, (1, 0.5, 0.35, 0.2), strict=True)}


def rows(n: int, now: float) -> Iterator[tuple[Any, ...]]:
    """A tenth of the jobs are items of 40 batches, each one tenant's (one key, one surface),
    finishing within two hours of its own time; the rest are spread over the whole period."""
    rng = random.Random(15)
    windows = list(Window)
    batch_at = [now - rng.random() * DAYS * 86400 for _ in range(40)]
    for i in range(n):
        b = (i // 10) % 40 if i % 10 == 0 else None
        t = b if b is not None else i
        tenant = TENANTS[t % len(TENANTS)]
        window = windows[2 + rng.randrange(2) if b is not None else rng.randrange(4)]
        surface = SURFACES[b % 2 if b is not None else rng.randrange(3)]
        key = f"key_{tenant}_{t % 3 if b is not None else rng.randrange(3)}"
        done = now - rng.random() * DAYS * 86400
        if b is not None:
            done = min(now, batch_at[b] + rng.random() * 7200)
        price = PRICES[window]
        yield (
            *(f"resp_{i:09d}", tenant, surface, MODELS[rng.randrange(2)], "in_progress"),
            *(window.value, window.rank, done - 60, done + 300, 100, "{}", "{}", "{}"),
            *(done - 30, done, rng.randrange(20, 400), rng.randrange(1, 500)),
            *(price.input, price.output, key, None if b is None else f"batch_{b:02d}"),
            *(None if b is None else str(i), None if b is None else i, 1),
        )


def fill_sqlite(path: Path, n: int, now: float) -> float:
    """Write the jobs, then make them final in chunks (the trigger rolls them up); how long the
    latter took."""
    conn = sqlite3.connect(path)
    marks = ", ".join("?" * len(COLUMNS))
    conn.executemany(f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({marks})", rows(n, now))
    conn.commit()
    start = time.perf_counter()
    for low in range(0, n, CHUNK):
        conn.execute(
            "UPDATE jobs SET status = 'completed' WHERE id >= ? AND id < ?",
            (f"resp_{low:09d}", f"resp_{low + CHUNK:09d}"),
        )
        conn.commit()
    took = time.perf_counter() - start
    conn.execute("ANALYZE")
    conn.close()
    return took


async def fill_postgres(url: str, n: int, now: float) -> float:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        batch: list[tuple[Any, ...]] = []
        for row in rows(n, now):
            batch.append(row)
            if len(batch) == CHUNK:
                await conn.copy_records_to_table("jobs", records=batch, columns=COLUMNS)
                batch = []
        if batch:
            await conn.copy_records_to_table("jobs", records=batch, columns=COLUMNS)
        start = time.perf_counter()
        for low in range(0, n, CHUNK):
            await conn.execute(
                "UPDATE jobs SET status = 'completed' WHERE id >= $1 AND id < $2",
                f"resp_{low:09d}",
                f"resp_{low + CHUNK:09d}",
            )
        took = time.perf_counter() - start
        await conn.execute("VACUUM ANALYZE")
        return took
    finally:
        await conn.close()


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def spend(where: str | Path, key: Any, repeat: int) -> list[float]:
    """Add the admin key; time the budget check (one tenant's spend this month)."""
    store = open_store(where)
    try:
        await store.add_key(key.key, key.value)
        since, out = month_start(time.time()), []
        for _ in range(repeat + 1):
            start = time.perf_counter()
            await store.spent("team-a", since)
            out.append((time.perf_counter() - start) * 1000)
        return out[1:]
    finally:
        await store.close()


Measured = tuple[list[tuple[str, list[float]]], int]


def measure(settings: Settings, plain: Callable[[str], Any], repeat: int) -> Measured:
    """(name, milliseconds) of each query, the baseline first; and the requests the 31-day page
    counted."""
    now = time.time()
    key = issue("ops", now, admin=True)
    budget = asyncio.run(spend(settings.postgres_url or settings.db_path, key, repeat))
    headers = {"Authorization": f"Bearer {key.value}"}
    day_ago, month_ago = int(now) - 86400, int(now) - DAYS * 86400  # 31 daily buckets
    week_ago = int(now) - 7 * 86400
    http_queries = [
        (
            "usage 1d x31, by project+model",
            "/v1/organization/usage/completions",
            {"start_time": month_ago, "limit": 31, "group_by": "project_id,model"},
        ),
        (
            "usage 1h x168, by model+window",
            "/v1/organization/usage/completions",
            {
                "start_time": week_ago,
                "bucket_width": "1h",
                "limit": 168,
                "group_by": "model,completion_window",
            },
        ),
        (
            "usage 1m x1440, all",
            "/v1/organization/usage/completions",
            {"start_time": day_ago, "bucket_width": "1m", "limit": 1440},
        ),
        (
            "usage 1d x31, by key+batch (1 project)",
            "/v1/organization/usage/completions",
            {
                "start_time": month_ago,
                "limit": 31,
                "group_by": "api_key_id,batch",
                "project_ids": "team-b",
            },
        ),
        (
            "costs 1d x31, by line item+project",
            "/v1/organization/costs",
            {"start_time": month_ago, "limit": 31, "group_by": "line_item,project_id"},
        ),
    ]
    results = [("SELECT count(*) FROM jobs (baseline)", timed(lambda: plain("count"), repeat))]
    with TestClient(build_app(settings)) as http:
        for name, path, params in http_queries:

            def get(path: str = path, params: dict[str, Any] = params) -> None:
                r = http.get(path, params=params, headers=headers)
                assert r.status_code == 200, r.text

            results.append((name + " (HTTP)", timed(get, repeat)))
        page = http.get(http_queries[0][1], params=http_queries[0][2], headers=headers).json()
    results.append(("budget: a tenant's spend this month", budget))
    results.append(
        ("same daily totals from jobs, no roll-up", timed(lambda: plain("naive"), repeat))
    )
    requests = sum(r["num_model_requests"] for b in page["data"] for r in b["results"])
    assert requests == int(plain("count")[0][0]), "the roll-up lost or doubled jobs"
    return results, requests


def sqlite_plain(path: Path) -> Callable[[str], Any]:
    conn = sqlite3.connect(path)  # one connection, as the store's reader keeps one
    sql = {
        k: v.replace("floor(", "CAST(").replace("/ 86400)", "/ 86400 AS INTEGER)")
        for k, v in _PLAIN.items()
    }
    return lambda which: conn.execute(sql[which]).fetchall()


def postgres_plain(url: str) -> Callable[[str], Any]:
    import asyncpg

    loop = asyncio.new_event_loop()  # one connection, as the store's pool keeps them open
    conn = loop.run_until_complete(asyncpg.connect(url))
    return lambda which: loop.run_until_complete(conn.fetch(_PLAIN[which]))


_PLAIN = {
    "count": "SELECT count(*) FROM jobs",
    "naive": "SELECT tenant, model, floor(completed_at / 86400), count(*), sum(input_tokens),"
    " sum(output_tokens), sum(input_tokens * input_price + output_tokens * output_price) / 1e6"
    " FROM jobs WHERE status = 'completed' GROUP BY 1, 2, 3",
}


async def migrated(where: str | Path) -> None:
    store = open_store(where)
    await store.count_keys()
    await store.close()


def settings_for(folder: Path, store_url: str | None) -> Settings:
    models = tuple(ModelConfig(m, engine="fake", prices=PRICES) for m in MODELS)
    return Settings(data_dir=folder, models=models, store_url=store_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    now = time.time()
    report: list[tuple[str, float, list[Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.stores.split(","):
            folder = Path(tmp) / kind
            if kind == "sqlite":
                settings = settings_for(folder, None)
                asyncio.run(migrated(settings.db_path))
                built = fill_sqlite(settings.db_path, args.jobs, now)
                report.append(
                    (kind, built, measure(settings, sqlite_plain(settings.db_path), args.repeat))
                )
                continue
            with PgServer.start() as pg:
                url = pg.create_database()
                asyncio.run(migrated(url))
                built = asyncio.run(fill_postgres(url, args.jobs, now))
                settings = settings_for(folder, url)
                report.append((kind, built, measure(settings, postgres_plain(url), args.repeat)))
    print(f"{args.jobs:,} recorded jobs over {DAYS} days; {args.repeat} runs each, milliseconds")
    print(f"{'store':<9}{'query':<44}{'median':>9}{'min-max':>16}{'x count(*)':>12}")
    for kind, built, (results, requests) in report:
        base = statistics.median(results[0][1])
        for name, times in results:
            med = statistics.median(times)
            spread = f"{min(times):.2f}-{max(times):.2f}"
            print(f"{kind:<9}{name:<44}{med:>9.2f}{spread:>16}{med / base:>12.2f}")
        rate = args.jobs / built
        print(
            f"{kind:<9}(made final with the roll-up: {built:.1f} s, {rate:,.0f} jobs/s; "
            f"the 31-day page counted {requests:,} requests)"
        )


if __name__ == "__main__":
    main()
