"""Leeway in front of Leeway: a first ``leeway serve`` whose only engine is an ``[[engines]]
kind = "openai"`` pointing at a second ``leeway serve`` on the real model (real generation, real
HTTP), driven with the official openai SDK."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer

COLORS = [{"role": "user", "content": "Name three colors."}]
KEY_ENV = "LEEWAY_TEST_UPSTREAM_KEY"

UPSTREAM = f"""
[[models]]
id = "{MODEL}"
parallel = 4
context = 1024
"""


def gateway_config(url: str) -> str:
    return f"""
poll_seconds = 0.2

[[models]]
id = "{MODEL}"
context = 1024

[[engines]]
kind = "openai"
model = "{MODEL}"
id = "upstream-leeway"
url = "{url}"
flavor = "openai"
api_key_env = "{KEY_ENV}"
parallel = 4
health_seconds = 1
"""


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LeewayServer, LeewayServer]]:
    upstream = LeewayServer(Path(tmp_path_factory.mktemp("upstream")), UPSTREAM).start()
    gateway: LeewayServer | None = None
    os.environ[KEY_ENV] = upstream.key
    try:
        gateway = LeewayServer(
            Path(tmp_path_factory.mktemp("gateway")), gateway_config(upstream.base_url)
        ).start()
        yield gateway, upstream
    finally:
        os.environ.pop(KEY_ENV, None)
        if gateway is not None:
            gateway.stop()
        upstream.stop()


def test_a_chat_completion_is_generated_upstream(servers: tuple[LeewayServer, LeewayServer]):
    gateway, upstream = servers
    client = OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    done = client.chat.completions.create(
        model=MODEL, messages=COLORS, max_tokens=60, temperature=0
    )
    choice = done.choices[0]
    assert choice.finish_reason == "stop" and "Red" in (choice.message.content or "")
    assert done.usage is not None and done.usage.prompt_tokens > 0
    direct = OpenAI(base_url=upstream.base_url, api_key=upstream.key, max_retries=0)
    same = direct.chat.completions.create(
        model=MODEL, messages=COLORS, max_tokens=60, temperature=0
    )
    assert same.usage is not None
    # the upstream's exact counts came back (not the gateway's estimate)
    assert done.usage.prompt_tokens == same.usage.prompt_tokens
    assert done.usage.completion_tokens > 0


def test_a_response_streams_from_upstream(servers: tuple[LeewayServer, LeewayServer]):
    gateway, _ = servers
    client = OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    r = client.responses.create(model=MODEL, input="Name three colors.", max_output_tokens=40)
    assert r.status in ("completed", "incomplete") and r.output_text.strip()
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
