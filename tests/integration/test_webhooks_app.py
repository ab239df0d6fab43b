"""Completion webhooks through the whole app (fake engine, real SQLite, real HTTP to loopback
receivers that the config allow-lists): what each receiver's answers lead to, what is sent, and
what the tenant can see. Backoffs are configured sub-second, and no test asserts a timing except
lower bounds the sender cannot beat (a Retry-After)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from standardwebhooks import Webhook
from starlette.testclient import TestClient

from leeway import cli
from leeway.app import build_app
from leeway.catalog import ModelConfig
from leeway.settings import Settings, WebhookSettings
from tests.conftest import FAKE_MODEL, add_keys, fake_settings
from tests.receiver import Receiver, Reply, receiving

FAST = WebhookSettings(
    allow=(ipaddress.ip_network("127.0.0.0/8"),),
    timeout_seconds=1.0,
    backoff_base_seconds=0.05,
    backoff_max_seconds=0.2,
    retry_for_seconds=60.0,
    poll_seconds=0.02,
)


class App:
    def __init__(self, http: TestClient, settings: Settings, key: str, other: str) -> None:
        self.http, self.settings, self.key, self.other = http, settings, key, other

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def respond(self, metadata: dict[str, str], **body: Any) -> dict[str, Any]:
        r = self.http.post(
            "/v1/responses",
            json={
                "model": FAKE_MODEL,
                "input": "hi",
                "background": True,
                "metadata": metadata,
                **body,
            },
            headers=self.headers(),
        )
        assert r.status_code == 202, r.text
        return dict(r.json())

    def deliveries(self, job_id: str | None = None, key: str | None = None) -> list[dict[str, Any]]:
        params = {"job_id": job_id} if job_id else {}
        r = self.http.get("/v1/webhooks/deliveries", params=params, headers=self.headers(key))
        assert r.status_code == 200, r.text
        return list(r.json()["data"])

    def settled(self, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """The job's delivery once it is no longer pending."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.deliveries(job_id)
            if found and found[0]["status"] != "pending":
                return found[0]
            time.sleep(0.02)
        raise AssertionError(
            f"the delivery of {job_id} is still pending: {self.deliveries(job_id)}"
        )

    def secret(self, tenant: str, capsys: pytest.CaptureFixture[str]) -> str:
        cli.main(
            [
                "keys",
                "webhook-secret",
                "--tenant",
                tenant,
                "--data-dir",
                str(self.settings.data_dir),
            ]
        )
        return capsys.readouterr().out.strip()


def start(
    tmp_path: Path, hooks: WebhookSettings = FAST, **overrides: Any
) -> tuple[TestClient, Settings, list[str]]:
    settings = fake_settings(tmp_path, webhooks=hooks, **overrides)
    return TestClient(build_app(settings)), settings, add_keys(settings, "alpha", "beta")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    http, settings, (key, other) = start(tmp_path)
    with http:
        yield App(http, settings, key, other)


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


def test_a_completed_response_is_posted_signed_with_the_get_body_and_the_token(
    app: App, rx: Receiver, capsys: pytest.CaptureFixture[str]
):
    created = app.respond({"completion_webhook": rx.url("/done"), "webhook_token": "s3cr3t"})
    [got] = rx.wait_for("/done", 1)
    get = app.http.get(f"/v1/responses/{created['id']}", headers=app.headers())
    assert got.body == get.content  # byte for byte what GET returns
    assert orjson.loads(got.body)["status"] == "completed"
    assert got.headers["authorization"] == "Bearer s3cr3t"
    assert got.headers["content-type"] == "application/json"
    secret = app.secret("alpha", capsys)
    assert Webhook(secret).verify(got.body, got.headers)["id"] == created["id"]
    delivery = app.settled(created["id"])
    assert delivery["id"] == got.headers["webhook-id"] and delivery["status"] == "delivered"
    assert delivery["job_id"] == created["id"] and delivery["url"] == rx.url("/done")
    assert [a["status_code"] for a in delivery["attempts"]] == [200]
    assert "token" not in delivery and "s3cr3t" not in str(delivery)
    assert app.deliveries(key=app.other) == []  # another tenant sees none of it
    assert len(rx.to("/done")) == 1


def test_500_then_200_is_retried_with_the_same_id(app: App, rx: Receiver):
    rx.script["/flaky"] = [Reply(500), Reply(503), Reply(200)]
    created = app.respond({"completion_webhook": rx.url("/flaky")})
    got = rx.wait_for("/flaky", 3)
    assert len({r.headers["webhook-id"] for r in got}) == 1
    assert got[0].at <= got[1].at <= got[2].at
    delivery = app.settled(created["id"])
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 200]
    assert delivery["attempts"][0]["error"] == "answered 500 (retried)"
    time.sleep(0.3)  # several backoff periods: nothing more is sent
    assert len(rx.to("/flaky")) == 3


def test_429_is_retried_no_sooner_than_retry_after(app: App, rx: Receiver):
    rx.script["/busy"] = [Reply(429, {"Retry-After": "1"}), Reply(200)]
    created = app.respond({"completion_webhook": rx.url("/busy")})
    first, second = rx.wait_for("/busy", 2)
    assert second.at - first.at >= 0.9  # a lower bound: the sender may not retry sooner
    assert [a["status_code"] for a in app.settled(created["id"])["attempts"]] == [429, 200]


def test_410_stops_at_once(app: App, rx: Receiver):
    rx.script["/gone"] = [Reply(410), Reply(200)]
    created = app.respond({"completion_webhook": rx.url("/gone")})
    delivery = app.settled(created["id"])
    assert delivery["status"] == "failed" and len(delivery["attempts"]) == 1
    assert "410 Gone" in delivery["attempts"][0]["error"]
    time.sleep(0.3)
    assert len(rx.to("/gone")) == 1


def test_a_redirect_is_not_followed_and_fails(app: App, rx: Receiver):
    with receiving() as target:
        rx.script["/moved"] = [Reply(302, {"Location": target.url("/new")})]
        created = app.respond({"completion_webhook": rx.url("/moved")})
        delivery = app.settled(created["id"])
        time.sleep(0.3)
        assert target.connections == 0
    assert delivery["status"] == "failed" and len(rx.to("/moved")) == 1
    assert delivery["attempts"][0]["status_code"] == 302
    assert "not followed" in delivery["attempts"][0]["error"]


def test_a_receiver_slower_than_the_timeout_is_retried(app: App, rx: Receiver):
    # The "slow 35 s" receiver against the default 30 s timeout, scaled down: this one
    # takes 3 s against the configured 1 s, then answers at once.
    rx.script["/slow"] = [Reply(200, delay=3.0), Reply(200)]
    created = app.respond({"completion_webhook": rx.url("/slow")})
    delivery = app.settled(created["id"])
    assert delivery["status"] == "delivered" and len(delivery["attempts"]) == 2
    first, second = delivery["attempts"]
    assert first["status_code"] is None and first["error"] == "no answer within 1 s"
    assert second["status_code"] == 200


def test_a_cancelled_response_is_posted_as_cancelled(tmp_path: Path, rx: Receiver):
    slow = ModelConfig(
        FAKE_MODEL, engine="fake", parallel=4, context=256, fake_tokens=200, fake_delay=0.05
    )
    http, settings, (key, other) = start(tmp_path, models=(slow,))
    with http:
        app = App(http, settings, key, other)
        created = app.respond({"completion_webhook": rx.url("/c")})
        cancelled = http.post(f"/v1/responses/{created['id']}/cancel", headers=app.headers())
        assert cancelled.json()["status"] == "cancelled"
        [got] = rx.wait_for("/c", 1)
        assert orjson.loads(got.body)["status"] == "cancelled"
        assert got.body == http.get(f"/v1/responses/{created['id']}", headers=app.headers()).content


def test_chat_and_messages_post_what_their_create_returned(app: App, rx: Receiver):
    hook = {"completion_webhook": rx.url("/chat")}
    chat = app.http.post(
        "/v1/chat/completions",
        json={
            "model": FAKE_MODEL,
            "messages": [{"role": "user", "content": "hi"}],
            "metadata": hook,
        },
        headers=app.headers(),
    )
    [got] = rx.wait_for("/chat", 1)
    assert orjson.loads(got.body) == chat.json() and chat.json()["object"] == "chat.completion"
    message = app.http.post(
        "/v1/messages",
        json={
            "model": FAKE_MODEL,
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
            "metadata": {"completion_webhook": rx.url("/msg"), "webhook_token": "m"},
        },
        headers={"x-api-key": app.key},
    )
    [got] = rx.wait_for("/msg", 1)
    assert orjson.loads(got.body) == message.json() and message.json()["type"] == "message"
    assert got.headers["authorization"] == "Bearer m"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://10.0.0.1/", "private address"),
        ("http://[::ffff:10.0.0.1]/", "private address"),
        ("http://0x0a.1/", "numeric host form"),
        ("ftp://example.com/", "http:// or https://"),
        ("http://", "must name a host"),
    ],
)
def test_visibly_bad_urls_are_400_naming_the_field_on_every_surface(app: App, url: str, words: str):
    hook = {"completion_webhook": url}
    r = app.http.post(
        "/v1/responses",
        json={"model": FAKE_MODEL, "input": "hi", "background": True, "metadata": hook},
        headers=app.headers(),
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "metadata.completion_webhook" and words in error["message"]
    assert error["type"] == "invalid_request_error"
    chat = app.http.post(
        "/v1/chat/completions",
        json={
            "model": FAKE_MODEL,
            "messages": [{"role": "user", "content": "hi"}],
            "metadata": hook,
        },
        headers=app.headers(),
    )
    assert (
        chat.status_code == 400 and chat.json()["error"]["param"] == "metadata.completion_webhook"
    )
    message = app.http.post(
        "/v1/messages",
        json={
            "model": FAKE_MODEL,
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
            "metadata": hook,
        },
        headers=app.headers(),
    )
    assert message.status_code == 400
    assert message.json()["error"]["type"] == "invalid_request_error"
    assert "metadata.completion_webhook" in message.json()["error"]["message"]


def test_a_token_that_cannot_be_a_header_is_400(app: App, rx: Receiver):
    r = app.http.post(
        "/v1/responses",
        json={
            "model": FAKE_MODEL,
            "input": "hi",
            "metadata": {"completion_webhook": rx.url(), "webhook_token": "a b"},
        },
        headers=app.headers(),
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "metadata.webhook_token"


def test_loopback_is_refused_at_submission_without_the_allow_list(tmp_path: Path, rx: Receiver):
    http, settings, (key, other) = start(tmp_path, WebhookSettings(poll_seconds=0.02))
    with http:
        app = App(http, settings, key, other)
        r = http.post(
            "/v1/responses",
            json={"model": FAKE_MODEL, "input": "hi", "metadata": {"completion_webhook": rx.url()}},
            headers=app.headers(),
        )
        assert r.status_code == 400 and "loopback" in r.json()["error"]["message"]
        # a name is only resolved when sent: accepted now, refused then, never connected to
        created = app.respond({"completion_webhook": f"http://localhost:{rx.port}/hook"})
        delivery = app.settled(created["id"])
    assert delivery["status"] == "failed" and len(delivery["attempts"]) == 1
    assert delivery["attempts"][0]["status_code"] is None
    assert (
        "refused" in delivery["attempts"][0]["error"]
        and "loopback" in delivery["attempts"][0]["error"]
    )
    assert rx.connections == 0


def test_the_deliveries_list_filters_and_limits(app: App, rx: Receiver):
    ids = [app.respond({"completion_webhook": rx.url(f"/{n}")})["id"] for n in range(3)]
    for job_id in ids:
        app.settled(job_id)
    assert {d["job_id"] for d in app.deliveries()} == set(ids)
    [only] = app.deliveries(ids[1])
    assert only["job_id"] == ids[1] and only["url"] == rx.url("/1")
    r = app.http.get("/v1/webhooks/deliveries?limit=1", headers=app.headers())
    assert len(r.json()["data"]) == 1
    for bad in ("0", "101", "x"):
        r = app.http.get(f"/v1/webhooks/deliveries?limit={bad}", headers=app.headers())
        assert r.status_code == 400 and r.json()["error"]["param"] == "limit"
    assert app.http.get("/v1/webhooks/deliveries").status_code == 401


def test_a_response_deleted_before_delivery_is_not_sent(tmp_path: Path, rx: Receiver):
    # The receiver is down (nothing listens on its port) for the first attempt; the response is
    # deleted before the retry, which then has nothing to send.
    hooks = WebhookSettings(
        allow=FAST.allow, backoff_base_seconds=1.0, backoff_max_seconds=1.0, poll_seconds=0.02
    )
    http, settings, (key, other) = start(tmp_path, hooks)
    with http:
        app = App(http, settings, key, other)
        rx.stop()
        created = app.respond({"completion_webhook": rx.url("/d")})
        for _ in range(500):
            if (found := app.deliveries(created["id"])) and found[0]["attempts"]:
                break
            time.sleep(0.02)
        assert (
            http.delete(f"/v1/responses/{created['id']}", headers=app.headers()).status_code == 200
        )
        delivery = app.settled(created["id"])
    assert delivery["status"] == "failed"
    assert (
        "deleted" in delivery["attempts"][-1]["error"]
        and delivery["attempts"][-1]["status_code"] is None
    )


def test_the_cli_rotates_and_both_secrets_verify_during_the_grace_period(
    app: App, rx: Receiver, capsys: pytest.CaptureFixture[str]
):
    old = app.secret("alpha", capsys)
    data_dir = str(app.settings.data_dir)
    cli.main(["keys", "webhook-secret", "--tenant", "alpha", "--rotate", "--data-dir", data_dir])
    new = capsys.readouterr().out.strip()
    assert new != old and new.startswith("whsec_") and app.secret("alpha", capsys) == new
    app.respond({"completion_webhook": rx.url("/rot")})
    [got] = rx.wait_for("/rot", 1)
    assert got.headers["webhook-signature"].count("v1,") == 2
    Webhook(old).verify(got.body, got.headers)
    Webhook(new).verify(got.body, got.headers)
