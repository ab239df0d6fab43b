"""What the operator's side takes from the store (``leeway.store.SqlStore`` implements it all):
tenants and API keys (``KeyStore``), usage and spending (``UsageStore``, ``Spending`` for budgets),
and the web dashboard's sessions and views (``DashboardStore``). The jobs' and batches' views are
in ``leeway.store.contract``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from leeway.batches import Batch
from leeway.keys import ApiKey, Holder, Tenant
from leeway.usage import Total, UsageQuery, UsageRow


class KeyStore(Protocol):
    """Tenants and their API keys (``leeway.keys``)."""

    async def add_tenant(self, tenant: Tenant) -> Tenant | None:
        """Record a tenant; None if its id is taken."""

    async def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    async def list_tenants(
        self, limit: int, after: str | None = None, include_archived: bool = False
    ) -> list[Tenant]:
        """Oldest first, from just after the cursor tenant ``after``."""

    async def rename_tenant(self, tenant_id: str, name: str) -> Tenant | None: ...

    async def archive_tenant(self, tenant_id: str, now: float) -> Tenant | None:
        """Archive a tenant (its keys stop working); None if there is none."""

    async def add_key(self, key: ApiKey, value: str) -> None:
        """Record a key (its hash, never ``value``); its tenant is recorded too if new."""

    async def key_holder(self, digest: str) -> Holder | None:
        """The key whose SHA-256 is ``digest``, with its tenant's state; None if unknown."""

    async def get_key(self, key_id: str) -> ApiKey | None: ...

    async def list_keys(
        self,
        limit: int,
        *,
        tenant: str | None = None,
        admin: bool | None = None,
        include_revoked: bool = False,
        after: str | None = None,
    ) -> list[ApiKey]:
        """Oldest first, from just after the cursor key ``after``."""

    async def revoke_key(self, key_id: str, now: float) -> ApiKey | None:
        """Revoke a key (from now on every process refuses it); None if there is none."""

    async def touch_keys(self, key_ids: Sequence[str], now: float) -> int:
        """Record that these keys were used ``now``; a key's last use is written at most once a
        minute. How many were written."""

    async def count_keys(self) -> int: ...


class Spending(Protocol):
    async def spent(self, tenant: str, since: int) -> float:
        """What ``tenant`` was billed since ``since`` (a UTC day's start), in USD."""


class UsageStore(Spending, Protocol):
    """Usage and cost per bucket, from the roll-up the store keeps as jobs become final."""

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        """The buckets in the query's range that hold usage, per the groups it asks for, in
        order of bucket and group."""

    async def usage_totals(self) -> list[Total]:
        """Everything billed so far, per tenant, model and window."""


@dataclass(frozen=True, slots=True)
class Session:
    """A dashboard sign-in: the key it was made with (rechecked on every request), the token its
    forms post back, and its lifetime."""

    key_id: str
    csrf: str
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class WindowNow:
    """One window now: jobs queued and running, and of those that became final lately (completed,
    incomplete or failed) how many, how many by their deadline, and turn-time percentiles."""

    queued: int = 0
    running: int = 0
    finished: int = 0
    met: int = 0
    p50: float | None = None  # seconds; None: nothing finished
    p95: float | None = None

    @property
    def attainment(self) -> float | None:
        return self.met / self.finished if self.finished else None


class DashboardStore(Protocol):
    """What the web dashboard keeps (its sessions) and reads beyond the other views."""

    async def add_session(self, session: Session, token_hash: str) -> None:
        """Record a session under its token's hash (expired sessions are dropped first)."""

    async def session(self, token_hash: str, now: float) -> tuple[Session, Holder] | None:
        """The unexpired session with that token hash and its key's holder; None if none."""

    async def end_session(self, token_hash: str) -> None: ...

    async def windows_now(self, tenant: str | None, since: float) -> dict[str, WindowNow]:
        """Per window with any such job: queued and running now, and turn times of the jobs that
        became final since ``since`` (``tenant`` None: every tenant's)."""

    async def running_by_model(self) -> dict[str, int]:
        """Jobs running now per model, in every process on the store."""

    async def all_batches(self, limit: int, before: str | None = None) -> list[Batch]:
        """Every tenant's batches newest first, from just before the batch ``before``."""

    async def find_batch(self, batch_id: str) -> Batch | None:
        """A committed batch of any tenant."""
