"""Usage and cost read from the roll-up (``usage_buckets``, kept by the ``jobs_usage_rolled_up``
trigger in the transaction that makes a job final): ``UsageStore`` (part of ``SqlStore``)."""

from __future__ import annotations

from typing import Any

from leeway.store.driver import Driver
from leeway.usage import DIMENSIONS, Total, UsageQuery, UsageRow


class UsageSql:
    _db: Driver

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        params: dict[str, Any] = {
            "width": query.width,
            "start": query.start,
            "end": query.end,
            "tenants": _list(query.tenants),
            "key_ids": _list(query.key_ids),
            "models": _list(query.models),
            "windows": _list(query.windows),
            "batch": query.batch,
            **{f"by_{d}": d in query.group_by for d in DIMENSIONS},
        }
        return [_row(r) for r in await self._db.rows("usage_buckets", params)]

    async def spent(self, tenant: str, since: int) -> float:
        row = await self._db.row("spent", {"tenant": tenant, "since": since})
        return float(row[0]) if row else 0.0

    async def usage_totals(self) -> list[Total]:
        return [
            Total(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]), float(r[6]))
            for r in await self._db.rows("usage_totals")
        ]


def _list(values: Any) -> list[str] | None:
    return None if values is None else list(values)


def _row(r: Any) -> UsageRow:
    return UsageRow(
        start=int(r["start"]),
        requests=int(r["requests"]),
        input_tokens=int(r["input_tokens"]),
        output_tokens=int(r["output_tokens"]),
        input_cost=float(r["input_cost"]),
        output_cost=float(r["output_cost"]),
        tenant=r["tenant"],
        key_id=r["key_id"],
        model=r["model"],
        completion_window=r["completion_window"],
        surface=r["surface"],
        batch=None if r["batch"] is None else bool(r["batch"]),
        batch_id=r["batch_id"],
    )
