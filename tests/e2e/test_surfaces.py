"""Chat Completions (openai SDK) and Anthropic Messages (anthropic SDK) against a running server,
with and without streaming, on the real model."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
from openai import OpenAI

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer

COLORS = [{"role": "user", "content": "Name three colors."}]


@pytest.fixture(scope="module")
def client(server: LeewayServer) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)


@pytest.fixture(scope="module")
def claude(server: LeewayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=server.base_url.removesuffix("/v1"), api_key=server.key, max_retries=0
    )


def test_chat_completion_reports_the_truth_about_finishing(client: OpenAI):
    done = client.chat.completions.create(
        model=MODEL, messages=COLORS, max_tokens=60, temperature=0
    )
    assert done.object == "chat.completion" and done.id.startswith("chatcmpl-")
    choice = done.choices[0]
    assert choice.finish_reason == "stop" and "Red" in choice.message.content
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    capped = client.chat.completions.create(
        model=MODEL, messages=COLORS, temperature=0, max_completion_tokens=3
    )
    assert capped.choices[0].finish_reason == "length" and capped.usage.completion_tokens == 3
    assert done.choices[0].message.content.startswith(capped.choices[0].message.content)


def test_chat_stop_sequences_cut_before_the_stop(client: OpenAI):
    full = (
        client.chat.completions.create(model=MODEL, messages=COLORS, max_tokens=60, temperature=0)
        .choices[0]
        .message.content
    )
    assert "2." in full
    cut = client.chat.completions.create(
        model=MODEL, messages=COLORS, max_tokens=60, temperature=0, stop=["2."]
    )
    assert cut.choices[0].message.content == full[: full.index("2.")]
    assert cut.choices[0].finish_reason == "stop"


def test_chat_stream_yields_the_same_text_and_usage(client: OpenAI):
    whole = client.chat.completions.create(
        model=MODEL, messages=COLORS, max_tokens=60, temperature=0
    )
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=COLORS,
            max_tokens=60,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len([d for d in deltas if d]) > 3  # token by token, not one blob
    assert "".join(deltas) == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage


def test_chat_mistakes_are_400_naming_the_parameter(client: OpenAI):
    for extra, param in [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"tools": [{"type": "function", "function": {"name": "f g"}}]}, "tools[0].function.name"),
        ({"reasoning_effort": "high"}, "reasoning_effort"),
        ({"messages": []}, "messages"),
    ]:
        kwargs = {"model": MODEL, "messages": COLORS, **extra}
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(**kwargs)
        assert e.value.param == param, e.value.message


def test_a_chat_id_is_not_a_response(client: OpenAI):
    done = client.chat.completions.create(model=MODEL, messages=COLORS, max_tokens=2)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(done.id)


def test_messages_create_with_system_and_stop_reasons(claude: anthropic.Anthropic):
    m = claude.messages.create(
        model=MODEL,
        max_tokens=60,
        extra_body={"temperature": 0},
        system="Be brief.",
        messages=COLORS,
    )
    assert m.type == "message" and m.id.startswith("msg_") and m.role == "assistant"
    assert m.stop_reason == "end_turn" and m.content[0].type == "text" and m.content[0].text
    no_system = claude.messages.create(
        model=MODEL, max_tokens=60, extra_body={"temperature": 0}, messages=COLORS
    )
    assert m.usage.input_tokens != no_system.usage.input_tokens  # the system prompt was used
    capped = claude.messages.create(model=MODEL, max_tokens=2, messages=COLORS)
    assert capped.stop_reason == "max_tokens" and capped.usage.output_tokens == 2
    text = no_system.content[0].text
    assert "2." in text
    stopped = claude.messages.create(
        model=MODEL,
        max_tokens=60,
        extra_body={"temperature": 0},
        messages=COLORS,
        stop_sequences=["2."],
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "2."
    assert stopped.content[0].text == text[: text.index("2.")]


def test_messages_stream(claude: anthropic.Anthropic):
    whole = claude.messages.create(
        model=MODEL, max_tokens=60, extra_body={"temperature": 0}, messages=COLORS
    )
    with claude.messages.stream(
        model=MODEL, max_tokens=60, extra_body={"temperature": 0}, messages=COLORS
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 3 and "".join(pieces) == whole.content[0].text
    assert (
        final.stop_reason == "end_turn" and final.usage.output_tokens == whole.usage.output_tokens
    )


def test_messages_auth_by_either_header_and_errors_in_anthropic_shape(server: LeewayServer):
    base = server.base_url.removesuffix("/v1")
    bearer = anthropic.Anthropic(base_url=base, auth_token=server.key, max_retries=0)
    assert bearer.messages.create(model=MODEL, max_tokens=2, messages=COLORS).content
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=base, api_key="lw-wrong", max_retries=0).messages.create(
            model=MODEL, max_tokens=2, messages=COLORS
        )
    r = httpx.post(
        f"{base}/v1/messages",
        headers={"x-api-key": server.key},
        json={"model": MODEL, "messages": COLORS},
    )
    assert r.status_code == 400
    assert r.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "Missing required parameter: 'max_tokens'.",
        },
        "request_id": r.headers["request-id"],  # the same id as the header and the log line
    }
    with pytest.raises(anthropic.NotFoundError):
        bearer.messages.create(model="nope", max_tokens=2, messages=COLORS)
    with pytest.raises(anthropic.BadRequestError) as e:
        bearer.messages.create(model=MODEL, max_tokens=2, messages=COLORS, extra_body={"top_k": 5})
    assert "top_k" in e.value.message
