"""The embedded store: one SQLite file in WAL mode, ``synchronous=FULL``.

All writes go through one writer thread that commits in groups (``sqlite_writer``), so a client is
never told "accepted" for a job that a crash could lose, and durability costs one sync per group
instead of one per request. Reads use separate connections (one per thread) and never wait for the
writer. Batches and files share the same writer and readers (``sqlite_batches``).
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from leeway.jobs import Job, JobError, Window
from leeway.store import Claim, IdempotencyKey, JobDeltas, Result
from leeway.store.queries import load_queries
from leeway.store.rows import (
    KeyTaken,
    check_holder,
    collect_deltas,
    error_json,
    job_row,
    result_row,
    row_job,
)
from leeway.store.sqlite_batches import SqliteBatches, SqliteFiles
from leeway.store.sqlite_outbox import SqliteOutbox
from leeway.store.sqlite_writer import GroupWriter, Reader

Q = load_queries("sqlite")
# Batches whose upload a stop cut off: their client never heard "accepted".
_AT_START = (Q["discard_abandoned_items"], Q["discard_abandoned_batches"])
_EXHAUSTED = JobError("attempts_exhausted", "The job was claimed too many times without finishing.")


class SqliteStore:
    """Implements ``Store`` and ``KeyStore`` on one SQLite file."""

    def __init__(self, path: Path, *, lease_seconds: float = 30.0, max_attempts: int = 3) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = GroupWriter(path, at_start=_AT_START)
        self._reader = Reader(path)
        self._lease = lease_seconds
        self._max_attempts = max_attempts
        self.batches = SqliteBatches(self._writer, self._reader, Q)
        self.files = SqliteFiles(self._writer, self._reader, Q)

    async def create(self, job: Job, idempotency: IdempotencyKey | None = None) -> Job:
        row = job_row(job)
        if idempotency is None:
            await self._writer.write(lambda c: c.execute(Q["insert_job"], row))
            return job
        key = {"tenant": job.tenant, "key": idempotency.key}
        reservation = {**key, "fingerprint": idempotency.fingerprint, "subject": job.id}

        def insert(c: sqlite3.Connection) -> None:
            c.execute(Q["insert_job"], row)
            if c.execute(
                Q["insert_idempotency_key"], {**reservation, "now": job.created_at}
            ).rowcount:
                return
            # The key is taken (UNIQUE (tenant, key)): raising rolls this write's savepoint back,
            # so the job just inserted is undone, and hands the holder to the caller.
            raise KeyTaken(c.execute(Q["idempotency_holder"], key).fetchone())

        try:
            await self._writer.write(insert)
        except KeyTaken as taken:
            return row_job(check_holder(taken.row, idempotency))
        return job

    async def held(self, tenant: str, idempotency: IdempotencyKey) -> Job | None:
        params = {"tenant": tenant, "key": idempotency.key}
        row = self._reader.execute(Q["idempotency_holder"], params).fetchone()
        return row_job(check_holder(row, idempotency)) if row else None

    async def prune_keys(self, before: float) -> int:
        query = Q["prune_idempotency_keys"]
        count = await self._writer.write(lambda c: c.execute(query, {"before": before}).rowcount)
        return int(count)

    async def get(self, tenant: str, job_id: str) -> Job | None:
        row = self._reader.execute(Q["get_job"], {"id": job_id, "tenant": tenant}).fetchone()
        return row_job(row) if row else None

    async def claim(self, model: str, limit: int, now: float) -> list[Claim]:
        return await self._lease_jobs("claim", {"model": model, "limit": limit}, now)

    async def claim_ids(self, model: str, ids: list[str], now: float) -> list[Claim]:
        if not ids:
            return []
        return await self._lease_jobs(
            "claim_ids", {"model": model, "ids": orjson.dumps(ids).decode()}, now
        )

    async def _lease_jobs(self, query: str, params: dict[str, Any], now: float) -> list[Claim]:
        token = secrets.token_hex(16)
        expire = {"now": now, "max_attempts": self._max_attempts, "error": error_json(_EXHAUSTED)}
        lease = {**params, "now": now, "token": token, "expires": now + self._lease}

        def claim(c: sqlite3.Connection) -> list[sqlite3.Row]:
            c.execute(Q["expire_leases"], expire).fetchall()
            return c.execute(Q[query], lease).fetchall()

        rows = await self._writer.write(claim)
        jobs = sorted((row_job(r) for r in rows), key=lambda j: (j.window.rank, j.deadline))
        return [Claim(j, token) for j in jobs]

    async def expire(self, now: float) -> int:
        params = {"now": now, "max_attempts": self._max_attempts, "error": error_json(_EXHAUSTED)}
        return len(
            await self._writer.write(lambda c: c.execute(Q["expire_leases"], params).fetchall())
        )

    async def queued(self, model: str, limit: int, now: float) -> list[Job]:
        params = {"model": model, "limit": limit, "now": now}
        seen: dict[str, Job] = {}
        for query in ("queued_asap", "queued_ahead", "queued_late"):
            for row in self._reader.execute(Q[query], params).fetchall():
                seen.setdefault(row["id"], row_job(row))
        return list(seen.values())

    async def count_queued(self, tenant: str) -> int:
        return int(self._reader.execute(Q["count_queued"], {"tenant": tenant}).fetchone()[0])

    async def queue_depths(self) -> dict[Window, int]:
        depths = dict(self._reader.execute(Q["queue_depths"]).fetchall())
        for rank, unseen in self._reader.execute(Q["unseen_depths"]).fetchall():
            depths[rank] -= unseen
        return {list(Window)[rank]: count for rank, count in depths.items() if count}

    async def renew(self, claims: list[Claim], now: float) -> set[str]:
        params = [{"id": c.job.id, "token": c.token, "expires": now + self._lease} for c in claims]

        def renew(c: sqlite3.Connection) -> set[str]:
            return {r[0] for p in params for r in c.execute(Q["renew"], p).fetchall()}

        return await self._writer.write(renew) if params else set()

    async def finish(self, claim: Claim, result: Result, now: float) -> Job | None:
        params = {"id": claim.job.id, "token": claim.token, "now": now, **result_row(result)}
        row = await self._writer.write(lambda c: c.execute(Q["finish"], params).fetchone())
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
        return bool(await self._writer.write(lambda c: c.execute(Q["requeue"], params).rowcount))

    async def hold_engines(
        self, holder: str, engine_ids: list[str], until: float, now: float
    ) -> set[str]:
        params = [
            {"engine_id": e, "holder": holder, "until": until, "now": now} for e in engine_ids
        ]

        def hold(c: sqlite3.Connection) -> set[str]:
            return {r[0] for p in params for r in c.execute(Q["hold_engines"], p).fetchall()}

        return await self._writer.write(hold) if params else set()

    async def release(self, claims: list[Claim]) -> None:
        params = [{"id": c.job.id, "token": c.token} for c in claims]
        if params:
            await self._writer.write(lambda c: c.executemany(Q["release"], params))

    async def cancel(self, tenant: str, job_id: str, now: float) -> Job | None:
        params = {"id": job_id, "tenant": tenant, "now": now}

        def cancel(c: sqlite3.Connection) -> sqlite3.Row | None:
            c.execute(Q["cancel"], params)
            return c.execute(Q["get_job"], params).fetchone()  # type: ignore[no-any-return]

        row = await self._writer.write(cancel)
        return row_job(row) if row else None

    async def delete(self, tenant: str, job_id: str) -> bool:
        params = {"id": job_id, "tenant": tenant}
        count = await self._writer.write(lambda c: c.execute(Q["delete_job"], params).rowcount)
        return bool(count)

    async def append_deltas(self, pieces: Sequence[tuple[Claim, int, Sequence[str]]]) -> set[str]:
        def append(c: sqlite3.Connection) -> set[str]:
            stored = set()
            for claim, seq, texts in pieces:
                fence = {"id": claim.job.id, "token": claim.token}
                if c.execute(Q["delta_fence"], fence).fetchone() is None:
                    continue
                rows = [
                    {"job_id": claim.job.id, "seq": seq + i, "text": t} for i, t in enumerate(texts)
                ]
                c.executemany(Q["insert_delta"], rows)
                stored.add(claim.job.id)
            return stored

        return await self._writer.write(append) if pieces else set()

    async def deltas(self, after: Mapping[str, int]) -> dict[str, JobDeltas]:
        if not after:
            return {}
        params = {"after": orjson.dumps(dict(after)).decode()}
        return collect_deltas(self._reader.execute(Q["deltas"], params).fetchall())

    async def add_key(self, key_hash: str, tenant: str, now: float) -> None:
        params = {"key_hash": key_hash, "tenant": tenant, "now": now}
        await self._writer.write(lambda c: c.execute(Q["insert_key"], params))

    async def tenant_for_key(self, key_hash: str) -> str | None:
        row = self._reader.execute(Q["tenant_for_key"], {"key_hash": key_hash}).fetchone()
        return row[0] if row else None

    async def count_keys(self) -> int:
        return int(self._reader.execute(Q["count_keys"]).fetchone()[0])

    def outbox(self) -> SqliteOutbox:
        """The webhook outbox in the same file, sharing this store's writer and its commits."""
        return SqliteOutbox(self._writer, self._reader)

    async def close(self) -> None:
        await asyncio.to_thread(self._writer.close)
        self._reader.close()
