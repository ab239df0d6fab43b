"""The webhook outbox (``leeway.webhooks.outbox.Outbox``) on the store's SQLite file.

It shares the store's writer thread, so its writes join the same group commits, and its reader. The
completion webhooks of jobs are not written here: a trigger (``005_webhooks.sql``) writes each in the
transaction that makes its job final.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import orjson

from leeway.store.queries import load_queries
from leeway.store.rows import attempt_row, delivery_row, row_attempt, row_delivery
from leeway.webhooks.outbox import Attempt, Delivery, DeliveryLog, DeliveryStatus
from leeway.webhooks.signing import new_secret

T = TypeVar("T")
Q = load_queries("sqlite")


class Writer(Protocol):
    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...


class Reader(Protocol):
    """The store's reads (``sqlite_writer.Reader``: a connection per thread)."""

    def execute(self, sql: str, params: Any = (), /) -> sqlite3.Cursor: ...


def insert_delivery(conn: sqlite3.Connection, delivery: Delivery) -> None:
    """Write a delivery inside a caller's own write (e.g. with a batch's final state)."""
    conn.execute(Q["insert_delivery"], delivery_row(delivery))


class SqliteOutbox:
    def __init__(self, writer: Writer, reader: Reader) -> None:
        self._writer, self._reader = writer, reader

    async def enqueue(self, delivery: Delivery) -> None:
        await self._writer.write(lambda c: insert_delivery(c, delivery))

    async def due(self, now: float, limit: int, lease: float) -> list[Delivery]:
        found = self._reader.execute(Q["due_deliveries"], {"now": now, "limit": limit}).fetchall()
        if not found:  # the usual case: nothing for the writer to do
            return []
        params = {"ids": orjson.dumps([r["id"] for r in found]).decode(), "now": now}
        params["until"] = now + lease
        rows = await self._writer.write(
            lambda c: c.execute(Q["lease_deliveries"], params).fetchall()
        )
        return sorted((row_delivery(r) for r in rows), key=lambda d: d.created_at)

    async def record(
        self,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float | None = None,
    ) -> None:
        params = attempt_row(delivery_id, attempt, status, next_attempt_at)

        def record(c: sqlite3.Connection) -> None:
            c.execute(Q["insert_attempt"], params)
            c.execute(Q["record_delivery"], params)

        await self._writer.write(record)

    async def deliveries(
        self, tenant: str, limit: int, subject_id: str | None = None
    ) -> list[DeliveryLog]:
        params = {"tenant": tenant, "limit": limit, "subject_id": subject_id}
        found = [row_delivery(r) for r in self._reader.execute(Q["list_deliveries"], params)]
        ids = orjson.dumps([d.id for d in found]).decode()
        attempts: dict[str, list[Attempt]] = {}
        for row in self._reader.execute(Q["list_attempts"], {"ids": ids}):
            attempts.setdefault(row["delivery_id"], []).append(row_attempt(row))
        return [DeliveryLog(d, tuple(attempts.get(d.id, ()))) for d in found]

    async def secrets(self, tenant: str, now: float) -> list[str]:
        params = {"tenant": tenant, "now": now}
        found = [r[0] for r in self._reader.execute(Q["active_secrets"], params)]
        if found:
            return found
        secret = new_secret()

        def first(c: sqlite3.Connection) -> list[str]:
            # Checked again in the writer: two first deliveries must not make two secrets.
            if not (active := [r[0] for r in c.execute(Q["active_secrets"], params)]):
                c.execute(Q["insert_secret"], {**params, "secret": secret})
                active = [secret]
            return active

        return await self._writer.write(first)

    async def rotate_secret(self, tenant: str, now: float, grace: float) -> str:
        secret = new_secret()

        def rotate(c: sqlite3.Connection) -> None:
            c.execute(Q["retire_secrets"], {"tenant": tenant, "retires_at": now + grace})
            c.execute(Q["insert_secret"], {"tenant": tenant, "secret": secret, "now": now})

        await self._writer.write(rotate)
        return secret

    async def prune(self, before: float) -> int:
        def prune(c: sqlite3.Connection) -> int:
            c.execute(Q["prune_secrets"], {"before": before})
            return int(c.execute(Q["prune_deliveries"], {"before": before}).rowcount)

        return await self._writer.write(prune)
