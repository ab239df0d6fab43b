"""Relaying jobs that run elsewhere from the store, and subscribers that pass each piece on once and
in order whichever source it came from."""

from __future__ import annotations

import asyncio

from leeway.api.relay import Relay
from leeway.events import JobEvents
from leeway.jobs import Finish, Job, Output, Usage
from leeway.store import Result
from leeway.store.fake import FakeStore
from tests.conftest import FAKE_MODEL, make_job


async def never() -> Job | None:
    return None


async def test_a_subscriber_drops_pieces_it_has_and_orders_those_that_come_early():
    events = JobEvents()
    sub = events.subscribe("j")
    for seq, text in [(1, "b"), (3, "d"), (1, "b"), (2, "c"), (4, "e")]:
        events.publish_delta("j", text, seq)
    events.publish_final(make_job(id="j"))
    got = [u async for u in sub.updates(never, seconds=5, start=1)]
    assert got[:-1] == ["b", "c", "d", "e"] and isinstance(got[-1], Job)


async def test_the_relay_publishes_stored_pieces_once_then_the_final_job():
    store, events = FakeStore(), JobEvents()
    job = make_job()
    await store.create(job)
    [claim] = await store.claim(FAKE_MODEL, 1, now=100.0)
    relay = Relay(store, events, seconds=0.01)
    await relay.start()
    early = events.subscribe(job.id)
    relay.follow(job, 0)
    await store.append_deltas([(claim, 0, ["a", "b"])])
    await asyncio.sleep(0.05)
    late = events.subscribe(job.id)  # came later, and already had the first piece
    relay.follow(job, 1)
    await store.append_deltas([(claim, 2, ["c"])])
    await asyncio.sleep(0.05)
    await store.finish(claim, Result(Output("abcd", Finish.STOP), Usage(1, 4)), now=101.0)
    async with asyncio.timeout(5):
        streams = await asyncio.gather(
            *(_collect(s.updates(never, seconds=5, start=n)) for s, n in ((early, 0), (late, 1)))
        )
    await relay.stop()
    assert streams[0][:-1] == ["a", "b", "c"] and streams[1][:-1] == ["b", "c"]
    assert all(s[-1].output.text == "abcd" for s in streams)


async def _collect(updates):  # type: ignore[no-untyped-def]
    return [u async for u in updates]
