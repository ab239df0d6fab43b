"""The PostgreSQL store's connections (asyncpg): a pool per event loop, migrations, LISTEN.

asyncpg connections belong to the loop that opened them, and the server calls the store from two
loops (the API's and the dispatcher's thread), so each loop gets its own pool, opened on first use.
The first pool applies the migrations: ``sql/postgres/NNN_*.sql`` not yet in ``leeway_migrations``,
each once, in one transaction under an advisory lock, so processes starting at once do not race.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from leeway.store.driver import NO_PARAMS, Params
from leeway.store.queries import Numbered, load_queries, migrations, numbered

log = logging.getLogger(__name__)

Q: dict[str, Numbered] = {name: numbered(sql) for name, sql in load_queries("postgres").items()}
QUEUED_CHANNEL = "leeway_queued"  # notified with the model id (007_queued_notify.sql)
_MIGRATION_LOCK = 0x6C656577  # pg_advisory_xact_lock key: "leew"
_VERSIONS = """CREATE TABLE IF NOT EXISTS leeway_migrations (
    version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"""


async def migrate(conn: asyncpg.Connection | PoolConnectionProxy[Any]) -> list[int]:
    """Apply the migrations this database lacks; the numbers applied."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(_VERSIONS)
        done = {r[0] for r in await conn.fetch("SELECT version FROM leeway_migrations")}
        applied = []
        for number, sql in migrations("postgres"):
            if number not in done:
                await conn.execute(sql)  # no arguments: the simple protocol, many statements
                await conn.execute(
                    "INSERT INTO leeway_migrations VALUES ($1, $2)", number, time.time()
                )
                applied.append(number)
    return applied


class Tx:
    """Named queries on one connection, inside its transaction (``Pools.transaction``)."""

    def __init__(self, conn: PoolConnectionProxy[Any] | asyncpg.Connection) -> None:
        self.conn = conn

    async def rows(self, name: str, params: Params = NO_PARAMS) -> list[Any]:
        q = Q[name]
        return await self.conn.fetch(q.sql, *q.args(params))

    async def row(self, name: str, params: Params = NO_PARAMS) -> Any | None:
        q = Q[name]
        return await self.conn.fetchrow(q.sql, *q.args(params))

    async def run(self, name: str, params: Params = NO_PARAMS) -> int:
        q = Q[name]
        return rowcount(await self.conn.execute(q.sql, *q.args(params)))


class Pools:
    """One asyncpg pool per event loop that uses the store, and the LISTEN connections."""

    def __init__(
        self, url: str, size: int, at_start: Callable[[Tx], Awaitable[None]] | None = None
    ) -> None:
        """``at_start``: run once, in a transaction, after the first pool migrated the database."""
        self._url, self._size, self._at_start = url, size, at_start
        self._pools: dict[asyncio.AbstractEventLoop, asyncio.Task[asyncpg.Pool]] = {}
        self._listeners: list[tuple[asyncio.AbstractEventLoop, asyncpg.Connection]] = []
        self._migrated = False

    async def pool(self) -> asyncpg.Pool:
        loop = asyncio.get_running_loop()
        opening = self._pools.get(loop)
        if opening is None or (opening.done() and not _opened(opening)):
            opening = self._pools[loop] = loop.create_task(self._open())
        return await asyncio.shield(opening)

    async def _open(self) -> asyncpg.Pool:
        pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self._size)
        if not self._migrated:
            async with pool.acquire() as conn:
                await migrate(conn)
                if self._at_start is not None:
                    async with conn.transaction():
                        await self._at_start(Tx(conn))
            self._migrated = True
        return pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """One transaction: committed if the block ends normally, rolled back if it raises."""
        async with (await self.pool()).acquire() as conn, conn.transaction():
            yield Tx(conn)

    async def rows(self, name: str, params: Params = NO_PARAMS) -> list[Any]:
        q = Q[name]
        return await (await self.pool()).fetch(q.sql, *q.args(params))

    async def row(self, name: str, params: Params = NO_PARAMS) -> Any | None:
        q = Q[name]
        return await (await self.pool()).fetchrow(q.sql, *q.args(params))

    async def run(self, name: str, params: Params = NO_PARAMS) -> int:
        q = Q[name]
        return rowcount(await (await self.pool()).execute(q.sql, *q.args(params)))

    async def listen(self, on_queued: Callable[[str], None]) -> None:
        conn = await asyncpg.connect(self._url)
        await conn.add_listener(QUEUED_CHANNEL, lambda _c, _pid, _ch, model: on_queued(model))
        self._listeners.append((asyncio.get_running_loop(), conn))

    async def close(self) -> None:
        """Close every pool: on its own loop if that loop still runs, else by dropping its
        connections (the dispatcher's loop has usually stopped by now)."""
        here = asyncio.get_running_loop()
        for loop, conn in self._listeners:
            await _close_on(loop, here, conn.close(), conn.terminate)
        for loop, opening in self._pools.items():
            if opening.done() and _opened(opening):
                pool = opening.result()
                await _close_on(loop, here, pool.close(), pool.terminate)
        self._pools.clear()
        self._listeners.clear()


async def _close_on(
    loop: asyncio.AbstractEventLoop,
    here: asyncio.AbstractEventLoop,
    closing: Any,
    terminate: Callable[[], None],
) -> None:
    if loop is here:
        await closing
    elif loop.is_running():
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(closing, loop))
            return
        terminate()
    else:  # its loop has closed: the sockets go with it (the server sees them drop)
        closing.close()  # never awaited
        with contextlib.suppress(RuntimeError):
            terminate()


def _opened(opening: asyncio.Task[asyncpg.Pool]) -> bool:
    return not opening.cancelled() and opening.exception() is None


def rowcount(status: str) -> int:
    """The row count of a command status (``UPDATE 3``, ``INSERT 0 1``, ``DELETE 0``)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0
