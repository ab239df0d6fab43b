"""The ``Idempotency-Key`` header: read and checked at the edge, fingerprinted with the request.

A key is scoped to the tenant. The fingerprint is the SHA-256 of the route path and the raw body
bytes, so the same key sent to two endpoints, or with a different body, is a mismatch. The store
keeps the key in the same transaction as the job it creates; a request whose key is already held
is answered with that job (``Intake.held``, ``Taken.replayed``) instead of creating another.
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request

from leeway.errors import InvalidRequest
from leeway.store import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED = {"Idempotent-Replayed": "true"}
MAX_LENGTH = 255


def header(request: Request) -> str | None:
    """The key as sent, checked before the body is read; None when the header is absent."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key.strip():
        raise InvalidRequest(
            f"The {HEADER} header is empty; send 1 to {MAX_LENGTH} characters, or leave the header out.",
            param=HEADER,
        )
    if len(key) > MAX_LENGTH:
        raise InvalidRequest(
            f"The {HEADER} header is {len(key)} characters long; it may be at most {MAX_LENGTH}.",
            param=HEADER,
        )
    return key


def fingerprint(path: str, body: bytes) -> str:
    digest = hasher(path)
    digest.update(body)
    return digest.hexdigest()


def hasher(path: str) -> hashlib._Hash:
    """A fingerprint in the making, for a body hashed as it streams in: feed it the body."""
    digest = hashlib.sha256(path.encode())
    digest.update(b"\n")
    return digest


def from_request(request: Request, key: str | None, body: bytes) -> IdempotencyKey | None:
    return None if key is None else IdempotencyKey(key, fingerprint(request.url.path, body))
