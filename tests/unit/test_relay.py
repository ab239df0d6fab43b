"""Relaying jobs that run elsewhere from the store, and followers that pass each piece on once and
in order whichever path it came by."""

from __future__ import annotations

import asyncio

from leeway.jobs import Finish, Job, Output, Usage
from leeway.pieces import PieceLog, Relay
from leeway.store import Result
from tests.conftest import FAKE_MODEL, UnitStore, claim, make_job


async def never() -> Job | None:
    return None


async def test_a_follower_drops_pieces_it_has_and_orders_those_that_come_early():
    log = PieceLog()
    follower, _ = log.subscribe("j")
    for seq, text in [(1, "b"), (3, "d"), (1, "b"), (2, "c"), (4, "e")]:
        log.publish("j", seq, text)
    log.publish_final(make_job(id="j"))
    got = [u async for u in follower.updates(never, start=1)]
    assert got[:-1] == ["b", "c", "d", "e"] and isinstance(got[-1], Job)


async def test_the_relay_publishes_stored_pieces_once_then_the_final_job():
    store, log = UnitStore(), PieceLog()
    job = make_job()
    await store.create(job)
    [held] = await claim(store, FAKE_MODEL, 1, now=100.0)
    relay = Relay(log, store, store, seconds=0.01)
    await relay.start()
    early, _ = log.subscribe(job.id)
    relay.follow(job, 0)
    await store.append_pieces([(held, 0, ["a", "b"])])
    await asyncio.sleep(0.05)
    late, _ = log.subscribe(job.id)  # came later, and already had the first piece
    relay.follow(job, 1)
    await store.append_pieces([(held, 2, ["c"])])
    await asyncio.sleep(0.05)
    await store.finish(held, Result(Output("abcd", Finish.STOP), Usage(1, 4)), now=101.0)
    async with asyncio.timeout(5):
        streams = await asyncio.gather(
            *(_collect(s.updates(never, start=n)) for s, n in ((early, 0), (late, 1)))
        )
    await relay.stop()
    assert streams[0][:-1] == ["a", "b", "c"] and streams[1][:-1] == ["b", "c"]
    assert all(s[-1].output.text == "abcd" for s in streams)


async def _collect(updates):  # type: ignore[no-untyped-def]
    return [u async for u in updates]
