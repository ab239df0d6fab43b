"""Batches and files on the PostgreSQL store: ``BatchStore``, ``BatchResults`` and ``FileStore``.

Items are staged with COPY (the fastest way in); committing makes them queued in one transaction
with the batch row and its key. A batch whose upload was cut off by a dying process is discarded by
a later start once it is a day old (other processes may be taking uploads while one starts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leeway.batches import Batch, ItemState, StoredFile
from leeway.jobs import Job
from leeway.store import IdempotencyKey
from leeway.store.postgres_pool import Pools, Tx
from leeway.store.rows import (
    KeyTaken,
    batch_row,
    check_holder,
    file_row,
    job_row,
    row_batch,
    row_file,
    row_job,
)

STAGED_COLUMNS = (
    *("id", "tenant", "surface", "model", "status", "completion_window", "requested_window"),
    *("window_rank", "created_at", "deadline", "prompt_tokens", "request", "metadata", "echo"),
    *("batch_id", "custom_id", "batch_index"),
)
ABANDONED_AFTER = 86_400.0  # seconds: no upload takes a day


async def discard_abandoned(tx: Tx, now: float) -> None:
    await tx.execute("discard_abandoned_items", {"before": now - ABANDONED_AFTER})
    await tx.execute("discard_abandoned_batches", {"before": now - ABANDONED_AFTER})


def _staged(index: int, job: Job) -> tuple[Any, ...]:
    row = {**job_row(job), "status": "staged", "batch_index": index}
    return tuple(row[c] for c in STAGED_COLUMNS)


class PostgresBatches:
    """Implements ``BatchStore`` and ``BatchResults``."""

    def __init__(self, db: Pools) -> None:
        self._db = db

    async def open(self, batch: Batch) -> None:
        await self._db.execute("insert_batch", batch_row(batch))

    async def stage(self, batch_id: str, items: Sequence[tuple[int, Job]]) -> None:
        records = [_staged(index, job) for index, job in items]
        pool = await self._db.pool()
        await pool.copy_records_to_table("jobs", records=records, columns=STAGED_COLUMNS)

    async def commit(self, batch: Batch, total: int, idempotency: IdempotencyKey | None) -> Batch:
        ids = {"id": batch.id}
        try:
            async with self._db.transaction() as tx:
                if idempotency is not None:
                    key = {"tenant": batch.tenant, "key": idempotency.key}
                    reservation = {**key, "fingerprint": idempotency.fingerprint}
                    if not await tx.execute(
                        "insert_idempotency_key",
                        {**reservation, "subject": batch.id, "now": batch.created_at},
                    ):
                        raise KeyTaken(await tx.fetchrow("batch_key_holder", key))
                await tx.execute("commit_items", ids)
                await tx.execute("commit_batch", {**ids, "total": total})
                row = await tx.fetchrow("get_batch", {**ids, "tenant": batch.tenant})
        except KeyTaken as taken:
            await self.discard(batch.id)
            assert idempotency is not None
            return row_batch(check_holder(taken.row, idempotency))
        return row_batch(row)

    async def discard(self, batch_id: str) -> None:
        async with self._db.transaction() as tx:
            await tx.execute("discard_items", {"id": batch_id})
            await tx.execute("discard_batch", {"id": batch_id})

    async def held_batch(self, tenant: str, idempotency: IdempotencyKey) -> Batch | None:
        params = {"tenant": tenant, "key": idempotency.key}
        row = await self._db.fetchrow("batch_key_holder", params)
        return row_batch(check_holder(row, idempotency)) if row else None

    async def get_batch(self, tenant: str, batch_id: str) -> Batch | None:
        row = await self._db.fetchrow("get_batch", {"id": batch_id, "tenant": tenant})
        return row_batch(row) if row else None

    async def list_batches(
        self, tenant: str, limit: int, after_id: str | None = None, before_id: str | None = None
    ) -> list[Batch]:
        params: dict[str, Any] = {"tenant": tenant, "limit": limit, "cursor": after_id or before_id}
        query = "list_batches_after" if after_id else "list_batches_before" if before_id else ""
        return [row_batch(r) for r in await self._db.fetch(query or "list_batches", params)]

    async def cancel_batch(self, tenant: str, batch_id: str, now: float) -> Batch | None:
        params = {"id": batch_id, "tenant": tenant, "now": now}
        async with self._db.transaction() as tx:
            if await tx.execute("cancel_batch", params):
                await tx.execute("cancel_batch_items", params)
            row = await tx.fetchrow("get_batch", params)
        return row_batch(row) if row else None

    async def item(self, tenant: str, batch_id: str, custom_id: str) -> Job | None:
        params = {"id": batch_id, "custom_id": custom_id, "tenant": tenant}
        row = await self._db.fetchrow("batch_item", params)
        return row_job(row) if row else None

    async def item_states(self, batch_id: str, after: int, limit: int) -> list[ItemState]:
        params = {"id": batch_id, "after": after, "limit": limit}
        rows = await self._db.fetch("batch_item_states", params)
        return [ItemState(r[0], r[1], r[2]) for r in rows]

    async def item_jobs(self, batch_id: str, after: int, limit: int) -> list[tuple[int, Job]]:
        params = {"id": batch_id, "after": after, "limit": limit}
        rows = await self._db.fetch("batch_item_jobs", params)
        return [(r["batch_index"], row_job(r)) for r in rows]

    async def to_finalize(self) -> list[Batch]:
        return [row_batch(r) for r in await self._db.fetch("batches_to_finalize", {})]

    async def expire_batches(self, now: float) -> int:
        async with self._db.transaction() as tx:
            ids = [r[0] for r in await tx.fetch("expire_batches", {"now": now})]
            if ids:
                await tx.execute("expire_batch_items", {"ids": ids, "now": now})
        return len(ids)

    async def finalize(
        self, batch: Batch, output: StoredFile | None, errors: StoredFile | None, now: float
    ) -> None:
        params = {
            "id": batch.id,
            "now": now,
            "output_file_id": output.id if output else None,
            "error_file_id": errors.id if errors else None,
        }
        async with self._db.transaction() as tx:
            for file in (output, errors):
                if file is not None:
                    await tx.execute("insert_file", file_row(file))
            await tx.execute("finalize_batch", params)


class PostgresFiles:
    """Implements ``FileStore``."""

    def __init__(self, db: Pools) -> None:
        self._db = db

    async def add_file(self, file: StoredFile, idempotency: IdempotencyKey | None) -> StoredFile:
        try:
            async with self._db.transaction() as tx:
                await tx.execute("insert_file", file_row(file))
                if idempotency is not None:
                    key = {"tenant": file.tenant, "key": idempotency.key}
                    reservation = {**key, "fingerprint": idempotency.fingerprint}
                    if not await tx.execute(
                        "insert_idempotency_key",
                        {**reservation, "subject": file.id, "now": file.created_at},
                    ):
                        raise KeyTaken(await tx.fetchrow("file_key_holder", key))
        except KeyTaken as taken:
            assert idempotency is not None
            return row_file(check_holder(taken.row, idempotency))
        return file

    async def held_file(self, tenant: str, idempotency: IdempotencyKey) -> StoredFile | None:
        params = {"tenant": tenant, "key": idempotency.key}
        row = await self._db.fetchrow("file_key_holder", params)
        return row_file(check_holder(row, idempotency)) if row else None

    async def get_file(self, tenant: str, file_id: str) -> StoredFile | None:
        row = await self._db.fetchrow("get_file", {"id": file_id, "tenant": tenant})
        return row_file(row) if row else None

    async def list_files(
        self, tenant: str, limit: int, purpose: str | None = None, after: str | None = None
    ) -> list[StoredFile]:
        params = {"tenant": tenant, "limit": limit, "purpose": purpose, "cursor": after}
        return [row_file(r) for r in await self._db.fetch("list_files", params)]

    async def delete_file(self, tenant: str, file_id: str) -> bool:
        return bool(await self._db.execute("delete_file", {"id": file_id, "tenant": tenant}))
