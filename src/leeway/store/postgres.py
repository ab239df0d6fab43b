"""The PostgreSQL driver: any number of API and dispatcher processes share one database.

Statements run on a pool per event loop (``postgres_pool``); every statement commits on its own
(PostgreSQL groups concurrent commits into one WAL flush) and ``transaction`` makes several one.
Its hooks: batch items are staged with COPY; concurrent finishes are grouped into one statement
(``postgres_group``); work that becomes queued notifies ``leeway_queued`` (a trigger), which
``listen`` turns into callbacks in every process.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg

from leeway.store.driver import NO_PARAMS, Params, Queries
from leeway.store.postgres_group import FinishGroups
from leeway.store.postgres_pool import Pools, Tx

T = TypeVar("T")
STAGED_COLUMNS = (
    *("id", "tenant", "surface", "model", "status", "completion_window", "requested_window"),
    *("window_rank", "created_at", "deadline", "prompt_tokens", "request", "metadata", "echo"),
    *("webhook_url", "webhook_token", "batch_id", "custom_id", "batch_index", "key_id"),
)


class PostgresDriver:
    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 8,
        at_start: Callable[[Queries], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        """``at_start``: a transaction body run once, after the first pool migrated the database."""
        self._db = Pools(url, pool_size, at_start=at_start)
        self._finishes = FinishGroups(self._db)

    async def rows(self, name: str, params: Params = NO_PARAMS) -> list[Any]:
        return await self._db.rows(name, params)

    async def row(self, name: str, params: Params = NO_PARAMS) -> Any | None:
        return await self._db.row(name, params)

    async def run(self, name: str, params: Params = NO_PARAMS) -> int:
        return await self._db.run(name, params)

    async def transaction(self, body: Callable[[Queries], Coroutine[Any, Any, T]]) -> T:
        async with (await self._db.pool()).acquire() as conn, conn.transaction():
            return await body(Tx(conn))

    async def stage(self, rows: Sequence[Mapping[str, Any]]) -> None:
        records = [tuple({**r, "status": "staged"}[c] for c in STAGED_COLUMNS) for r in rows]
        pool = await self._db.pool()
        await pool.copy_records_to_table("jobs", records=records, columns=STAGED_COLUMNS)

    async def finish(self, params: Params) -> Any | None:
        return await self._finishes.finish(params)

    async def listen(self, on_queued: Callable[[str], None]) -> None:
        await self._db.listen(on_queued)

    async def connection(self) -> asyncpg.Pool:
        """This loop's pool (for tests that look at the tables)."""
        return await self._db.pool()

    async def close(self) -> None:
        await self._db.close()
