"""The Responses API through the official openai SDK against a running `leeway serve`."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest
from openai import AsyncOpenAI, DefaultAioHttpClient, OpenAI

from tests.e2e.conftest import ASAP_FLEX, MODEL
from tests.e2e.server import LeewayServer


@pytest.fixture(scope="module")
def client(server: LeewayServer) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)


def wait(client: OpenAI, response_id: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.responses.retrieve(response_id)
        if r.status not in ("queued", "in_progress"):
            return r
        time.sleep(0.2)
    raise AssertionError(f"{response_id} did not finish in {timeout}s")


def test_models_list_the_default_model_with_its_windows(client: OpenAI):
    models = {m.id: m for m in client.models.list().data}
    assert models[MODEL].model_extra["completion_windows"] == [
        "asap",
        "priority",
        "standard",
        "flex",
    ]
    assert models[ASAP_FLEX].model_extra["completion_windows"] == ["asap", "flex"]


def test_background_request_is_accepted_at_once_and_polled_to_completion(client: OpenAI):
    raw = client.responses.with_raw_response.create(
        model=MODEL,
        input="Name three colors.",
        max_output_tokens=32,
        background=True,
        metadata={"completion_window": "priority"},
    )
    assert raw.status_code == 202
    created = raw.parse()
    assert created.status == "queued" and created.id.startswith("resp_") and created.background
    done = wait(client, created.id)
    assert done.status == "completed" and done.id == created.id
    assert done.output_text.strip()  # real text from the real model
    assert done.usage.input_tokens > 10 and 0 < done.usage.output_tokens <= 32
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens
    assert done.metadata == {"completion_window": "priority"}
    assert done.model_extra["completion_window"] == "priority"


def test_blocking_request_returns_the_generated_result(client: OpenAI):
    r = client.responses.create(
        model=MODEL,
        instructions="Answer in one word.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Capital of France?"}]}],
        max_output_tokens=16,
        temperature=0.2,
        top_p=0.9,
    )
    assert r.status == "completed" and r.output_text.strip()
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.temperature == 0.2 and r.top_p == 0.9 and r.instructions == "Answer in one word."
    assert client.responses.retrieve(r.id).output_text == r.output_text


def test_the_output_cap_is_honoured_and_reported(client: OpenAI):
    r = client.responses.create(
        model=MODEL, input="Write a long story about a dragon.", max_output_tokens=5
    )
    assert r.usage.output_tokens == 5
    assert r.incomplete_details.reason == "max_output_tokens"


async def test_async_client_with_aiohttp_fans_out_background_requests(server: LeewayServer):
    async with AsyncOpenAI(
        base_url=server.base_url, api_key=server.key, http_client=DefaultAioHttpClient()
    ) as client:
        created = await asyncio.gather(
            *(
                client.responses.create(
                    model=MODEL,
                    input=f"Tell me about the number {i}.",
                    max_output_tokens=16,
                    background=True,
                )
                for i in range(12)
            )
        )
        assert {r.status for r in created} == {"queued"}
        pending = {r.id for r in created}
        for _ in range(600):
            for rid in list(pending):
                r = await client.responses.retrieve(rid)
                if r.status == "completed":
                    assert r.output_text and r.usage.output_tokens <= 16
                    pending.discard(rid)
            if not pending:
                break
            await asyncio.sleep(0.2)
        assert not pending


def test_window_rules(client: OpenAI):
    def window(**kw) -> str:
        r = client.responses.create(
            model=kw.pop("model", MODEL), input="Hi", max_output_tokens=2, **kw
        )
        return r.model_extra["completion_window"]

    assert window() == "standard"
    assert window(background=True) == "standard"
    assert window(metadata={"completion_window": "asap"}) == "asap"
    assert window(metadata={"completion_window": "15m"}) == "priority"
    assert window(background=True, metadata={"completion_window": "24h"}) == "flex"
    assert window(model=ASAP_FLEX) == "asap"
    assert window(model=ASAP_FLEX, background=True) == "flex"
    with pytest.raises(openai.BadRequestError) as e:
        window(metadata={"completion_window": "flex"})
    assert "background" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        window(model=ASAP_FLEX, metadata={"completion_window": "priority"})
    assert "'asap', 'flex'" in e.value.message
    assert e.value.body["type"] == "invalid_request_error"


def test_a_wrong_or_missing_key_is_401(server: LeewayServer):
    bad = OpenAI(base_url=server.base_url, api_key="lw-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    r = httpx.get(f"{server.base_url}/models")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_unknown_model_is_404(client: OpenAI):
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model="gpt-nope", input="Hi")
    assert e.value.body["code"] == "model_not_found"


def test_another_tenants_response_is_404(server: LeewayServer, client: OpenAI):
    mine = client.responses.create(model=MODEL, input="Hi", max_output_tokens=2, background=True)
    other = OpenAI(base_url=server.base_url, api_key=server.new_key("other-team"), max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    theirs = other.responses.create(model=MODEL, input="Hi", max_output_tokens=2)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(theirs.id)
    assert other.responses.retrieve(theirs.id).id == theirs.id


def test_client_mistakes_are_400_naming_the_parameter(client: OpenAI):
    cases = [
        ({"tools": [{"type": "function", "name": "f", "parameters": {}}]}, "tools[0].parameters"),
        ({"reasoning": {"effort": "low"}}, "reasoning"),
        ({"store": False}, "store"),
        ({"temperature": 3}, "temperature"),
        ({"extra_body": {"frobnicate": True}}, "frobnicate"),
    ]
    for extra, param in cases:
        with pytest.raises(openai.BadRequestError) as e:
            client.responses.create(model=MODEL, input="Hi", **extra)
        assert e.value.param == param, (param, e.value.message)
        assert param in e.value.message


def test_raw_http_mistakes(server: LeewayServer):
    headers = {"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"}
    url = f"{server.base_url}/responses"
    r = httpx.post(url, content=b'{"model": ', headers=headers)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = httpx.post(url, json={"model": MODEL, "input": "x" * 2_000_000}, headers=headers)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = httpx.post(url, json={"model": ASAP_FLEX, "input": "word " * 800}, headers=headers)
    assert r.status_code == 400
    assert "at most 511 tokens" in r.json()["error"]["message"]
