"""The SQLite driver: one file in WAL mode, ``synchronous=FULL``.

Every write goes through one writer thread that commits in groups (``sqlite_writer``), so a client
is never told "accepted" for a job that a crash could lose, and durability costs one sync per group
instead of one per request. Reads use connections of their own (one per thread) and never wait for
the writer. A query is a read if it is a ``SELECT``; anything else is a write. A list parameter is
bound as JSON text (the queries read it with ``json_each``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from leeway.store.driver import NO_PARAMS, Params, Queries, drive
from leeway.store.queries import load_queries
from leeway.store.sqlite_writer import GroupWriter, Reader

T = TypeVar("T")
Q = load_queries("sqlite")


def _reads(sql: str) -> bool:
    """A query is a read if its first line that is not a comment starts with ``SELECT``."""
    code = (
        line for line in sql.splitlines() if line.strip() and not line.lstrip().startswith("--")
    )
    return next(code, "").lstrip().upper().startswith("SELECT")


_READS = frozenset(name for name, sql in Q.items() if _reads(sql))


def bind(params: Params) -> dict[str, Any]:
    """Parameters as sqlite3 takes them: lists and tuples as JSON text."""
    return {
        k: orjson.dumps(v).decode() if isinstance(v, list | tuple) else v for k, v in params.items()
    }


class Connection:
    """Named queries on one connection (the writer's, inside its transaction); they complete at
    once, so a transaction body awaiting only them runs to its end in one step (``drive``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def rows(self, name: str, params: Params = NO_PARAMS) -> list[Any]:
        return self._conn.execute(Q[name], bind(params)).fetchall()

    async def row(self, name: str, params: Params = NO_PARAMS) -> Any | None:
        return self._conn.execute(Q[name], bind(params)).fetchone()

    async def run(self, name: str, params: Params = NO_PARAMS) -> int:
        cursor = self._conn.execute(Q[name], bind(params))
        cursor.fetchall()  # a RETURNING statement counts its rows as they are read
        return cursor.rowcount


class SqliteDriver:
    dialect = "sqlite"

    def __init__(
        self, path: Path, at_start: Callable[[Queries], Coroutine[Any, Any, None]] | None = None
    ) -> None:
        """``at_start``: a transaction body run once, after the migrations."""
        path.parent.mkdir(parents=True, exist_ok=True)
        start = None if at_start is None else lambda c: drive(at_start(Connection(c)))
        self._writer = GroupWriter(path, at_start=start)
        self._reader = Reader(path)

    async def rows(self, name: str, params: Params = NO_PARAMS) -> list[Any]:
        if name in _READS:
            return self._reader.execute(Q[name], bind(params)).fetchall()
        sql, bound = Q[name], bind(params)
        return await self._writer.write(lambda c: c.execute(sql, bound).fetchall())

    async def row(self, name: str, params: Params = NO_PARAMS) -> Any | None:
        found = await self.rows(name, params)
        return found[0] if found else None

    async def run(self, name: str, params: Params = NO_PARAMS) -> int:
        return await self.transaction(lambda q: q.run(name, params))

    async def transaction(self, body: Callable[[Queries], Coroutine[Any, Any, T]]) -> T:
        return await self._writer.write(lambda c: drive(body(Connection(c))))

    async def stage(self, rows: Sequence[Mapping[str, Any]]) -> None:
        sql = Q["stage_item"]
        # one row at a time: a chunk's rows are never all bound at once
        await self._writer.write(lambda c: c.executemany(sql, (bind(r) for r in rows)))

    async def finish(self, params: Params) -> Any | None:
        return await self.row("finish", params)

    async def listen(self, on_queued: Callable[[str], None]) -> None:
        """Nothing tells SQLite's processes what another queued: dispatchers poll."""

    async def close(self) -> None:
        await asyncio.to_thread(self._writer.close)
        self._reader.close()
