"""``schema.sql`` is the current schema: the numbered migrations, run on an empty database,
produce exactly what it says (both dialects). Regenerate it with ``python -m leeway.store.schema``
when a migration is added."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg

from leeway.store import schema
from leeway.store.postgres_pool import migrate as migrate_postgres
from leeway.store.sqlite_writer import connect, migrate


def test_sqlite_migrations_produce_schema_sql(tmp_path: Path):
    conn = connect(tmp_path / "fresh.db")
    try:
        migrate(conn)
        assert schema.sqlite_schema(conn) == schema.path("sqlite").read_text()
    finally:
        conn.close()


def test_schema_sql_alone_makes_the_same_sqlite_database(tmp_path: Path):
    """The file is a working schema, not just a record: run as it stands, it makes a database
    whose schema reads back the same."""
    conn = sqlite3.connect(tmp_path / "from_file.db")
    try:
        conn.executescript(schema.path("sqlite").read_text())
        assert schema.sqlite_schema(conn) == schema.path("sqlite").read_text()
    finally:
        conn.close()


def test_postgres_migrations_produce_schema_sql(pg_url: str):
    async def dump() -> str:
        conn = await asyncpg.connect(pg_url)
        try:
            await migrate_postgres(conn)
            return await schema.postgres_schema(conn)
        finally:
            await conn.close()

    assert asyncio.run(dump()) == schema.path("postgres").read_text()
