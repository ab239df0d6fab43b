"""What the official SDKs offer beyond the reference's minimum, on the fake engine: Responses'
companions (input_items, echoes, the queued event), ``service_tier`` as a window, and the harmless
parameters accepted (and echoed where OpenAI echoes them)."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest
from openai import OpenAI

from tests.e2e.conftest import MODEL, SLOW
from tests.e2e.server import LeewayServer

WEATHER = {
    "type": "function",
    "name": "weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def client(fid: LeewayServer) -> OpenAI:
    return OpenAI(base_url=fid.base_url, api_key=fid.key, max_retries=0)


@pytest.fixture(scope="module")
def claude(fid: LeewayServer) -> anthropic.Anthropic:
    base = fid.base_url.removesuffix("/v1")
    return anthropic.Anthropic(base_url=base, api_key=fid.key, max_retries=0)


# -- Responses companions ---------------------------------------------------------------------


def test_input_items_list_a_conversation_and_page(client: OpenAI):
    first = client.responses.create(
        model=MODEL,
        instructions="Be brief.",  # not an item
        input=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    [call] = [i for i in first.output if i.type == "function_call"]
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert second.previous_response_id == first.id and first.previous_response_id is None

    items = client.responses.input_items.list(second.id, order="asc")
    kinds = [(i.type, getattr(i, "role", None)) for i in items.data]
    assert kinds == [("message", "user"), ("function_call", None), ("function_call_output", None)]
    assert items.data[0].content[0].text == "What is the weather in Paris?"  # type: ignore[union-attr]
    assert items.data[1].call_id == call.call_id and items.data[2].output == "sunny"  # type: ignore[union-attr]
    assert items.first_id == items.data[0].id and items.last_id == items.data[-1].id
    assert not items.has_more

    newest = client.responses.input_items.list(second.id)  # desc by default
    assert [i.id for i in newest.data] == [i.id for i in items.data][::-1]
    page = client.responses.input_items.list(second.id, order="asc", limit=2)
    assert [i.id for i in page.data] == [i.id for i in items.data[:2]] and page.has_more
    rest = client.responses.input_items.list(second.id, order="asc", after=page.data[-1].id)
    assert [i.id for i in rest.data] == [items.data[2].id]
    assert [i.id for i in client.responses.input_items.list(second.id, limit=1)] == [
        i.id for i in items.data[::-1]
    ]  # the SDK pages through them with `after`
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.input_items.list(second.id, limit=101)
    assert e.value.body["param"] == "limit"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list("resp_nope")


def test_a_background_stream_says_queued_then_in_progress_when_it_runs(client: OpenAI):
    blocker = client.responses.create(model=SLOW, input="first", background=True)
    events = []
    for event in client.responses.create(model=SLOW, input="second", background=True, stream=True):
        if event.type == "response.in_progress":  # one sequence at a time: the first is done
            assert client.responses.retrieve(blocker.id).status == "completed"
        events.append(event)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.queued"]
    assert events[0].response.status == "queued"  # type: ignore[union-attr]
    assert kinds.count("response.in_progress") == 1
    started = kinds.index("response.in_progress")
    assert started == 2 and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    # replayed from a point, the events are numbered as they were live
    replay = list(client.responses.retrieve(events[0].response.id, stream=True, starting_after=1))  # type: ignore[union-attr]
    assert [e.type for e in replay] == kinds[2:]
    # a response answered while you wait is in progress from the start, as before
    live = [e.type for e in client.responses.create(model=MODEL, input="hi", stream=True)]
    assert live[:2] == ["response.created", "response.in_progress"]
    assert "response.queued" not in live


def test_a_queued_background_stream_waits_in_queued(client: OpenAI, fid: LeewayServer):
    blocker = client.responses.create(model=SLOW, input="first", background=True)
    waiting = client.responses.create(model=SLOW, input="second", background=True)
    with httpx.stream(
        "GET",
        f"{fid.base_url}/responses/{waiting.id}",
        params={"stream": "true"},
        headers={"Authorization": f"Bearer {fid.key}"},
        timeout=30,
    ) as r:
        lines = r.iter_lines()
        seen = [line for line in lines if line.startswith("event:")][:3]
    assert seen == [
        "event: response.created",
        "event: response.queued",
        "event: response.in_progress",
    ]
    client.responses.cancel(blocker.id)


# -- service_tier is a window --------------------------------------------------------------------


def window(r: Any) -> str:
    return str(r.model_extra["completion_window"])


def test_service_tier_chooses_the_window_and_is_echoed(client: OpenAI):
    flex = client.responses.create(model=MODEL, input="hi", service_tier="flex", background=True)
    assert window(flex) == "flex" and flex.service_tier == "flex"
    fast = client.responses.create(model=MODEL, input="hi", service_tier="priority")
    assert window(fast) == "priority" and fast.service_tier == "priority"
    for tier in ("default", "auto"):
        plain = client.responses.create(model=MODEL, input="hi", service_tier=tier)  # type: ignore[arg-type]
        assert window(plain) == "standard" and plain.service_tier == "default"
    agree = client.responses.create(
        model=MODEL, input="hi", service_tier="priority", metadata={"completion_window": "15m"}
    )
    assert window(agree) == "priority"
    chat = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], service_tier="priority"
    )
    assert window(chat) == "priority" and chat.service_tier == "priority"
    plain_chat = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert plain_chat.service_tier == "default" and window(plain_chat) == "standard"


def test_service_tier_errors_name_the_fields(client: OpenAI, claude: anthropic.Anthropic):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(
            model=MODEL,
            input="hi",
            service_tier="flex",
            background=True,
            metadata={"completion_window": "priority"},
        )
    assert e.value.body["param"] == "service_tier"  # type: ignore[index]
    assert "service_tier" in e.value.message and "metadata.completion_window" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:  # flex needs background
        client.responses.create(model=MODEL, input="hi", service_tier="flex")
    assert e.value.body["param"] == "service_tier" and "background" in e.value.message  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], service_tier="flex"
        )
    assert e.value.body["param"] == "service_tier" and "Responses" in e.value.message  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=MODEL, input="hi", service_tier="scale")
    assert e.value.body["param"] == "service_tier"  # type: ignore[index]
    for tier in ("auto", "standard_only"):
        m = claude.messages.create(
            model=MODEL,
            max_tokens=4,
            messages=[{"role": "user", "content": "hi"}],
            service_tier=tier,  # type: ignore[arg-type]
        )
        assert m.usage.service_tier == "standard"
    with pytest.raises(anthropic.BadRequestError) as e2:
        claude.messages.create(
            model=MODEL,
            max_tokens=4,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"service_tier": "priority"},
        )
    assert "service_tier" in e2.value.message


# -- harmless parameters ---------------------------------------------------------------------


def test_responses_accepts_and_echoes_the_harmless_parameters(client: OpenAI):
    r = client.responses.create(
        model=MODEL,
        input="hi",
        prompt_cache_key="conversation-7",
        safety_identifier="user-42",
        include=["web_search_call.results", "message.input_image.image_url2"],
        text={"verbosity": "low"},
        top_logprobs=0,
        max_tool_calls=3,
        store=True,
    )
    assert r.status == "completed" and r.output_text.startswith("fake")
    assert r.prompt_cache_key == "conversation-7" and r.safety_identifier == "user-42"
    assert r.text is not None and r.text.verbosity == "low"
    assert r.text.format is not None and r.text.format.type == "text"
    assert r.top_logprobs == 0 and r.max_tool_calls == 3
    assert client.responses.retrieve(r.id).prompt_cache_key == "conversation-7"  # stored
    deltas = [
        e.type
        for e in client.responses.create(
            model=MODEL, input="hi", stream=True, stream_options={"include_obfuscation": False}
        )
    ]
    assert deltas[-1] == "response.completed"
    plain = client.responses.create(model=MODEL, input="hi")
    assert plain.prompt_cache_key is None and plain.max_tool_calls is None
    assert plain.text is not None and plain.text.verbosity is None


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"include": ["reasoning.encrypted_content"]}, "include[0]"),
        ({"include": ["file_search_call.results", "message.output_text.logprobs"]}, "include[0]"),
        ({"include": "reasoning.encrypted_content"}, "include"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"stream_options": {"include_obfuscation": True}}, "stream_options"),
        ({"text": {"verbosity": "loud"}}, "text.verbosity"),
        ({"max_tool_calls": -1}, "max_tool_calls"),
    ],
)
def test_what_the_reference_refuses_is_still_refused(client: OpenAI, extra: dict[str, Any], param):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=MODEL, input="hi", extra_body=extra)
    assert e.value.body["param"] == param  # type: ignore[index]


def test_max_tool_calls_is_enforced(client: OpenAI):
    ask = [{"role": "user", "content": "Weather in Rome?"}]
    called = client.responses.create(model=MODEL, input=ask, tools=[WEATHER])  # type: ignore[arg-type,list-item]
    assert [i.type for i in called.output] == ["function_call"]
    none = client.responses.create(model=MODEL, input=ask, tools=[WEATHER], max_tool_calls=0)  # type: ignore[arg-type,list-item]
    assert [i.type for i in none.output] == ["message"] and none.max_tool_calls == 0
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(
            model=MODEL,
            input=ask,
            tools=[WEATHER],
            tool_choice="required",
            max_tool_calls=0,  # type: ignore[arg-type,list-item]
        )
    assert e.value.body["param"] == "max_tool_calls"  # type: ignore[index]


def test_chat_accepts_the_harmless_parameters_and_the_function_role(client: OpenAI):
    done = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hi"}],
        prompt_cache_key="k1",
        safety_identifier="user-1",
        verbosity="high",
        top_logprobs=0,
        logprobs=False,
        store=True,
        stream_options=None,
    )
    assert done.choices[0].message.content and done.choices[0].message.content.startswith("fake")
    answered = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "Weather in Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "function", "name": "weather", "content": "sunny"},
        ],
        tools=[
            {
                "type": "function",
                "function": {"name": "weather", "parameters": WEATHER["parameters"]},
            }
        ],  # type: ignore[list-item]
    )
    assert answered.choices[0].finish_reason == "stop"  # the call was answered: it replies
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "function", "content": "x"}],  # type: ignore[list-item,misc]
        )
    assert e.value.body["param"] == "messages[0].name"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], top_logprobs=3
        )
    assert e.value.body["param"] == "top_logprobs"  # type: ignore[index]
