"""Token counting on the real model: ``client.responses.input_tokens.count`` and
``client.messages.count_tokens`` give exactly the input tokens a create with the same body is
billed (the model's own tokenizer and chat template, tools and instructions included)."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from openai import OpenAI

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


@pytest.fixture(scope="module")
def client(server: LeewayServer) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)


@pytest.fixture(scope="module")
def claude(server: LeewayServer) -> anthropic.Anthropic:
    base = server.base_url.removesuffix("/v1")
    return anthropic.Anthropic(base_url=base, api_key=server.key, max_retries=0)


@pytest.mark.parametrize(
    "body",
    [
        {"input": "Name three colors."},
        {"input": "Name three colors.", "instructions": "Answer in French."},
        {
            "input": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": "What is the weather in Paris?"},
            ],
            "tools": [{"type": "function", "name": "weather", "parameters": WEATHER}],
        },
    ],
    ids=["text", "instructions", "tools"],
)
def test_responses_input_tokens_are_what_a_create_bills(client: OpenAI, body: dict[str, Any]):
    counted = client.responses.input_tokens.count(model=MODEL, **body)
    assert counted.object == "response.input_tokens" and counted.input_tokens > 5
    made = client.responses.create(model=MODEL, max_output_tokens=2, **body)
    assert made.usage is not None and made.usage.input_tokens == counted.input_tokens


def test_a_continued_conversation_counts_its_history(client: OpenAI):
    first = client.responses.create(model=MODEL, input="Say hello.", max_output_tokens=8)
    alone = client.responses.input_tokens.count(model=MODEL, input="And goodbye?")
    counted = client.responses.input_tokens.count(
        model=MODEL, input="And goodbye?", previous_response_id=first.id
    )
    assert counted.input_tokens > alone.input_tokens
    made = client.responses.create(
        model=MODEL, input="And goodbye?", previous_response_id=first.id, max_output_tokens=2
    )
    assert made.usage is not None and made.usage.input_tokens == counted.input_tokens


def test_messages_count_tokens_is_what_a_create_bills(claude: anthropic.Anthropic):
    body: dict[str, Any] = {
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "What is the weather in Oslo?"}],
        "tools": [{"name": "weather", "description": "Weather now", "input_schema": WEATHER}],
    }
    counted = claude.messages.count_tokens(model=MODEL, **body)
    made = claude.messages.create(model=MODEL, max_tokens=2, **body)
    assert counted.input_tokens > 10 and made.usage.input_tokens == counted.input_tokens
    plain = claude.messages.count_tokens(model=MODEL, messages=body["messages"])
    assert plain.input_tokens < counted.input_tokens


def test_counting_errors_name_the_field(client: OpenAI, claude: anthropic.Anthropic):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.input_tokens.count(input="hi")
    assert e.value.body["param"] == "model"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as e2:
        client.responses.input_tokens.count(model="no-such-model", input="hi")
    assert e2.value.body["param"] == "model"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.input_tokens.count(
            model=MODEL, input="hi", extra_body={"max_output_tokens": 5}
        )
    assert e.value.body["param"] == "max_output_tokens"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as e3:
        claude.messages.count_tokens(model=MODEL, messages=[{"role": "robot", "content": "x"}])  # type: ignore[typeddict-item]
    assert "messages[0].role" in e3.value.message and e3.value.body["type"] == "error"  # type: ignore[index]
