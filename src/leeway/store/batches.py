"""Batches and files over a dialect driver: ``BatchStore``, ``BatchResults`` and ``FileStore`` (part
of ``SqlStore``).

A batch's items are staged in chunks while its body is read (unseen by every queue read), then made
visible in one transaction with the batch row and its idempotency key, or discarded: a batch is
stored whole or not at all. A batch whose upload a dying process cut off is discarded by a later
start once it is a day old (other processes may be taking uploads while one starts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leeway.batches import Batch, BatchError, ItemState, Shape, StoredFile
from leeway.jobs import Job
from leeway.prices import PriceTable
from leeway.store.contract import IdempotencyKey
from leeway.store.driver import Driver, Queries
from leeway.store.idempotency import KeyTaken, check_holder, reserve
from leeway.store.rows import (
    batch_errors_json,
    batch_row,
    file_row,
    job_row,
    row_batch,
    row_file,
    row_job,
)

ABANDONED_AFTER = 86_400.0  # seconds: no upload takes a day


async def discard_abandoned(q: Queries, now: float) -> None:
    """At start-up: the batches whose upload a stop cut off (their client never heard
    "accepted")."""
    await q.run("discard_abandoned_items", {"before": now - ABANDONED_AFTER})
    await q.run("discard_abandoned_batches", {"before": now - ABANDONED_AFTER})


class BatchesSql:
    _db: Driver
    _prices: PriceTable

    async def open_batch(self, batch: Batch) -> None:
        await self._db.run("insert_batch", batch_row(batch))

    async def stage_items(self, items: Sequence[tuple[int, Job]]) -> None:
        await self._db.stage([{**job_row(job), "batch_index": i} for i, job in items])

    async def commit_batch(
        self, batch: Batch, total: int, idempotency: IdempotencyKey | None
    ) -> Batch:
        ids = {"id": batch.id}

        async def commit(q: Queries) -> Any:
            if idempotency is not None:
                tenant, at = batch.tenant, batch.created_at
                await reserve(q, tenant, idempotency, batch.id, at, "batch_key_holder")
            await q.run("commit_items", ids)
            await q.run("commit_batch", {**ids, "total": total})
            return await q.row("get_batch", {**ids, "tenant": batch.tenant})

        try:
            return row_batch(await self._db.transaction(commit))
        except KeyTaken as taken:
            await self.discard_batch(batch.id)
            assert idempotency is not None
            return row_batch(check_holder(taken.row, idempotency))

    async def fail_batch(
        self,
        batch: Batch,
        errors: Sequence[BatchError],
        idempotency: IdempotencyKey | None,
        now: float,
    ) -> Batch:
        ids = {"id": batch.id}
        params = {**ids, "now": now, "errors": batch_errors_json(errors)}

        async def fail(q: Queries) -> Any:
            if idempotency is not None:
                tenant, at = batch.tenant, batch.created_at
                await reserve(q, tenant, idempotency, batch.id, at, "batch_key_holder")
            await q.run("insert_batch", batch_row(batch))
            await q.run("fail_batch", params)
            return await q.row("get_batch", {**ids, "tenant": batch.tenant})

        try:
            return row_batch(await self._db.transaction(fail))
        except KeyTaken as taken:
            assert idempotency is not None
            return row_batch(check_holder(taken.row, idempotency))

    async def delete_batch(self, tenant: str, batch_id: str) -> bool:
        params = {"id": batch_id, "tenant": tenant}

        async def delete(q: Queries) -> bool:
            await q.run("delete_batch_items", params)
            if not await q.run("delete_batch", params):
                return False
            await q.run("free_batch_key", params)
            return True

        return await self._db.transaction(delete)

    async def discard_batch(self, batch_id: str) -> None:
        async def discard(q: Queries) -> None:
            await q.run("discard_items", {"id": batch_id})
            await q.run("discard_batch", {"id": batch_id})

        await self._db.transaction(discard)

    async def held_batch(self, tenant: str, idempotency: IdempotencyKey) -> Batch | None:
        row = await self._db.row("batch_key_holder", {"tenant": tenant, "key": idempotency.key})
        return row_batch(check_holder(row, idempotency)) if row else None

    async def get_batch(self, tenant: str, batch_id: str) -> Batch | None:
        row = await self._db.row("get_batch", {"id": batch_id, "tenant": tenant})
        return row_batch(row) if row else None

    async def list_batches(
        self,
        tenant: str,
        limit: int,
        after_id: str | None = None,
        before_id: str | None = None,
        shape: Shape | None = None,
    ) -> list[Batch]:
        params: dict[str, Any] = {
            "tenant": tenant,
            "limit": limit,
            "cursor": after_id or before_id,
            "shape": shape.value if shape else None,
        }
        query = "list_batches_after" if after_id else "list_batches_before" if before_id else ""
        return [row_batch(r) for r in await self._db.rows(query or "list_batches", params)]

    async def cancel_batch(self, tenant: str, batch_id: str, now: float) -> Batch | None:
        params = {"id": batch_id, "tenant": tenant, "now": now}

        async def cancel(q: Queries) -> Any:
            if await q.run("cancel_batch", params):
                await q.run("cancel_batch_items", {**params, **self._prices.params()})
            return await q.row("get_batch", params)

        row = await self._db.transaction(cancel)
        return row_batch(row) if row else None

    async def item(self, tenant: str, batch_id: str, custom_id: str) -> Job | None:
        params = {"id": batch_id, "custom_id": custom_id, "tenant": tenant}
        row = await self._db.row("batch_item", params)
        return row_job(row) if row else None

    async def item_states(self, batch_id: str, after: int, limit: int) -> list[ItemState]:
        params = {"id": batch_id, "after": after, "limit": limit}
        return [
            ItemState(r[0], r[1], r[2]) for r in await self._db.rows("batch_item_states", params)
        ]

    async def item_jobs(self, batch_id: str, after: int, limit: int) -> list[tuple[int, Job]]:
        params = {"id": batch_id, "after": after, "limit": limit}
        rows = await self._db.rows("batch_item_jobs", params)
        return [(r["batch_index"], row_job(r)) for r in rows]

    async def batches_to_finalize(self) -> list[Batch]:
        return [row_batch(r) for r in await self._db.rows("batches_to_finalize")]

    async def expire_batches(self, now: float) -> int:
        async def expire(q: Queries) -> int:
            ids = [r[0] for r in await q.rows("expire_batches", {"now": now})]
            if ids:
                priced = {"ids": ids, "now": now, **self._prices.params()}
                await q.run("expire_batch_items", priced)
            return len(ids)

        return await self._db.transaction(expire)

    async def finalize_batch(
        self, batch: Batch, output: StoredFile | None, errors: StoredFile | None, now: float
    ) -> None:
        params = {
            "id": batch.id,
            "now": now,
            "output_file_id": output.id if output else None,
            "error_file_id": errors.id if errors else None,
        }

        async def finalize(q: Queries) -> None:
            for file in (output, errors):
                if file is not None:
                    await q.run("insert_file", file_row(file))
            await q.run("finalize_batch", params)

        await self._db.transaction(finalize)

    async def add_file(self, file: StoredFile, idempotency: IdempotencyKey | None) -> StoredFile:
        async def add(q: Queries) -> None:
            await q.run("insert_file", file_row(file))
            if idempotency is not None:
                await reserve(
                    q, file.tenant, idempotency, file.id, file.created_at, "file_key_holder"
                )

        try:
            await self._db.transaction(add)
        except KeyTaken as taken:
            assert idempotency is not None
            return row_file(check_holder(taken.row, idempotency))
        return file

    async def held_file(self, tenant: str, idempotency: IdempotencyKey) -> StoredFile | None:
        row = await self._db.row("file_key_holder", {"tenant": tenant, "key": idempotency.key})
        return row_file(check_holder(row, idempotency)) if row else None

    async def get_file(self, tenant: str, file_id: str) -> StoredFile | None:
        row = await self._db.row("get_file", {"id": file_id, "tenant": tenant})
        return row_file(row) if row else None

    async def list_files(
        self, tenant: str, limit: int, purpose: str | None = None, after: str | None = None
    ) -> list[StoredFile]:
        params = {"tenant": tenant, "limit": limit, "purpose": purpose, "cursor": after}
        return [row_file(r) for r in await self._db.rows("list_files", params)]

    async def delete_file(self, tenant: str, file_id: str) -> bool:
        return bool(await self._db.run("delete_file", {"id": file_id, "tenant": tenant}))
