"""The in-process runtime as the server runs it: the dispatcher on its own thread and loop, driven
from another loop (the API's): streams, a follower joining mid-stream, a cancel, and store reads
and writes from both threads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from leeway.engines.fake import FakeEngine
from leeway.jobs import Job, Sampling, Status, Window
from leeway.pieces import Update
from leeway.runtime.local import InProcess
from leeway.store import open_store
from tests.conftest import FAKE_MODEL, fake_settings, make_job

TOKENS = 40


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.store = open_store(tmp_path / "db", lease_seconds=30)
        self.engine = FakeEngine(FAKE_MODEL, parallel=4, tokens=TOKENS, delay=0.005)
        settings = fake_settings(tmp_path, poll_seconds=1.0)
        self.runtime = InProcess(settings, self.store, [self.engine], shared=False)

    async def submit(self, job: Job) -> None:
        await self.store.create(job)
        self.runtime.wake(job)

    async def running(self) -> int:
        return int((await self.runtime.health()).engines[FAKE_MODEL]["running"])


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    s = Setup(tmp_path)
    await s.runtime.start()
    try:
        yield s
    finally:
        await s.runtime.stop()
        await s.store.close()


async def collect(updates: AsyncIterator[Update]) -> tuple[list[str], Job]:
    deltas: list[str] = []
    async for update in updates:
        if isinstance(update, Job):
            return deltas, update
        deltas.append(update)
    raise AssertionError("no final job")


def job(**overrides: object) -> Job:
    return make_job(sampling=Sampling(TOKENS), **overrides)


async def test_streams_and_replays_cross_threads_with_every_piece_exactly_once(setup: Setup):
    jobs = [job() for _ in range(8)]
    subs = [setup.runtime.follow(j, 0) for j in jobs]
    for j in jobs:
        await setup.submit(j)
    # join each stream mid-way, as GET ?stream=true does: every piece once, in order
    joined = []
    for j in jobs:
        for _ in range(5000):  # until it starts
            if (await setup.store.get("t1", j.id)).status is not Status.QUEUED:
                break
            await asyncio.sleep(0.002)
        joined.append(setup.runtime.follow(j, 0))
    streams = await asyncio.gather(*(collect(s) for s in subs))
    for (deltas, final), late in zip(streams, joined, strict=True):
        assert final.status is Status.COMPLETED
        assert "".join(deltas) == final.output.text and final.output.text.count("fake ") == 1
        again, last = await collect(late)
        assert last.id == final.id and "".join(again) == final.output.text
    assert not any(setup.runtime._log.followed(j.id) for j in jobs)


async def test_a_cancel_from_another_loop_stops_the_run(setup: Setup):
    running = job()
    sub = setup.runtime.follow(running, 0)
    await setup.submit(running)
    first = await asyncio.wait_for(anext(sub), 10)
    assert first == "fake "  # its first piece
    cancelled = await setup.store.cancel("t1", running.id, time.time())
    assert cancelled is not None and cancelled.status is Status.CANCELLED
    setup.runtime.cancel(cancelled)
    _, final = await collect(sub)
    assert final.status is Status.CANCELLED
    for _ in range(1000):
        if await setup.running() == 0:
            break
        await asyncio.sleep(0.01)
    assert await setup.running() == 0
    assert setup.runtime._log.pieces(running.id) is None
    stored = await setup.store.get("t1", running.id)
    assert stored is not None and stored.status is Status.CANCELLED
    nxt = job()  # its sequence is free again
    sub = setup.runtime.follow(nxt, 0)
    await setup.submit(nxt)
    _, done = await collect(sub)
    assert done.status is Status.COMPLETED


async def test_writes_from_both_loops_share_commits_and_each_loop_hears_back(setup: Setup):
    async def create(n: int) -> list[Job]:
        # in debug mode a loop refuses to be called from another thread (rather than stall)
        asyncio.get_running_loop().set_debug(True)
        return await asyncio.gather(
            *(setup.store.create(job(window=Window.FLEX)) for _ in range(n))
        )

    here, there = await asyncio.wait_for(
        asyncio.gather(create(300), setup.runtime._thread.run(create(300))), 30
    )
    for made in (*here, *there):
        stored = await setup.store.get("t1", made.id)  # read on this thread; the other read too
        assert stored is not None and stored.id == made.id
