"""The scale-out store: PostgreSQL, shared by any number of API and dispatcher processes.

Behaves as ``SqliteStore`` does (the same test suite runs on both). Claims are leases taken with
``FOR UPDATE SKIP LOCKED``, so dispatchers in many processes claim at once without waiting on each
other or claiming a job twice; a finish, requeue or release with a stale token changes nothing.
Batches and files (``postgres_batches``) and the webhook outbox (``postgres_outbox``) live in the
same database. Every statement commits on its own (PostgreSQL groups concurrent commits into one WAL flush); those
that must be atomic together run in one transaction. Work that becomes queued notifies
``leeway_queued`` (a trigger), which ``listen`` turns into callbacks in every process.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import asyncpg
import orjson

from leeway.jobs import Job, JobError, Window
from leeway.store import Claim, IdempotencyKey, JobDeltas, Result
from leeway.store.postgres_batches import PostgresBatches, PostgresFiles, discard_abandoned
from leeway.store.postgres_group import FinishGroups
from leeway.store.postgres_outbox import PostgresOutbox
from leeway.store.postgres_pool import Pools
from leeway.store.rows import (
    KeyTaken,
    check_holder,
    collect_deltas,
    error_json,
    job_row,
    result_row,
    row_job,
)

_EXHAUSTED = JobError("attempts_exhausted", "The job was claimed too many times without finishing.")


class PostgresStore:
    """Implements ``Store`` and ``KeyStore`` on a PostgreSQL database (``postgresql://…``)."""

    def __init__(
        self, url: str, *, lease_seconds: float = 30.0, max_attempts: int = 3, pool_size: int = 8
    ) -> None:
        self._db = Pools(url, pool_size, at_start=lambda tx: discard_abandoned(tx, time.time()))
        self._lease = lease_seconds
        self._max_attempts = max_attempts
        self._finishes = FinishGroups(self._db)
        self.batches = PostgresBatches(self._db)
        self.files = PostgresFiles(self._db)

    async def create(self, job: Job, idempotency: IdempotencyKey | None = None) -> Job:
        row = job_row(job)
        if idempotency is None:
            await self._db.execute("insert_job", row)
            return job
        key = {"tenant": job.tenant, "key": idempotency.key}
        reservation = {**key, "fingerprint": idempotency.fingerprint, "subject": job.id}
        try:
            async with self._db.transaction() as tx:
                await tx.execute("insert_job", row)
                # A concurrent holder's uncommitted key makes this wait for its commit, then
                # insert nothing: raising rolls the job back and hands the holder to the caller.
                if not await tx.execute(
                    "insert_idempotency_key", {**reservation, "now": job.created_at}
                ):
                    raise KeyTaken(await tx.fetchrow("idempotency_holder", key))
        except KeyTaken as taken:
            return row_job(check_holder(taken.row, idempotency))
        return job

    async def held(self, tenant: str, idempotency: IdempotencyKey) -> Job | None:
        row = await self._db.fetchrow(
            "idempotency_holder", {"tenant": tenant, "key": idempotency.key}
        )
        return row_job(check_holder(row, idempotency)) if row else None

    async def prune_keys(self, before: float) -> int:
        return await self._db.execute("prune_idempotency_keys", {"before": before})

    async def get(self, tenant: str, job_id: str) -> Job | None:
        row = await self._db.fetchrow("get_job", {"id": job_id, "tenant": tenant})
        return row_job(row) if row else None

    async def claim(self, model: str, limit: int, now: float) -> list[Claim]:
        return await self._lease_jobs("claim", {"model": model, "limit": limit}, now)

    async def claim_ids(self, model: str, ids: list[str], now: float) -> list[Claim]:
        if not ids:
            return []
        return await self._lease_jobs("claim_ids", {"model": model, "ids": ids}, now)

    async def _lease_jobs(self, query: str, params: dict[str, Any], now: float) -> list[Claim]:
        token = secrets.token_hex(16)
        lease = {**params, "now": now, "token": token, "expires": now + self._lease}
        async with self._db.transaction() as tx:
            await tx.execute("expire_leases", self._expiry(now))
            rows = await tx.fetch(query, lease)
        jobs = sorted((row_job(r) for r in rows), key=lambda j: (j.window.rank, j.deadline))
        return [Claim(j, token) for j in jobs]

    def _expiry(self, now: float) -> dict[str, Any]:
        return {"now": now, "max_attempts": self._max_attempts, "error": error_json(_EXHAUSTED)}

    async def expire(self, now: float) -> int:
        return len(await self._db.fetch("expire_leases", self._expiry(now)))

    async def queued(self, model: str, limit: int, now: float) -> list[Job]:
        rows = await self._db.fetch("queued", {"model": model, "limit": limit, "now": now})
        seen: dict[str, Job] = {}
        for row in rows:
            seen.setdefault(row["id"], row_job(row))
        return list(seen.values())

    async def count_queued(self, tenant: str) -> int:
        row = await self._db.fetchrow("count_queued", {"tenant": tenant})
        return int(row[0]) if row else 0

    async def queue_depths(self) -> dict[Window, int]:
        rows = await self._db.fetch("queue_depths", {})
        return {list(Window)[rank]: count for rank, count in rows}

    async def renew(self, claims: list[Claim], now: float) -> set[str]:
        if not claims:
            return set()
        rows = await self._db.fetch("renew", {**_held(claims), "expires": now + self._lease})
        return {r[0] for r in rows}

    async def hold_engines(
        self, holder: str, engine_ids: list[str], until: float, now: float
    ) -> set[str]:
        if not engine_ids:
            return set()
        params = {"engine_ids": engine_ids, "holder": holder, "until": until, "now": now}
        return {r[0] for r in await self._db.fetch("hold_engines", params)}

    async def finish(self, claim: Claim, result: Result, now: float) -> Job | None:
        params = {"id": claim.job.id, "token": claim.token, "now": now, **result_row(result)}
        row = await self._finishes.finish(params)
        return row_job(row) if row else None

    async def requeue(self, claim: Claim, pieces: list[str], tokens: int) -> bool:
        sizes = orjson.dumps([len(p) for p in pieces if p]).decode()
        params = {
            "id": claim.job.id,
            "token": claim.token,
            "text": "".join(pieces),
            "tokens": tokens,
            "deltas": sizes,
        }
        return bool(await self._db.execute("requeue", params))

    async def release(self, claims: list[Claim]) -> None:
        if claims:
            await self._db.execute("release", _held(claims))

    async def cancel(self, tenant: str, job_id: str, now: float) -> Job | None:
        row = await self._db.fetchrow("cancel", {"id": job_id, "tenant": tenant, "now": now})
        return row_job(row) if row else None

    async def delete(self, tenant: str, job_id: str) -> bool:
        return bool(await self._db.execute("delete_job", {"id": job_id, "tenant": tenant}))

    async def append_deltas(self, pieces: Sequence[tuple[Claim, int, Sequence[str]]]) -> set[str]:
        if not pieces:
            return set()
        rows = [(c.job.id, seq + i, t) for c, seq, texts in pieces for i, t in enumerate(texts)]
        params = {
            "held_ids": [c.job.id for c, _, _ in pieces],
            "held_tokens": [c.token for c, _, _ in pieces],
            "job_ids": [r[0] for r in rows],
            "seqs": [r[1] for r in rows],
            "texts": [r[2] for r in rows],
        }
        return {r[0] for r in await self._db.fetch("append_deltas", params)}

    async def deltas(self, after: Mapping[str, int]) -> dict[str, JobDeltas]:
        if not after:
            return {}
        params = {"ids": list(after), "after": list(after.values())}
        return collect_deltas(await self._db.fetch("deltas", params))

    async def add_key(self, key_hash: str, tenant: str, now: float) -> None:
        await self._db.execute("insert_key", {"key_hash": key_hash, "tenant": tenant, "now": now})

    async def tenant_for_key(self, key_hash: str) -> str | None:
        row = await self._db.fetchrow("tenant_for_key", {"key_hash": key_hash})
        return row[0] if row else None

    async def count_keys(self) -> int:
        row = await self._db.fetchrow("count_keys", {})
        return int(row[0]) if row else 0

    async def listen(self, on_queued: Callable[[str], None]) -> None:
        """Call ``on_queued(model)`` on this loop whenever work of ``model`` becomes queued, in any
        process, until ``close``; returns once listening (a connection of its own)."""
        await self._db.listen(on_queued)

    def outbox(self) -> PostgresOutbox:
        """The webhook outbox in the same database."""
        return PostgresOutbox(self._db)

    async def connection(self) -> asyncpg.Pool:
        """This loop's pool (for tests that look at the tables)."""
        return await self._db.pool()

    async def close(self) -> None:
        await self._db.close()


def _held(claims: list[Claim]) -> dict[str, list[str]]:
    return {"ids": [c.job.id for c in claims], "tokens": [c.token for c in claims]}
