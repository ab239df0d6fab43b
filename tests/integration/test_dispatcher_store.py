"""The dispatcher on a real store (SQLite, PostgreSQL): what a backlog, a stalled clock and a preemption must
not break."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

from leeway.engines import Chunk
from leeway.engines.fake import FakeEngine
from leeway.jobs import Job, Status, Window
from leeway.pieces import PieceLog
from leeway.scheduler.dispatcher import Dispatcher
from tests.conftest import FAKE_MODEL, StoreFactory, make_job


class Recording(FakeEngine):
    def __init__(self, parallel: int, tokens: int = 4, delay: float = 0.02) -> None:
        super().__init__(FAKE_MODEL, parallel=parallel, tokens=tokens, delay=delay)
        self.started: list[str] = []

    async def generate(self, job: Job) -> AsyncGenerator[Chunk, None]:
        self.started.append(job.id)
        async for chunk in super().generate(job):
            yield chunk


async def until(check, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


async def test_asap_is_not_hidden_behind_a_backlog_of_late_jobs(store_factory: StoreFactory):
    store, engine = store_factory(), Recording(parallel=2)
    t = time.time()
    backlog = [
        make_job(window=Window.STANDARD, created_at=t - 600, deadline=t - 300) for _ in range(100)
    ]
    for job in backlog:
        await store.create(job)
    dispatcher = Dispatcher(store, [engine], PieceLog(), lease_seconds=30, poll_seconds=0.01)
    dispatcher.start()
    try:
        await until(lambda: asyncio.sleep(0, len(engine.started) >= 4))
        before = len(engine.started)
        urgent = make_job(window=Window.ASAP, created_at=time.time(), deadline=time.time())
        await store.create(urgent)
        dispatcher.wake(urgent)

        async def started() -> bool:
            return urgent.id in engine.started

        await until(started)
    finally:
        await dispatcher.stop()
        await store.close()
    # the next start (one more may have begun before it arrived), not after 86 late jobs
    assert engine.started.index(urgent.id) <= before + 1


async def test_a_stalled_clock_never_runs_a_job_twice(store_factory: StoreFactory):
    now = [time.time()]
    store, engine = (
        store_factory(lease_seconds=1),
        Recording(parallel=2, tokens=12, delay=0.05),
    )
    events = PieceLog()
    job = make_job()
    await store.create(job)
    sub, _ = events.subscribe(job.id)
    dispatcher = Dispatcher(
        store,
        [engine],
        events,
        lease_seconds=1,
        poll_seconds=0.01,
        clock=lambda: now[0],
    )
    dispatcher.start()
    try:
        await until(lambda: asyncio.sleep(0, bool(engine.started)))
        now[0] += 100  # the process stalled far past its lease
        await asyncio.sleep(0.5)  # renew and expire ran; the fill loop looked again

        async def never() -> None:
            return None

        updates = [u async for u in sub.updates(never, start=None)]
    finally:
        await dispatcher.stop()
        await store.close()
    *deltas, final = updates
    assert engine.started == [job.id]
    assert "".join(deltas) == final.output.text and final.status is Status.COMPLETED
    assert final.output.text.count("fake ") == 1  # not streamed twice
