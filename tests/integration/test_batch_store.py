"""Batches on the store (SQLite, PostgreSQL): staged items are invisible until committed, a batch is stored whole
or not at all, counts follow every item's moves, and a stop mid-upload leaves nothing behind."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from leeway.batches import Batch, Counts, Shape
from leeway.errors import IdempotencyMismatch
from leeway.jobs import Finish, Output, Usage, Webhook
from leeway.store import IdempotencyKey, Result
from tests.conftest import FAKE_MODEL, StoreFactory, claim, make_job

DONE = Result(Output("ok", Finish.STOP), Usage(3, 1))


def batch(tenant: str = "t1") -> Batch:
    return Batch(
        id=f"batch_{time.monotonic_ns()}",
        tenant=tenant,
        shape=Shape.REFERENCE,
        endpoint="/v1/responses",
        completion_window="standard",
        created_at=time.time(),
    )


async def staged(store: Any, b: Batch, n: int) -> list[str]:
    jobs = [replace(make_job(), batch_id=b.id, custom_id=f"c{i}") for i in range(n)]
    await store.open_batch(b)
    await store.stage_items(list(enumerate(jobs)))
    return [j.id for j in jobs]


@pytest.fixture
async def store(store_factory: StoreFactory):
    s = store_factory(lease_seconds=10, max_attempts=2)
    yield s
    await s.close()


async def count(store: Any, table: str) -> int:
    if store.dialect == "postgres":
        return int(
            await (await store.driver.connection()).fetchval(f"SELECT count(*) FROM {table}")
        )
    return int(store.driver._reader.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def test_staged_items_are_invisible_until_the_batch_commits(store: Any):
    b = batch()
    ids = await staged(store, b, 3)
    now = time.time()
    assert await claim(store, FAKE_MODEL, 10, now) == []
    assert await store.queued(FAKE_MODEL, 10, now) == []
    assert await store.get_batch("t1", b.id) is None
    assert await store.count_queued("t1") == 0
    assert await store.queue_depths() == {}
    single = await store.create(make_job())  # a job queued beside them is seen alone
    assert [j.id for j in await store.queued(FAKE_MODEL, 10, now)] == [single.id]
    assert await store.count_queued("t1") == 1
    assert await store.queue_depths() == {single.window: 1}
    assert [c.job.id for c in await claim(store, FAKE_MODEL, 10, now)] == [single.id]

    committed = await store.commit_batch(b, 3, None)
    assert committed.counts == Counts(queued=3)
    assert [s.custom_id for s in await store.item_states(b.id, -1, 10)] == [
        "c0",
        "c1",
        "c2",
    ]
    claims = await claim(store, FAKE_MODEL, 10, now)
    assert sorted(c.job.id for c in claims) == sorted(ids)
    assert (await store.get_batch("t1", b.id)).counts == Counts(running=3)  # type: ignore[union-attr]


async def test_counts_follow_items_and_the_last_final_item_finishes_the_batch(store: Any):
    b = batch()
    await staged(store, b, 3)
    await store.commit_batch(b, 3, None)
    claims = await claim(store, FAKE_MODEL, 2, time.time())
    await store.finish(claims[0], DONE, time.time())
    got = await store.get_batch("t1", b.id)
    assert got is not None and got.counts == Counts(queued=1, running=1, completed=1)
    assert got.finished_at is None
    cancelled = await store.cancel_batch("t1", b.id, time.time())
    assert cancelled is not None and cancelled.counts == Counts(running=1, completed=1, cancelled=1)
    assert cancelled.cancelled_at is not None and cancelled.finished_at is None
    await store.finish(claims[1], DONE, time.time())  # the running one finishes
    done = await store.get_batch("t1", b.id)
    assert done is not None and done.counts == Counts(completed=2, cancelled=1)
    assert done.finished_at is not None
    assert [x.id for x in await store.batches_to_finalize()] == [b.id]
    await store.finalize_batch(done, None, None, time.time())
    assert await store.batches_to_finalize() == []


async def test_discard_and_a_restart_leave_no_staged_items(store_factory: StoreFactory):
    store = store_factory()
    gone = batch()
    cut = replace(batch(), created_at=time.time() - 2 * 86_400)  # a day old at least
    await staged(store, gone, 2)
    await store.discard_batch(gone.id)
    await staged(store, cut, 2)  # a stop in the middle of an upload
    await store.close()
    store = store_factory()
    try:
        assert await count(store, "jobs") == 0
        assert await count(store, "batches") == 0
    finally:
        await store.close()


async def test_a_start_leaves_the_uploads_other_processes_are_taking(store_factory: StoreFactory):
    taking = store_factory()
    b = batch()
    await staged(taking, b, 2)
    starting = store_factory()  # another process starts (and discards abandoned uploads)
    try:
        assert await count(starting, "jobs") == 2
        assert (await taking.commit_batch(b, 2, None)).counts == Counts(queued=2)
    finally:
        await taking.close()
        await starting.close()


async def test_a_batch_key_replays_the_first_batch_and_discards_the_second(store: Any):
    key = IdempotencyKey("k", "fp1")
    first, second = batch(), batch()
    await staged(store, first, 1)
    assert (await store.commit_batch(first, 1, key)).id == first.id
    await staged(store, second, 1)
    assert (await store.commit_batch(second, 1, key)).id == first.id
    assert await store.get_batch("t1", second.id) is None
    assert await store.item_states(second.id, -1, 10) == []
    assert (await store.held_batch("t1", key)).id == first.id  # type: ignore[union-attr]
    with pytest.raises(IdempotencyMismatch):
        await store.held_batch("t1", IdempotencyKey("k", "fp2"))
    # the same key on a response (another route, so another fingerprint) is a mismatch too
    with pytest.raises(IdempotencyMismatch):
        await store.create(make_job(), IdempotencyKey("k", "fp3"))


async def test_items_and_the_batch_keep_their_webhooks_typed(store: Any):
    """Each item's webhook (read from its metadata at intake) is stored with it, and a final item
    gets its delivery; the batch's own is called once it is finalized."""
    hook = Webhook("https://hooks.example.com/item", "tok")
    b = replace(batch(), webhook=Webhook("https://hooks.example.com/batch"))
    jobs = [replace(make_job(), batch_id=b.id, custom_id=f"c{i}", webhook=hook) for i in range(2)]
    await store.open_batch(b)
    await store.stage_items(list(enumerate(jobs)))
    committed = await store.commit_batch(b, 2, None)
    assert committed.webhook == b.webhook
    assert (await store.item("t1", b.id, "c0")).webhook == hook  # type: ignore[union-attr]
    for held in await claim(store, FAKE_MODEL, 2, time.time()):
        await store.finish(held, DONE, time.time())
    [done] = await store.batches_to_finalize()
    await store.finalize_batch(done, None, None, time.time())
    sent = {(d.delivery.subject_kind, d.delivery.url) for d in await store.deliveries("t1", 10)}
    assert sent == {("job", hook.url), ("batch", "https://hooks.example.com/batch")}
    items = [d for d in await store.deliveries("t1", 10) if d.delivery.subject_kind == "job"]
    assert len(items) == 2 and all(d.delivery.token == "tok" for d in items)
