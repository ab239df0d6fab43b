"""Running jobs' text pieces in the store (SQLite and PostgreSQL alike): appended by the run holding
the lease, read for many jobs at once, dropped when the job leaves in_progress."""

from __future__ import annotations

import pytest

from leeway.jobs import Finish, Output, Status, Usage
from leeway.store import Result, Store
from tests.conftest import FAKE_MODEL, StoreFactory, claim, make_job


@pytest.fixture
async def store(store_factory: StoreFactory):
    s = store_factory(lease_seconds=10, max_attempts=3)
    yield s
    await s.close()


async def test_pieces_are_appended_in_one_write_and_read_from_a_seq(store: Store):
    a, b, queued = make_job(), make_job(), make_job()
    for job in (a, b, queued):
        await store.create(job)
    ca, cb = await store.claim_ids(FAKE_MODEL, [a.id, b.id], now=100.0)
    assert await store.append_pieces([(ca, 0, ["He", "llo"]), (cb, 0, ["x"])]) == {a.id, b.id}
    assert await store.append_pieces([(ca, 2, [" wor", "ld"])]) == {a.id}
    # a piece stored already is kept as it was (a run after a requeue stores its pieces again)
    assert await store.append_pieces([(ca, 1, ["llo", " wor"])]) == {a.id}
    got = await store.pieces({a.id: 1, b.id: 0, queued.id: 0, "missing": 0})
    assert set(got) == {a.id, b.id, queued.id}
    assert got[a.id].status is Status.IN_PROGRESS
    assert got[a.id].pieces == [(1, "llo"), (2, " wor"), (3, "ld")]
    assert got[b.id].pieces == [(0, "x")]
    assert got[queued.id].status is Status.QUEUED and got[queued.id].pieces == []
    assert await store.pieces({}) == {}


async def test_only_the_lease_holder_appends(store: Store):
    job = make_job()
    await store.create(job)
    [stale] = await claim(store, FAKE_MODEL, 1, now=100.0)
    [holder] = await claim(store, FAKE_MODEL, 1, now=111.0)  # the first lease ran out
    assert await store.append_pieces([(stale, 0, ["old"])]) == set()
    assert await store.append_pieces([(holder, 0, ["new"])]) == {job.id}
    assert (await store.pieces({job.id: 0}))[job.id].pieces == [(0, "new")]


async def test_pieces_are_dropped_when_the_job_is_final_or_requeued(store: Store):
    done, requeued = make_job(), make_job()
    for job in (done, requeued):
        await store.create(job)
    cd, cr = await store.claim_ids(FAKE_MODEL, [done.id, requeued.id], now=100.0)
    await store.append_pieces([(cd, 0, ["hel", "lo"]), (cr, 0, ["par", "tial"])])
    result = Result(Output("hello", Finish.STOP, piece_sizes=(3, 2)), Usage(5, 2))
    assert await store.finish(cd, result, now=101.0) is not None
    assert await store.requeue(cr, ["par", "tial"], 2)
    assert await store.append_pieces([(cd, 2, ["late"])]) == set()  # final: nothing more
    got = await store.pieces({done.id: 0, requeued.id: 0})
    assert got[done.id].status is Status.COMPLETED and got[done.id].pieces == []
    assert got[requeued.id].status is Status.QUEUED and got[requeued.id].pieces == []
    # its next run stores every piece again, earlier runs' included, under the same numbers
    [again] = await claim(store, FAKE_MODEL, 1, now=102.0)
    assert await store.append_pieces([(again, 0, ["par", "tial", "!"])]) == {requeued.id}
    assert (await store.pieces({requeued.id: 1}))[requeued.id].pieces == [(1, "tial"), (2, "!")]
    assert await store.delete("t1", requeued.id)
    assert await store.pieces({requeued.id: 0}) == {}
