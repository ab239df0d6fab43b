"""Jobs, their leases and streamed pieces, and engine leases, over a dialect driver: ``Jobs``,
``Queue`` and ``Sharing`` (part of ``SqlStore``). A job that becomes final is billed at the prices
``_prices`` holds at that moment (its usage is rolled up by the database, in the same statement)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from leeway.jobs import Job, JobError, Window
from leeway.prices import PriceTable
from leeway.store.contract import Claim, IdempotencyKey, JobPieces, QueueOrder, Result
from leeway.store.driver import Driver, Queries
from leeway.store.idempotency import KeyTaken, check_holder, reserve
from leeway.store.rows import (
    collect_pieces,
    error_json,
    job_row,
    result_row,
    row_job,
)

_STALLED = JobError(
    "attempts_exhausted",
    "The job's run stalled (its lease ran out while its dispatcher lived) too many times.",
)
_CRASHED = JobError(
    "attempts_exhausted",
    "The process running this job died each of the last times it ran: the job is likely what "
    "stops it, so it is not run again.",
)


class JobsSql:
    _db: Driver
    _lease: float
    _max_attempts: int
    _max_crashes: int
    _prices: PriceTable

    async def create(self, job: Job, idempotency: IdempotencyKey | None = None) -> Job:
        row = job_row(job)
        if idempotency is None:
            await self._db.run("insert_job", row)
            return job

        async def insert(q: Queries) -> None:
            await q.run("insert_job", row)
            await reserve(q, job.tenant, idempotency, job.id, job.created_at, "idempotency_holder")

        try:
            await self._db.transaction(insert)
        except KeyTaken as taken:
            return row_job(check_holder(taken.row, idempotency))
        return job

    async def held(self, tenant: str, idempotency: IdempotencyKey) -> Job | None:
        row = await self._db.row("idempotency_holder", {"tenant": tenant, "key": idempotency.key})
        return row_job(check_holder(row, idempotency)) if row else None

    async def prune_keys(self, before: float) -> int:
        return await self._db.run("prune_idempotency_keys", {"before": before})

    async def get(self, tenant: str, job_id: str) -> Job | None:
        row = await self._db.row("get_job", {"id": job_id, "tenant": tenant})
        return row_job(row) if row else None

    async def cancel(self, tenant: str, job_id: str, now: float) -> Job | None:
        params = {"id": job_id, "tenant": tenant, "now": now, **self._prices.params()}

        async def cancel(q: Queries) -> Any:
            await q.run("cancel", params)
            return await q.row("get_job", params)

        row = await self._db.transaction(cancel)
        return row_job(row) if row else None

    async def delete(self, tenant: str, job_id: str) -> bool:
        return bool(await self._db.run("delete_job", {"id": job_id, "tenant": tenant}))

    async def list_chats(
        self,
        tenant: str,
        limit: int,
        *,
        after: str | None = None,
        newest_first: bool = False,
        model: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[Job]:
        params = {
            "tenant": tenant,
            "limit": limit,
            "cursor": after,
            "model": model,
            "metadata": orjson.dumps(metadata).decode() if metadata else None,
        }
        query = "list_chats_desc" if newest_first else "list_chats_asc"
        return [row_job(r) for r in await self._db.rows(query, params)]

    async def set_metadata(
        self, tenant: str, job_id: str, metadata: Mapping[str, str]
    ) -> Job | None:
        params = {"id": job_id, "tenant": tenant, "metadata": orjson.dumps(metadata).decode()}
        row = await self._db.row("set_metadata", params)
        return row_job(row) if row else None

    async def count_queued(self, tenant: str) -> int:
        row = await self._db.row("count_queued", {"tenant": tenant})
        return int(row[0]) if row else 0

    async def queue_depths(self) -> dict[Window, int]:
        ranks = list(Window)
        return {ranks[rank]: n for rank, n in await self._db.rows("queue_depths") if n}

    async def queued(
        self, model: str, limit: int, now: float, order: QueueOrder = "deadline"
    ) -> list[Job]:
        if order != "deadline":
            rows = await self._db.rows(f"queued_by_{order}", {"model": model, "limit": limit})
            return [row_job(row) for row in rows]
        seen: dict[str, Job] = {}
        for row in await self._db.rows("queued", {"model": model, "limit": limit, "now": now}):
            if row["id"] not in seen:
                seen[row["id"]] = row_job(row)
        return list(seen.values())

    async def claim_ids(
        self, model: str, ids: list[str], now: float, holder: str | None = None
    ) -> list[Claim]:
        if not ids:
            return []
        token = secrets.token_hex(16)
        lease = {"model": model, "ids": ids, "now": now, "token": token, "holder": holder}
        lease["expires"] = now + self._lease

        async def claim(q: Queries) -> list[Any]:
            await q.rows("expire_leases", self._expiry(now))
            return await q.rows("claim_ids", lease)

        rows = await self._db.transaction(claim)
        jobs = sorted((row_job(r) for r in rows), key=lambda j: (j.window.rank, j.deadline))
        return [Claim(j, token) for j in jobs]

    def _expiry(self, now: float) -> dict[str, Any]:
        return {
            "now": now,
            "max_attempts": self._max_attempts,
            "max_crashes": self._max_crashes,
            "stalled_error": error_json(_STALLED),
            "crashed_error": error_json(_CRASHED),
            **self._prices.params(),
        }

    async def expire(self, now: float) -> int:
        return len(await self._db.rows("expire_leases", self._expiry(now)))

    async def renew(self, claims: list[Claim], now: float) -> set[str]:
        if not claims:
            return set()
        rows = await self._db.rows("renew", {**_held(claims), "expires": now + self._lease})
        return {r[0] for r in rows}

    async def finish(self, claim: Claim, result: Result, now: float) -> Job | None:
        price = self._prices.price(claim.job.model, claim.job.window)
        params = {
            "id": claim.job.id,
            "token": claim.token,
            "now": now,
            "input_price": float(price.input),
            "output_price": float(price.output),
            **result_row(result),
        }
        row = await self._db.finish(params)
        return row_job(row) if row else None

    async def bill_cancelled_run(self, claim: Claim, tokens: int) -> bool:
        params = {"id": claim.job.id, "token": claim.token, "tokens": tokens}
        return bool(await self._db.run("bill_cancelled_run", params))

    async def requeue(self, claim: Claim, pieces: list[str], tokens: int, tail: str = "") -> bool:
        params = {
            "id": claim.job.id,
            "token": claim.token,
            "text": "".join(pieces) + tail,
            "tokens": tokens,
            "piece_sizes": orjson.dumps([len(p) for p in pieces if p]).decode(),
        }
        return bool(await self._db.run("requeue", params))

    async def release(self, claims: list[Claim]) -> None:
        if claims:
            await self._db.run("release", _held(claims))

    async def hold_engines(
        self, holder: str, engine_ids: list[str], until: float, now: float
    ) -> set[str]:
        if not engine_ids:
            return set()
        params = {"engine_ids": engine_ids, "holder": holder, "until": until, "now": now}
        return {r[0] for r in await self._db.rows("hold_engines", params)}

    async def append_pieces(self, pieces: Sequence[tuple[Claim, int, Sequence[str]]]) -> set[str]:
        if not pieces:
            return set()
        claims = [claim for claim, _, _ in pieces]

        async def append(q: Queries) -> set[str]:
            held = {r[0] for r in await q.rows("held_leases", _held(claims))}
            rows = [
                (c.job.id, seq + i, t)
                for c, seq, texts in pieces
                if c.job.id in held
                for i, t in enumerate(texts)
            ]
            if rows:
                ids, seqs, texts = (list(column) for column in zip(*rows, strict=True))
                await q.run("insert_pieces", {"job_ids": ids, "seqs": seqs, "texts": texts})
            return held

        return await self._db.transaction(append)

    async def pieces(self, after: Mapping[str, int]) -> dict[str, JobPieces]:
        if not after:
            return {}
        params = {"ids": list(after), "after": list(after.values())}
        return collect_pieces(await self._db.rows("pieces", params))


def _held(claims: list[Claim]) -> dict[str, list[str]]:
    return {"ids": [c.job.id for c in claims], "tokens": [c.token for c in claims]}
