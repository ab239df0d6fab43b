"""The dashboard's store views, SQLite and PostgreSQL alike: sessions with their key's holder,
the windows now (counts and turn times, all tenants or one), running jobs per model, and every
tenant's batches for an admin."""

from __future__ import annotations

import time
from typing import Any

import pytest

from leeway.jobs import Window
from leeway.keys import issue
from leeway.store.operator_views import Session
from tests.conftest import FAKE_MODEL, StoreFactory, claim, make_job
from tests.integration.test_batch_store import DONE, batch, staged


@pytest.fixture
async def store(store_factory: StoreFactory):
    s = store_factory(lease_seconds=60)
    yield s
    await s.close()


async def test_a_session_is_found_until_it_expires_or_ends(store: Any):
    issued = issue("alpha", 100.0)
    await store.add_key(issued.key, issued.value)
    await store.add_session(Session(issued.key.id, "csrf-1", 100.0, 200.0), "hash-1")
    found = await store.session("hash-1", 150.0)
    assert found is not None
    session, holder = found
    assert session == Session(issued.key.id, "csrf-1", 100.0, 200.0)
    assert holder.key.id == issued.key.id and not holder.tenant_archived
    assert await store.session("hash-1", 201.0) is None  # expired
    assert await store.session("hash-2", 150.0) is None  # never made
    await store.end_session("hash-1")
    assert await store.session("hash-1", 150.0) is None


async def test_windows_now_count_queued_running_and_turn_times(store: Any):
    now = time.time()
    for tenant in ("t1", "t1", "t2"):  # queued
        await store.create(make_job(tenant=tenant, window=Window.FLEX))
    runs = [make_job(tenant="t1", created_at=now - 10) for _ in range(3)]
    for job in runs:
        await store.create(job)
    claims = await claim(store, FAKE_MODEL, 3, now)
    for c in claims[:2]:  # two finish (by their deadline), one keeps running
        assert await store.finish(c, DONE, now) is not None
    every = await store.windows_now(None, now - 3600)
    assert every["flex"].queued == 3 and every["flex"].running == 0
    std = every["standard"]
    assert (std.queued, std.running, std.finished, std.met) == (0, 1, 2, 2)
    assert std.p50 is not None and std.p95 is not None and 9 <= std.p50 <= std.p95 <= 60
    assert std.attainment == 1.0
    mine = await store.windows_now("t2", now - 3600)
    assert mine["flex"].queued == 1 and "standard" not in mine
    assert (await store.windows_now(None, now + 10))["standard"].finished == 0  # window passed
    assert await store.running_by_model() == {FAKE_MODEL: 1}


async def test_every_tenants_batches_newest_first_and_one_found_by_id(store: Any):
    made = []
    for tenant in ("t1", "t2", "t1"):
        b = batch(tenant)
        await staged(store, b, 1)
        made.append(await store.commit_batch(b, 1, None))
    ids = [b.id for b in made][::-1]
    assert [b.id for b in await store.all_batches(10)] == ids
    assert [b.id for b in await store.all_batches(10, before=ids[0])] == ids[1:]
    assert [b.id for b in await store.all_batches(1)] == ids[:1]
    found = await store.find_batch(made[1].id)
    assert found is not None and found.tenant == "t2"
    assert await store.find_batch("batch_nope") is None
