"""Structured outputs and tools against a running server on the real model, through the official SDKs:
``responses.parse`` / ``chat.completions.parse`` with Pydantic models, JSON schemas on every surface
(every output validated), a two-turn tool loop on every surface, tool choices, 400s, and a sentiment
batch of 200 items with an enum schema."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

import anthropic
import httpx
import jsonschema
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from pydantic import BaseModel, Field

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer


class City(BaseModel):
    name: Annotated[str, Field(max_length=40)]
    country: Annotated[str, Field(max_length=40)]
    population: int


class Weather(BaseModel):
    city: Annotated[str, Field(max_length=40)]
    unit: Annotated[str, Field(max_length=10)]


PROFILE = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 30},
        "age": {"type": "integer", "minimum": 0},
        "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 3},
        "mood": {"enum": ["happy", "sad", "calm"]},
        "email": {"type": ["string", "null"], "maxLength": 40},
    },
    "required": ["name", "age", "hobbies", "mood", "email"],
    "additionalProperties": False,
}
PEOPLE = [
    f"Invent a profile for {who}: name, age, hobbies, mood and email."
    for who in ("a baker", "a pilot", "a retired teacher", "a chess player")
]
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 40}},
    "required": ["city"],
    "additionalProperties": False,
}
ASK = "What's the weather in Paris?"
RESULT = "Sunny, 24°C"


@pytest.fixture(scope="module")
def client(server: LeewayServer) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)


@pytest.fixture(scope="module")
def claude(server: LeewayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=server.base_url.removesuffix("/v1"), api_key=server.key, max_retries=0
    )


def test_responses_parse_with_a_pydantic_model(client: OpenAI):
    for place in ("Paris", "Tokyo", "Lagos"):
        done = client.responses.parse(
            model=MODEL,
            input=f"Describe the city of {place}.",
            text_format=City,
            max_output_tokens=200,
            temperature=0,
        )
        assert done.status == "completed" and isinstance(done.output_parsed, City)
        assert done.text.format.type == "json_schema" and done.text.format.strict is True


def test_a_format_streams(client: OpenAI):
    with client.responses.stream(
        model=MODEL,
        input="Describe the city of Rome.",
        text_format=City,
        max_output_tokens=200,
        temperature=0,
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 3 and isinstance(final.output_parsed, City)
    assert City.model_validate_json("".join(deltas)) == final.output_parsed


def test_chat_completions_parse_with_a_pydantic_model(client: OpenAI):
    for place in ("Paris", "Tokyo", "Lagos"):
        done = client.chat.completions.parse(
            model=MODEL,
            messages=[{"role": "user", "content": f"Describe the city of {place}."}],
            response_format=City,
            max_completion_tokens=200,
            temperature=0,
        )
        assert isinstance(done.choices[0].message.parsed, City)


async def test_a_json_schema_on_every_surface_always_validates(server: LeewayServer):
    oai = AsyncOpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)
    ant = anthropic.AsyncAnthropic(
        base_url=server.base_url.removesuffix("/v1"), api_key=server.key, max_retries=0
    )
    fmt = {"type": "json_schema", "name": "profile", "schema": PROFILE, "strict": True}

    async def responses(prompt: str) -> str:
        done = await oai.responses.create(
            model=MODEL, input=prompt, text={"format": fmt}, max_output_tokens=300
        )
        return done.output_text

    async def chat(prompt: str) -> str:
        done = await oai.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": prompt}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "profile", "schema": PROFILE, "strict": True},
            },
            max_completion_tokens=300,
        )
        return done.choices[0].message.content or ""

    async def messages(prompt: str) -> str:
        done = await ant.messages.create(
            model=MODEL,
            max_tokens=300,
            messages=[{"role": "user", "content": prompt}],
            output_config={"format": {"type": "json_schema", "schema": PROFILE}},
        )
        return done.content[0].text

    try:
        texts = await asyncio.gather(
            *(surface(p) for surface in (responses, chat, messages) for p in PEOPLE)
        )
    finally:
        await oai.close()
        await ant.close()
    for text in texts:  # default temperature (1.0): sampled, and still every one validates
        jsonschema.validate(json.loads(text), PROFILE)


def test_a_tool_loop_on_responses(client: OpenAI):
    tools: Any = [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Get the current weather in a city",
            "parameters": WEATHER,
            "strict": True,
        }
    ]
    history: list[Any] = [{"role": "user", "content": ASK}]
    first = client.responses.create(
        model=MODEL, input=history, tools=tools, tool_choice="required", temperature=0
    )
    calls = [i for i in first.output if i.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    jsonschema.validate(json.loads(calls[0].arguments), WEATHER)
    history += [
        *first.output,
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": RESULT},
    ]
    final = client.responses.create(model=MODEL, input=history, tools=tools, temperature=0)
    assert [i.type for i in final.output] == ["message"] and "24" in final.output_text
    forced = client.responses.create(
        model=MODEL,
        input="Hello!",
        tools=tools,
        tool_choice={"type": "function", "name": "get_weather"},
        temperature=0,
    )
    assert [i.type for i in forced.output] == ["function_call"]
    never = client.responses.create(
        model=MODEL, input=ASK, tools=tools, tool_choice="none", max_output_tokens=40
    )
    assert [i.type for i in never.output] == ["message"]


def test_a_tool_loop_on_chat_completions(client: OpenAI):
    tool: Any = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city",
            "parameters": WEATHER,
        },
    }
    messages: list[Any] = [{"role": "user", "content": ASK}]
    first = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[tool], tool_choice="required", temperature=0
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    jsonschema.validate(json.loads(call.function.arguments), WEATHER)
    messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": RESULT}]
    final = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[tool], temperature=0
    )
    assert final.choices[0].finish_reason == "stop", final
    assert "24" in final.choices[0].message.content


def test_pydantic_tools_parse_on_chat_completions_streamed_or_not(client: OpenAI):
    tool = openai.pydantic_function_tool(Weather, name="get_weather", description="Current weather")
    done = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": ASK}],
        tools=[tool],
        tool_choice="required",
        temperature=0,
    )
    assert isinstance(done.choices[0].message.tool_calls[0].function.parsed_arguments, Weather)
    with client.chat.completions.stream(
        model=MODEL,
        messages=[{"role": "user", "content": ASK}],
        tools=[tool],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0,
    ) as stream:
        streamed = stream.get_final_completion()
    assert isinstance(streamed.choices[0].message.tool_calls[0].function.parsed_arguments, Weather)
    assert streamed.choices[0].finish_reason == "tool_calls"


def test_a_tool_loop_on_messages(claude: anthropic.Anthropic):
    tools: Any = [
        {
            "name": "get_weather",
            "description": "Get the current weather in a city",
            "input_schema": WEATHER,
        }
    ]
    messages: list[Any] = [{"role": "user", "content": ASK}]
    first = claude.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=messages,
        tools=tools,
        tool_choice={"type": "any"},
        extra_body={"temperature": 0},
    )
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    jsonschema.validate(use.input, WEATHER)
    messages += [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": RESULT}],
        },
    ]
    final = claude.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=messages,
        tools=tools,
        extra_body={"temperature": 0},
    )
    assert final.stop_reason == "end_turn" and "24" in final.content[0].text
    never = claude.messages.create(
        model=MODEL,
        max_tokens=40,
        messages=[{"role": "user", "content": ASK}],
        tools=tools,
        tool_choice={"type": "none"},
    )
    assert [b.type for b in never.content] == ["text"]


def test_invalid_schemas_and_tools_are_400_naming_the_field(
    client: OpenAI, claude: anthropic.Anthropic
):
    broken = {"type": "object", "properties": {"age": {"type": "integer2"}}}
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(
            model=MODEL,
            input="hi",
            text={"format": {"type": "json_schema", "name": "x", "schema": broken}},
        )
    assert e.value.param == "text.format.schema.properties.age.type"
    assert "'integer2' is not a JSON Schema type" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "function": {"name": "bad name", "parameters": WEATHER}}],
        )
    assert e.value.param == "tools[0].function.name"
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(
            model=MODEL,
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            tools=[
                {
                    "name": "f",
                    "input_schema": {"type": "object", "properties": {"a": {"oneOf": []}}},
                }
            ],
        )
    assert "tools[0].input_schema.properties.a.oneOf" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=MODEL, input="hi", reasoning={"effort": "high"})
    assert e.value.param == "reasoning" and MODEL in e.value.message


REVIEW = (
    "Classify the sentiment of this product review as positive, negative, or neutral.\n\n"
    "Review {i}: {text}"
)
TEXTS = [
    "I love it, works perfectly.",
    "Broke after two days. Terrible.",
    "It is a phone case. It fits.",
    "Best purchase this year!",
    "Would not buy again, very disappointed.",
]
SENTIMENT = {
    "type": "object",
    "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]}},
    "required": ["sentiment"],
    "additionalProperties": False,
}


def test_a_sentiment_batch_of_two_hundred_all_parse_and_are_in_the_enum(server: LeewayServer):
    fmt = {"type": "json_schema", "name": "sentiment", "schema": SENTIMENT, "strict": True}
    requests = [
        {
            "custom_id": f"review-{i}",
            "params": {
                "model": MODEL,
                "max_output_tokens": 24,
                "input": [{"role": "user", "content": REVIEW.format(i=i, text=TEXTS[i % 5])}],
                "text": {"format": fmt},
            },
        }
        for i in range(200)
    ]
    headers = {"Authorization": f"Bearer {server.key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        created = http.post("/batches", json={"endpoint": "/v1/responses", "requests": requests})
        assert created.status_code == 200, created.text
        batch_id = created.json()["id"]
        for _ in range(1200):
            status = http.get(f"/batches/{batch_id}").json()
            if status["status_counts"].get("COMPLETED", 0) == 200:
                break
            assert not status["status_counts"].get("FAILED"), status["status_counts"]
            time.sleep(0.5)
        else:
            raise AssertionError(f"the batch did not finish: {status['status_counts']}")
        results = [http.get(f"/batches/{batch_id}/review-{i}").json() for i in range(200)]
    texts = [r["output"][0]["content"][0]["text"] for r in results]
    scores = [json.loads(t)["sentiment"] for t in texts]
    assert len(scores) == 200 and set(scores) <= {"positive", "negative", "neutral"}
    for t in texts:
        jsonschema.validate(json.loads(t), SENTIMENT)
    assert all(r["text"]["format"] == fmt for r in results)
