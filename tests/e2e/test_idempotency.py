"""Idempotency-Key through the official openai SDK against a running `leeway serve`, including a
retry after the server was killed (SIGKILL) right after it accepted the request."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import anthropic
import openai
import pytest
from openai import OpenAI

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer

REPLAYED = "idempotent-replayed"
CRASH_CONFIG = f"""
lease_seconds = 2
poll_seconds = 0.2

[[models]]
id = "{MODEL}"
parallel = 2
context = 512
"""


@pytest.fixture(scope="module")
def client(server: LeewayServer) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)


@pytest.fixture(scope="module")
def claude(server: LeewayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=server.base_url.removesuffix("/v1"), api_key=server.key, max_retries=0
    )


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}


def test_a_retried_background_create_returns_the_same_response(client: OpenAI):
    headers = key()
    args = {"model": MODEL, "input": "Say hi.", "max_output_tokens": 8, "background": True}
    first = client.responses.with_raw_response.create(**args, extra_headers=headers)
    again = client.responses.with_raw_response.create(**args, extra_headers=headers)
    assert first.status_code == again.status_code == 202
    assert REPLAYED not in first.headers and again.headers[REPLAYED] == "true"
    assert again.parse().id == first.parse().id


def test_a_retried_blocking_create_returns_the_same_result(client: OpenAI):
    headers = key()
    args = {"model": MODEL, "input": "Say hi.", "max_output_tokens": 8, "temperature": 0}
    first = client.responses.with_raw_response.create(**args, extra_headers=headers)
    again = client.responses.with_raw_response.create(**args, extra_headers=headers)
    assert again.headers[REPLAYED] == "true"
    a, b = first.parse(), again.parse()
    assert a.id == b.id and a.output_text == b.output_text and a.usage == b.usage


def test_a_retried_message_stream_streams_the_same_message(claude: anthropic.Anthropic):
    headers = key()
    args = {
        "model": MODEL,
        "max_tokens": 24,
        "messages": [{"role": "user", "content": "Name two colors."}],
        "extra_headers": headers,
    }

    def streamed() -> tuple[str, anthropic.types.Message, str | None]:
        with claude.messages.stream(**args) as stream:  # type: ignore[arg-type]
            text = "".join(stream.text_stream)
            return text, stream.get_final_message(), stream.response.headers.get(REPLAYED)

    (text, first, replayed), (again, second, replayed_again) = streamed(), streamed()
    assert replayed is None and replayed_again == "true"
    assert text and again == text and second.id == first.id
    assert second.usage.output_tokens == first.usage.output_tokens
    with pytest.raises(anthropic.BadRequestError, match="Idempotency-Key"):
        claude.messages.create(**args)  # type: ignore[arg-type]  # not streamed: another body


def test_the_same_key_with_another_body_is_an_idempotency_error(client: OpenAI):
    headers = key()
    client.responses.create(model=MODEL, input="One.", background=True, extra_headers=headers)
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=MODEL, input="Two.", background=True, extra_headers=headers)
    assert raised.value.code == "idempotency_error" and raised.value.param == "Idempotency-Key"


def test_a_retry_after_a_crash_replays_the_accepted_job(tmp_path: Path):
    server = LeewayServer(tmp_path, CRASH_CONFIG).start()
    headers = key()
    args = {"model": MODEL, "input": "Count to five.", "max_output_tokens": 16, "background": True}
    try:
        client = OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)
        accepted = client.responses.with_raw_response.create(**args, extra_headers=headers)
        assert accepted.status_code == 202
        server.crash()  # the client was told "accepted"; the process dies before anything else
        server.start()  # same data dir, same port, same key
        retried = client.responses.with_raw_response.create(**args, extra_headers=headers)
        assert retried.status_code == 202 and retried.headers[REPLAYED] == "true"
        assert retried.parse().id == accepted.parse().id
    finally:
        server.stop()
    with sqlite3.connect(tmp_path / "leeway.db") as db:
        jobs = db.execute("SELECT id FROM jobs").fetchall()
        keys = db.execute("SELECT key, subject FROM idempotency_keys").fetchall()
    assert jobs == [(accepted.parse().id,)]
    assert keys == [(headers["Idempotency-Key"], accepted.parse().id)]
