"""Tenants and API keys over a dialect driver: ``KeyStore`` (part of ``SqlStore``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leeway.keys import ApiKey, Holder, Tenant, key_hash
from leeway.store.driver import Driver, Queries

_TOUCH_EVERY = 60.0  # seconds: a key's last use is written at most this often


class KeysSql:
    _db: Driver

    async def add_tenant(self, tenant: Tenant) -> Tenant | None:
        params = {"id": tenant.id, "name": tenant.name, "now": tenant.created_at}
        return tenant if await self._db.run("insert_tenant", params) else None

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        row = await self._db.row("get_tenant", {"id": tenant_id})
        return _tenant(row) if row else None

    async def list_tenants(
        self, limit: int, after: str | None = None, include_archived: bool = False
    ) -> list[Tenant]:
        params = {"limit": limit, "after": after, "include_archived": include_archived}
        return [_tenant(r) for r in await self._db.rows("list_tenants", params)]

    async def rename_tenant(self, tenant_id: str, name: str) -> Tenant | None:
        row = await self._db.row("rename_tenant", {"id": tenant_id, "name": name})
        return _tenant(row) if row else None

    async def archive_tenant(self, tenant_id: str, now: float) -> Tenant | None:
        row = await self._db.row("archive_tenant", {"id": tenant_id, "now": now})
        return _tenant(row) if row else None

    async def add_key(self, key: ApiKey, value: str) -> None:
        params = {
            "id": key.id,
            "key_hash": key_hash(value),
            "tenant": key.tenant,
            "name": key.name,
            "redacted": key.redacted,
            "admin": key.admin,
            "created_at": key.created_at,
            "expires_at": key.expires_at,
        }

        async def insert(q: Queries) -> None:
            tenant = {"id": key.tenant, "name": key.tenant, "now": key.created_at}
            await q.run("insert_tenant", tenant)  # a key for a new tenant makes the tenant
            await q.run("insert_key", params)

        await self._db.transaction(insert)

    async def key_holder(self, digest: str) -> Holder | None:
        row = await self._db.row("key_holder", {"key_hash": digest})
        return Holder(_key(row), row["tenant_archived_at"] is not None) if row else None

    async def get_key(self, key_id: str) -> ApiKey | None:
        row = await self._db.row("get_key", {"id": key_id})
        return _key(row) if row else None

    async def list_keys(
        self,
        limit: int,
        *,
        tenant: str | None = None,
        admin: bool | None = None,
        include_revoked: bool = False,
        after: str | None = None,
    ) -> list[ApiKey]:
        params = {
            "limit": limit,
            "tenant": tenant,
            "admin": admin,
            "include_revoked": include_revoked,
            "after": after,
        }
        return [_key(r) for r in await self._db.rows("list_keys", params)]

    async def revoke_key(self, key_id: str, now: float) -> ApiKey | None:
        row = await self._db.row("revoke_key", {"id": key_id, "now": now})
        return _key(row) if row else None

    async def touch_keys(self, key_ids: Sequence[str], now: float) -> int:
        if not key_ids:
            return 0
        params = {"ids": list(key_ids), "now": now, "before": now - _TOUCH_EVERY}
        return await self._db.run("touch_keys", params)

    async def count_keys(self) -> int:
        row = await self._db.row("count_keys")
        return int(row[0]) if row else 0


def _tenant(row: Any) -> Tenant:
    return Tenant(row["id"], row["name"], row["created_at"], row["archived_at"])


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=row["id"],
        tenant=row["tenant"],
        name=row["name"],
        redacted=row["redacted"],
        created_at=row["created_at"],
        admin=bool(row["admin"]),
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )
