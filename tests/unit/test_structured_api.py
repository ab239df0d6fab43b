"""Output formats and tools on every surface, on the fake engine (which replies with the smallest
valid value, or a call of the first allowed tool, and answers a tool result with text)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import orjson
import pytest
from starlette.testclient import TestClient

from leeway.app import build_app
from leeway.catalog import ModelConfig
from tests.conftest import FAKE_MODEL, Client, add_keys, fake_settings

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2},
        "age": {"type": "integer", "minimum": 1, "maximum": 120},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1},
    },
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}


def post(c: Client, path: str, body: dict[str, Any], **headers: str):
    return c.http.post(path, json={"model": FAKE_MODEL, **body}, headers=c.headers())


def ok(r) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    return r.json()


def bad(r, param: str, words: str = "") -> None:
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and words in err["message"], err


def events(text: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(line[6:])
        for line in text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


# -- Responses ---------------------------------------------------------------------------------

JSON_SCHEMA = {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}
R_WEATHER = {"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": True}
R_SHELL = {"type": "custom", "name": "shell", "description": "Runs a shell command"}


def test_responses_json_schema_output_validates_and_is_echoed(client: Client):
    done = ok(post(client, "/v1/responses", {"input": "hi", "text": {"format": JSON_SCHEMA}}))
    text = done["output"][0]["content"][0]["text"]
    jsonschema.validate(json.loads(text), PERSON)
    assert done["text"] == {"format": JSON_SCHEMA}
    obj = ok(
        post(client, "/v1/responses", {"input": "hi", "text": {"format": {"type": "json_object"}}})
    )
    assert json.loads(obj["output"][0]["content"][0]["text"]) == {}


def test_responses_function_call_then_its_output_continues_the_conversation(client: Client):
    first = ok(
        post(
            client,
            "/v1/responses",
            {"input": "weather?", "tools": [R_WEATHER], "tool_choice": "required"},
        )
    )
    [call] = first["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert call["id"].startswith("fc_") and call["call_id"].startswith("call_")
    jsonschema.validate(json.loads(call["arguments"]), WEATHER)
    assert first["tool_choice"] == "required" and first["tools"] == [R_WEATHER]
    again = ok(client.http.get(f"/v1/responses/{first['id']}", headers=client.headers()))
    assert again["output"] == first["output"]  # call ids are stable
    history = [{"role": "user", "content": "weather?"}, call]
    result = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
    second = ok(post(client, "/v1/responses", {"input": [*history, result], "tools": [R_WEATHER]}))
    assert [i["type"] for i in second["output"]] == ["message"]
    chained = ok(
        post(
            client,
            "/v1/responses",
            {"previous_response_id": first["id"], "input": [result], "tools": [R_WEATHER]},
        )
    )
    assert [i["type"] for i in chained["output"]] == ["message"]


def test_responses_custom_tools_and_forced_choices(client: Client):
    tools = [R_WEATHER, R_SHELL]
    forced = ok(
        post(
            client,
            "/v1/responses",
            {"input": "ls", "tools": tools, "tool_choice": {"type": "custom", "name": "shell"}},
        )
    )
    [call] = forced["output"]
    assert call["type"] == "custom_tool_call" and call["name"] == "shell" and call["input"] == ""
    none = ok(post(client, "/v1/responses", {"input": "ls", "tools": tools, "tool_choice": "none"}))
    assert [i["type"] for i in none["output"]] == ["message"]
    out = {"type": "custom_tool_call_output", "call_id": call["call_id"], "output": "a.txt"}
    back = ok(post(client, "/v1/responses", {"input": [call, out], "tools": tools}))
    assert back["output"][0]["type"] == "message"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"tools": [R_WEATHER, R_WEATHER]}, "tools[1].name", "already named"),
        ({"tools": [{**R_WEATHER, "name": "get weather"}]}, "tools[0].name", "letters, digits"),
        (
            {"tools": [{**R_WEATHER, "parameters": {"type": "array"}}]},
            "tools[0].parameters",
            "object",
        ),
        (
            {
                "tools": [
                    {**R_WEATHER, "parameters": {**WEATHER, "properties": {"x": {"oneOf": []}}}}
                ]
            },
            "tools[0].parameters.properties.x.oneOf",
            "use anyOf",
        ),
        ({"tool_choice": "required"}, "tool_choice", "no tools"),
        (
            {"tools": [R_WEATHER], "tool_choice": {"type": "function", "name": "nope"}},
            "tool_choice",
            "'nope'",
        ),
        (
            {"tools": [R_WEATHER], "tool_choice": {"type": "custom", "name": "get_weather"}},
            "tool_choice",
            "",
        ),
        ({"tools": [{"type": "web_search"}]}, "tools[0]", ""),
        ({"tools": [{**R_SHELL, "format": {"type": "grammar"}}]}, "tools[0].format", "free-form"),
        (
            {
                "text": {
                    "format": {
                        "type": "json_schema",
                        "name": "x",
                        "schema": {"type": "integer", "minimum": 5},
                    }
                }
            },
            "text.format.schema.minimum",
            "",
        ),
        ({"reasoning": {"effort": "high"}}, "reasoning", "does not reason"),
    ],
)
def test_responses_invalid_tools_and_formats_are_400_naming_the_field(
    client: Client, body, param, words
):
    bad(post(client, "/v1/responses", {"input": "hi", **body}), param, words)


def test_responses_reasoning_none_is_accepted_on_any_model(client: Client):
    ok(post(client, "/v1/responses", {"input": "hi", "reasoning": {"effort": "none"}}))


def test_responses_stream_of_a_call(client: Client):
    r = post(
        client,
        "/v1/responses",
        {"input": "hi", "tools": [R_WEATHER], "tool_choice": "required", "stream": True},
    )
    got = events(r.text)
    kinds = [e["type"] for e in got]
    assert "response.output_text.delta" not in kinds and "response.content_part.added" not in kinds
    assert kinds[2:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = got[-1]["response"]["output"][0]
    assert got[3]["delta"] == final["arguments"] and got[5]["item"] == final
    text = post(
        client, "/v1/responses", {"input": "hi", "text": {"format": JSON_SCHEMA}, "stream": True}
    )
    deltas = "".join(
        e["delta"] for e in events(text.text) if e["type"] == "response.output_text.delta"
    )
    jsonschema.validate(json.loads(deltas), PERSON)


# -- Chat Completions -------------------------------------------------------------------------

C_WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}
USER = [{"role": "user", "content": "weather?"}]


def test_chat_response_formats(client: Client):
    fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON, "strict": True}}
    done = ok(post(client, "/v1/chat/completions", {"messages": USER, "response_format": fmt}))
    jsonschema.validate(json.loads(done["choices"][0]["message"]["content"]), PERSON)
    obj = ok(
        post(
            client,
            "/v1/chat/completions",
            {"messages": USER, "response_format": {"type": "json_object"}},
        )
    )
    assert obj["choices"][0]["message"]["content"] == "{}"


def test_chat_tool_calls_then_tool_messages(client: Client):
    first = ok(post(client, "/v1/chat/completions", {"messages": USER, "tools": [C_WEATHER]}))
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER)
    turn = [
        *USER,
        choice["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]
    second = ok(post(client, "/v1/chat/completions", {"messages": turn, "tools": [C_WEATHER]}))
    assert second["choices"][0]["finish_reason"] == "stop"
    assert second["choices"][0]["message"]["content"].startswith("fake")
    bad(
        post(
            client,
            "/v1/chat/completions",
            {"messages": [*turn[:2], {"role": "tool", "content": "x"}]},
        ),
        "messages[2].tool_call_id",
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "parameters": {"type": "object", "properties": {"a": {"type": "int"}}},
                        },
                    }
                ]
            },
            "tools[0].function.parameters.properties.a.type",
        ),
        (
            {"tools": [C_WEATHER], "tool_choice": {"type": "function", "function": {"name": "g"}}},
            "tool_choice",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "p", "schema": {"type": "string", "pattern": "x"}},
                }
            },
            "response_format.json_schema.schema.pattern",
        ),
        ({"reasoning_effort": "low"}, "reasoning_effort"),
        ({"functions": [{"name": "f"}]}, "functions"),
    ],
)
def test_chat_invalid_tools_and_formats_are_400_naming_the_field(client: Client, body, param):
    bad(post(client, "/v1/chat/completions", {"messages": USER, **body}), param)


def test_chat_stream_of_a_call(client: Client):
    r = post(
        client, "/v1/chat/completions", {"messages": USER, "tools": [C_WEATHER], "stream": True}
    )
    chunks = events(r.text)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert not any(d.get("content") for d in deltas)
    [calls] = [d["tool_calls"] for d in deltas if "tool_calls" in d]
    assert calls[0]["index"] == 0 and calls[0]["function"]["name"] == "get_weather"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


# -- Anthropic Messages -----------------------------------------------------------------------

A_WEATHER = {"name": "get_weather", "description": "Weather", "input_schema": WEATHER}


def test_messages_output_config_format(client: Client):
    body = {
        "max_tokens": 100,
        "messages": USER,
        "output_config": {"format": {"type": "json_schema", "schema": PERSON}},
    }
    done = ok(post(client, "/v1/messages", body))
    jsonschema.validate(json.loads(done["content"][0]["text"]), PERSON)


def test_messages_tool_use_then_tool_result(client: Client):
    body = {
        "max_tokens": 100,
        "messages": USER,
        "tools": [A_WEATHER],
        "tool_choice": {"type": "any"},
    }
    first = ok(post(client, "/v1/messages", body))
    assert first["stop_reason"] == "tool_use"
    [use] = first["content"]
    assert use["type"] == "tool_use" and use["id"].startswith("toolu_")
    jsonschema.validate(use["input"], WEATHER)
    result = {"type": "tool_result", "tool_use_id": use["id"], "content": "sunny"}
    turn = [
        *USER,
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": [result]},
    ]
    second = ok(
        post(client, "/v1/messages", {**body, "messages": turn, "tool_choice": {"type": "auto"}})
    )
    assert second["stop_reason"] == "end_turn" and second["content"][0]["type"] == "text"
    none = ok(post(client, "/v1/messages", {**body, "tool_choice": {"type": "none"}}))
    assert [b["type"] for b in none["content"]] == ["text"]


def test_messages_errors_are_anthropic_shaped_and_name_the_field(client: Client):
    bad_schema = {
        **A_WEATHER,
        "input_schema": {"type": "object", "properties": {"a": {"type": "int"}}},
    }
    r = post(client, "/v1/messages", {"max_tokens": 10, "messages": USER, "tools": [bad_schema]})
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("tools[0].input_schema.properties.a.type:")
    r = post(
        client,
        "/v1/messages",
        {
            "max_tokens": 10,
            "messages": USER,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
        },
    )
    assert r.status_code == 400 and "does not reason" in r.json()["error"]["message"]
    ok(
        post(
            client,
            "/v1/messages",
            {"max_tokens": 10, "messages": USER, "thinking": {"type": "disabled"}},
        )
    )


def test_messages_stream_of_a_tool_use(client: Client):
    body = {
        "max_tokens": 100,
        "messages": USER,
        "tools": [A_WEATHER],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "stream": True,
    }
    got = events(post(client, "/v1/messages", body).text)
    kinds = [e["type"] for e in got]
    assert kinds == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert got[2]["content_block"]["type"] == "tool_use" and got[2]["content_block"]["input"] == {}
    jsonschema.validate(json.loads(got[3]["delta"]["partial_json"]), WEATHER)
    assert got[5]["delta"]["stop_reason"] == "tool_use"


def test_a_model_that_reasons_takes_reasoning_on_every_surface(tmp_path):
    settings = fake_settings(
        tmp_path, models=(ModelConfig("thinker", engine="fake", reasoning=True),)
    )
    (key,) = add_keys(settings, "t")
    headers = {"Authorization": f"Bearer {key}"}
    bodies = [
        ("/v1/responses", {"input": "hi", "reasoning": {"effort": "high", "summary": "auto"}}),
        ("/v1/chat/completions", {"messages": USER, "reasoning_effort": "low"}),
        (
            "/v1/messages",
            {
                "max_tokens": 8,
                "messages": USER,
                "thinking": {"type": "enabled", "budget_tokens": 1024},
            },
        ),
    ]
    with TestClient(build_app(settings)) as http:
        for path, body in bodies:
            r = http.post(path, json={"model": "thinker", **body}, headers=headers)
            assert r.status_code == 200, r.text
        done = http.post(
            "/v1/responses", json={"model": "thinker", **bodies[0][1]}, headers=headers
        )
        assert done.json()["reasoning"] == {"effort": "high", "summary": "auto"}


def test_a_background_stream_of_a_call_replays_from_any_event(client: Client):
    body = {"input": "hi", "tools": [R_WEATHER], "tool_choice": "required"}
    live = events(post(client, "/v1/responses", {**body, "background": True, "stream": True}).text)
    rid = live[0]["response"]["id"]
    url = f"/v1/responses/{rid}?stream=true&starting_after=2"
    again = events(client.http.get(url, headers=client.headers()).text)
    assert [e["sequence_number"] for e in again] == [e["sequence_number"] for e in live[3:]]
    assert [e["type"] for e in again] == [e["type"] for e in live[3:]]
    assert again[-1]["response"]["output"] == live[-1]["response"]["output"]
