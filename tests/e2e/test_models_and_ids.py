"""Models in both SDKs' shapes (with their windows and prices), request ids on every response,
404 for every unknown route, and OpenAI's x-ratelimit-* headers for a tenant with limits."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import anthropic
import httpx
import openai
import pytest
from openai import OpenAI

from tests.e2e.conftest import ALIAS, MODEL, SLOW
from tests.e2e.server import LeewayServer

REQUEST_ID = re.compile(r"req_[0-9a-f]{32}")


@pytest.fixture(scope="module")
def client(fid: LeewayServer) -> OpenAI:
    return OpenAI(base_url=fid.base_url, api_key=fid.key, max_retries=0)


@pytest.fixture(scope="module")
def claude(fid: LeewayServer) -> anthropic.Anthropic:
    base = fid.base_url.removesuffix("/v1")
    return anthropic.Anthropic(base_url=base, api_key=fid.key, max_retries=0)


def test_openai_models_with_windows_and_prices(client: OpenAI):
    listed = {m.id: m for m in client.models.list()}
    assert set(listed) == {MODEL, SLOW}
    model = client.models.retrieve(MODEL)
    assert model.id == MODEL and model.object == "model" and model.owned_by == "leeway"
    assert model.model_dump() == listed[MODEL].model_dump()
    extra = model.model_extra or {}
    assert extra["prices"] == {
        "standard": {"input": 0.35, "output": 1.4},
        "flex": {"input": 0.2, "output": 0.8},
    }
    assert extra["completion_windows"] == ["asap", "priority", "standard", "flex"]
    assert client.models.retrieve(ALIAS).id == MODEL  # an alias finds its model
    assert (client.models.retrieve(SLOW).model_extra or {})["prices"] == {}
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("no/such-model")
    assert e.value.body["code"] == "model_not_found"  # type: ignore[index]


def test_anthropic_models_in_anthropics_shape(claude: anthropic.Anthropic):
    page = claude.models.list()
    assert [m.id for m in page.data] == [MODEL, SLOW] and page.has_more is False
    info = claude.models.retrieve(MODEL)
    assert info.type == "model" and info.display_name == "SmolLM2-135M-Instruct"
    assert info.created_at == datetime(1970, 1, 1, tzinfo=UTC)
    assert info.max_input_tokens == 2048 and info.lifecycle == "active"
    assert (info.model_extra or {})["prices"]["flex"] == {"input": 0.2, "output": 0.8}
    first = claude.models.list(limit=1)
    assert [m.id for m in first.data] == [MODEL] and first.has_more and first.last_id == MODEL
    assert [m.id for m in claude.models.list(limit=1)] == [MODEL, SLOW]  # pages with after_id
    assert [m.id for m in claude.models.list(before_id=SLOW).data] == [MODEL]
    with pytest.raises(anthropic.NotFoundError) as e:
        claude.models.retrieve("no-such-model")
    assert e.value.body["type"] == "error"  # type: ignore[index]


def test_every_response_carries_its_request_id(
    client: OpenAI, claude: anthropic.Anthropic, fid: LeewayServer
):
    raw = client.responses.with_raw_response.create(model=MODEL, input="hi")
    rid = raw.headers["x-request-id"]
    assert REQUEST_ID.fullmatch(rid) and raw.headers["request-id"] == rid
    assert raw.parse()._request_id == rid  # what the SDK reads
    message = claude.messages.with_raw_response.create(
        model=MODEL, max_tokens=4, messages=[{"role": "user", "content": "hi"}]
    )
    assert REQUEST_ID.fullmatch(message.headers["request-id"])
    assert message.headers["request-id"] != rid  # one id per request

    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=MODEL, input="hi", temperature=9)
    assert REQUEST_ID.fullmatch(e.value.request_id or "")
    assert e.value.body["request_id"] == e.value.request_id  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as e2:
        claude.messages.create(model=MODEL, max_tokens=0, messages=[])
    assert e2.value.request_id and e2.value.body["request_id"] == e2.value.request_id  # type: ignore[index]
    streamed = httpx.post(
        f"{fid.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {fid.key}"},
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True},
    )
    assert REQUEST_ID.fullmatch(streamed.headers["x-request-id"])
    ids = [rid, e.value.request_id, e2.value.request_id, streamed.headers["x-request-id"]]
    assert all(ids)
    # the server's line for each request (written once the response is sent, so it may trail the
    # client's read by a moment: wait for it, up to 10 s)
    deadline = time.monotonic() + 10
    while not all(seen in (log := fid.log.read_text()) for seen in ids if seen):
        if time.monotonic() > deadline:
            raise AssertionError(f"not in the server's log: {[i for i in ids if i not in log]}")
        time.sleep(0.1)


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/responses/compact"),
        ("PUT", "/chat/completions"),
        ("DELETE", "/batches"),
        ("GET", "/messages"),
        ("PATCH", "/models/x"),
    ],
)
def test_unknown_routes_are_404(fid: LeewayServer, method: str, path: str):
    r = httpx.request(method, fid.base_url + path, headers={"Authorization": f"Bearer {fid.key}"})
    assert r.status_code == 404
    body = r.json()
    if path.startswith("/messages"):
        assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    else:
        assert body["error"]["code"] == "not_found" and method in body["error"]["message"]


def test_x_ratelimit_headers_for_a_tenant_with_limits(fid: LeewayServer, client: OpenAI):
    limited = OpenAI(base_url=fid.base_url, api_key=fid.new_key("limited"), max_retries=0)
    raw = limited.responses.with_raw_response.create(model=MODEL, input="hi", background=True)
    headers = raw.headers
    assert headers["x-ratelimit-limit-requests"] == "50"
    assert int(headers["x-ratelimit-remaining-requests"]) in range(0, 50)
    assert re.fullmatch(r"\d+ms|[\d.]+s", headers["x-ratelimit-reset-requests"])
    assert headers["x-ratelimit-limit-queued"] == "4"
    assert 0 <= int(headers["x-ratelimit-remaining-queued"]) <= 3
    for _ in range(6):  # fill its queue (the slow model runs one at a time)
        try:
            limited.responses.create(model=SLOW, input="wait", background=True)
        except openai.RateLimitError as e:
            assert e.response.headers["x-ratelimit-remaining-queued"] == "0"
            assert e.response.headers["x-ratelimit-limit-requests"] == "50"
            break
    else:
        raise AssertionError("never over the tenant's max_queued")
    unlimited = client.responses.with_raw_response.create(model=MODEL, input="hi")
    assert not [h for h in unlimited.headers if h.startswith("x-ratelimit")]
