"""Each dashboard page's render time with 100,000 jobs and 1,000 batches in the store (SQLite), against
a plain ``GET /v1/models`` in the same run, through HTTP (``build_app`` in this process, the fake
engine, a signed-in session).

The store holds 1,000 batches of 50 items each (50,000 jobs) and 50,000 jobs outside batches, of 4
tenants, 2 models and the 4 windows, finished at random over the last two hours (half within the
hour the *Now* page reads) except a tenth still queued and a few running. They are written as
running, then moved to their final (or queued) state by ``UPDATE`` in chunks, so the store's own
triggers keep the batches' counts and the usage roll-up, as real finishes do. Each page is then
fetched ``--repeat`` times, as an admin (every tenant) and, for the pages that filter, as one
tenant's key. Prints the median and the spread (min–max) in milliseconds and each median's ratio to
``GET /v1/models``. Target: every page under a second.

    .venv/bin/python bench/dashboard.py [--jobs 100000] [--batches 1000] [--repeat 7]
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.testclient import TestClient

from leeway.app import build_app, store_from
from leeway.catalog import ModelConfig, Price
from leeway.jobs import Window
from leeway.keys import issue
from leeway.settings import Settings

MODELS = ("model-a", "model-b")  # in the store, not served: the dispatcher leaves them alone
TENANTS = ("team-a", "team-b", "team-c", "team-d")
CHUNK = 20_000
COLUMNS = (
    *("id", "tenant", "surface", "model", "status", "completion_window", "window_rank"),
    *("created_at", "deadline", "prompt_tokens", "request", "metadata", "echo", "started_at"),
    *("completed_at", "input_tokens", "output_tokens", "input_price", "output_price", "key_id"),
    *("batch_id", "custom_id", "batch_index", "attempts"),
)
PRICES = {w: Price(1.0 * f, 4.0 * f) for w, f in zip(Window, (1, 0.5, 0.35, 0.2), strict=True)}


def job_rows(jobs: int, batches: int, now: float) -> Iterator[tuple[Any, ...]]:
    rng, windows = random.Random(17), list(Window)
    per_batch = (jobs // 2) // batches
    for i in range(jobs):
        b = i // per_batch if i < per_batch * batches else None
        tenant = TENANTS[(b if b is not None else i) % len(TENANTS)]
        window = windows[2 if b is not None else rng.randrange(4)]
        done = now - rng.random() * 7200
        turn = rng.lognormvariate(1.0, 1.2)
        price = PRICES[window]
        yield (
            *(f"resp_{i:09d}", tenant, "responses", MODELS[i % 2], "in_progress"),
            *(window.value, window.rank, done - turn, done - turn + 300, 100, "{}", "{}", "{}"),
            *(done - turn / 2, done, rng.randrange(20, 400), rng.randrange(1, 500)),
            *(price.input, price.output, f"key_{tenant}", None if b is None else f"batch_{b:05d}"),
            *(None if b is None else f"r{i % per_batch}", None if b is None else i % per_batch, 1),
        )


def fill(path: Path, jobs: int, batches: int, now: float) -> None:
    conn = sqlite3.connect(path)
    per_batch = (jobs // 2) // batches
    conn.executemany(
        "INSERT INTO batches (id, tenant, shape, endpoint, completion_window, metadata, "
        "created_at, committed, total, n_running) VALUES (?, ?, 'reference', '/v1/responses', "
        "'24h', '{}', ?, 1, ?, ?)",
        [
            (f"batch_{b:05d}", TENANTS[b % len(TENANTS)], now - 7200 + b, per_batch, per_batch)
            for b in range(batches)
        ],
    )
    marks = ", ".join("?" * len(COLUMNS))
    conn.executemany(
        f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({marks})", job_rows(jobs, batches, now)
    )
    conn.commit()
    for low in range(0, jobs, CHUNK):
        ids = (f"resp_{low:09d}", f"resp_{low + CHUNK:09d}")
        conn.execute(  # a tenth queued again (never finished), a few left running, the rest final
            "UPDATE jobs SET status = CASE WHEN cast(substr(id, 6) AS INTEGER) % 10 = 3 "
            "THEN 'queued' WHEN cast(substr(id, 6) AS INTEGER) % 1000 = 7 THEN 'in_progress' "
            "WHEN cast(substr(id, 6) AS INTEGER) % 50 = 1 THEN 'failed' ELSE 'completed' END, "
            "completed_at = CASE WHEN cast(substr(id, 6) AS INTEGER) % 10 = 3 THEN NULL "
            "ELSE completed_at END WHERE id >= ? AND id < ?",
            ids,
        )
        conn.commit()
    conn.execute("ANALYZE")
    conn.close()


async def add_keys(settings: Settings) -> tuple[str, str]:
    store = store_from(settings)
    try:
        admin, tenant = issue("ops", time.time(), admin=True), issue("team-b", time.time())
        for k in (admin, tenant):
            await store.add_key(k.key, k.value)
        return admin.value, tenant.value
    finally:
        await store.close()


def timed(http: TestClient, path: str, repeat: int, headers: dict[str, str]) -> list[float]:
    out = []
    for i in range(repeat + 1):
        start = time.perf_counter()
        r = http.get(path, headers=headers)
        took = (time.perf_counter() - start) * 1000
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        if i:  # the first is a warm-up
            out.append(took)
    return out


def sign_in(http: TestClient, key: str) -> None:
    http.cookies.clear()
    r = http.post("/dashboard/sign-in", data={"key": key}, follow_redirects=False)
    assert r.status_code == 303, r.text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--batches", type=int, default=1_000)
    p.add_argument("--repeat", type=int, default=7)
    a = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="leeway-bench-dashboard-"))
    model = ModelConfig("bench-model", engine="fake", prices=PRICES)
    settings = Settings(data_dir=folder, models=(model,))
    admin, tenant = asyncio.run(add_keys(settings))  # also creates the schema
    now = time.time()
    start = time.perf_counter()
    fill(settings.db_path, a.jobs, a.batches, now)
    print(f"filled {a.jobs:,} jobs, {a.batches:,} batches in {time.perf_counter() - start:.1f} s")
    since = time.strftime("%Y-%m-%d", time.gmtime(now - 30 * 86400))
    pages = [
        ("Now", "/dashboard"),
        ("Batches", "/dashboard/batches"),
        ("Batches, page 10", "/dashboard/batches?before=batch_00500"),
        ("a batch's items", "/dashboard/batches/batch_00400"),
        ("a batch's items, page 2", "/dashboard/batches/batch_00400?after=30"),
        ("Usage, 7 days by window", "/dashboard/usage"),
        ("Usage, 30 days by tenant", f"/dashboard/usage?from={since}&by=tenant"),
        ("Usage CSV, 30 days by model", f"/dashboard/usage.csv?from={since}&by=model"),
        ("Keys", "/dashboard/keys"),
        ("Models and pricing", "/dashboard/models"),
    ]
    results: list[tuple[str, list[float]]] = []
    with TestClient(build_app(settings)) as http:
        bearer = {"Authorization": f"Bearer {admin}"}
        results.append(("GET /v1/models (baseline)", timed(http, "/v1/models", a.repeat, bearer)))
        for who, key in (("admin", admin), ("tenant", tenant)):
            sign_in(http, key)
            for name, path in pages:
                if who == "tenant" and name.startswith(("a batch's", "Batches, page")):
                    continue  # team-b's batches are other ids; its list is timed above
                results.append((f"{name} ({who})", timed(http, path, a.repeat, {})))
    base = statistics.median(results[0][1])
    print(f"\n{'page':<42} {'median ms':>10} {'min–max ms':>16} {'× /v1/models':>13}")
    for name, ms in results:
        med = statistics.median(ms)
        spread = f"{min(ms):.1f}–{max(ms):.1f}"
        print(f"{name:<42} {med:>10.1f} {spread:>16} {med / base:>13.1f}")
    worst = max(statistics.median(ms) for _, ms in results)
    print(f"\nslowest page median: {worst:.0f} ms (target: under 1000 ms)")


if __name__ == "__main__":
    main()
