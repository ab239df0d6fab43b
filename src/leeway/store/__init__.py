"""Durable state: the only package that knows SQL.

One store, written once: ``SqlStore`` runs named queries (``sql/<dialect>/*.sql``, the same names
and parameters in both dialects) over a dialect driver (``driver.Driver``): ``SqliteDriver`` (the
embedded default: one file, one writer thread committing in groups) or ``PostgresDriver`` (any
number of processes on one database). Its users take the narrow views of it they need
(``contract``: ``Jobs``, ``Queue``, ``Sharing``, ``BatchStore``, ``BatchResults``,
``FileStore``, ``ChatStore``; ``operator_views``: ``KeyStore``, ``UsageStore``,
``DashboardStore``; and the webhook ``Outbox``). ``sql/<dialect>/schema.sql`` shows the current schema
(the numbered migrations produce exactly it: ``tests/integration/test_schema.py``).

Claims are leases with a token: a finish, requeue or release whose token is stale changes nothing.

Rules the database keeps itself, as triggers (both dialects):

- ``jobs_completion_webhook``: a job with a ``webhook_url`` that becomes final (completed, failed,
  incomplete, cancelled, by any path: a finish, a cancel, a lease out of attempts) gets a webhook
  delivery in the same transaction, so a crash between the final state and the POST loses nothing.
- ``batches_completion_webhook``: likewise for a batch with a ``webhook_url`` once it is finalized.
- ``batch_item_moved`` (PostgreSQL: ``batch_items_moved``, once per statement): a committed batch
  item that changes status moves one count between the batch's ``n_<status>`` columns; the batch's
  ``finished_at`` is set when none is queued or running.
- ``job_deleted_frees_key``, ``file_deleted_frees_key``: deleting a job or a file frees the
  idempotency key that made it.
- ``job_pieces_done``: a job's streamed pieces are dropped when it leaves ``in_progress`` (final:
  its text is in the row; requeued: in ``partial_text``, and its next run stores them again).
- ``jobs_inserted_notify``, ``jobs_updated_notify`` (PostgreSQL only): work that becomes queued
  notifies ``leeway_queued`` with its model, at commit.
- ``jobs_usage_rolled_up`` (PostgreSQL: once per statement, so a group of finishes is one write): a
  job that becomes final (by any path: a finish, a cancel, a lease out of attempts, a batch's
  cancel or expiry), or whose billed tokens change while final (the run a cancel stopped, billed
  when it ends), adds the difference in requests, tokens and cost (tokens × the prices the job
  was billed at) to its 1-minute, 1-hour and 1-day ``usage_buckets``, in the same transaction: a
  job is counted once however many runs it took, and never lost between its final state and its
  usage. Every query that makes a job final sets ``input_price`` and ``output_price`` (USD per
  million tokens, from the caller's configuration at that moment).

A new storage method touches: its query in ``sql/sqlite/*.sql`` and ``sql/postgres/*.sql``, its
method here (``jobs``, ``batches``, ``outbox``, ``keys``, ``usage`` or ``dashboard``), and the
view in ``contract`` or ``operator_views`` that offers it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from leeway.prices import PriceTable
from leeway.store.batches import BatchesSql, discard_abandoned
from leeway.store.contract import (
    BatchResults,
    BatchStore,
    ChatStore,
    Claim,
    FileStore,
    IdempotencyKey,
    JobPieces,
    Jobs,
    Queue,
    QueueOrder,
    Result,
    Sharing,
    Store,
)
from leeway.store.dashboard import DashboardSql
from leeway.store.driver import Driver, Queries
from leeway.store.jobs import JobsSql
from leeway.store.keys import KeysSql
from leeway.store.operator_views import DashboardStore, KeyStore, Spending, UsageStore
from leeway.store.outbox import OutboxSql
from leeway.store.usage import UsageSql

__all__ = [
    "BatchResults",
    "BatchStore",
    "ChatStore",
    "Claim",
    "DashboardStore",
    "FileStore",
    "IdempotencyKey",
    "JobPieces",
    "Jobs",
    "KeyStore",
    "Queue",
    "QueueOrder",
    "Result",
    "Sharing",
    "Spending",
    "SqlStore",
    "Store",
    "UsageStore",
    "open_store",
]

_POSTGRES = ("postgresql://", "postgres://")


class SqlStore(JobsSql, BatchesSql, OutboxSql, KeysSql, UsageSql, DashboardSql):
    """Every view of the store, on one database. ``prices``: what jobs are billed at when they
    become final (none: nothing is billed, tokens are still metered)."""

    def __init__(
        self,
        driver: Driver,
        *,
        lease_seconds: float = 30.0,
        max_attempts: int = 3,
        max_crashes: int = 10,
        prices: PriceTable | None = None,
    ) -> None:
        self._db = driver
        self._lease = lease_seconds
        self._max_attempts, self._max_crashes = max_attempts, max_crashes
        self._prices = prices or PriceTable()

    @property
    def dialect(self) -> str:
        return self._db.dialect

    @property
    def driver(self) -> Driver:
        return self._db

    async def listen(self, on_queued: Callable[[str], None]) -> None:
        await self._db.listen(on_queued)

    async def close(self) -> None:
        await self._db.close()


async def _at_start(q: Queries) -> None:
    await discard_abandoned(q, time.time())


def open_store(
    where: str | Path,
    *,
    lease_seconds: float = 30.0,
    max_attempts: int = 3,
    max_crashes: int = 10,
    prices: PriceTable | None = None,
) -> SqlStore:
    """The store at ``where``: a PostgreSQL URL, or a SQLite file's path."""
    driver: Driver
    if isinstance(where, str) and where.startswith(_POSTGRES):
        from leeway.store.postgres import PostgresDriver

        driver = PostgresDriver(where, at_start=_at_start)
    else:
        from leeway.store.sqlite import SqliteDriver

        driver = SqliteDriver(Path(where), at_start=_at_start)
    return SqlStore(
        driver,
        lease_seconds=lease_seconds,
        max_attempts=max_attempts,
        max_crashes=max_crashes,
        prices=prices,
    )
