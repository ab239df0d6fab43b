"""Usage and cost metered in the store, SQLite and PostgreSQL alike: every path that makes a job final
bills it once, in the same transaction, at the prices configured at that moment; the roll-up answers
per bucket, group and filter; budgets read a month's spend."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest

from leeway.batches import Batch, Shape
from leeway.catalog import Price
from leeway.jobs import Finish, JobError, Output, Status, Usage, Window
from leeway.prices import PriceTable
from leeway.store import Result, SqlStore
from leeway.usage import DAY, HOUR, MINUTE, UsageQuery, UsageRow, month_start
from tests.conftest import FAKE_MODEL, StoreFactory, claim, make_job

PRICES = PriceTable(
    {(FAKE_MODEL, Window.STANDARD): Price(2.0, 8.0), (FAKE_MODEL, Window.FLEX): Price(0.4, 1.6)}
)
T0 = 1_700_000_000.0  # a fixed time: buckets are checked exactly


def done(inp: int, out: int) -> Result:
    return Result(Output("ok", Finish.STOP), Usage(inp, out))


def cost(inp: int, out: int, price: Price) -> float:
    return (inp * price.input + out * price.output) / 1e6


@pytest.fixture
async def store(store_factory: StoreFactory):
    s = store_factory(lease_seconds=10, max_attempts=1, prices=PRICES)
    yield s
    await s.close()


async def totals(store: SqlStore, **query: Any) -> UsageRow:
    """Everything in [T0 - 1 day, T0 + 1 day) as one row per day, summed."""
    q = UsageQuery(DAY, int(T0 // DAY - 1) * DAY, int(T0 // DAY + 2) * DAY, **query)
    rows = await store.usage(q)
    return UsageRow(
        0,
        sum(r.requests for r in rows),
        sum(r.input_tokens for r in rows),
        sum(r.output_tokens for r in rows),
        sum(r.input_cost for r in rows),
        sum(r.output_cost for r in rows),
    )


async def run_to_end(store: SqlStore, result: Result, **job: Any) -> Any:
    j = make_job(created_at=T0 - 100, **job)
    await store.create(j)
    (c,) = await claim(store, j.model, 1, T0 - 50)
    return await store.finish(c, result, T0)


async def test_a_finish_is_billed_at_the_prices_then_in_every_bucket(store: SqlStore):
    final = await run_to_end(store, done(50, 10), key_id="key_a")
    price = PRICES.price(FAKE_MODEL, Window.STANDARD)
    assert final.cost is not None and final.cost.amount == pytest.approx(cost(50, 10, price))
    assert (final.cost.input_price, final.cost.output_price) == (2.0, 8.0)
    assert final.key_id == "key_a"
    for width in (MINUTE, HOUR, DAY):
        start = int(T0 // width) * width
        rows = await store.usage(
            UsageQuery(width, start - width, start + 2 * width, frozenset({"key_id", "model"}))
        )
        assert [(r.start, r.requests, r.input_tokens, r.output_tokens) for r in rows] == [
            (start, 1, 50, 10)
        ]
        assert rows[0].cost == pytest.approx(cost(50, 10, price))
        assert (rows[0].key_id, rows[0].model, rows[0].tenant) == ("key_a", FAKE_MODEL, None)


async def test_a_price_change_bills_new_jobs_and_never_rewrites_history(
    store: SqlStore, store_factory: StoreFactory
):
    first = await run_to_end(store, done(100, 100))
    dearer = PriceTable({(FAKE_MODEL, Window.STANDARD): Price(10.0, 20.0)})
    later = store_factory(lease_seconds=10, prices=dearer)  # restarted with a new price
    try:
        second = await run_to_end(later, done(100, 100))
        assert await later.get("t1", first.id) == first  # billed as it was
        assert second.cost.amount == pytest.approx(cost(100, 100, Price(10.0, 20.0)))
        got = await totals(later)
        assert got.requests == 2
        assert got.cost == pytest.approx(first.cost.amount + second.cost.amount)
    finally:
        await later.close()


async def test_a_job_that_yielded_is_billed_once_for_all_its_runs(store: SqlStore):
    j = make_job(created_at=T0 - 100)
    await store.create(j)
    (c,) = await claim(store, FAKE_MODEL, 1, T0 - 90)
    assert await store.requeue(c, ["some ", "text"], tokens=7)
    assert (await totals(store)).requests == 0  # not final: nothing billed yet
    (c,) = await claim(store, FAKE_MODEL, 1, T0 - 80)
    final = await store.finish(c, done(5, 12), T0)  # the engine's usage counts earlier runs
    got = await totals(store)
    assert (got.requests, got.input_tokens, got.output_tokens) == (1, 5, 12)
    assert got.cost == pytest.approx(final.cost.amount)


async def test_a_cancel_bills_what_was_generated_and_the_stopped_run_once(store: SqlStore):
    never = make_job(created_at=T0 - 100, prompt_tokens=40)
    running = make_job(created_at=T0 - 100, prompt_tokens=30)
    for j in (never, running):
        await store.create(j)
    (c,) = await store.claim_ids(FAKE_MODEL, [running.id], T0 - 60)
    assert await store.requeue(c, ["abc"], tokens=4)  # an earlier run kept 4 tokens
    (c,) = await store.claim_ids(FAKE_MODEL, [running.id], T0 - 50)
    queued = await store.cancel("t1", never.id, T0)
    assert queued.status is Status.CANCELLED and queued.usage == Usage(0, 0)  # never ran
    cancelled = await store.cancel("t1", running.id, T0)
    assert cancelled.usage == Usage(30, 4)  # its prompt, and what the earlier run kept
    assert not await store.bill_cancelled_run(replace(c, token="stale"), 99)
    assert await store.bill_cancelled_run(c, 9)  # the stopped run had reached 9 tokens
    assert not await store.bill_cancelled_run(c, 9)  # once
    billed = await store.get("t1", running.id)
    assert billed.usage == Usage(30, 9)
    assert billed.cost.amount == pytest.approx(cost(30, 9, Price(2.0, 8.0)))
    got = await totals(store)
    assert (got.requests, got.input_tokens, got.output_tokens) == (2, 30, 9)
    assert got.cost == pytest.approx(billed.cost.amount)


async def test_a_finish_after_the_cancel_changes_nothing_and_bills_nothing_more(
    store: SqlStore,
):
    j = make_job(created_at=T0 - 100)
    await store.create(j)
    (c,) = await claim(store, FAKE_MODEL, 1, T0 - 50)
    await store.cancel("t1", j.id, T0)
    assert await store.finish(c, done(5, 16), T0 + 1) is None  # fenced
    assert await store.bill_cancelled_run(c, 16)
    got = await totals(store)
    assert (got.requests, got.input_tokens, got.output_tokens) == (1, 5, 16)


async def test_failed_jobs_count_as_requests_and_bill_nothing(store: SqlStore):
    failed = await run_to_end(store, Result(error=JobError("engine_error", "boom")))
    assert failed.status is Status.FAILED and failed.cost.amount == 0
    stalled = make_job(created_at=T0 - 100)
    await store.create(stalled)
    await claim(store, FAKE_MODEL, 1, T0 - 50, holder="alive")
    await store.hold_engines("alive", ["e"], T0 + 100, T0)  # its holder lives: a stall
    assert await store.expire(T0)  # out of attempts (max_attempts=1): failed
    assert (await store.get("t1", stalled.id)).status is Status.FAILED
    got = await totals(store)
    assert (got.requests, got.input_tokens, got.output_tokens, got.cost) == (2, 0, 0, 0)


async def test_a_batch_cancel_bills_its_queued_items_once(store: SqlStore):
    b = Batch(f"batch_{time.monotonic_ns()}", "t1", Shape.REFERENCE, "/v1/responses", "flex", T0)
    items = [
        replace(make_job(window=Window.FLEX), batch_id=b.id, custom_id=f"c{i}") for i in (0, 1)
    ]
    await store.open_batch(b)
    await store.stage_items(list(enumerate(items)))
    await store.commit_batch(b, 2, None)
    (c,) = await store.claim_ids(FAKE_MODEL, [items[0].id], T0 - 10)
    await store.requeue(c, ["x"], tokens=3)  # started once, yielded: queued with 3 tokens
    await store.cancel_batch("t1", b.id, T0)
    assert await store.cancel_batch("t1", b.id, T0 + 5) is not None  # again: nothing more
    got = await totals(store, batch=True)
    flex = Price(0.4, 1.6)
    assert (got.requests, got.output_tokens) == (2, 3)
    assert got.cost == pytest.approx(cost(items[0].prompt_tokens, 3, flex))
    assert (await totals(store, batch=False)).requests == 0
    rows = await store.usage(
        UsageQuery(DAY, 0, int(T0 * 2), frozenset({"batch", "batch_id", "completion_window"}))
    )
    assert [(r.batch, r.batch_id, r.completion_window) for r in rows] == [(True, b.id, "flex")]


async def test_groups_and_filters(store: SqlStore):
    await run_to_end(store, done(1, 1), key_id="key_a", tenant="alpha")
    await run_to_end(store, done(2, 2), key_id="key_b", tenant="beta", window=Window.FLEX)
    await run_to_end(store, done(4, 4), key_id="key_c", tenant="beta")
    assert (await totals(store, tenants=["beta"])).input_tokens == 6
    assert (await totals(store, key_ids=["key_a", "key_c"])).input_tokens == 5
    assert (await totals(store, windows=["flex"])).input_tokens == 2
    assert (await totals(store, models=["other"])).requests == 0
    rows = await store.usage(UsageQuery(DAY, 0, int(T0 * 2), frozenset({"tenant"})))
    assert [(r.tenant, r.requests, r.input_tokens) for r in rows] == [
        ("alpha", 1, 1),
        ("beta", 2, 6),
    ]


async def test_deleting_a_job_keeps_its_usage(store: SqlStore):
    final = await run_to_end(store, done(3, 3))
    assert await store.delete("t1", final.id)
    assert (await totals(store)).input_tokens == 3


async def test_spend_this_month_and_totals(store: SqlStore):
    await run_to_end(store, done(1000, 1000), tenant="alpha")
    await run_to_end(store, done(1000, 1000), tenant="beta")
    spent = cost(1000, 1000, Price(2.0, 8.0))
    assert await store.spent("alpha", month_start(T0)) == pytest.approx(spent)
    assert await store.spent("alpha", month_start(T0) + 40 * DAY) == 0
    assert await store.spent("nobody", 0) == 0
    assert [(t.tenant, t.requests, t.input_tokens) for t in await store.usage_totals()] == [
        ("alpha", 1, 1000),
        ("beta", 1, 1000),
    ]


async def test_concurrent_finishes_are_each_counted_once(store: SqlStore):
    """PostgreSQL groups them into one statement; SQLite's writer into one transaction."""
    jobs = [make_job(created_at=T0 - 100) for _ in range(60)]
    for j in jobs:
        await store.create(j)
    claims = await claim(store, FAKE_MODEL, 60, T0 - 50)
    finals = await asyncio.gather(*(store.finish(c, done(2, 3), T0) for c in claims))
    assert all(f is not None for f in finals)
    got = await totals(store)
    assert (got.requests, got.input_tokens, got.output_tokens) == (60, 120, 180)
