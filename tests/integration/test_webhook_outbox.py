"""The webhook outbox on a real store (SQLite, PostgreSQL): a delivery is written in the same transaction as every
final state (and only then), leased, recorded, listed, kept after its job is deleted, pruned."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from leeway.jobs import Finish, Output, Status, Usage
from leeway.store import Result, open_store
from leeway.store.queries import migrations
from leeway.webhooks.outbox import JOB, Attempt, Delivery, DeliveryStatus
from tests.conftest import FAKE_MODEL, StoreFactory, make_job

DONE = Result(Output("hello", Finish.STOP), Usage(5, 1))
HOOK = {"completion_webhook": "https://hooks.example.com/x", "webhook_token": "tok"}


@pytest.fixture
async def store(store_factory: StoreFactory):
    s = store_factory(lease_seconds=10, max_attempts=1)
    yield s
    await s.close()


async def claimed(store: Any, now: float = 1000.0, **fields: object):
    job = make_job(metadata=HOOK, **fields)
    await store.create(job)
    await store.hold_engines("d1", ["e1"], until=1e9, now=now)  # a dispatcher that lives on
    [claim] = await store.claim_ids(FAKE_MODEL, [job.id], now, "d1")
    return claim


async def test_finishing_writes_one_delivery_with_the_url_and_token(store: Any):
    claim = await claimed(store)
    outbox = store
    assert await outbox.deliveries("t1", 10) == []  # not before the final state
    await store.finish(claim, DONE, now=1001.0)
    [log] = await outbox.deliveries("t1", 10)
    d = log.delivery
    assert d.id.startswith("whmsg_") and len(d.id) == 6 + 48
    assert (d.subject_kind, d.subject_id, d.url, d.token) == (
        JOB,
        claim.job.id,
        HOOK["completion_webhook"],
        "tok",
    )
    assert d.status is DeliveryStatus.PENDING and d.attempts == 0 and log.attempts == ()
    assert d.created_at == d.next_attempt_at == 1001.0
    # a stale finish changes nothing and writes nothing
    assert await store.finish(claim, DONE, now=1002.0) is None
    assert len(await outbox.deliveries("t1", 10)) == 1


async def test_cancel_and_running_out_of_attempts_write_deliveries_too(store: Any):
    outbox = store
    queued = make_job(metadata=HOOK)
    await store.create(queued)
    await store.cancel("t1", queued.id, now=1000.0)
    await store.cancel("t1", queued.id, now=1001.0)  # already final: no second delivery
    lost = await claimed(store, now=1000.0)
    assert await store.expire(now=2000.0) == 1  # lease ran out with no attempts left: failed
    assert (await store.get("t1", lost.job.id)).status is Status.FAILED  # type: ignore[union-attr]
    subjects = sorted(log.delivery.subject_id for log in await outbox.deliveries("t1", 10))
    assert subjects == sorted([queued.id, lost.job.id])


async def test_no_delivery_without_a_webhook_or_without_a_final_state(store_factory: StoreFactory):
    store = store_factory(lease_seconds=10, max_attempts=3)
    try:
        plain = make_job(metadata={"completion_window": "standard"})
        await store.create(plain)
        [c] = await store.claim_ids(FAKE_MODEL, [plain.id], 1000.0)
        await store.finish(c, DONE, 1001.0)
        hooked = await claimed(store)
        await store.requeue(hooked, ["par", "tial"], 2)  # yielded its engine: not final
        [again] = await store.claim_ids(FAKE_MODEL, [hooked.job.id], 1002.0)
        await store.release([again])  # a graceful stop: not final
        await store.expire(now=5000.0)  # nothing leased
        assert await store.deliveries("t1", 10) == []
    finally:
        await store.close()


async def test_the_delivery_is_in_the_same_transaction_as_the_final_state(store: Any):
    claim = await claimed(store)
    outbox = store

    # a write that finishes the job and then fails rolls back both the state and the delivery
    def finish_then_fail(c: sqlite3.Connection) -> None:
        c.execute("UPDATE jobs SET status = 'completed' WHERE id = ?", (claim.job.id,))
        assert c.execute("SELECT count(*) FROM webhook_deliveries").fetchone()[0] == 1
        raise RuntimeError("crash before commit")

    async def finish_then_fail_postgres() -> None:
        pool = await store.driver.connection()
        async with pool.acquire() as c, c.transaction():
            await c.execute("UPDATE jobs SET status = 'completed' WHERE id = $1", claim.job.id)
            assert await c.fetchval("SELECT count(*) FROM webhook_deliveries") == 1
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        if store.dialect == "postgres":
            await finish_then_fail_postgres()
        else:
            await store.driver._writer.write(finish_then_fail)
    assert (await store.get("t1", claim.job.id)).status is Status.IN_PROGRESS  # type: ignore[union-attr]
    assert await outbox.deliveries("t1", 10) == []


async def test_due_leases_and_record_keeps_every_attempt(store: Any):
    claim = await claimed(store)
    await store.finish(claim, DONE, now=1000.0)
    outbox = store
    assert await outbox.due(999.0, 10, 40) == []
    [d] = await outbox.due(1000.0, 10, 40)
    assert d.next_attempt_at == 1040.0
    assert await outbox.due(1039.0, 10, 40) == []  # leased
    await outbox.record(
        d.id, Attempt(1000.0, 0.25, 503, "answered 503 (retried)"), DeliveryStatus.PENDING, 1005.0
    )
    [again] = await outbox.due(1005.0, 10, 40)
    assert again.attempts == 1 and again.last_status_code == 503
    await outbox.record(d.id, Attempt(1005.0, 0.5, 200), DeliveryStatus.DELIVERED)
    # a late duplicate attempt (an expired lease) is recorded but changes no outcome
    await outbox.record(d.id, Attempt(1006.0, 0.1, None, "timeout"), DeliveryStatus.PENDING, 1010.0)
    [log] = await outbox.deliveries("t1", 10, subject_id=claim.job.id)
    assert log.delivery.status is DeliveryStatus.DELIVERED and log.delivery.finished_at == 1005.5
    assert [(a.at, a.status_code) for a in log.attempts] == [
        (1000.0, 503),
        (1005.0, 200),
        (1006.0, None),
    ]
    assert await outbox.due(10_000.0, 10, 40) == []


async def test_listing_is_per_tenant_newest_first_and_filters_by_job(store: Any):
    outbox = store
    for n, tenant in enumerate(["t1", "t1", "t2"]):
        await outbox.enqueue(
            Delivery(
                f"whmsg_{n}",
                tenant,
                "batch",
                f"batch_{n}",
                "https://x.example/",
                None,
                created_at=100.0 + n,
                next_attempt_at=100.0 + n,
                body=b"{}",
            )
        )
    assert [log.delivery.id for log in await outbox.deliveries("t1", 10)] == ["whmsg_1", "whmsg_0"]
    assert [log.delivery.id for log in await outbox.deliveries("t1", 1)] == ["whmsg_1"]
    assert [log.delivery.id for log in await outbox.deliveries("t1", 10, "batch_0")] == ["whmsg_0"]
    assert [log.delivery.id for log in await outbox.deliveries("t2", 10)] == ["whmsg_2"]
    [d] = await outbox.due(100.5, 10, 40)
    assert d.body == b"{}"


async def test_deliveries_outlive_their_job_and_are_pruned_by_age(store: Any):
    claim = await claimed(store)
    await store.finish(claim, DONE, now=1000.0)
    outbox = store
    [d] = await outbox.due(1000.0, 10, 40)
    await outbox.record(d.id, Attempt(1000.0, 1.0, 200), DeliveryStatus.DELIVERED)
    assert await store.delete("t1", claim.job.id)
    [log] = await outbox.deliveries("t1", 10)
    assert log.delivery.id == d.id and len(log.attempts) == 1
    pending = await claimed(store)
    await store.finish(pending, DONE, now=1000.0)
    assert await outbox.prune(before=1000.5) == 0  # finished at 1001
    assert await outbox.prune(before=1001.5) == 1  # the pending one stays
    [left] = await outbox.deliveries("t1", 10)
    assert left.delivery.subject_id == pending.job.id


async def test_one_secret_is_made_on_first_need_and_rotation_keeps_the_old_one(store: Any):
    outbox = store
    [first] = await outbox.secrets("t1", 1000.0)
    assert first.startswith("whsec_") and await outbox.secrets("t1", 1001.0) == [first]
    new = await outbox.rotate_secret("t1", 1002.0, grace=50.0)
    assert await outbox.secrets("t1", 1003.0) == [new, first]
    assert await outbox.secrets("t1", 1052.0) == [new]
    newer = await outbox.rotate_secret("t1", 1060.0, grace=0.0)
    assert await outbox.secrets("t1", 1060.0) == [newer]
    assert await outbox.prune(before=2000.0) == 0  # retired secrets go; deliveries: none
    assert await outbox.secrets("t1", 2000.0) == [newer]
    assert await outbox.secrets("t2", 1000.0) != [newer]


async def test_a_database_made_before_webhooks_is_migrated(tmp_path: Path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        for number, sql in migrations("sqlite"):
            if number < 5:
                db.executescript(f"{sql}\nPRAGMA user_version={number};")
    store = open_store(path, max_attempts=3)
    try:
        claim = await claimed(store)
        await store.finish(claim, DONE, now=1000.0)
        assert len(await store.deliveries("t1", 10)) == 1
    finally:
        await store.close()
