"""Signatures verify with the standardwebhooks library, including with the old secret while a
rotation is in its grace period, and not after it."""

from __future__ import annotations

import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from leeway.webhooks.fake import FakeOutbox
from leeway.webhooks.signing import headers, new_secret, signature

BODY = b'{"id":"resp_1","object":"response","status":"completed","text":"caf\xc3\xa9"}'


def test_a_new_secret_is_whsec_base64_and_usable():
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret) > 40
    Webhook(secret)  # parses


def test_headers_verify_with_the_library():
    secret, now = new_secret(), int(time.time())
    sent = headers([secret], "whmsg_1", now, BODY, "tok-123")
    assert Webhook(secret).verify(BODY, sent)["status"] == "completed"
    assert sent["authorization"] == "Bearer tok-123"
    assert sent["webhook-id"] == "whmsg_1" and sent["webhook-timestamp"] == str(now)
    assert sent["content-type"] == "application/json"
    assert "authorization" not in headers([secret], "whmsg_1", now, BODY, None)


def test_a_tampered_body_or_another_secret_fails():
    secret, now = new_secret(), int(time.time())
    sent = headers([secret], "whmsg_1", now, BODY, None)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"completed", b"failed"), sent)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, sent)
    with pytest.raises(WebhookVerificationError):  # the id is signed too
        Webhook(secret).verify(BODY, {**sent, "webhook-id": "whmsg_2"})


def test_two_secrets_give_two_signatures_each_verifying():
    old, new, now = new_secret(), new_secret(), int(time.time())
    header = signature([new, old], "whmsg_1", now, BODY)
    assert header.count("v1,") == 2 and len(header.split(" ")) == 2
    sent = {"webhook-id": "whmsg_1", "webhook-timestamp": str(now), "webhook-signature": header}
    Webhook(new).verify(BODY, sent)
    Webhook(old).verify(BODY, sent)


async def test_rotation_keeps_the_old_secret_for_the_grace_period():
    outbox, now = FakeOutbox(), 1_000.0
    [first] = await outbox.secrets("t", now)
    assert await outbox.secrets("t", now + 5) == [first]  # created once
    second = await outbox.rotate_secret("t", now + 10, grace=100)
    assert await outbox.secrets("t", now + 20) == [second, first]
    assert await outbox.secrets("t", now + 111) == [second]
    assert await outbox.secrets("other", now) != [second]
