"""Shared test helpers: jobs built by hand, an app on the fake engine with a real SQLite store, and
stores of both kinds (``store_factory``: SQLite and a throwaway PostgreSQL, see ``tests/pg.py``)."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from leeway.api.auth import create_key
from leeway.app import build_app, store_from
from leeway.catalog import ModelConfig
from leeway.jobs import Job, Message, Sampling, Surface, Webhook, Window, new_id
from leeway.settings import Settings
from leeway.store import Claim, SqlStore, open_store
from leeway.store.rows import row_job
from leeway.store.sqlite import SqliteDriver
from tests.pg import PgServer

FAKE_MODEL = "fake-model"


def make_job(**overrides: Any) -> Job:
    now = overrides.pop("created_at", time.time())
    window = overrides.pop("window", Window.STANDARD)
    fields: dict[str, Any] = {
        "id": new_id("resp_"),
        "tenant": "t1",
        "surface": Surface.RESPONSES,
        "model": FAKE_MODEL,
        "messages": (Message("user", "hello there"),),
        "sampling": Sampling(16),
        "window": window,
        "requested_window": None,
        "created_at": now,
        "deadline": now + 300,
        "prompt_tokens": 5,
    }
    fields.update(overrides)
    hook = fields.get("metadata", {}).get("completion_webhook")
    if hook is not None and "webhook" not in overrides:  # as intake reads it
        fields["webhook"] = Webhook(hook, fields["metadata"].get("webhook_token"))
    return Job(**fields)


async def claim(
    store: Any, model: str, limit: int, now: float, holder: str | None = None
) -> list[Claim]:
    """Lease the ``limit`` most urgent queued jobs of ``model`` the way a dispatcher does: leases
    that ran out are expired, what waits is read (``queued``), and exactly the most urgent of it
    (window, then deadline) is claimed."""
    await store.expire(now)
    peek = await store.queued(model, max(16, 4 * limit), now)
    waiting = sorted(peek, key=lambda j: (j.window.rank, j.deadline))
    return list(await store.claim_ids(model, [j.id for j in waiting[:limit]], now, holder))


class UnitStore(SqlStore):
    """The real store on a SQLite file of its own, with what unit tests read at once: ``jobs[id]``
    (the job as stored now) and ``piece_writes`` (``append_pieces`` calls that stored any)."""

    def __init__(self, **options: Any) -> None:
        folder = Path(tempfile.mkdtemp(prefix="leeway-unit-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        super().__init__(SqliteDriver(folder / "db.sqlite"), **options)
        self.piece_writes = 0

    @property
    def jobs(self) -> Mapping[str, Job]:
        return _StoredJobs(self)

    async def append_pieces(self, pieces: Any) -> set[str]:
        stored = await super().append_pieces(pieces)
        self.piece_writes += bool(stored)
        return stored


class _StoredJobs(Mapping[str, Job]):
    def __init__(self, store: UnitStore) -> None:
        self._reader = store.driver._reader  # type: ignore[attr-defined]

    def __getitem__(self, job_id: str) -> Job:
        row = self._reader.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return row_job(row)

    def __iter__(self) -> Iterator[str]:
        return (r[0] for r in self._reader.execute("SELECT id FROM jobs").fetchall())

    def __len__(self) -> int:
        return int(self._reader.execute("SELECT count(*) FROM jobs").fetchone()[0])


def fake_settings(data_dir: Path, **overrides: Any) -> Settings:
    models = overrides.pop(
        "models",
        (
            ModelConfig(FAKE_MODEL, engine="fake", parallel=4, context=256, fake_tokens=8),
            ModelConfig(
                "fake-asap-flex",
                engine="fake",
                windows=(Window.ASAP, Window.FLEX),
                parallel=2,
                context=256,
            ),
        ),
    )
    overrides.setdefault("poll_seconds", 0.05)
    return Settings(data_dir=data_dir, models=models, **overrides)


@dataclass
class Client:
    http: TestClient
    key: str
    other_key: str  # a second tenant's key

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


def add_keys(settings: Settings, *tenants: str) -> list[str]:
    async def add() -> list[str]:
        store = store_from(settings)
        try:
            return [await create_key(store, t) for t in tenants]
        finally:
            await store.close()

    return asyncio.run(add())


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    settings = fake_settings(tmp_path, max_body_bytes=64 * 1024)
    key, other = add_keys(settings, "alpha", "beta")
    with TestClient(build_app(settings)) as http:
        yield Client(http, key, other)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server on loopback for the whole session, stopped at its end."""
    if PgServer.find() is None:
        pytest.skip(
            "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or on PATH)"
        )
    server = PgServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database of the session's server."""
    return pg_server.create_database()


StoreFactory = Callable[
    ..., Any
]  # (lease_seconds=, max_attempts=) -> a store on the test's database


@pytest.fixture(params=["sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Opens stores on one database: a SQLite file, or a PostgreSQL database. Each call opens
    another store on the same database (as a restart or a second process does)."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        return lambda **kw: open_store(url, **kw)
    return lambda **kw: open_store(tmp_path / "db.sqlite", **kw)
