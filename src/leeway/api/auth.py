"""API keys: ``Authorization: Bearer <key>``. Keys are random, stored only as SHA-256 hashes, and each
belongs to one tenant; everything a key creates belongs to that tenant."""

from __future__ import annotations

import hashlib
import secrets
import time

from starlette.requests import Request

from leeway.errors import AuthenticationFailed
from leeway.store import KeyStore

_CACHE_LIMIT = 10_000


def new_key() -> str:
    return "lw-" + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(keys: KeyStore, tenant: str) -> str:
    """A new key for ``tenant``; the plain key is returned once and never stored."""
    key = new_key()
    await keys.add_key(key_hash(key), tenant, time.time())
    return key


class Authenticator:
    """Maps a request's key to its tenant, remembering keys it has seen (keys are never changed)."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys
        self._known: dict[str, str] = {}

    async def tenant(self, request: Request) -> str:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            key = request.headers.get("x-api-key", "")  # what the anthropic SDK sends
        if not key.strip():
            raise AuthenticationFailed(
                "Missing API key. Pass a Leeway key as `Authorization: Bearer <key>` "
                "(or `x-api-key: <key>`)."
            )
        digest = key_hash(key.strip())
        if (tenant := self._known.get(digest)) is None:
            tenant = await self._keys.tenant_for_key(digest)
            if tenant is None:
                raise AuthenticationFailed()
            if len(self._known) < _CACHE_LIMIT:
                self._known[digest] = tenant
        return tenant
