"""API keys: ``Authorization: Bearer <key>`` (or ``x-api-key``). A key acts for one tenant;
everything it creates belongs to that tenant. An admin key may also use the admin routes.

Keys are looked up by their SHA-256 and remembered for half a second at most, so a key revoked or
expired (or whose tenant is archived) through any process sharing the store is refused by every
process within a second. A key's last use is recorded off the request's path: remembered here and
written every few seconds (``KeyUse``), at most once a minute per key."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from leeway.errors import AuthenticationFailed, PermissionDenied
from leeway.keys import Holder, issue, key_hash
from leeway.periodic import Periodic
from leeway.store import KeyStore

REMEMBER_SECONDS = 0.5  # a key looked up is trusted this long without asking the store again
_CACHE_LIMIT = 10_000
_USE_EVERY = 60.0  # seconds: a key's last use is worth writing again after this long


async def create_key(keys: KeyStore, tenant: str, *, admin: bool = False) -> str:
    """A new key for ``tenant``; the plain key is returned once and never stored."""
    issued = issue(tenant, time.time(), admin=admin)
    await keys.add_key(issued.key, issued.value)
    return issued.value


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request comes from: its key's tenant, the key, and whether it is an admin key."""

    tenant: str
    key_id: str
    admin: bool = False


class Authenticator:
    def __init__(
        self,
        keys: KeyStore,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._keys, self._clock, self._wall = keys, clock, wall
        self._known: dict[str, tuple[float, Holder]] = {}  # key hash -> (looked up at, holder)
        self.used: dict[str, float] = {}  # key id -> when last used, not yet written
        self._written: dict[str, float] = {}  # key id -> when its use was last written

    async def tenant(self, request: Request) -> str:
        return (await self.caller(request)).tenant

    async def admin(self, request: Request) -> Caller:
        """The caller, who must hold an admin key (403 otherwise)."""
        caller = await self.caller(request)
        if not caller.admin:
            raise PermissionDenied(
                f"This route needs an admin key; the key {caller.key_id} acts only for its "
                f"project '{caller.tenant}'. Create one with `leeway keys create --admin`."
            )
        return caller

    async def caller(self, request: Request) -> Caller:
        holder, now = await self._holder(_presented(request)), self._wall()
        caller = admit(holder, now)
        if now - self._written.get(caller.key_id, 0.0) >= _USE_EVERY:
            self.used[caller.key_id] = now
        return caller

    async def _holder(self, presented: str) -> Holder:
        digest, now = key_hash(presented), self._clock()
        known = self._known.get(digest)
        if known is not None and now - known[0] < REMEMBER_SECONDS:
            return known[1]
        holder = await self._keys.key_holder(digest)
        if holder is None:
            self._known.pop(digest, None)
            raise AuthenticationFailed()
        if len(self._known) >= _CACHE_LIMIT:
            self._known = {d: k for d, k in self._known.items() if now - k[0] < REMEMBER_SECONDS}
        if len(self._known) < _CACHE_LIMIT:
            self._known[digest] = (now, holder)
        return holder

    async def write_use(self) -> int:
        """Record the keys used since the last call; how many were written."""
        used, self.used = self.used, {}
        if not used:
            return 0
        now = max(used.values())
        self._written.update(dict.fromkeys(used, now))
        return await self._keys.touch_keys(sorted(used), now)


def admit(holder: Holder, now: float) -> Caller:
    """The caller a key found in the store acts as, unless it is revoked, expired or (a tenant's
    key) its tenant archived (``AuthenticationFailed``, saying which)."""
    key = holder.key
    if key.revoked_at is not None:
        raise AuthenticationFailed(f"This API key ({key.id}) was revoked.")
    if key.expired(now):
        raise AuthenticationFailed(
            f"This API key ({key.id}) expired at {_iso(key.expires_at)}; ask for a new one."
        )
    if holder.tenant_archived and not key.admin:  # an admin key is the organization's
        raise AuthenticationFailed(
            f"This API key ({key.id}) belongs to project '{key.tenant}', which is archived."
        )
    return Caller(key.tenant, key.id, key.admin)


class KeyUse(Periodic):
    """Writes the keys' last uses every few seconds (and once more when stopping)."""

    def __init__(self, auth: Authenticator, every: float = 5.0) -> None:
        super().__init__("leeway-key-use", every)
        self._auth = auth

    async def tick(self) -> None:
        await self._auth.write_use()

    async def stop(self) -> None:
        await super().stop()
        await self._auth.write_use()


def _presented(request: Request) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        key = request.headers.get("x-api-key", "")  # what the anthropic SDK sends
    if not key.strip():
        raise AuthenticationFailed(
            "Missing API key. Pass a Leeway key as `Authorization: Bearer <key>` "
            "(or `x-api-key: <key>`)."
        )
    return key.strip()


def _iso(at: float | None) -> str:
    return dt.datetime.fromtimestamp(at or 0, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
