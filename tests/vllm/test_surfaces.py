"""The three surfaces (Responses, Chat Completions, Messages), streamed and not, background
responses and a file-based batch, through Leeway to a real vLLM, with the official SDKs. vLLM's own
log shows each job arriving under its Leeway id and finishing there."""

from __future__ import annotations

import time

import anthropic
import orjson
from openai import OpenAI

from tests.vllm.conftest import until
from tests.vllm.server import API_KEY, MODEL, VllmServer

COLORS = [{"role": "user", "content": "Name three colors."}]


def ran_on(vllm: VllmServer, job_id: str) -> bool:
    """vLLM added the job under its Leeway id and streamed it to the end."""
    return vllm.did("added", job_id) and vllm.did("finished", job_id)


def direct(vllm: VllmServer) -> OpenAI:
    return OpenAI(base_url=f"{vllm.url}/v1", api_key=API_KEY, max_retries=0, timeout=300)


def test_a_chat_completion_is_vllms_answer_with_vllms_usage(client: OpenAI, vllm: VllmServer):
    done = client.chat.completions.create(
        model=MODEL, messages=COLORS, max_tokens=40, temperature=0
    )
    same = direct(vllm).chat.completions.create(
        model=MODEL, messages=COLORS, max_tokens=40, temperature=0
    )
    assert done.choices[0].message.content == same.choices[0].message.content
    assert done.choices[0].finish_reason == same.choices[0].finish_reason == "stop"
    assert done.usage is not None and same.usage is not None
    assert done.usage.prompt_tokens == same.usage.prompt_tokens  # vLLM's count, not an estimate
    assert done.usage.completion_tokens == same.usage.completion_tokens
    assert until(lambda: ran_on(vllm, done.id), 30)


def test_finish_reasons_at_the_cap_and_at_a_stop_string(
    client: OpenAI, claude: anthropic.Anthropic
):
    full = client.chat.completions.create(
        model=MODEL, messages=COLORS, max_tokens=40, temperature=0
    )
    text = full.choices[0].message.content or ""
    assert "2." in text
    capped = client.chat.completions.create(
        model=MODEL, messages=COLORS, max_completion_tokens=3, temperature=0
    )
    assert capped.choices[0].finish_reason == "length" and capped.usage is not None
    assert capped.usage.completion_tokens == 3
    assert text.startswith(capped.choices[0].message.content or "")
    cut = client.chat.completions.create(
        model=MODEL, messages=COLORS, max_tokens=40, temperature=0, stop=["2."]
    )
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[: text.index("2.")]
    stopped = claude.messages.create(
        model=MODEL,
        max_tokens=40,
        messages=COLORS,
        stop_sequences=["2."],
        extra_body={"temperature": 0},
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "2."


def test_a_chat_stream_and_its_usage(client: OpenAI, vllm: VllmServer):
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=COLORS,
            max_tokens=40,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 3 and "Red" in text
    assert until(lambda: ran_on(vllm, chunks[0].id), 30)


def test_responses_blocking_streamed_and_in_the_background(client: OpenAI, vllm: VllmServer):
    r = client.responses.create(model=MODEL, input="Name three colors.", max_output_tokens=40)
    assert r.status == "completed" and r.output_text.strip()
    assert r.usage is not None and r.usage.output_tokens > 0

    deltas = []
    with client.responses.stream(
        model=MODEL, input="Say hello.", max_output_tokens=16, temperature=0
    ) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert len(deltas) > 1 and "".join(deltas) == final.output_text

    queued = client.responses.create(
        model=MODEL,
        input="Name three animals.",
        max_output_tokens=40,
        background=True,
        metadata={"completion_window": "priority"},
    )
    assert queued.status in ("queued", "in_progress")
    done = until(lambda: (x := client.responses.retrieve(queued.id)).status == "completed" and x)
    assert done.output_text.strip() and done.usage.output_tokens > 0
    for job in (r.id, final.id, queued.id):
        assert until(lambda job=job: ran_on(vllm, job), 30)


def test_messages_blocking_and_streamed(claude: anthropic.Anthropic, vllm: VllmServer):
    m = claude.messages.create(
        model=MODEL,
        max_tokens=40,
        system="Be brief.",
        messages=[{"role": "user", "content": "Name three colors."}],
        extra_body={"temperature": 0},
    )
    text = "".join(b.text for b in m.content if b.type == "text")
    assert m.stop_reason == "end_turn" and text.strip()
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0
    with claude.messages.stream(
        model=MODEL,
        max_tokens=40,
        system="Be brief.",
        messages=[{"role": "user", "content": "Name three colors."}],
        extra_body={"temperature": 0},
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text  # the same vLLM, the same greedy answer
    assert final.usage.output_tokens == m.usage.output_tokens
    assert until(lambda: ran_on(vllm, m.id) and ran_on(vllm, final.id), 30)


def test_a_file_batch_runs_on_vllm(client: OpenAI, vllm: VllmServer):
    lines = [
        {
            "custom_id": f"task-{i}",
            "method": "POST",
            "url": "/v1/responses",
            "body": {"model": MODEL, "input": f"Count to {i + 2}.", "max_output_tokens": 24},
        }
        for i in range(4)
    ]
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    uploaded = client.files.create(file=("tasks.jsonl", body), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h"
    )
    deadline = time.monotonic() + 600
    while (batch := client.batches.retrieve(batch.id)).status != "completed":
        assert batch.status in ("validating", "in_progress", "finalizing")
        assert time.monotonic() < deadline, batch
        time.sleep(0.5)
    assert batch.request_counts is not None and batch.request_counts.completed == 4
    assert batch.output_file_id is not None
    results = [
        orjson.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()
    ]
    assert sorted(r["custom_id"] for r in results) == [f"task-{i}" for i in range(4)]
    for result in results:
        response = result["response"]["body"]
        assert response["status"] == "completed" and response["usage"]["output_tokens"] > 0
        assert until(lambda r=response: ran_on(vllm, r["id"]), 30)
