"""The webhook outbox (``leeway.webhooks.outbox.Outbox``) on the PostgreSQL store.

As on SQLite, the completion webhooks of jobs and batches are written by triggers
(``005_webhooks.sql``, ``006_batch_webhooks.sql``) in the transaction that makes their subject
final. Senders in many processes lease due deliveries with ``SKIP LOCKED``: none is sent twice at
once.
"""

from __future__ import annotations

from leeway.store.postgres_pool import Pools
from leeway.store.rows import attempt_row, delivery_row, row_attempt, row_delivery
from leeway.webhooks.outbox import Attempt, Delivery, DeliveryLog, DeliveryStatus
from leeway.webhooks.signing import new_secret


class PostgresOutbox:
    def __init__(self, db: Pools) -> None:
        self._db = db

    async def enqueue(self, delivery: Delivery) -> None:
        await self._db.execute("insert_delivery", delivery_row(delivery))

    async def due(self, now: float, limit: int, lease: float) -> list[Delivery]:
        params = {"now": now, "limit": limit, "until": now + lease}
        rows = await self._db.fetch("lease_deliveries", params)
        return sorted((row_delivery(r) for r in rows), key=lambda d: d.created_at)

    async def record(
        self,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float | None = None,
    ) -> None:
        params = attempt_row(delivery_id, attempt, status, next_attempt_at)
        async with self._db.transaction() as tx:
            await tx.fetch("lock_delivery", params)
            await tx.execute("insert_attempt", params)
            await tx.execute("record_delivery", params)

    async def deliveries(
        self, tenant: str, limit: int, subject_id: str | None = None
    ) -> list[DeliveryLog]:
        params = {"tenant": tenant, "limit": limit, "subject_id": subject_id}
        found = [row_delivery(r) for r in await self._db.fetch("list_deliveries", params)]
        attempts: dict[str, list[Attempt]] = {}
        for row in await self._db.fetch("list_attempts", {"ids": [d.id for d in found]}):
            attempts.setdefault(row["delivery_id"], []).append(row_attempt(row))
        return [DeliveryLog(d, tuple(attempts.get(d.id, ()))) for d in found]

    async def secrets(self, tenant: str, now: float) -> list[str]:
        params = {"tenant": tenant, "now": now}
        if found := [r[0] for r in await self._db.fetch("active_secrets", params)]:
            return found
        async with self._db.transaction() as tx:
            await tx.fetch("lock_secrets", params)  # checked again under the lock
            if found := [r[0] for r in await tx.fetch("active_secrets", params)]:
                return found
            secret = new_secret()
            await tx.execute("insert_secret", {**params, "secret": secret})
        return [secret]

    async def rotate_secret(self, tenant: str, now: float, grace: float) -> str:
        secret = new_secret()
        async with self._db.transaction() as tx:
            await tx.fetch("lock_secrets", {"tenant": tenant})
            await tx.execute("retire_secrets", {"tenant": tenant, "retires_at": now + grace})
            await tx.execute("insert_secret", {"tenant": tenant, "secret": secret, "now": now})
        return secret

    async def prune(self, before: float) -> int:
        async with self._db.transaction() as tx:
            await tx.execute("prune_secrets", {"before": before})
            return await tx.execute("prune_deliveries", {"before": before})
