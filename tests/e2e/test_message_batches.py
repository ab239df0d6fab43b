"""Anthropic's Message Batches through the official `anthropic` SDK (`client.messages.batches`):
create, retrieve, list, cancel, delete, results; the batch machinery's promises (all or nothing,
Idempotency-Key, tenants, limits, expiry, webhooks) hold for them too. The fake engine: what is
checked is the API, not the tokens."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest
from openai import OpenAI

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer
from tests.receiver import receiving


def claude_for(server: LeewayServer, key: str | None = None) -> anthropic.Anthropic:
    base = server.base_url.removesuffix("/v1")
    return anthropic.Anthropic(base_url=base, api_key=key or server.key, max_retries=0)


@pytest.fixture(scope="module")
def claude(fid: LeewayServer) -> anthropic.Anthropic:
    return claude_for(fid)


def requests(n: int, model: str = MODEL, **params: Any) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"q{i}",
            "params": {
                "model": model,
                "max_tokens": 4,
                "messages": [{"role": "user", "content": f"Say {i}."}],
                **params,
            },
        }
        for i in range(n)
    ]


def ended(claude: anthropic.Anthropic, batch_id: str) -> Any:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        batch = claude.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        time.sleep(0.1)
    raise AssertionError(f"{batch_id} never ended")


def test_a_message_batch_runs_and_its_results_come_back(claude: anthropic.Anthropic):
    made = claude.messages.batches.create(requests=requests(5))
    assert made.type == "message_batch" and made.id.startswith("msgbatch_")
    assert made.processing_status == "in_progress" and made.results_url is None
    assert made.request_counts.processing == 5 and made.request_counts.succeeded == 0
    assert made.expires_at > made.created_at and made.ended_at is None

    done = ended(claude, made.id)
    counts = done.request_counts
    assert (counts.processing, counts.succeeded, counts.errored) == (0, 5, 0)
    assert (counts.canceled, counts.expired) == (0, 0)
    assert done.ended_at is not None and done.ended_at >= done.created_at
    assert done.results_url is not None
    assert done.results_url.endswith(f"/v1/messages/batches/{made.id}/results")

    results = {r.custom_id: r.result for r in claude.messages.batches.results(made.id)}
    assert sorted(results) == [f"q{i}" for i in range(5)]
    for result in results.values():
        assert result.type == "succeeded"
        message = result.message
        assert message.type == "message" and message.role == "assistant"
        assert message.content[0].type == "text" and message.content[0].text.startswith("fake")
        assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 4
        assert message.usage.service_tier == "batch"

    assert made.id in [b.id for b in claude.messages.batches.list(limit=100)]
    assert claude.messages.batches.delete(made.id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.batches.retrieve(made.id)
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.batches.delete(made.id)


def test_cancelling_a_batch_cancels_what_has_not_run(claude: anthropic.Anthropic):
    made = claude.messages.batches.create(requests=requests(6, model="slow-model"))
    with pytest.raises(anthropic.BadRequestError) as e:  # not ended: cancel it first
        claude.messages.batches.delete(made.id)
    assert "cancel" in e.value.message
    cancelling = claude.messages.batches.cancel(made.id)
    assert cancelling.processing_status in ("canceling", "ended")
    assert cancelling.cancel_initiated_at is not None
    done = ended(claude, made.id)
    counts = done.request_counts
    assert counts.canceled >= 4 and counts.succeeded + counts.canceled == 6
    kinds = {r.custom_id: r.result.type for r in claude.messages.batches.results(made.id)}
    assert sorted(kinds.values()).count("canceled") == counts.canceled
    assert set(kinds.values()) <= {"succeeded", "canceled"} and len(kinds) == 6
    assert claude.messages.batches.delete(made.id).id == made.id


def test_results_before_the_batch_ended_are_refused(claude: anthropic.Anthropic, fid):
    made = claude.messages.batches.create(requests=requests(3, model="slow-model"))
    r = httpx.get(
        f"{fid.base_url}/messages/batches/{made.id}/results",
        headers={"x-api-key": fid.key, "anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert "not ended" in r.json()["error"]["message"]
    with pytest.raises(anthropic.AnthropicError):  # the SDK knows there is no results_url yet
        list(claude.messages.batches.results(made.id))
    claude.messages.batches.cancel(made.id)


def test_an_invalid_request_refuses_the_whole_batch(claude: anthropic.Anthropic):
    before = {b.id for b in claude.messages.batches.list(limit=1000)}
    bad = requests(3)
    del bad[1]["params"]["max_tokens"]
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.batches.create(requests=bad)
    assert "requests[1]" in e.value.message and "max_tokens" in e.value.message
    assert e.value.body["type"] == "error"  # type: ignore[index]
    assert e.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]

    named = requests(2)
    named[0]["custom_id"] = "has spaces"
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.batches.create(requests=named)
    assert "custom_id" in e.value.message and "requests[0]" in e.value.message

    streamed = requests(1, stream=True)
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.batches.create(requests=streamed)
    assert "stream" in e.value.message

    asap = requests(2)
    asap[1]["params"]["metadata"] = {"completion_window": "asap"}
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.batches.create(requests=asap)
    assert "'standard' or 'flex'" in e.value.message
    assert {b.id for b in claude.messages.batches.list(limit=1000)} == before  # nothing kept


def test_items_run_standard_unless_they_say_flex(claude: anthropic.Anthropic, fid: LeewayServer):
    items = requests(2)
    items[1]["params"]["metadata"] = {"completion_window": "flex"}
    made = claude.messages.batches.create(requests=items)
    ended(claude, made.id)
    windows = {
        r.custom_id: r.result.message.model_extra["completion_window"]  # type: ignore[union-attr]
        for r in claude.messages.batches.results(made.id)
    }
    assert windows == {"q0": "standard", "q1": "flex"}
    # each item is an ordinary job, read through the batch API by its custom_id
    auth = {"Authorization": f"Bearer {fid.key}"}
    q1 = httpx.get(f"{fid.base_url}/batches/{made.id}/q1", headers=auth).json()
    assert q1["type"] == "message" and q1["completion_window"] == "flex"
    # and the OpenAI SDK sees the batch as a Batch like any other
    openai_client = OpenAI(base_url=fid.base_url, api_key=fid.key, max_retries=0)
    batch = openai_client.batches.retrieve(made.id)
    assert batch.endpoint == "/v1/messages" and batch.completion_window == "standard"
    assert batch.status in ("finalizing", "completed") and batch.request_counts.completed == 2


def test_idempotency_key_replays_the_batch(claude: anthropic.Anthropic):
    key = {"Idempotency-Key": "msgbatch-1"}
    first = claude.messages.batches.with_raw_response.create(
        requests=requests(2), extra_headers=key
    )
    again = claude.messages.batches.with_raw_response.create(
        requests=requests(2), extra_headers=key
    )
    assert again.parse().id == first.parse().id
    assert again.headers["idempotent-replayed"] == "true"
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.batches.create(requests=requests(3), extra_headers=key)
    assert "Idempotency-Key" in e.value.message


def test_tenants_see_only_their_batches(claude: anthropic.Anthropic, fid: LeewayServer):
    made = claude.messages.batches.create(requests=requests(1))
    other = claude_for(fid, fid.new_key("other-team"))
    for call in (
        other.messages.batches.retrieve,
        other.messages.batches.cancel,
        other.messages.batches.delete,
    ):
        with pytest.raises(anthropic.NotFoundError):
            call(made.id)
    assert made.id not in [b.id for b in other.messages.batches.list()]


def test_a_batch_over_the_tenants_limit_is_429(fid: LeewayServer):
    small = claude_for(fid, fid.new_key("small"))
    with pytest.raises(anthropic.RateLimitError) as e:
        small.messages.batches.create(requests=requests(6))
    assert "max_queued" in e.value.message
    assert e.value.response.headers["retry-after"]
    assert small.messages.batches.list().data == []


def test_list_pages_newest_first(fid: LeewayServer):
    tenant = claude_for(fid, fid.new_key("pager"))
    made = [tenant.messages.batches.create(requests=requests(1)).id for _ in range(3)]
    page = tenant.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == made[::-1][:2] and page.has_more
    assert page.first_id == made[2] and page.last_id == made[1]
    assert [b.id for b in tenant.messages.batches.list(limit=2)] == made[::-1]  # auto-paging
    older = tenant.messages.batches.list(after_id=made[1])
    assert [b.id for b in older.data] == [made[0]] and not older.has_more
    newer = tenant.messages.batches.list(before_id=made[0], limit=1)
    assert [b.id for b in newer.data] == [made[1]] and newer.has_more
    # OpenAI- and reference-shaped batches are not Message Batches
    auth = {"Authorization": f"Bearer {tenant.api_key}"}
    body = {
        "endpoint": "/v1/responses",
        "requests": [{"custom_id": "a", "params": {"model": MODEL, "input": "hi"}}],
    }
    reference = httpx.post(f"{fid.base_url}/batches", headers=auth, json=body).json()["id"]
    assert reference not in [b.id for b in tenant.messages.batches.list()]
    with pytest.raises(anthropic.NotFoundError):
        tenant.messages.batches.retrieve(reference)


EXPIRING = f"""
poll_seconds = 0.2
batch_expiry_seconds = 1.5
[webhooks]
allow = ["127.0.0.0/8"]
timeout_seconds = 1
poll_seconds = 0.05

[[models]]
id = "{MODEL}"
parallel = 1
fake_tokens = 4
fake_delay = 0.25
"""


def test_a_batch_not_ended_in_time_expires_and_its_webhook_says_so(tmp_path: Path):
    server = LeewayServer(tmp_path, EXPIRING, ("--engine", "fake")).start()
    try:
        with receiving() as rx:
            claude = claude_for(server)
            made = claude.messages.batches.create(
                requests=requests(8),
                extra_body={"metadata": {"completion_webhook": rx.url("/batch")}},
            )
            done = ended(claude, made.id)
            counts = done.request_counts
            assert 1 <= counts.succeeded < 8 and counts.expired == 8 - counts.succeeded
            assert counts.canceled == 0
            kinds = [r.result.type for r in claude.messages.batches.results(made.id)]
            assert kinds.count("expired") == counts.expired
            [got] = rx.wait_for("/batch", 1)
            hooked = orjson.loads(got.body)
            assert hooked["id"] == made.id and hooked["type"] == "message_batch"
            assert hooked["processing_status"] == "ended"
            assert hooked["request_counts"]["expired"] == counts.expired
    finally:
        server.stop()
