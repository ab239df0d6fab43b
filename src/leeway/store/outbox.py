"""The webhook outbox (``leeway.webhooks.outbox.Outbox``) over a dialect driver (part of
``SqlStore``).

The completion webhooks of jobs and batches are not written here: triggers write each in the
transaction that makes its subject final (see the package's docstring). Senders in many processes
lease due deliveries; a delivery one sender leases is skipped by the others.
"""

from __future__ import annotations

from leeway.store.driver import Driver, Queries
from leeway.store.rows import attempt_row, delivery_row, row_attempt, row_delivery
from leeway.webhooks.outbox import Attempt, Delivery, DeliveryLog, DeliveryStatus
from leeway.webhooks.signing import new_secret


class OutboxSql:
    _db: Driver

    async def enqueue(self, delivery: Delivery) -> None:
        await self._db.run("insert_delivery", delivery_row(delivery))

    async def due(self, now: float, limit: int, lease: float) -> list[Delivery]:
        found = await self._db.rows("due_deliveries", {"now": now, "limit": limit})
        if not found:  # the usual case: nothing to write
            return []
        params = {"ids": [r[0] for r in found], "now": now, "until": now + lease}
        rows = await self._db.rows("lease_deliveries", params)
        return sorted((row_delivery(r) for r in rows), key=lambda d: d.created_at)

    async def record(
        self,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float | None = None,
    ) -> None:
        params = attempt_row(delivery_id, attempt, status, next_attempt_at)

        async def record(q: Queries) -> None:
            await q.rows("lock_delivery", params)
            await q.run("insert_attempt", params)
            await q.run("record_delivery", params)

        await self._db.transaction(record)

    async def deliveries(
        self, tenant: str, limit: int, subject_id: str | None = None
    ) -> list[DeliveryLog]:
        params = {"tenant": tenant, "limit": limit, "subject_id": subject_id}
        found = [row_delivery(r) for r in await self._db.rows("list_deliveries", params)]
        attempts: dict[str, list[Attempt]] = {}
        for row in await self._db.rows("list_attempts", {"ids": [d.id for d in found]}):
            attempts.setdefault(row["delivery_id"], []).append(row_attempt(row))
        return [DeliveryLog(d, tuple(attempts.get(d.id, ()))) for d in found]

    async def secrets(self, tenant: str, now: float) -> list[str]:
        params = {"tenant": tenant, "now": now}
        if found := [r[0] for r in await self._db.rows("active_secrets", params)]:
            return found
        secret = new_secret()

        async def first(q: Queries) -> list[str]:
            await q.rows("lock_secrets", params)  # two first deliveries must not make two secrets
            if found := [r[0] for r in await q.rows("active_secrets", params)]:
                return found
            await q.run("insert_secret", {**params, "secret": secret})
            return [secret]

        return await self._db.transaction(first)

    async def rotate_secret(self, tenant: str, now: float, grace: float) -> str:
        secret = new_secret()

        async def rotate(q: Queries) -> None:
            await q.rows("lock_secrets", {"tenant": tenant})
            await q.run("retire_secrets", {"tenant": tenant, "retires_at": now + grace})
            await q.run("insert_secret", {"tenant": tenant, "secret": secret, "now": now})

        await self._db.transaction(rotate)
        return secret

    async def prune(self, before: float) -> int:
        async def prune(q: Queries) -> int:
            await q.run("prune_secrets", {"before": before})
            return await q.run("prune_deliveries", {"before": before})

        return await self._db.transaction(prune)
