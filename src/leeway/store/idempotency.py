"""Idempotency keys in the store: a key is reserved in the same transaction as what its request
makes (a job, a batch, a file); a key held already rolls that back and hands over its holder."""

from __future__ import annotations

from typing import Any

from leeway.errors import IdempotencyMismatch
from leeway.store.contract import IdempotencyKey
from leeway.store.driver import Queries


class KeyTaken(Exception):  # a signal inside a transaction, never seen outside the store
    def __init__(self, row: Any) -> None:
        super().__init__("idempotency key taken")
        self.row = row


async def reserve(
    q: Queries, tenant: str, key: IdempotencyKey, subject: str, now: float, holder: str
) -> None:
    """Take ``key`` for ``subject`` inside the caller's transaction, or raise ``KeyTaken`` with the
    row the ``holder`` query finds (a concurrent holder's key makes the insert wait for its commit
    on PostgreSQL, then insert nothing)."""
    params = {"tenant": tenant, "key": key.key}
    reservation = {**params, "fingerprint": key.fingerprint, "subject": subject, "now": now}
    if not await q.run("insert_idempotency_key", reservation):
        raise KeyTaken(await q.row(holder, params))


def check_holder(row: Any, idempotency: IdempotencyKey) -> Any:
    """The row an idempotency key made, if the request matches the one that made it."""
    if row["key_fingerprint"] != idempotency.fingerprint or row["id"] is None:
        raise IdempotencyMismatch(_MISMATCH.format(key=idempotency.key))
    return row


_MISMATCH = (
    "The Idempotency-Key '{key}' was already used with a different request (another body or "
    "another endpoint). Use a new key for a new request, or resend exactly the same request."
)
