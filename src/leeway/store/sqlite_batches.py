"""Batches and files on the SQLite store: ``BatchStore``, ``BatchResults`` and ``FileStore``, sharing
the store's writer thread and read connections."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from leeway.batches import Batch, ItemState, StoredFile
from leeway.jobs import Job
from leeway.store import IdempotencyKey
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
from leeway.store.sqlite_writer import GroupWriter, Reader


class SqliteBatches:
    """Implements ``BatchStore`` and ``BatchResults``."""

    def __init__(self, writer: GroupWriter, reader: Reader, q: dict[str, str]) -> None:
        self._writer, self._reader, self._q = writer, reader, q

    async def open(self, batch: Batch) -> None:
        row, query = batch_row(batch), self._q["insert_batch"]
        await self._writer.write(lambda c: c.execute(query, row))

    async def stage(self, batch_id: str, items: Sequence[tuple[int, Job]]) -> None:
        query = self._q["stage_item"]

        def stage(c: sqlite3.Connection) -> None:  # one row at a time: a chunk's rows never pile up
            c.executemany(query, ({**job_row(job), "batch_index": i} for i, job in items))

        await self._writer.write(stage)

    async def commit(self, batch: Batch, total: int, idempotency: IdempotencyKey | None) -> Batch:
        q, ids = self._q, {"id": batch.id}
        key = None if idempotency is None else {"tenant": batch.tenant, "key": idempotency.key}

        def commit(c: sqlite3.Connection) -> sqlite3.Row:
            if key is not None and idempotency is not None:
                reservation = {**key, "fingerprint": idempotency.fingerprint, "subject": batch.id}
                if not c.execute(
                    q["insert_idempotency_key"], {**reservation, "now": batch.created_at}
                ).rowcount:
                    raise KeyTaken(c.execute(q["batch_key_holder"], key).fetchone())
            c.execute(q["commit_batch"], {**ids, "total": total})
            return c.execute(q["get_batch"], {**ids, "tenant": batch.tenant}).fetchone()  # type: ignore[no-any-return]

        try:
            return row_batch(await self._writer.write(commit))
        except KeyTaken as taken:
            await self.discard(batch.id)
            assert idempotency is not None
            return row_batch(check_holder(taken.row, idempotency))

    async def discard(self, batch_id: str) -> None:
        q, ids = self._q, {"id": batch_id}

        def discard(c: sqlite3.Connection) -> None:
            c.execute(q["discard_items"], ids)
            c.execute(q["discard_batch"], ids)

        await self._writer.write(discard)

    async def held_batch(self, tenant: str, idempotency: IdempotencyKey) -> Batch | None:
        params = {"tenant": tenant, "key": idempotency.key}
        row = self._reader.execute(self._q["batch_key_holder"], params).fetchone()
        return row_batch(check_holder(row, idempotency)) if row else None

    async def get_batch(self, tenant: str, batch_id: str) -> Batch | None:
        row = self._reader.execute(self._q["get_batch"], {"id": batch_id, "tenant": tenant})
        found = row.fetchone()
        return row_batch(found) if found else None

    async def list_batches(
        self, tenant: str, limit: int, after_id: str | None = None, before_id: str | None = None
    ) -> list[Batch]:
        params: dict[str, Any] = {"tenant": tenant, "limit": limit, "cursor": after_id or before_id}
        query = "list_batches_after" if after_id else "list_batches_before" if before_id else ""
        rows = self._reader.execute(self._q[query or "list_batches"], params).fetchall()
        return [row_batch(r) for r in rows]

    async def cancel_batch(self, tenant: str, batch_id: str, now: float) -> Batch | None:
        q, params = self._q, {"id": batch_id, "tenant": tenant, "now": now}

        def cancel(c: sqlite3.Connection) -> sqlite3.Row | None:
            if c.execute(q["cancel_batch"], params).rowcount:
                c.execute(q["cancel_batch_items"], params)
            return c.execute(q["get_batch"], params).fetchone()  # type: ignore[no-any-return]

        row = await self._writer.write(cancel)
        return row_batch(row) if row else None

    async def item(self, tenant: str, batch_id: str, custom_id: str) -> Job | None:
        params = {"id": batch_id, "custom_id": custom_id, "tenant": tenant}
        row = self._reader.execute(self._q["batch_item"], params).fetchone()
        return row_job(row) if row else None

    async def item_states(self, batch_id: str, after: int, limit: int) -> list[ItemState]:
        params = {"id": batch_id, "after": after, "limit": limit}
        rows = self._reader.execute(self._q["batch_item_states"], params).fetchall()
        return [ItemState(r[0], r[1], r[2]) for r in rows]

    async def item_jobs(self, batch_id: str, after: int, limit: int) -> list[tuple[int, Job]]:
        params = {"id": batch_id, "after": after, "limit": limit}
        rows = self._reader.execute(self._q["batch_item_jobs"], params).fetchall()
        return [(r["batch_index"], row_job(r)) for r in rows]

    async def to_finalize(self) -> list[Batch]:
        rows = self._reader.execute(self._q["batches_to_finalize"]).fetchall()
        return [row_batch(r) for r in rows]

    async def expire_batches(self, now: float) -> int:
        q = self._q

        def expire(c: sqlite3.Connection) -> int:
            expired = c.execute(q["expire_batches"], {"now": now}).fetchall()
            for (batch_id,) in expired:
                c.execute(q["expire_batch_items"], {"id": batch_id, "now": now})
            return len(expired)

        return int(await self._writer.write(expire))

    async def finalize(
        self, batch: Batch, output: StoredFile | None, errors: StoredFile | None, now: float
    ) -> None:
        q = self._q
        params = {
            "id": batch.id,
            "now": now,
            "output_file_id": output.id if output else None,
            "error_file_id": errors.id if errors else None,
        }

        def finalize(c: sqlite3.Connection) -> None:
            for file in (output, errors):
                if file is not None:
                    c.execute(q["insert_file"], file_row(file))
            c.execute(q["finalize_batch"], params)

        await self._writer.write(finalize)


class SqliteFiles:
    """Implements ``FileStore``."""

    def __init__(self, writer: GroupWriter, reader: Reader, q: dict[str, str]) -> None:
        self._writer, self._reader, self._q = writer, reader, q

    async def add_file(self, file: StoredFile, idempotency: IdempotencyKey | None) -> StoredFile:
        q, row = self._q, file_row(file)
        key = None if idempotency is None else {"tenant": file.tenant, "key": idempotency.key}

        def add(c: sqlite3.Connection) -> None:
            c.execute(q["insert_file"], row)
            if key is not None and idempotency is not None:
                reservation = {**key, "fingerprint": idempotency.fingerprint, "subject": file.id}
                if not c.execute(
                    q["insert_idempotency_key"], {**reservation, "now": file.created_at}
                ).rowcount:
                    raise KeyTaken(c.execute(q["file_key_holder"], key).fetchone())

        try:
            await self._writer.write(add)
        except KeyTaken as taken:
            assert idempotency is not None
            return row_file(check_holder(taken.row, idempotency))
        return file

    async def held_file(self, tenant: str, idempotency: IdempotencyKey) -> StoredFile | None:
        params = {"tenant": tenant, "key": idempotency.key}
        row = self._reader.execute(self._q["file_key_holder"], params).fetchone()
        return row_file(check_holder(row, idempotency)) if row else None

    async def get_file(self, tenant: str, file_id: str) -> StoredFile | None:
        row = self._reader.execute(self._q["get_file"], {"id": file_id, "tenant": tenant})
        found = row.fetchone()
        return row_file(found) if found else None

    async def list_files(
        self, tenant: str, limit: int, purpose: str | None = None, after: str | None = None
    ) -> list[StoredFile]:
        params = {"tenant": tenant, "limit": limit, "purpose": purpose, "cursor": after}
        return [row_file(r) for r in self._reader.execute(self._q["list_files"], params)]

    async def delete_file(self, tenant: str, file_id: str) -> bool:
        params, query = {"id": file_id, "tenant": tenant}, self._q["delete_file"]
        return bool(await self._writer.write(lambda c: c.execute(query, params).rowcount))
