"""Idempotency-Key on every create, on the fake engine and a real SQLite store."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import FAKE_MODEL, Client

REPLAYED = "idempotent-replayed"
BACKGROUND = {"model": FAKE_MODEL, "input": "hi", "background": True}
BLOCKING = {"model": FAKE_MODEL, "input": "hi"}
CHAT = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": FAKE_MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def post(c: Client, path: str, body: dict[str, Any], key: str, api_key: str | None = None):
    headers = {**c.headers(api_key), "Idempotency-Key": key}
    return c.http.post(path, content=orjson.dumps(body), headers=headers)


def job_ids(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "leeway.db") as db:
        return [r[0] for r in db.execute("SELECT id FROM jobs")]


def poll(c: Client, rid: str) -> dict[str, Any]:
    for _ in range(500):
        body: dict[str, Any] = c.http.get(f"/v1/responses/{rid}", headers=c.headers()).json()
        if body["status"] == "completed":
            return body
        time.sleep(0.02)
    raise AssertionError(f"{rid} never completed")


def sse_data(text: str) -> list[Any]:
    lines = [ln[len("data: ") :] for ln in text.splitlines() if ln.startswith("data: ")]
    return [orjson.loads(ln) for ln in lines if ln != "[DONE]"]


def test_background_replay_returns_the_stored_job_in_its_current_state(client: Client):
    first = post(client, "/v1/responses", BACKGROUND, "k1")
    assert first.status_code == 202 and REPLAYED not in first.headers
    rid = first.json()["id"]
    again = post(client, "/v1/responses", BACKGROUND, "k1")
    assert again.status_code == 202 and again.headers[REPLAYED] == "true"
    assert again.json()["id"] == rid
    done = poll(client, rid)
    later = post(client, "/v1/responses", BACKGROUND, "k1")
    assert later.status_code == 202 and later.headers[REPLAYED] == "true"
    assert later.json() == done


@pytest.mark.parametrize(
    ("path", "body", "text"),
    [
        ("/v1/responses", BLOCKING, lambda b: b["output"][0]["content"][0]["text"]),
        ("/v1/chat/completions", CHAT, lambda b: b["choices"][0]["message"]["content"]),
        ("/v1/messages", MESSAGE, lambda b: b["content"][0]["text"]),
    ],
)
def test_blocking_replay_returns_the_same_result(client: Client, tmp_path: Path, path, body, text):
    first = post(client, path, body, "k2")
    assert first.status_code == 200 and REPLAYED not in first.headers
    again = post(client, path, body, "k2")
    assert again.status_code == 200 and again.headers[REPLAYED] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert text(again.json()) == text(first.json()) != ""
    assert job_ids(tmp_path) == [first.json()["id"]]


def test_streaming_replay_streams_the_stored_result_again(client: Client, tmp_path: Path):
    body = {**CHAT, "stream": True}
    first = post(client, "/v1/chat/completions", body, "k3")
    again = post(client, "/v1/chat/completions", body, "k3")
    assert first.status_code == again.status_code == 200
    assert REPLAYED not in first.headers and again.headers[REPLAYED] == "true"
    assert again.headers["content-type"].startswith("text/event-stream")

    def text(r: Any) -> str:
        chunks = sse_data(r.text)
        return "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )

    assert text(again) == text(first) != ""
    assert {c["id"] for c in sse_data(again.text)} == {c["id"] for c in sse_data(first.text)}
    assert len(job_ids(tmp_path)) == 1


@pytest.mark.parametrize(
    ("first_path", "first_body", "second_path", "second_body"),
    [
        ("/v1/responses", BACKGROUND, "/v1/responses", {**BACKGROUND, "input": "hello"}),
        ("/v1/responses", BLOCKING, "/v1/chat/completions", CHAT),
    ],
)
def test_same_key_with_another_request_is_400_and_writes_nothing(
    client: Client, tmp_path: Path, first_path, first_body, second_path, second_body
):
    assert post(client, first_path, first_body, "k4").status_code in (200, 202)
    before = job_ids(tmp_path)
    r = post(client, second_path, second_body, "k4")
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "idempotency_error"
    assert error["param"] == "Idempotency-Key" and "k4" in error["message"]
    assert job_ids(tmp_path) == before


def test_tenants_have_their_own_keys(client: Client):
    mine = post(client, "/v1/responses", BACKGROUND, "shared")
    theirs = post(client, "/v1/responses", BACKGROUND, "shared", api_key=client.other_key)
    assert mine.status_code == theirs.status_code == 202
    assert REPLAYED not in theirs.headers and theirs.json()["id"] != mine.json()["id"]


@pytest.mark.parametrize(
    ("bad", "status"),
    [
        ({**BACKGROUND, "model": "gpt-9"}, 404),  # unknown model
        ({**BACKGROUND, "temperature": 7}, 400),  # validation
        ({**BACKGROUND, "metadata": {"completion_window": "15s"}}, 400),  # window
        ({**BACKGROUND, "input": "word " * 400}, 400),  # longer than the context
    ],
)
def test_a_rejected_request_does_not_consume_the_key(client: Client, tmp_path: Path, bad, status):
    assert post(client, "/v1/responses", bad, "k5").status_code == status
    assert job_ids(tmp_path) == []
    ok = post(client, "/v1/responses", BACKGROUND, "k5")
    assert ok.status_code == 202 and REPLAYED not in ok.headers


@pytest.mark.parametrize("key", ["", "   ", "x" * 256])
def test_empty_or_overlong_keys_are_400_naming_the_header(client: Client, key: str):
    r = post(client, "/v1/responses", BACKGROUND, key)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "Idempotency-Key" and "Idempotency-Key" in error["message"]
    r = post(client, "/v1/messages", MESSAGE, key)  # Anthropic's error shape on its route
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_a_key_of_255_characters_is_accepted(client: Client):
    key = "x" * 255
    first = post(client, "/v1/responses", BACKGROUND, key)
    again = post(client, "/v1/responses", BACKGROUND, key)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers[REPLAYED] == "true"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [("/v1/responses", BACKGROUND, 202), ("/v1/chat/completions", CHAT, 200)],
)
def test_fifty_concurrent_duplicates_create_one_job(
    client: Client, tmp_path: Path, path: str, body: dict[str, Any], status: int
):
    with ThreadPoolExecutor(50) as pool:
        replies = list(pool.map(lambda _: post(client, path, body, "same"), range(50)))
    assert [r.status_code for r in replies] == [status] * 50
    ids = {r.json()["id"] for r in replies}
    assert len(ids) == 1 and job_ids(tmp_path) == list(ids)
    assert sum(REPLAYED not in r.headers for r in replies) == 1


@pytest.mark.parametrize("background", [False, True])
def test_a_streamed_response_replays_as_the_same_stream(
    client: Client, tmp_path: Path, background: bool
):
    body = {**BLOCKING, "stream": True, "background": background}
    first = post(client, "/v1/responses", body, "k6")
    again = post(client, "/v1/responses", body, "k6")
    assert again.headers[REPLAYED] == "true"

    def events(r: Any) -> list[tuple[str, str]]:
        return [(e["type"], e.get("delta", "")) for e in sse_data(r.text)]

    assert events(again) == events(first)
    assert events(first)[-1][0] == "response.completed"
    assert len(job_ids(tmp_path)) == 1


def test_a_continuation_replays_even_after_its_previous_response_is_deleted(client: Client):
    previous = post(client, "/v1/responses", BLOCKING, "k7").json()["id"]
    body = {**BACKGROUND, "previous_response_id": previous}
    first = post(client, "/v1/responses", body, "k8")
    assert first.status_code == 202
    assert client.http.delete(f"/v1/responses/{previous}", headers=client.headers()).is_success
    again = post(client, "/v1/responses", body, "k8")
    assert again.status_code == 202 and again.headers[REPLAYED] == "true"
    assert again.json()["id"] == first.json()["id"]


BATCH = {
    "endpoint": "/v1/responses",
    "requests": [{"custom_id": f"r{i}", "params": BLOCKING} for i in range(3)],
}
MESSAGE_BATCH = {"requests": [{"custom_id": f"m{i}", "params": MESSAGE} for i in range(3)]}


@pytest.mark.parametrize(
    ("path", "body"), [("/v1/batches", BATCH), ("/v1/messages/batches", MESSAGE_BATCH)]
)
def test_concurrent_duplicate_batches_store_one(client: Client, path: str, body: dict[str, Any]):
    # those that find the first batch stored replay it; those that race it to the store are told
    # they replayed it too
    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(lambda _: post(client, path, body, "same-batch"), range(20)))
    assert [r.status_code for r in replies] == [200] * 20
    assert len({r.json()["id"] for r in replies}) == 1
    assert sum(REPLAYED not in r.headers for r in replies) == 1
