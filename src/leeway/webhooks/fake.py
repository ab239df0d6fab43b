"""An in-memory Outbox for unit tests: the same contract as the SQLite one (leases, records)."""

from __future__ import annotations

from dataclasses import replace

from leeway.webhooks.outbox import Attempt, Delivery, DeliveryLog, DeliveryStatus
from leeway.webhooks.signing import new_secret


class FakeOutbox:
    def __init__(self) -> None:
        self.rows: dict[str, Delivery] = {}
        self.attempts: dict[str, list[Attempt]] = {}
        # tenant -> [(secret, created_at, retires_at or None)], oldest first
        self.keys: dict[str, list[tuple[str, float, float | None]]] = {}

    async def enqueue(self, delivery: Delivery) -> None:
        if delivery.id in self.rows:
            raise ValueError(f"duplicate delivery {delivery.id}")
        self.rows[delivery.id] = delivery
        self.attempts[delivery.id] = []

    async def due(self, now: float, limit: int, lease: float) -> list[Delivery]:
        ready = sorted(
            (
                d
                for d in self.rows.values()
                if d.status is DeliveryStatus.PENDING and d.next_attempt_at <= now
            ),
            key=lambda d: d.next_attempt_at,
        )[:limit]
        for d in ready:
            self.rows[d.id] = replace(d, next_attempt_at=now + lease)
        return [self.rows[d.id] for d in ready]

    async def record(
        self,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float | None = None,
    ) -> None:
        d = self.rows[delivery_id]
        self.attempts[delivery_id].append(attempt)
        if d.status is not DeliveryStatus.PENDING:
            return
        final = status is not DeliveryStatus.PENDING
        self.rows[delivery_id] = replace(
            d,
            status=status,
            attempts=d.attempts + 1,
            next_attempt_at=d.next_attempt_at if next_attempt_at is None else next_attempt_at,
            finished_at=attempt.at + attempt.duration if final else None,
            last_status_code=attempt.status_code,
            last_error=attempt.error,
        )

    async def deliveries(
        self, tenant: str, limit: int, subject_id: str | None = None
    ) -> list[DeliveryLog]:
        mine = [
            d
            for d in self.rows.values()
            if d.tenant == tenant and (subject_id is None or d.subject_id == subject_id)
        ]
        mine.sort(key=lambda d: d.created_at, reverse=True)
        return [DeliveryLog(d, tuple(self.attempts[d.id])) for d in mine[:limit]]

    async def secrets(self, tenant: str, now: float) -> list[str]:
        keys = self.keys.setdefault(tenant, [])
        active = [s for s, _, retires in keys if retires is None or retires > now]
        if not active:
            keys.append((new_secret(), now, None))
            return await self.secrets(tenant, now)
        return active[::-1]

    async def rotate_secret(self, tenant: str, now: float, grace: float) -> str:
        keys = self.keys.setdefault(tenant, [])
        keys[:] = [(s, c, now + grace if r is None else min(r, now + grace)) for s, c, r in keys]
        secret = new_secret()
        keys.append((secret, now, None))
        return secret

    async def prune(self, before: float) -> int:
        old = [
            i
            for i, d in self.rows.items()
            if d.status is not DeliveryStatus.PENDING
            and d.finished_at is not None
            and d.finished_at < before
        ]
        for i in old:
            del self.rows[i], self.attempts[i]
        return len(old)
