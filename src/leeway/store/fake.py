"""An in-memory Store for unit tests: the same contract as SqliteStore (leases, fencing, ordering)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace

from leeway.errors import IdempotencyMismatch
from leeway.jobs import Job, JobError, Status, Window
from leeway.store import Claim, IdempotencyKey, JobDeltas, Result


class FakeStore:
    def __init__(self, *, lease_seconds: float = 30.0, max_attempts: int = 3) -> None:
        self.jobs: dict[str, Job] = {}
        self._leases: dict[str, tuple[str, float]] = {}  # job id -> (token, expires)
        self.engine_leases: dict[str, tuple[str, float]] = {}  # engine id -> (holder, expires)
        self._lease, self._max_attempts = lease_seconds, max_attempts
        self.keys: dict[str, str] = {}
        # (tenant, key) -> (fingerprint, job id, created_at)
        self.idempotency: dict[tuple[str, str], tuple[str, str, float]] = {}
        self.job_deltas: dict[str, dict[int, str]] = {}  # job id -> seq -> text
        self.delta_writes = 0  # append_deltas calls that stored something

    async def create(self, job: Job, idempotency: IdempotencyKey | None = None) -> Job:
        if job.id in self.jobs:
            raise ValueError(f"duplicate job id {job.id}")
        if idempotency is not None:
            if (holder := await self.held(job.tenant, idempotency)) is not None:
                return holder
            entry = (idempotency.fingerprint, job.id, job.created_at)
            self.idempotency[(job.tenant, idempotency.key)] = entry
        self.jobs[job.id] = job
        return job

    async def held(self, tenant: str, idempotency: IdempotencyKey) -> Job | None:
        entry = self.idempotency.get((tenant, idempotency.key))
        if entry is None or entry[1] not in self.jobs:
            return None
        if entry[0] != idempotency.fingerprint:
            raise IdempotencyMismatch(f"The Idempotency-Key '{idempotency.key}' was already used.")
        return self.jobs[entry[1]]

    async def prune_keys(self, before: float) -> int:
        old = [k for k, (_, _, created) in self.idempotency.items() if created < before]
        for k in old:
            del self.idempotency[k]
        return len(old)

    async def get(self, tenant: str, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        return job if job is not None and job.tenant == tenant else None

    async def claim(
        self, model: str, limit: int, now: float, only: set[str] | None = None
    ) -> list[Claim]:
        await self.expire(now)
        queued = sorted(
            (
                j
                for j in self.jobs.values()
                if j.status is Status.QUEUED and j.model == model and (only is None or j.id in only)
            ),
            key=lambda j: (j.window.rank, j.deadline),
        )[:limit]
        token = secrets.token_hex(8)
        claims = []
        for job in queued:
            job = replace(
                job,
                status=Status.IN_PROGRESS,
                attempts=job.attempts + 1,
                started_at=job.started_at or now,
            )
            self.jobs[job.id] = job
            self._leases[job.id] = (token, now + self._lease)
            claims.append(Claim(job, token))
        return claims

    async def claim_ids(self, model: str, ids: list[str], now: float) -> list[Claim]:
        wanted = set(ids)
        claims = await self.claim(model, len(self.jobs), now, only=wanted)
        return claims

    async def queued(self, model: str, limit: int, now: float) -> list[Job]:
        waiting = sorted(
            (j for j in self.jobs.values() if j.status is Status.QUEUED and j.model == model),
            key=lambda j: j.deadline,
        )
        parts = (
            [j for j in waiting if j.window is Window.ASAP],
            [j for j in waiting if j.deadline >= now],
            [j for j in waiting if j.deadline < now],
        )
        return list({j.id: j for part in parts for j in part[:limit]}.values())

    async def count_queued(self, tenant: str) -> int:
        return sum(
            1 for j in self.jobs.values() if j.tenant == tenant and j.status is Status.QUEUED
        )

    async def queue_depths(self) -> dict[Window, int]:
        depths: dict[Window, int] = {}
        for job in self.jobs.values():
            if job.status is Status.QUEUED:
                depths[job.window] = depths.get(job.window, 0) + 1
        return depths

    async def expire(self, now: float) -> int:
        changed = 0
        for job_id, (_, expires) in list(self._leases.items()):
            if expires < now:
                del self._leases[job_id]
                changed += 1
                job = self.jobs[job_id]
                if job.attempts >= self._max_attempts:
                    error = JobError("attempts_exhausted", "Claimed too many times.")
                    self.jobs[job_id] = replace(
                        job, status=Status.FAILED, error=error, completed_at=now
                    )
                else:
                    self.jobs[job_id] = replace(job, status=Status.QUEUED)
        return changed

    async def renew(self, claims: list[Claim], now: float) -> set[str]:
        held = set()
        for c in claims:
            if self._holds(c):
                self._leases[c.job.id] = (c.token, now + self._lease)
                held.add(c.job.id)
        return held

    async def finish(self, claim: Claim, result: Result, now: float) -> Job | None:
        if not self._holds(claim):
            return None
        del self._leases[claim.job.id]
        job = replace(
            self.jobs[claim.job.id],
            status=result.status,
            output=result.output,
            usage=result.usage,
            error=result.error,
            completed_at=now,
        )
        self.jobs[job.id] = job
        return job

    async def requeue(self, claim: Claim, pieces: list[str], tokens: int) -> bool:
        if not self._holds(claim):
            return False
        del self._leases[claim.job.id]
        job = self.jobs[claim.job.id]
        self.jobs[job.id] = replace(
            job,
            status=Status.QUEUED,
            attempts=job.attempts - 1,
            partial_text="".join(pieces),
            partial_tokens=tokens,
            partial_deltas=tuple(len(p) for p in pieces if p),
        )
        return True

    async def hold_engines(
        self, holder: str, engine_ids: list[str], until: float, now: float
    ) -> set[str]:
        held: set[str] = set()
        for e in engine_ids:
            owner = self.engine_leases.get(e)
            if owner is None or owner[0] == holder or owner[1] < now:
                self.engine_leases[e] = (holder, until)
                held.add(e)
        return held

    async def release(self, claims: list[Claim]) -> None:
        for c in claims:
            if self._holds(c):
                del self._leases[c.job.id]
                job = self.jobs[c.job.id]
                self.jobs[job.id] = replace(job, status=Status.QUEUED, attempts=job.attempts - 1)

    async def cancel(self, tenant: str, job_id: str, now: float) -> Job | None:
        job = await self.get(tenant, job_id)
        if job is None or job.status.is_final:
            return job
        self._leases.pop(job_id, None)
        self.jobs[job_id] = replace(job, status=Status.CANCELLED, completed_at=now)
        return self.jobs[job_id]

    async def delete(self, tenant: str, job_id: str) -> bool:
        if await self.get(tenant, job_id) is None:
            return False
        self._leases.pop(job_id, None)
        del self.jobs[job_id]
        return True

    async def append_deltas(self, pieces: Sequence[tuple[Claim, int, Sequence[str]]]) -> set[str]:
        stored = set()
        for claim, seq, texts in pieces:
            job = self.jobs.get(claim.job.id)
            if job is None or job.status is not Status.IN_PROGRESS or not self._holds(claim):
                continue
            held = self.job_deltas.setdefault(job.id, {})
            for i, text in enumerate(texts):
                held.setdefault(seq + i, text)
            stored.add(job.id)
        self.delta_writes += bool(stored)
        return stored

    async def deltas(self, after: Mapping[str, int]) -> dict[str, JobDeltas]:
        found = {}
        for job_id, first in after.items():
            if (job := self.jobs.get(job_id)) is not None:
                held = self.job_deltas.get(job_id, {}) if job.status is Status.IN_PROGRESS else {}
                found[job_id] = JobDeltas(
                    job.status, sorted((s, t) for s, t in held.items() if s >= first)
                )
        return found

    async def add_key(self, key_hash: str, tenant: str, now: float) -> None:
        self.keys[key_hash] = tenant

    async def tenant_for_key(self, key_hash: str) -> str | None:
        return self.keys.get(key_hash)

    async def count_keys(self) -> int:
        return len(self.keys)

    async def close(self) -> None:
        return None

    def _holds(self, claim: Claim) -> bool:
        lease = self._leases.get(claim.job.id)
        return lease is not None and lease[0] == claim.token
