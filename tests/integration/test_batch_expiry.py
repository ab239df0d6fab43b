"""An OpenAI-shaped batch not finished by its expires_at expires (SQLite, PostgreSQL): its queued
items are cancelled, its running ones finish, and once finalized it reports ``expired`` with
``batch_expired`` lines in its error file. Driven by a clock the test sets, never by waiting."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from leeway.api.batch_output import Finalizer
from leeway.api.batch_wire import openai
from leeway.api.files import file_path
from leeway.api.surfaces import Surfaces
from leeway.batches import Batch, Counts, Shape
from leeway.jobs import Finish, Output, Usage
from leeway.settings import Settings
from leeway.store import Result
from tests.conftest import FAKE_MODEL, StoreFactory, make_job

DONE = Result(Output("ok", Finish.STOP), Usage(3, 1))


async def stored(store: Any, b: Batch, n: int) -> list[str]:
    jobs = [
        replace(make_job(created_at=b.created_at), batch_id=b.id, custom_id=f"c{i}")
        for i in range(n)
    ]
    await store.open_batch(b)
    await store.stage_items(list(enumerate(jobs)))
    await store.commit_batch(b, n, None)
    return [j.id for j in jobs]


async def test_a_batch_not_finished_by_its_expiry_expires(
    store_factory: StoreFactory, tmp_path: Path
):
    store = store_factory(lease_seconds=3600)
    t0 = time.time()
    now = [t0]
    finalizer = Finalizer(store, tmp_path, Surfaces(Settings()).render, clock=lambda: now[0])
    common = {"endpoint": "/v1/responses", "completion_window": "24h", "created_at": t0}
    b = Batch(
        "batch_exp", "t1", Shape.OPENAI, input_file_id="file-in", expires_at=t0 + 100, **common
    )
    never = Batch("batch_ref", "t1", Shape.REFERENCE, **common)  # the reference shape never expires
    try:
        ids = await stored(store, b, 4)
        await stored(store, never, 1)
        first, running = await store.claim_ids(FAKE_MODEL, ids[:2], t0)
        await store.finish(first, DONE, t0 + 1)  # one completed, one running, two queued

        now[0] = t0 + 99  # not yet
        await finalizer.tick()
        got = await store.get_batch("t1", b.id)
        assert got is not None and got.expired_at is None
        assert openai(got)["status"] == "in_progress" and openai(got)["expires_at"] == int(t0 + 100)

        now[0] = t0 + 100
        await finalizer.tick()
        got = await store.get_batch("t1", b.id)
        assert got is not None and got.expired_at == t0 + 100
        assert got.counts == Counts(running=1, completed=1, cancelled=2)
        assert openai(got)["status"] == "finalizing"  # until its running item finishes
        assert (await store.cancel_batch("t1", b.id, t0 + 100.5)) == got  # too late
        assert (await store.get_batch("t1", never.id)).expired_at is None  # type: ignore[union-attr]

        await store.finish(running, DONE, t0 + 101)  # the running item finishes, its result kept
        now[0] = t0 + 102
        await finalizer.tick()
        done = await store.get_batch("t1", b.id)
        assert done is not None and done.finalized_at == t0 + 102
        wire = openai(done)
        assert wire["status"] == "expired" and wire["expired_at"] == int(t0 + 100)
        assert wire["completed_at"] is None and wire["cancelled_at"] is None
        assert wire["request_counts"] == {"total": 4, "completed": 2, "failed": 2}
        errors = [orjson.loads(x) for x in lines(tmp_path, wire["error_file_id"])]
        assert [e["custom_id"] for e in errors] == ["c2", "c3"]
        assert {e["error"]["code"] for e in errors} == {"batch_expired"}
        assert all(e["response"] is None for e in errors)
        output = [orjson.loads(x) for x in lines(tmp_path, wire["output_file_id"])]
        assert [o["custom_id"] for o in output] == ["c0", "c1"]

        now[0] = t0 + 10_000  # an expired (or finished) batch is never expired again
        await finalizer.tick()
        assert (await store.get_batch("t1", b.id)) == done
    finally:
        await store.close()


def lines(data_dir: Path, file_id: str) -> list[bytes]:
    return file_path(data_dir, file_id).read_bytes().splitlines()
