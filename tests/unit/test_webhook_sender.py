"""The sender on a fake outbox and a scripted poster: what each answer leads to, and the bounds."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from standardwebhooks import Webhook

from leeway.settings import WebhookSettings
from leeway.webhooks.fake import FakeOutbox
from leeway.webhooks.guard import Refused
from leeway.webhooks.http import Answer, Unreachable
from leeway.webhooks.outbox import JOB, Delivery, DeliveryStatus
from leeway.webhooks.sender import Sender

URL = "https://hooks.example.com/done"
T0 = float(int(time.time()))  # signatures are checked against the real time: reset per test


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test running minutes after this module was imported still signs with a fresh time
    (standardwebhooks refuses timestamps over 5 minutes old)."""
    monkeypatch.setattr(sys.modules[__name__], "T0", float(int(time.time())))


CONFIG = WebhookSettings(backoff_base_seconds=10, backoff_max_seconds=100, retry_for_seconds=1000)


@dataclass
class Poster:
    """Answers from a script (an Answer, or an exception to raise); records what was posted."""

    script: list[Answer | Exception] = field(default_factory=list)
    posted: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    gate: asyncio.Event | None = None  # when set: each post waits for it
    closed: bool = False

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        self.posted.append((url, body, dict(headers)))
        if self.gate is not None:
            await self.gate.wait()
        reply = self.script.pop(0) if self.script else Answer(200, {})
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self, now: float | None = None) -> None:
        self.now = T0 if now is None else now

    def __call__(self) -> float:
        return self.now


def delivery(n: int = 1, **overrides: object) -> Delivery:
    fields: dict[str, object] = {
        "id": f"whmsg_{n}",
        "tenant": "t1",
        "subject_kind": JOB,
        "subject_id": f"resp_{n}",
        "url": URL,
        "token": "tok",
        "created_at": T0,
        "next_attempt_at": T0,
    }
    fields.update(overrides)
    return Delivery(**fields)  # type: ignore[arg-type]


async def render(tenant: str, job_id: str) -> bytes | None:
    return None if job_id == "resp_gone" else f'{{"id":"{job_id}"}}'.encode()


def sender(
    outbox: FakeOutbox, poster: Poster, clock: Clock, config: WebhookSettings = CONFIG
) -> Sender:
    return Sender(outbox, {JOB: render}, poster, config, clock=clock, rand=lambda: 0.0)


async def send_due(s: Sender, outbox: FakeOutbox) -> Delivery | None:
    """Attempt the one due delivery, if any; the delivery as stored afterwards."""
    due = await outbox.due(s._clock(), 10, 40)
    for d in due:
        await s.attempt(d)
    return outbox.rows[due[0].id] if due else None


async def test_a_2xx_is_delivered_once_signed_with_the_body_and_token():
    outbox, poster, clock = FakeOutbox(), Poster([Answer(204, {})]), Clock()
    await outbox.enqueue(delivery())
    s = sender(outbox, poster, clock)
    done = await send_due(s, outbox)
    assert done is not None and done.status is DeliveryStatus.DELIVERED and done.attempts == 1
    [(url, body, headers)] = poster.posted
    assert url == URL and body == b'{"id":"resp_1"}'
    assert headers["authorization"] == "Bearer tok" and headers["webhook-id"] == "whmsg_1"
    [secret] = await outbox.secrets("t1", clock.now)
    assert Webhook(secret).verify(body, headers) == {"id": "resp_1"}
    assert [a.status_code for a in outbox.attempts["whmsg_1"]] == [204]
    assert await outbox.due(clock.now + 10_000, 10, 40) == []


async def test_a_5xx_is_retried_after_the_backoff_with_the_same_id():
    outbox, clock = FakeOutbox(), Clock()
    poster = Poster([Answer(500, {}), Answer(502, {}), Answer(200, {})])
    await outbox.enqueue(delivery())
    s = sender(outbox, poster, clock)
    first = await send_due(s, outbox)
    assert first is not None and first.status is DeliveryStatus.PENDING
    assert first.next_attempt_at == clock.now + 5  # base 10, jitter 0: half of it
    assert await send_due(s, outbox) is None  # not due yet
    clock.now = first.next_attempt_at
    second = await send_due(s, outbox)
    assert second is not None and second.next_attempt_at == clock.now + 10  # doubled
    clock.now = second.next_attempt_at
    third = await send_due(s, outbox)
    assert third is not None and third.status is DeliveryStatus.DELIVERED
    assert {h["webhook-id"] for _, _, h in poster.posted} == {"whmsg_1"}
    assert [a.status_code for a in outbox.attempts["whmsg_1"]] == [500, 502, 200]
    assert outbox.attempts["whmsg_1"][0].error == "answered 500 (retried)"


async def test_429_waits_as_long_as_retry_after_says():
    outbox, clock = FakeOutbox(), Clock()
    poster = Poster([Answer(429, {"retry-after": "37"})])
    await outbox.enqueue(delivery())
    done = await send_due(sender(outbox, poster, clock), outbox)
    assert done is not None and done.next_attempt_at == clock.now + 37


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (Answer(410, {}), "410 Gone"),
        (Answer(404, {}), "404 (not retried)"),
        (
            Answer(302, {"location": "http://10.0.0.1/"}),
            "redirect to http://10.0.0.1/ not followed",
        ),
        (Refused("hooks.example.com resolves to a refused address"), "refused"),
    ],
)
async def test_final_answers_fail_after_one_attempt(reply: Answer | Exception, words: str):
    outbox, clock = FakeOutbox(), Clock()
    await outbox.enqueue(delivery())
    done = await send_due(sender(outbox, Poster([reply]), clock), outbox)
    assert done is not None and done.status is DeliveryStatus.FAILED and done.attempts == 1
    assert done.last_error is not None and words in done.last_error
    assert await outbox.due(clock.now + 10_000, 10, 40) == []


async def test_network_errors_are_retried_until_the_retry_period_ends():
    outbox, clock = FakeOutbox(), Clock()
    poster = Poster([Unreachable("no answer within 30 s")] * 100)
    await outbox.enqueue(delivery())
    s = sender(outbox, poster, clock)
    attempts = 0
    while (d := await send_due(s, outbox)) is not None:
        attempts += 1
        clock.now = max(clock.now, d.next_attempt_at)
    final = outbox.rows["whmsg_1"]
    assert final.status is DeliveryStatus.FAILED and final.attempts == attempts
    assert final.last_error is not None and "past retry_for_seconds" in final.last_error
    # attempts at 0, 5, 15, 35, 75, then every 50 s (half the cap of 100: jitter 0) up to 975
    assert attempts == 23
    assert [a.at - T0 for a in outbox.attempts["whmsg_1"]][:7] == [0, 5, 15, 35, 75, 125, 175]


async def test_a_deleted_subject_fails_without_a_post():
    outbox, poster, clock = FakeOutbox(), Poster(), Clock()
    await outbox.enqueue(delivery(subject_id="resp_gone"))
    done = await send_due(sender(outbox, poster, clock), outbox)
    assert done is not None and done.status is DeliveryStatus.FAILED
    assert "deleted" in (done.last_error or "") and poster.posted == []


async def test_a_prerendered_body_of_another_kind_is_sent_as_it_is():
    outbox, poster, clock = FakeOutbox(), Poster(), Clock()
    await outbox.enqueue(delivery(subject_kind="batch", subject_id="batch_1", body=b'{"b":1}'))
    done = await send_due(sender(outbox, poster, clock), outbox)
    assert done is not None and done.status is DeliveryStatus.DELIVERED
    assert poster.posted[0][1] == b'{"b":1}'


async def test_no_more_than_concurrency_attempts_are_in_flight():
    outbox, clock = FakeOutbox(), Clock()
    poster = Poster(gate=asyncio.Event())
    for n in range(5):
        await outbox.enqueue(delivery(n))
    s = sender(outbox, poster, clock, WebhookSettings(concurrency=2))
    assert await s.tick() == 2
    await asyncio.sleep(0)
    assert await s.tick() == 0 and len(poster.posted) == 2
    poster.gate.set()
    for _ in range(100):
        await asyncio.sleep(0)
        await s.tick()
    assert len(poster.posted) == 5
    assert all(d.status is DeliveryStatus.DELIVERED for d in outbox.rows.values())


async def test_stop_cancels_attempts_in_flight_and_their_leases_bring_them_back():
    outbox, clock = FakeOutbox(), Clock()
    poster = Poster(gate=asyncio.Event())
    await outbox.enqueue(delivery())
    s = sender(outbox, poster, clock, WebhookSettings(timeout_seconds=30))
    await s.start()
    for _ in range(100):
        if poster.posted:
            break
        await asyncio.sleep(0.01)
    await s.stop()
    assert poster.closed and outbox.attempts["whmsg_1"] == []
    assert outbox.rows["whmsg_1"].status is DeliveryStatus.PENDING
    assert await outbox.due(clock.now + 1, 10, 40) == []  # leased for the attempt
    assert await outbox.due(clock.now + 45, 10, 40) == []  # 1.5 × timeout + 1 s
    assert len(await outbox.due(clock.now + 47, 10, 40)) == 1  # then due again
