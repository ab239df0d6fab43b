"""Shared test helpers: jobs built by hand, an app on the fake engine with a real SQLite store, and
stores of both kinds (``store_factory``: SQLite and a throwaway PostgreSQL, see ``tests/pg.py``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from leeway.api.auth import create_key
from leeway.app import build_app, open_store
from leeway.catalog import ModelConfig
from leeway.jobs import Job, Message, Sampling, Surface, Window, new_id
from leeway.settings import Settings
from leeway.store.postgres import PostgresStore
from leeway.store.sqlite import SqliteStore
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
    return Job(**fields)


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
    return Settings(data_dir=data_dir, models=models, poll_seconds=0.05, **overrides)


@dataclass
class Client:
    http: TestClient
    key: str
    other_key: str  # a second tenant's key

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


def add_keys(settings: Settings, *tenants: str) -> list[str]:
    async def add() -> list[str]:
        store = open_store(settings)
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
        return lambda **kw: PostgresStore(url, **kw)
    return lambda **kw: SqliteStore(tmp_path / "db.sqlite", **kw)
