"""Standard Webhooks signatures (``standardwebhooks``): ``v1,`` + base64 HMAC-SHA256 of
``id.timestamp.body`` under each of the tenant's active secrets, space-separated, newest first. While
a rotated-out secret is still in its grace period both sign, so a receiver verifying with either
accepts the delivery."""

from __future__ import annotations

import base64
import secrets as random
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

PREFIX = "whsec_"


def new_secret() -> str:
    """A ``whsec_`` secret: 32 random bytes, base64."""
    return PREFIX + base64.b64encode(random.token_bytes(32)).decode()


def signature(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: one ``v1,…`` per secret."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    text = body.decode()
    return " ".join(Webhook(s).sign(msg_id, when, text) for s in secrets)


def headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes, token: str | None
) -> dict[str, str]:
    """Every header a delivery carries."""
    out = {
        "content-type": "application/json",
        "user-agent": "Leeway-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secrets, msg_id, timestamp, body),
    }
    if token:
        out["authorization"] = f"Bearer {token}"
    return out
