"""Responses streaming, cancel, delete and previous_response_id against a running server."""

from __future__ import annotations

import time

import openai
import pytest
from openai import OpenAI

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer


@pytest.fixture(scope="module")
def client(server: LeewayServer) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)


def final(client: OpenAI, rid: str):
    for _ in range(600):
        r = client.responses.retrieve(rid)
        if r.status not in ("queued", "in_progress"):
            return r
        time.sleep(0.1)
    raise AssertionError(rid)


def test_stream_events_in_order_and_the_result_is_stored(client: OpenAI):
    events = list(
        client.responses.create(
            model=MODEL,
            input="Name three colors.",
            max_output_tokens=40,
            temperature=0,
            stream=True,
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    done = events[-1].response
    assert len(deltas) > 3 and "".join(deltas) == done.output_text
    assert client.responses.retrieve(done.id).output_text == done.output_text


def test_a_client_that_disconnects_mid_stream_loses_nothing(client: OpenAI):
    with client.responses.create(
        model=MODEL, input="Write a long story about a dragon.", max_output_tokens=64, stream=True
    ) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                rid = event.item_id.replace("msg_", "resp_", 1)
                break
    done = final(client, rid)  # generation went on without the client
    assert done.status == "completed" and done.usage.output_tokens > 1 and done.output_text


def test_cancel_a_background_response(client: OpenAI):
    r = client.responses.create(
        model=MODEL,
        input="Write a very long story.",
        background=True,
        max_output_tokens=400,
        metadata={"completion_window": "flex"},
    )
    cancelled = client.responses.cancel(r.id)
    assert cancelled.status == "cancelled"
    assert client.responses.cancel(r.id).status == "cancelled"  # twice: the same object
    time.sleep(0.5)
    assert client.responses.retrieve(r.id).status == "cancelled"  # no late result overwrote it
    blocking = client.responses.create(model=MODEL, input="Hi", max_output_tokens=2)
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(blocking.id)


def test_delete_a_response(client: OpenAI):
    r = client.responses.create(model=MODEL, input="Hi", max_output_tokens=2)
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)


def test_previous_response_id_continues_the_stored_conversation(client: OpenAI):
    first = client.responses.create(
        model=MODEL,
        input="My name is Ada.",
        max_output_tokens=8,
        instructions="Reply in one short sentence.",
    )
    second = client.responses.create(
        model=MODEL, input="What is my name?", max_output_tokens=8, previous_response_id=first.id
    )
    alone = client.responses.create(model=MODEL, input="What is my name?", max_output_tokens=8)
    # the history (first input + its output) was part of the prompt; the old instructions were not
    assert second.usage.input_tokens > alone.usage.input_tokens + first.usage.output_tokens
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, input="x", previous_response_id="resp_missing")


def test_a_background_response_streams_from_any_point_with_stable_numbers(client: OpenAI):
    created = client.responses.create(
        model=MODEL, input="Write a story about a fox.", max_output_tokens=40, background=True
    )
    live = list(client.responses.retrieve(created.id, stream=True))  # joins while it runs
    assert live[0].type == "response.created" and live[-1].type == "response.completed"
    assert [e.sequence_number for e in live] == list(range(len(live)))
    done = client.responses.retrieve(created.id)
    deltas = [e.delta for e in live if e.type == "response.output_text.delta"]
    assert "".join(deltas) == done.output_text

    def shape(events):
        return [(e.sequence_number, e.type, getattr(e, "delta", None)) for e in events]

    replay = list(client.responses.retrieve(created.id, stream=True))  # final: from the store
    assert shape(replay) == shape(live)
    tail = list(client.responses.retrieve(created.id, stream=True, starting_after=5))
    assert shape(tail) == shape(live)[6:]


def test_background_with_stream_streams_and_is_stored(client: OpenAI):
    events = list(
        client.responses.create(
            model=MODEL,
            input="Name three colors.",
            max_output_tokens=20,
            background=True,
            stream=True,
        )
    )
    final = events[-1].response
    assert events[-1].type == "response.completed" and final.background
    assert client.responses.retrieve(final.id).output_text == final.output_text


def test_get_stream_needs_a_background_response(client: OpenAI):
    r = client.responses.create(model=MODEL, input="Hi", max_output_tokens=2)
    with pytest.raises(openai.BadRequestError) as e:
        list(client.responses.retrieve(r.id, stream=True))
    assert e.value.param == "stream"


def test_deleting_a_running_response_cancels_it_and_ends_its_streams(client: OpenAI):
    r = client.responses.create(
        model=MODEL,
        input="Write a very long story.",
        background=True,
        max_output_tokens=1000,
        metadata={"completion_window": "asap"},
    )
    events = []
    with client.responses.retrieve(r.id, stream=True) as stream:
        for event in stream:
            events.append(event.type)
            if event.type == "response.output_text.delta":
                client.responses.delete(r.id)  # while it is generating
                break
        events.extend(e.type for e in stream)  # the rest of the stream: it must end
    assert events[-1] == "response.failed"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
