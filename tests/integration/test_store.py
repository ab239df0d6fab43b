"""The store on a real database, SQLite and PostgreSQL alike: ordering, leases, fencing, concurrent
writes, durability."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import asyncpg
import pytest

from leeway.jobs import Finish, JobError, Output, Status, Usage, Window
from leeway.store import Result, SqlStore, Store, open_store
from tests.conftest import FAKE_MODEL, StoreFactory, claim, make_job

DONE = Result(Output("hello", Finish.STOP), Usage(5, 1))


@pytest.fixture
async def store(store_factory: StoreFactory):
    s = store_factory(lease_seconds=10, max_attempts=2)
    yield s
    await s.close()


async def test_round_trip_and_tenant_scope(store: Store):
    job = make_job(metadata={"completion_window": "standard"}, echo={"user": "u1"})
    await store.create(job)
    assert await store.get("t1", job.id) == job
    assert await store.get("someone-else", job.id) is None


async def test_claim_takes_most_urgent_first_for_its_model_only(store: Store):
    t = 1000.0
    flex = make_job(window=Window.FLEX, deadline=t + 5)
    late = make_job(window=Window.STANDARD, deadline=t + 300)
    early = make_job(window=Window.STANDARD, deadline=t + 100)
    other = make_job(model="other-model", window=Window.ASAP, deadline=t)
    for job in (flex, late, early, other):
        await store.create(job)
    claims = await claim(store, FAKE_MODEL, 2, now=t)
    assert [c.job.id for c in claims] == [early.id, late.id]
    assert all(c.job.status is Status.IN_PROGRESS and c.job.attempts == 1 for c in claims)
    assert [c.job.id for c in await claim(store, FAKE_MODEL, 5, now=t)] == [flex.id]
    assert await claim(store, FAKE_MODEL, 5, now=t) == []


async def test_expired_lease_is_claimed_again_and_the_stale_holder_is_fenced(store: Store):
    job = make_job()
    await store.create(job)
    [first] = await claim(store, FAKE_MODEL, 1, now=100.0)
    assert await claim(store, FAKE_MODEL, 1, now=105.0) == []  # lease still held
    [second] = await claim(store, FAKE_MODEL, 1, now=111.0)  # 10 s lease ran out
    assert second.token != first.token and second.job.attempts == 2
    assert await store.finish(first, DONE, now=112.0) is None  # stale token changes nothing
    assert (await store.get("t1", job.id)).status is Status.IN_PROGRESS
    done = await store.finish(second, DONE, now=113.0)
    assert done.status is Status.COMPLETED and done.output.text == "hello"
    assert done.usage == Usage(5, 1) and done.completed_at == 113.0
    # a final result is never changed again, by anyone
    assert await store.finish(second, Result(error=JobError("x", "y")), now=114.0) is None
    assert (await store.get("t1", job.id)).output.text == "hello"


async def test_renew_keeps_the_lease(store: Store):
    await store.create(make_job())
    claims = await claim(store, FAKE_MODEL, 1, now=100.0)
    await store.renew(claims, now=108.0)
    assert await claim(store, FAKE_MODEL, 1, now=115.0) == []  # renewed until 118
    assert len(await claim(store, FAKE_MODEL, 1, now=119.0)) == 1


async def test_a_job_that_keeps_losing_its_lease_fails_after_max_attempts(store: Store):
    job = make_job()
    await store.create(job)
    await store.hold_engines("d1", ["e1"], until=1e9, now=100.0)  # its dispatcher lives on
    await claim(store, FAKE_MODEL, 1, now=100.0, holder="d1")
    await claim(store, FAKE_MODEL, 1, now=111.0, holder="d1")
    assert await claim(store, FAKE_MODEL, 1, now=122.0) == []
    failed = await store.get("t1", job.id)
    assert failed.status is Status.FAILED and failed.error.code == "attempts_exhausted"
    assert failed.cost is not None and failed.cost.amount == 0  # priced as final; bills nothing


async def test_a_crash_of_its_holder_spends_no_attempt_but_counts(store_factory: StoreFactory):
    """A lease that ran out because its dispatcher died (no engine lease of its holder is alive) is
    not the job's fault: the attempt is given back. A job in flight at ``max_crashes`` deaths of its
    holder is taken for their cause and fails."""
    store = store_factory(lease_seconds=10, max_attempts=1, max_crashes=3)
    try:
        job = make_job()
        await store.create(job)
        await store.hold_engines("dead", ["e1"], until=105.0, now=100.0)  # stops renewing at 105
        for n in range(3):  # with one attempt allowed, a stall would have failed it at once
            [run] = await claim(store, FAKE_MODEL, 1, now=100.0 + 11 * n, holder="dead")
            assert run.job.attempts == n + 1  # runs started
        assert await claim(store, FAKE_MODEL, 1, now=133.0) == []  # the third death: poison
        failed = await store.get("t1", job.id)
        assert failed.status is Status.FAILED and failed.error.code == "attempts_exhausted"
        assert "died" in failed.error.message
    finally:
        await store.close()


async def test_release_requeues_without_spending_an_attempt(store: Store):
    job = make_job()
    await store.create(job)
    claims = await claim(store, FAKE_MODEL, 1, now=100.0)
    await store.release(claims)
    back = await store.get("t1", job.id)
    assert back.status is Status.QUEUED and back.attempts == 0
    assert len(await claim(store, FAKE_MODEL, 1, now=100.0)) == 1


async def test_results_map_to_final_states(store: Store):
    jobs = [make_job() for _ in range(3)]
    for job in jobs:
        await store.create(job)
    claims = await claim(store, FAKE_MODEL, 3, now=1.0)
    results = [
        DONE,
        Result(Output("hel", Finish.LENGTH), Usage(5, 3)),
        Result(error=JobError("engine_error", "it broke")),
    ]
    finals = [await store.finish(c, r, now=2.0) for c, r in zip(claims, results, strict=True)]
    assert [f.status for f in finals] == [Status.COMPLETED, Status.INCOMPLETE, Status.FAILED]
    assert finals[2].error == JobError("engine_error", "it broke") and finals[2].output is None


async def test_concurrent_creates_all_survive_reopening(store_factory: StoreFactory):
    store = store_factory()
    jobs = [make_job() for _ in range(500)]
    await asyncio.gather(*(store.create(j) for j in jobs))
    await store.close()
    reopened = store_factory()
    try:
        assert all([await reopened.get("t1", j.id) == j for j in jobs])
    finally:
        await reopened.close()


async def test_sqlite_is_in_wal_mode(tmp_path: Path):
    await open_store(tmp_path / "db.sqlite").close()
    with sqlite3.connect(tmp_path / "db.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_one_failing_write_does_not_undo_its_group(store: Store):
    job, dup, other = make_job(), make_job(), make_job()
    await store.create(job)
    results = await asyncio.gather(
        store.create(dup), store.create(job), store.create(other), return_exceptions=True
    )
    assert results[0] == dup and results[2] == other
    assert isinstance(results[1], sqlite3.IntegrityError | asyncpg.UniqueViolationError)
    assert await store.get("t1", dup.id) == dup and await store.get("t1", other.id) == other


async def test_a_dead_processes_jobs_are_run_again_even_with_nothing_else_queued(
    store_factory: StoreFactory,
):
    """Every job was in progress when its process died; nothing else is queued."""
    from leeway.engines.fake import FakeEngine
    from leeway.pieces import PieceLog
    from leeway.scheduler.dispatcher import Dispatcher

    store = store_factory(lease_seconds=0.2)
    jobs = [make_job() for _ in range(2)]
    for job in jobs:
        await store.create(job)
    await claim(store, FAKE_MODEL, 2, now=time.time())  # the dead process's claims
    dispatcher = Dispatcher(
        store,
        [FakeEngine(FAKE_MODEL, parallel=2)],
        PieceLog(),
        lease_seconds=0.2,
        poll_seconds=0.05,
    )
    dispatcher.start()
    try:
        for _ in range(100):
            final = [await store.get("t1", j.id) for j in jobs]
            if all(j.status is Status.COMPLETED for j in final):
                break
            await asyncio.sleep(0.05)
    finally:
        await dispatcher.stop()
        await store.close()
    assert [(j.status, j.attempts) for j in final] == [(Status.COMPLETED, 2)] * 2


async def test_an_engine_lease_has_one_holder_until_it_expires_or_is_handed_over(
    store: SqlStore,
):
    now = time.time()
    assert await store.hold_engines("a", ["gpu-0", "gpu-1"], now + 30, now) == {"gpu-0", "gpu-1"}
    assert await store.hold_engines("b", ["gpu-0", "gpu-2"], now + 30, now) == {"gpu-2"}
    assert await store.hold_engines("a", ["gpu-0"], now + 60, now + 1) == {"gpu-0"}  # renewed
    assert await store.hold_engines("b", ["gpu-0"], now + 90, now + 40) == set()  # still a's
    assert await store.hold_engines("b", ["gpu-0"], now + 90, now + 61) == {"gpu-0"}  # expired
    await store.hold_engines("b", ["gpu-0"], now + 62, now + 62)  # handed over
    assert await store.hold_engines("a", ["gpu-0"], now + 99, now + 63) == {"gpu-0"}
