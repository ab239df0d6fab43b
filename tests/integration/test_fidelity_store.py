"""The store's part in the SDKs' extras, on SQLite and PostgreSQL: stored chat completions listed
and filtered, their metadata replaced; a finished job's reasoning and its tokens; failed batches
with their errors; batches deleted once ended; batches listed by shape."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from leeway.batches import Batch, BatchError, Shape
from leeway.jobs import Finish, Output, Surface, Usage, Webhook
from leeway.store import IdempotencyKey, Result
from tests.conftest import FAKE_MODEL, StoreFactory, claim, make_job
from tests.integration.test_batch_store import DONE, count, staged


@pytest.fixture
async def store(store_factory: StoreFactory):
    s = store_factory(lease_seconds=10)
    yield s
    await s.close()


async def finished(store: Any, **fields: Any) -> Any:
    """A chat completion made, run and finished."""
    made = make_job(id=f"chatcmpl-{time.monotonic_ns()}", surface=Surface.CHAT, **fields)
    job = await store.create(made)
    [c] = await claim(store, job.model, 1, time.time())
    assert c.job.id == job.id
    return await store.finish(c, DONE, time.time())


async def test_stored_chats_are_listed_filtered_and_paged(store: Any):
    made = [await finished(store, metadata={"run": "a" if i < 2 else "b"}) for i in range(4)]
    ids = [j.id for j in made]
    await finished(store, stored=False)  # store: false
    await finished(store, tenant="t2")  # another tenant's
    await store.create(make_job(surface=Surface.CHAT))  # not finished yet
    await store.create(make_job(surface=Surface.RESPONSES))  # no chat

    assert [j.id for j in await store.list_chats("t1", 10)] == ids
    assert [j.id for j in await store.list_chats("t1", 10, newest_first=True)] == ids[::-1]
    assert [j.id for j in await store.list_chats("t1", 2)] == ids[:2]
    assert [j.id for j in await store.list_chats("t1", 10, after=ids[1])] == ids[2:]
    desc = await store.list_chats("t1", 10, after=ids[2], newest_first=True)
    assert [j.id for j in desc] == ids[:2][::-1]
    assert [j.id for j in await store.list_chats("t1", 10, metadata={"run": "a"})] == ids[:2]
    assert await store.list_chats("t1", 10, metadata={"run": "a", "x": "1"}) == []
    assert [j.id for j in await store.list_chats("t1", 10, model=FAKE_MODEL)] == ids
    assert await store.list_chats("t1", 10, model="other") == []
    assert await store.list_chats("t1", 10, after="chatcmpl-missing") == []
    assert [j.stored for j in await store.list_chats("t1", 10)] == [True] * 4


async def test_metadata_is_replaced(store: Any):
    job = await finished(store, metadata={"a": "1"})
    changed = await store.set_metadata("t1", job.id, {"b": "2"})
    assert changed is not None and changed.metadata == {"b": "2"}
    assert (await store.get("t1", job.id)).metadata == {"b": "2"}
    assert await store.set_metadata("t2", job.id, {"c": "3"}) is None  # not that tenant's
    assert [j.id for j in await store.list_chats("t1", 10, metadata={"b": "2"})] == [job.id]


async def test_reasoning_and_its_tokens_are_stored_with_the_output(store: Any):
    await store.create(make_job())
    [c] = await claim(store, FAKE_MODEL, 1, time.time())
    result = Result(Output("4.", Finish.STOP, reasoning="2 and 2."), Usage(5, 9, 6))
    done = await store.finish(c, result, time.time())
    for job in (done, await store.get("t1", c.job.id)):
        assert job.output.reasoning == "2 and 2." and job.usage == Usage(5, 9, 6)
    await store.create(make_job())
    [plain] = await claim(store, FAKE_MODEL, 1, time.time())
    plain_done = await store.finish(plain, DONE, time.time())
    assert plain_done.output.reasoning == "" and plain_done.usage.reasoning_tokens == 0


def openai_batch(tenant: str = "t1", **fields: Any) -> Batch:
    return Batch(
        id=f"batch_{time.monotonic_ns()}",
        tenant=tenant,
        shape=fields.pop("shape", Shape.OPENAI),
        endpoint="/v1/responses",
        completion_window="24h",
        created_at=time.time(),
        input_file_id="file-x",
        **fields,
    )


async def test_a_failed_batch_is_kept_with_its_errors(store: Any):
    b = openai_batch(webhook=Webhook("https://example.com/hook"))
    await staged(store, b, 2)
    await store.discard_batch(b.id)  # what ingest does when an item is invalid
    key = IdempotencyKey("k1", "f1")
    errors = [BatchError("invalid_request", "line 2: bad", "body.model", 2)]
    failed = await store.fail_batch(b, errors, key, time.time())
    assert failed.failed_at is not None and failed.errors == tuple(errors)
    assert failed.finished_at is not None and failed.finalized_at is not None
    assert failed.counts.total == 0 and await store.item_states(b.id, -1, 10) == []
    assert (await store.get_batch("t1", b.id)).errors == tuple(errors)
    assert (await store.held_batch("t1", key)).id == b.id  # its key replays it
    assert b.id not in [x.id for x in await store.batches_to_finalize()]
    assert await count(store, "webhook_deliveries") == 1  # its webhook is called
    again = openai_batch()
    assert (await store.fail_batch(again, errors, key, time.time())).id == b.id


async def test_a_batch_is_deleted_only_once_it_ended(store: Any):
    b = replace(openai_batch(shape=Shape.ANTHROPIC), endpoint="/v1/messages")
    await staged(store, b, 2)
    await store.commit_batch(b, 2, IdempotencyKey("kb", "fb"))
    assert not await store.delete_batch("t1", b.id)  # still running
    assert await store.cancel_batch("t1", b.id, time.time()) is not None
    assert not await store.delete_batch("t2", b.id)  # another tenant's
    assert await store.delete_batch("t1", b.id)
    assert await store.get_batch("t1", b.id) is None and await store.item_states(b.id, -1, 9) == []
    assert await store.held_batch("t1", IdempotencyKey("kb", "fb")) is None  # key freed
    assert not await store.delete_batch("t1", b.id)


async def test_batches_are_listed_by_shape(store: Any):
    made = []
    for shape in (Shape.ANTHROPIC, Shape.OPENAI, Shape.ANTHROPIC, Shape.ANTHROPIC):
        b = openai_batch(shape=shape)
        await staged(store, b, 1)
        made.append(await store.commit_batch(b, 1, None))
    ours = [b.id for b in made if b.shape is Shape.ANTHROPIC][::-1]  # newest first
    listed = await store.list_batches("t1", 10, shape=Shape.ANTHROPIC)
    assert [b.id for b in listed] == ours
    assert len(await store.list_batches("t1", 10)) == 4
    older = await store.list_batches("t1", 10, before_id=ours[0], shape=Shape.ANTHROPIC)
    assert [b.id for b in older] == ours[1:]
    newer = await store.list_batches("t1", 1, after_id=ours[2], shape=Shape.ANTHROPIC)
    assert [b.id for b in newer] == [ours[1]]


async def test_another_tenants_batch_is_no_cursor(store: Any):
    """A page's cursor is looked up among the tenant's own batches only: another tenant's batch
    id pages like an id that does not exist (empty), never confirming that it exists."""
    mine = openai_batch("t1", shape=Shape.ANTHROPIC)
    await staged(store, mine, 1)
    await store.commit_batch(mine, 1, None)
    theirs = openai_batch("t2", shape=Shape.ANTHROPIC)
    await staged(store, theirs, 1)
    await store.commit_batch(theirs, 1, None)
    for cursor in ("after_id", "before_id"):
        page = await store.list_batches("t1", 10, **{cursor: theirs.id})
        assert page == [] == await store.list_batches("t1", 10, **{cursor: "batch_nope"})
    assert [b.id for b in await store.list_batches("t1", 10)] == [mine.id]
