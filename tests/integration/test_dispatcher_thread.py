"""The dispatcher on its own thread and loop, as the server runs it, driven from another loop (the
API's): streams, a replay joining mid-stream, a cancel, and store reads from both threads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from leeway.engines.fake import FakeEngine
from leeway.events import JobEvents, Update
from leeway.jobs import Job, Sampling, Status, Window
from leeway.scheduler.dispatcher import Dispatcher
from leeway.scheduler.loop_thread import LoopThread
from leeway.store.sqlite import SqliteStore
from tests.conftest import FAKE_MODEL, make_job

TOKENS = 40


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.store = SqliteStore(tmp_path / "db", lease_seconds=30)
        self.engine = FakeEngine(FAKE_MODEL, parallel=4, tokens=TOKENS, delay=0.005)
        self.events = JobEvents()
        self.dispatcher = Dispatcher(
            self.store, [self.engine], self.events, lease_seconds=30, poll_seconds=1
        )
        self.thread = LoopThread("test-dispatcher")

    async def submit(self, job: Job) -> None:
        await self.store.create(job)
        self.dispatcher.wake(job)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    s = Setup(tmp_path)
    s.thread.start()

    async def start() -> None:
        await s.engine.start()
        s.dispatcher.start()

    await s.thread.run(start())
    try:
        yield s
    finally:
        await s.thread.run(s.dispatcher.stop())
        await s.thread.stop()
        await s.store.close()


async def collect(updates: AsyncIterator[Update]) -> tuple[list[str], Job]:
    deltas: list[str] = []
    async for update in updates:
        if isinstance(update, Job):
            return deltas, update
        deltas.append(update)
    raise AssertionError("no final job")


async def never() -> None:
    return None


def job(**overrides: object) -> Job:
    return make_job(sampling=Sampling(TOKENS), **overrides)


async def test_streams_and_replays_cross_threads_with_every_piece_exactly_once(setup: Setup):
    jobs = [job() for _ in range(8)]
    subs = [setup.events.subscribe(j.id) for j in jobs]
    for j in jobs:
        await setup.submit(j)
    # join each stream mid-way, as GET ?stream=true does: every piece once, in order
    joined = []
    for j in jobs:
        for _ in range(5000):  # until it starts
            if (await setup.store.get("t1", j.id)).status is not Status.QUEUED:
                break
            await asyncio.sleep(0.002)
        joined.append(setup.dispatcher.watch(j.id, setup.events))
    streams = await asyncio.gather(*(collect(s.updates(never, seconds=10)) for s in subs))
    for (deltas, final), (sub, pieces) in zip(streams, joined, strict=True):
        assert final.status is Status.COMPLETED
        assert "".join(deltas) == final.output.text and final.output.text.count("fake ") == 1
        if pieces is None:  # already stored by the time it was asked
            continue
        late, again = await collect(sub.updates(never, seconds=10))
        assert again.id == final.id and "".join(pieces + late) == final.output.text
    assert not any(setup.events.watched(j.id) for j in jobs)


async def test_a_cancel_from_another_loop_stops_the_run(setup: Setup):
    running = job()
    sub = setup.events.subscribe(running.id)
    await setup.submit(running)
    first = await asyncio.wait_for(sub.queue.get(), 10)
    assert first == (0, "fake ")  # the piece and its number
    cancelled = await setup.store.cancel("t1", running.id, time.time())
    assert cancelled is not None and cancelled.status is Status.CANCELLED
    setup.dispatcher.abandon(running.id)
    setup.events.publish_final(cancelled)
    _, final = await collect(sub.updates(never, seconds=10))
    assert final.status is Status.CANCELLED
    for _ in range(1000):
        if setup.dispatcher.running(FAKE_MODEL) == 0:
            break
        await asyncio.sleep(0.01)
    assert setup.dispatcher.running(FAKE_MODEL) == 0
    assert setup.dispatcher.pieces(running.id) is None
    stored = await setup.store.get("t1", running.id)
    assert stored is not None and stored.status is Status.CANCELLED
    nxt = job()  # its sequence is free again
    sub = setup.events.subscribe(nxt.id)
    await setup.submit(nxt)
    _, done = await collect(sub.updates(never, seconds=10))
    assert done.status is Status.COMPLETED


async def test_writes_from_both_loops_share_commits_and_each_loop_hears_back(setup: Setup):
    async def create(n: int) -> list[Job]:
        # in debug mode a loop refuses to be called from another thread (rather than stall)
        asyncio.get_running_loop().set_debug(True)
        return await asyncio.gather(
            *(setup.store.create(job(window=Window.FLEX)) for _ in range(n))
        )

    here, there = await asyncio.wait_for(
        asyncio.gather(create(300), setup.thread.run(create(300))), 30
    )
    for made in (*here, *there):
        stored = await setup.store.get("t1", made.id)  # read on this thread; the other read too
        assert stored is not None and stored.id == made.id
