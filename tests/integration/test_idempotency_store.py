"""Idempotency keys in the store: written with their job in one transaction, unique per tenant,
pruned by age. The same contract holds for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from leeway.errors import IdempotencyMismatch
from leeway.store import IdempotencyKey, Store, open_store
from leeway.store.queries import migrations
from tests.conftest import make_job

KEY = IdempotencyKey("key-1", "a" * 64)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "postgres":
        s: Store = open_store(request.getfixturevalue("pg_url"))
    else:
        s = open_store(tmp_path / "db.sqlite")
    yield s
    await s.close()


def rows(path: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT * FROM {table}").fetchall()


async def test_key_is_held_by_the_job_it_created(store: Store):
    job = make_job()
    assert await store.held("t1", KEY) is None
    assert await store.create(job, KEY) == job
    assert await store.held("t1", KEY) == job
    assert await store.held("t2", KEY) is None  # scoped to the tenant


async def test_a_second_create_with_the_key_returns_the_holder_and_writes_nothing(store: Store):
    first, second = make_job(), make_job()
    await store.create(first, KEY)
    assert await store.create(second, KEY) == first
    assert await store.get("t1", second.id) is None


async def test_another_fingerprint_is_a_mismatch_and_writes_nothing(store: Store):
    first, second = make_job(), make_job()
    await store.create(first, KEY)
    other = IdempotencyKey(KEY.key, "b" * 64)
    with pytest.raises(IdempotencyMismatch) as raised:
        await store.create(second, other)
    assert raised.value.code == "idempotency_error" and raised.value.param == "Idempotency-Key"
    with pytest.raises(IdempotencyMismatch):
        await store.held("t1", other)
    assert await store.get("t1", second.id) is None


async def test_tenants_hold_the_same_key_independently(store: Store):
    mine, theirs = make_job(tenant="t1"), make_job(tenant="t2")
    assert await store.create(mine, KEY) == mine
    assert await store.create(theirs, IdempotencyKey(KEY.key, "c" * 64)) == theirs


async def test_concurrent_creates_with_one_key_make_exactly_one_job(store: Store):
    jobs = [make_job() for _ in range(50)]
    stored = await asyncio.gather(*(store.create(j, KEY) for j in jobs))
    assert len({j.id for j in stored}) == 1
    found = [await store.get("t1", j.id) for j in jobs]
    assert [j.id for j in found if j is not None] == [stored[0].id]


async def test_prune_forgets_keys_older_than_the_cutoff_but_keeps_jobs(store: Store):
    old, new = make_job(created_at=100.0), make_job(created_at=200.0)
    await store.create(old, KEY)
    await store.create(new, IdempotencyKey("key-2", "d" * 64))
    assert await store.prune_keys(before=150.0) == 1
    assert await store.held("t1", KEY) is None
    assert await store.held("t1", IdempotencyKey("key-2", "d" * 64)) == new
    assert await store.get("t1", old.id) == old
    fresh = make_job()
    assert await store.create(fresh, KEY) == fresh  # the key can be used again


async def test_deleting_the_job_frees_its_key(store: Store):
    job = make_job()
    await store.create(job, KEY)
    assert await store.delete("t1", job.id)
    assert await store.held("t1", KEY) is None


async def test_sqlite_key_and_job_commit_or_roll_back_together(tmp_path: Path):
    path = tmp_path / "db.sqlite"
    store = open_store(path)
    try:
        job, loser = make_job(), make_job()
        await asyncio.gather(store.create(job, KEY), store.create(loser, KEY))
        assert [r[0] for r in rows(path, "jobs")] == [job.id]
        assert [(r[0], r[1], r[3]) for r in rows(path, "idempotency_keys")] == [
            ("t1", KEY.key, job.id)
        ]
        # the job's insert fails (its id exists): the key it carried is not kept either
        with pytest.raises(sqlite3.IntegrityError):
            await store.create(job, IdempotencyKey("key-3", "e" * 64))
        assert await store.held("t1", IdempotencyKey("key-3", "e" * 64)) is None
    finally:
        await store.close()


async def test_a_database_made_before_idempotency_keys_is_migrated(tmp_path: Path):
    path = tmp_path / "old.sqlite"
    number, first = migrations("sqlite")[0]
    with sqlite3.connect(path) as db:
        db.executescript(f"{first}\nPRAGMA user_version={number};")
    store = open_store(path)
    try:
        job = make_job()
        assert await store.create(job, KEY) == job and await store.held("t1", KEY) == job
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == migrations("sqlite")[-1][0] >= 2
