"""What only PostgreSQL has: many processes on one database. Stores opened side by side stand in for
processes (each has its own connections): migrations do not race, claims never overlap, and
queued work is announced to every listener."""

from __future__ import annotations

import asyncio
import time

from leeway.jobs import Finish, Output, Status, Usage
from leeway.store import Claim, Result, SqlStore, open_store
from leeway.store.queries import migrations
from tests.conftest import FAKE_MODEL, claim, make_job

DONE = Result(Output("hello", Finish.STOP), Usage(5, 1))


async def test_stores_starting_at_once_migrate_the_database_once(pg_url: str):
    stores = [open_store(pg_url) for _ in range(4)]
    try:
        assert await asyncio.gather(*(s.count_keys() for s in stores)) == [0] * 4
        pool = await stores[0].driver.connection()
        versions = [r[0] for r in await pool.fetch("SELECT version FROM leeway_migrations")]
        assert sorted(versions) == [n for n, _ in migrations("postgres")]
    finally:
        for s in stores:
            await s.close()
    again = open_store(pg_url)  # a restart applies nothing
    try:
        assert await again.count_keys() == 0
    finally:
        await again.close()


async def test_concurrent_claimers_never_take_the_same_job(pg_url: str):
    stores = [open_store(pg_url, lease_seconds=60) for _ in range(3)]
    jobs = [make_job() for _ in range(300)]
    await asyncio.gather(*(stores[0].create(j) for j in jobs))
    taken: list[str] = []

    async def claimer(store: SqlStore, by_id: bool) -> None:
        while True:
            if by_id:  # what a dispatcher does: peek, then claim what the policy chose
                peek = await store.queued(FAKE_MODEL, 16, time.time())
                claims = await store.claim_ids(FAKE_MODEL, [j.id for j in peek[:8]], time.time())
            else:
                claims = await claim(store, FAKE_MODEL, 8, time.time())
            if not claims and not await store.queued(FAKE_MODEL, 1, time.time()):
                return
            taken.extend(c.job.id for c in claims)

    try:
        await asyncio.gather(*(claimer(s, n % 2 == 0) for s in stores for n in range(4)))
    finally:
        for s in stores:
            await s.close()
    assert len(taken) == len(set(taken)) == len(jobs)


async def test_queued_work_is_announced_to_every_listener(pg_url: str):
    writer, listener = open_store(pg_url), open_store(pg_url)
    heard: list[str] = []
    arrived = asyncio.Event()

    def on_queued(model: str) -> None:
        heard.append(model)
        arrived.set()

    try:
        await listener.listen(on_queued)
        await writer.create(make_job(model="other-model"))
        async with asyncio.timeout(10):
            await arrived.wait()
        assert heard == ["other-model"]
        # a claim (nothing newly queued) says nothing; a release puts work back: announced
        arrived.clear()
        claims = await claim(writer, "other-model", 1, time.time())
        await writer.release(claims)
        async with asyncio.timeout(10):
            await arrived.wait()
        assert heard == ["other-model", "other-model"]
    finally:
        await writer.close()
        await listener.close()


async def test_concurrent_finishes_share_a_statement_and_each_hears_its_own_answer(pg_url: str):
    store = open_store(pg_url, lease_seconds=10)
    try:
        await asyncio.gather(*(store.create(make_job()) for _ in range(20)))
        claims = await claim(store, FAKE_MODEL, 20, now=100.0)
        stale = Claim(claims[0].job, "not-its-token")
        *done, refused = await asyncio.gather(
            *(store.finish(c, DONE, 101.0) for c in claims), store.finish(stale, DONE, 101.0)
        )
        assert [j.status if j else None for j in done] == [Status.COMPLETED] * 20
        assert {j.id for j in done if j} == {c.job.id for c in claims} and refused is None
    finally:
        await store.close()
