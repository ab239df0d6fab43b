"""A database made before keys had ids and usage was metered (migration 013), SQLite and PostgreSQL:
its keys keep working (with ids now), their tenants are recorded, and the jobs it had finished are
counted in the usage roll-up (unpriced: they were never billed)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import asyncpg

from leeway.keys import key_hash
from leeway.store import SqlStore, open_store
from leeway.store.queries import migrations
from leeway.usage import DAY, UsageQuery

OLD_JOB = """INSERT INTO jobs (id, tenant, surface, model, status, completion_window, window_rank,
    created_at, deadline, prompt_tokens, request, metadata, echo, completed_at, input_tokens,
    output_tokens) VALUES ('resp_old', 'alpha', 'responses', 'm', 'completed', 'flex', 3,
    {t}, {t}, 7, '{{}}', '{{}}', '{{}}', {t}, 7, 11)"""
OLD_KEY = "INSERT INTO api_keys (key_hash, tenant, created_at) VALUES ('{h}', 'alpha', {t})"


async def check(store: SqlStore, now: float) -> None:
    holder = await store.key_holder(key_hash("lw-old-key"))
    assert holder is not None and holder.key.id.startswith("key_")
    assert holder.key.tenant == "alpha" and holder.key.redacted == "lw-…"
    assert not holder.key.admin and holder.key.revoked_at is None
    tenant = await store.get_tenant("alpha")
    assert tenant is not None and tenant.created_at == now
    rows = await store.usage(UsageQuery(DAY, 0, int(now) + DAY, frozenset({"tenant"})))
    assert [(r.tenant, r.requests, r.input_tokens, r.output_tokens, r.cost) for r in rows] == [
        ("alpha", 1, 7, 11, 0.0)
    ]


async def test_a_sqlite_database_from_before_013(tmp_path: Path):
    path, now = tmp_path / "old.sqlite", float(int(time.time()))
    with sqlite3.connect(path) as db:
        for number, sql in migrations("sqlite"):
            if number < 13:
                db.executescript(f"{sql}\nPRAGMA user_version={number};")
        db.execute(OLD_KEY.format(h=key_hash("lw-old-key"), t=now))
        db.execute(OLD_JOB.format(t=now))
    store = open_store(path)
    try:
        await check(store, now)
    finally:
        await store.close()


async def test_a_postgres_database_from_before_013(pg_url: str):
    now = float(int(time.time()))
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(
            "CREATE TABLE leeway_migrations (version INTEGER PRIMARY KEY, "
            "applied_at DOUBLE PRECISION NOT NULL)"
        )
        for number, sql in migrations("postgres"):
            if number < 13:
                await conn.execute(sql)
                await conn.execute("INSERT INTO leeway_migrations VALUES ($1, 0)", number)
        await conn.execute(OLD_KEY.format(h=key_hash("lw-old-key"), t=now))
        await conn.execute(OLD_JOB.format(t=now))
    finally:
        await conn.close()
    store = open_store(pg_url)
    try:
        await check(store, now)
    finally:
        await store.close()
