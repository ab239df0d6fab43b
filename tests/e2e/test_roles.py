"""`leeway serve --role api` and `--role dispatcher` as separate processes sharing one store (a
SQLite file, or PostgreSQL): every API process answers for every job, and a dispatcher killed mid-run
(kill -9) loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer

# Short leases, so a killed dispatcher's claims expire quickly; a slow engine, so work is running
# when it is killed.
CONFIG = f"""
lease_seconds = 1.5
poll_seconds = 0.1

[[models]]
id = "{MODEL}"
parallel = 16
fake_tokens = 5
fake_delay = 0.05
"""


class Processes:
    """API and dispatcher processes on one store, each with its own directory and log."""

    def __init__(self, root: Path, store_url: str, config: str = CONFIG) -> None:
        self.root, self.store_url, self.config = root, store_url, config
        self.all: list[LeewayServer] = []

    def start(self, role: str) -> LeewayServer:
        own = self.root / f"{role}-{len(self.all)}"
        args = ("--engine", "fake", "--role", role)
        server = LeewayServer(own, self.config, args, env={"LEEWAY_STORE_URL": self.store_url})
        self.all.append(server)
        return server.start()

    def stop(self) -> None:
        for server in self.all:
            server.stop()


Query = Callable[[str], tuple[int, ...]]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Query, int]]:
    """The shared store's URL, a way to query it, and how many requests to send through it."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")

        def query(sql: str) -> tuple[int, ...]:
            async def fetch() -> tuple[int, ...]:
                conn = await asyncpg.connect(url)
                try:
                    return tuple(await conn.fetchrow(sql))
                finally:
                    await conn.close()

            return asyncio.run(fetch())

        yield url, query, 2000
        return
    path = tmp_path / "shared.db"
    db: sqlite3.Connection | None = None

    def query_sqlite(sql: str) -> tuple[int, ...]:
        nonlocal db
        db = db or sqlite3.connect(path)
        return tuple(db.execute(sql).fetchone())

    yield f"sqlite:///{path}", query_sqlite, 300
    if db is not None:
        db.close()


def test_two_api_and_two_dispatcher_processes_run_every_job_exactly_once(
    tmp_path: Path, store: tuple[str, Query, int]
):
    url, query, count = store
    processes = Processes(tmp_path, url)
    try:
        run(processes, query, count)
    finally:
        processes.stop()


def run(processes: Processes, query: Query, count: int) -> None:
    first = processes.start("api")
    second = processes.start("api")
    second.key = first.key  # the key the first API process created lives in the shared store
    dispatchers = [processes.start("dispatcher"), processes.start("dispatcher")]
    assert httpx.get(f"http://127.0.0.1:{dispatchers[0].port}/health").status_code == 200
    assert httpx.get(f"{dispatchers[0].base_url}/models").status_code == 404  # no API there

    async def create_all() -> list[str]:
        clients = [
            AsyncOpenAI(base_url=s.base_url, api_key=first.key, max_retries=0)
            for s in (first, second)
        ]
        gate = asyncio.Semaphore(50)

        async def create(i: int) -> str:
            async with gate:
                response = await clients[i % 2].responses.create(
                    model=MODEL, input=f"job {i}", background=True
                )
                return response.id

        try:
            return list(await asyncio.gather(*(create(i) for i in range(count))))
        finally:
            for c in clients:
                await c.close()

    ids = asyncio.run(create_all())

    def wait_until_completed(n: int) -> None:
        deadline = time.monotonic() + 120
        sql = "SELECT count(*) FROM jobs WHERE status = 'completed'"
        while query(sql)[0] < n and time.monotonic() < deadline:
            time.sleep(0.05)

    wait_until_completed(count // 5)
    # both dispatchers hold work (more is running than one's 16 sequences): kill -9 one of them
    deadline = time.monotonic() + 60
    sql = "SELECT count(*) FROM jobs WHERE status = 'in_progress'"
    while query(sql)[0] <= 16 and time.monotonic() < deadline:
        time.sleep(0.01)
    dispatchers[0].crash()
    wait_until_completed(count)

    clients = [
        OpenAI(base_url=s.base_url, api_key=first.key, max_retries=0) for s in (first, second)
    ]
    for rid in ids[:: max(1, count // 200)]:
        a, b = clients[0].responses.retrieve(rid), clients[1].responses.retrieve(rid)
        assert a.status == "completed", (rid, a.status)
        assert a.model_dump() == b.model_dump()  # both API processes return the same object
        assert a.output_text.strip() == "fake fake1 fake2 fake3 fake4"
    done = query(
        "SELECT count(*), count(DISTINCT id), sum(output_tokens) FROM jobs"
        " WHERE status = 'completed'"
    )
    assert done == (count, count, 5 * count)  # each completed once, its usage counted once
    assert query("SELECT count(*) FROM jobs WHERE status <> 'completed'") == (0,)
    # the killed dispatcher held work, and the survivor ran it again
    assert query("SELECT count(*) FROM jobs WHERE attempts > 1")[0] > 0


# A reply of 20 pieces over about a second.
STREAM_CONFIG = f"""
poll_seconds = 0.1

[[models]]
id = "{MODEL}"
parallel = 4
fake_tokens = 20
fake_delay = 0.05
"""


def test_an_api_process_streams_a_job_that_a_dispatcher_process_runs(
    tmp_path: Path, store: tuple[str, Query, int]
):
    """Pieces reach the API process through the store while the job runs (not all at its end), each
    once and in order; a background response is streamed from a point while it runs."""
    processes = Processes(tmp_path, store[0], STREAM_CONFIG)
    try:
        api = processes.start("api")
        processes.start("dispatcher")
        client = OpenAI(base_url=api.base_url, api_key=api.key, max_retries=0)
        arrived: list[tuple[float, object]] = []
        for event in client.responses.create(model=MODEL, input="Tell me a story.", stream=True):
            arrived.append((time.monotonic(), event))
        events = [e for _, e in arrived]
        assert events[-1].type == "response.completed"
        deltas = [(t, e.delta) for t, e in arrived if e.type == "response.output_text.delta"]
        assert len(deltas) >= 5
        assert "".join(d for _, d in deltas) == events[-1].response.output_text
        assert arrived[-1][0] - deltas[0][0] > 0.4  # the first piece came well before the end
        chat = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi."}], stream=True
        )
        pieces = [c.choices[0].delta.content for c in chat if c.choices and c.choices[0].delta]
        assert len([p for p in pieces if p]) >= 5

        def shape(events: list) -> list[tuple[int, str, str | None]]:
            return [(e.sequence_number, e.type, getattr(e, "delta", None)) for e in events]

        created = client.responses.create(model=MODEL, input="Another story.", background=True)
        time.sleep(0.3)  # running by now
        tail = list(client.responses.retrieve(created.id, stream=True, starting_after=5))
        live = list(client.responses.retrieve(created.id, stream=True))  # final by now: replayed
        assert live[-1].type == "response.completed" and tail[-1].type == "response.completed"
        assert shape(tail) == shape(live)[6:]
        assert sum(e.type == "response.output_text.delta" for e in tail) >= 5
    finally:
        processes.stop()


# A reply of 200 pieces over about 10 s: running when it is cancelled.
SLOW_CONFIG = f"""
lease_seconds = 1.5
poll_seconds = 0.1

[[models]]
id = "{MODEL}"
parallel = 4
fake_tokens = 200
fake_delay = 0.05
"""


def test_what_one_api_process_deletes_or_cancels_no_other_serves(
    tmp_path: Path, store: tuple[str, Query, int]
):
    """Two API processes on one store: a response polled to its final state through one and deleted
    through the other is gone from both; a running one cancelled through one is cancelled in both,
    and its dispatcher (a third process) stops generating it."""
    processes = Processes(tmp_path, store[0], SLOW_CONFIG)
    try:
        first, second = processes.start("api"), processes.start("api")
        processes.start("dispatcher")
        a, b = (
            OpenAI(base_url=s.base_url, api_key=first.key, max_retries=0) for s in (first, second)
        )
        done = a.responses.create(model=MODEL, input="Hi.", background=True, max_output_tokens=3)
        deadline = time.monotonic() + 30
        while b.responses.retrieve(done.id).status != "completed":  # final, as b last saw it
            assert time.monotonic() < deadline, "never completed"
            time.sleep(0.05)
        assert (
            a.responses.retrieve(done.id).model_dump() == b.responses.retrieve(done.id).model_dump()
        )
        a.responses.delete(done.id)
        for client in (a, b):
            with pytest.raises(openai.NotFoundError):
                client.responses.retrieve(done.id)

        running = b.responses.create(model=MODEL, input="A long story.", background=True)
        while a.responses.retrieve(running.id).status != "in_progress":
            assert time.monotonic() < deadline + 30, "never started"
            time.sleep(0.05)
        cancelled = a.responses.cancel(running.id)
        assert cancelled.status == "cancelled"
        assert b.responses.retrieve(running.id).status == "cancelled"
        # the dispatcher stops generating at its next renewal (a third of a lease), long before
        # the 200 pieces are done, and the run's result never lands
        time.sleep(1.5)
        stopped = store[1](
            f"SELECT count(*) FROM jobs WHERE id = '{running.id}' AND status = 'cancelled'"
            " AND output_text IS NULL"
        )
        assert stopped == (1,)
        health = httpx.get(f"http://127.0.0.1:{processes.all[2].port}/health").json()
        assert health["engines"][MODEL]["running"] == 0
    finally:
        processes.stop()
