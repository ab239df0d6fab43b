"""Reasoning from an upstream engine, end to end: a `leeway serve` whose engine is the recording
stub streaming vLLM's ``reasoning_content`` deltas, driven by the official SDKs. Responses returns a
``reasoning`` item (its summary when asked), Chat ``reasoning_content``, Messages a ``thinking``
block; ``reasoning_tokens`` is counted. (A real vLLM run is checked elsewhere.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from openai import OpenAI

from tests.e2e.server import LeewayServer
from tests.integration.upstream_stub import Answer, Stub, reasoning_events

MODEL = "org/reasoner"


@pytest.fixture(scope="module")
def stub() -> Iterator[Stub]:
    """The stub on a loop of its own thread, for as long as the module runs."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    running = asyncio.run_coroutine_threadsafe(Stub().start(), loop).result()
    try:
        yield running
    finally:
        asyncio.run_coroutine_threadsafe(running.stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()


@pytest.fixture(scope="module")
def gateway(stub: Stub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LeewayServer]:
    config = f"""
poll_seconds = 0.2

[[models]]
id = "{MODEL}"
engine = "fake"
reasoning = true

[[engines]]
kind = "openai"
model = "{MODEL}"
url = "{stub.url}"
flavor = "vllm"
health_seconds = 1
"""
    server = LeewayServer(Path(tmp_path_factory.mktemp("reasoner")), config).start()
    try:
        yield server
    finally:
        server.stop()


def thinks(stub: Stub, n: int = 1) -> None:
    """The next ``n`` replies reason in three events, then answer in two."""
    events = reasoning_events(["The sum ", "is ", "four."], ["It is ", "4."], usage=(12, 7))
    stub.answers.extend(Answer(events=events) for _ in range(n))


def test_responses_returns_a_reasoning_item(gateway: LeewayServer, stub: Stub):
    client = OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    thinks(stub, 2)
    r = client.responses.create(model=MODEL, input="2+2?", reasoning={"effort": "low"})
    assert [i.type for i in r.output] == ["reasoning", "message"]
    item = r.output[0]
    assert item.type == "reasoning" and item.summary == []  # no summary asked for
    assert item.content is not None and item.content[0].text == "The sum is four."
    assert r.output_text == "It is 4."
    assert r.usage is not None and r.usage.output_tokens_details.reasoning_tokens == 3
    assert r.usage.output_tokens == 7 and r.usage.input_tokens == 12
    summarized = client.responses.create(
        model=MODEL, input="2+2?", reasoning={"effort": "low", "summary": "auto"}
    )
    item = summarized.output[0]
    assert item.type == "reasoning" and [s.text for s in item.summary] == ["The sum is four."]
    assert client.responses.retrieve(summarized.id).output[0].type == "reasoning"  # stored

    thinks(stub)
    with client.responses.stream(model=MODEL, input="2+2?") as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.reasoning_text.delta" in kinds and kinds[-1] == "response.completed"
    assert final.output[0].type == "reasoning" and final.output_text == "It is 4."


def test_chat_returns_reasoning_content(gateway: LeewayServer, stub: Stub):
    client = OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    thinks(stub, 2)
    done = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "2+2?"}]
    )
    message = done.choices[0].message
    assert message.content == "It is 4."
    assert (message.model_extra or {})["reasoning_content"] == "The sum is four."
    assert done.usage is not None and done.usage.completion_tokens_details is not None
    assert done.usage.completion_tokens_details.reasoning_tokens == 3
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "2+2?"}], stream=True
        )
    )
    thought = [
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") for c in chunks if c.choices
    ]
    assert "The sum is four." in thought
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "It is 4."


def test_messages_returns_a_thinking_block(gateway: LeewayServer, stub: Stub):
    base = gateway.base_url.removesuffix("/v1")
    claude = anthropic.Anthropic(base_url=base, api_key=gateway.key, max_retries=0)
    thinks(stub, 2)
    m = claude.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=[{"role": "user", "content": "2+2?"}],
        thinking={"type": "enabled", "budget_tokens": 32},
    )
    assert [b.type for b in m.content] == ["thinking", "text"]
    assert m.content[0].thinking == "The sum is four."  # type: ignore[union-attr]
    assert m.content[1].text == "It is 4."  # type: ignore[union-attr]
    with claude.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "2+2?"}]
    ) as stream:
        final = stream.get_final_message()
    kinds = sorted(b.type for b in final.content)
    assert kinds == ["text", "thinking"]
    assert next(b for b in final.content if b.type == "thinking").thinking == "The sum is four."  # type: ignore[union-attr]
