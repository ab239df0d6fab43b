"""A job's format, tools, reasoning and tool turns survive the store (SQLite, PostgreSQL) (and so a restart, or a
yield and a later resume), and rows written before they existed still read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from leeway.jobs import Job, Message
from leeway.store import open_store
from leeway.structured import OutputFormat, Tool, ToolCall, ToolChoice, ToolKind, Tools
from tests.conftest import StoreFactory, make_job


def structured_job() -> Job:
    call = ToolCall("call_1", "get_weather", '{"city":"Oslo"}')
    return make_job(
        messages=(
            Message("user", "weather?"),
            Message(
                "assistant", "Checking.", (call, ToolCall("call_2", "sh", "ls", ToolKind.CUSTOM))
            ),
            Message("tool", "sunny", call_id="call_1"),
        ),
        output_format=OutputFormat(
            {"type": "object", "properties": {"a": {"type": "integer"}}}, "a"
        ),
        tools=Tools(
            (
                Tool("get_weather", description="w", parameters={"type": "object"}, strict=True),
                Tool("sh", ToolKind.CUSTOM),
            ),
            ToolChoice.REQUIRED,
            only="sh",
            parallel=False,
        ),
        reasoning={"effort": "low"},
    )


async def test_structure_round_trips(store_factory: StoreFactory):
    store = store_factory()
    job, plain = structured_job(), make_job()
    try:
        await store.create(job)
        await store.create(plain)
        assert await store.get("t1", job.id) == job
        assert await store.get("t1", plain.id) == plain
    finally:
        await store.close()


async def test_plain_jobs_keep_the_old_request_shape(tmp_path: Path):
    store = open_store(tmp_path / "db.sqlite")
    plain = make_job()
    try:
        await store.create(plain)
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "db.sqlite") as db:  # plain jobs keep the old request shape
        (request,) = db.execute("SELECT request FROM jobs WHERE id = ?", (plain.id,)).fetchone()
    assert request.startswith('{"messages":[["user","hello there"]],"sampling":')
    assert "tools" not in request and "format" not in request
