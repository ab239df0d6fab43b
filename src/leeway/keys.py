"""Tenants and their API keys: the vocabulary of running Leeway for several teams.

A tenant (OpenAI's *project*) owns jobs, batches, files and keys; ``[tenant_limits.<id>]`` names it.
A key acts for one tenant; an *admin* key may also use the admin routes (tenants, keys, usage of
every tenant). Keys are random, shown once, and stored only as SHA-256 hashes with their first
characters (to recognise them by). A key stops working when it expires, when it is revoked, or when
its tenant is archived.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

PREFIX = "lw-"
_SHOWN = 8  # characters of a key kept to recognise it by (the prefix and 5 random ones)


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    created_at: float
    archived_at: float | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    tenant: str
    name: str
    redacted: str  # the key's first characters, then "…"
    created_at: float
    admin: bool = False
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class Holder:
    """Who a key found by its hash acts for: the key, and whether its tenant is archived."""

    key: ApiKey
    tenant_archived: bool


@dataclass(frozen=True, slots=True)
class Issued:
    """A new key: its stored record, and the key itself (shown once, never stored)."""

    key: ApiKey
    value: str


def key_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def issue(
    tenant: str,
    now: float,
    *,
    name: str = "",
    admin: bool = False,
    expires_at: float | None = None,
) -> Issued:
    value = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id="key_" + secrets.token_hex(12),
        tenant=tenant,
        name=name,
        redacted=value[:_SHOWN] + "…",
        created_at=now,
        admin=admin,
        expires_at=expires_at,
    )
    return Issued(key, value)
