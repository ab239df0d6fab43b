"""OpenAI's file-based Batch API, driven with the official `openai` SDK unchanged."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai import OpenAI

from tests.e2e.conftest import MODEL
from tests.e2e.server import LeewayServer


@pytest.fixture
def client(fake: LeewayServer) -> OpenAI:
    return OpenAI(base_url=fake.base_url, api_key=fake.key, max_retries=0)


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def responses_lines(n: int) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"task-{i}",
            "method": "POST",
            "url": "/v1/responses",
            "body": {"model": MODEL, "input": f"Count to {i}.", "max_output_tokens": 8},
        }
        for i in range(n)
    ]


def wait(client: OpenAI, batch_id: str, until: tuple[str, ...] = ("completed",)) -> Any:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if batch.status in until:
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch stayed {batch.status}")


def test_files_then_batch_then_output_file(client: OpenAI):
    uploaded = client.files.create(
        file=("tasks.jsonl", jsonl(responses_lines(12))), purpose="batch"
    )
    assert uploaded.id.startswith("file-") and uploaded.purpose == "batch"
    assert uploaded.filename == "tasks.jsonl" and uploaded.bytes == len(jsonl(responses_lines(12)))
    assert client.files.retrieve(uploaded.id).id == uploaded.id
    assert uploaded.id in [f.id for f in client.files.list(purpose="batch")]
    assert client.files.content(uploaded.id).content == jsonl(responses_lines(12))

    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/responses",
        completion_window="24h",
        metadata={"project": "evals"},
    )
    assert batch.object == "batch" and batch.status == "in_progress"
    assert batch.request_counts is not None and batch.request_counts.total == 12
    assert batch.metadata == {"project": "evals"} and batch.completion_window == "24h"

    done = wait(client, batch.id)
    assert done.request_counts.completed == 12 and done.request_counts.failed == 0
    assert done.output_file_id and done.error_file_id is None
    assert done.completed_at is not None and done.finalizing_at is not None
    lines = [orjson.loads(line) for line in client.files.content(done.output_file_id).iter_lines()]
    assert sorted(line["custom_id"] for line in lines) == sorted(f"task-{i}" for i in range(12))
    for line in lines:
        assert line["error"] is None and line["response"]["status_code"] == 200
        body = line["response"]["body"]
        assert body["object"] == "response" and body["status"] == "completed"
        assert body["completion_window"] == "flex"  # 24h is flex
    output = client.files.retrieve(done.output_file_id)
    assert output.purpose == "batch_output"

    assert client.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


def test_chat_completions_batch(client: OpenAI):
    lines = [
        {
            "custom_id": f"chat-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": MODEL,
                "messages": [{"role": "user", "content": f"Hi {i}"}],
                "max_tokens": 8,
            },
        }
        for i in range(3)
    ]
    lines[0]["body"]["service_tier"] = "flex"  # a batch item runs in the background: flex is fine
    uploaded = client.files.create(file=("chat.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = wait(client, batch.id)
    out = [orjson.loads(line) for line in client.files.content(done.output_file_id).iter_lines()]
    assert {line["response"]["body"]["object"] for line in out} == {"chat.completion"}
    first = next(line for line in out if line["custom_id"] == "chat-0")
    assert first["response"]["body"]["service_tier"] == "flex"


def test_cancelled_items_go_to_the_error_file(client: OpenAI):
    uploaded = client.files.create(
        file=("many.jsonl", jsonl(responses_lines(400))), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h"
    )
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = wait(client, batch.id, ("cancelled",))
    counts = done.request_counts
    assert counts.total == 400 and counts.completed + counts.failed == 400 and counts.failed > 0
    errors = [orjson.loads(line) for line in client.files.content(done.error_file_id).iter_lines()]
    assert len(errors) == counts.failed
    assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}


def test_bad_input_files_and_batches_are_400(client: OpenAI):
    with pytest.raises(openai.BadRequestError) as e:
        client.files.create(file=("x.jsonl", b"{}\n"), purpose="assistants")
    assert e.value.body["param"] == "purpose"  # type: ignore[index]

    with pytest.raises(openai.NotFoundError):
        client.batches.create(
            input_file_id="file-missing", endpoint="/v1/responses", completion_window="24h"
        )

    good = client.files.create(file=("ok.jsonl", jsonl(responses_lines(1))), purpose="batch")
    with pytest.raises(openai.BadRequestError) as e:
        client.batches.create(
            input_file_id=good.id,
            endpoint="/v1/responses",
            completion_window="1h",  # type: ignore[arg-type]
        )
    assert e.value.body["param"] == "completion_window"  # type: ignore[index]


def test_an_invalid_input_file_gives_a_failed_batch_with_its_errors(client: OpenAI):
    """As OpenAI does: the batch is made, validating its file fails, it is ``failed`` with the
    line at fault in ``errors`` (no request of it runs)."""
    lines = responses_lines(3)
    lines[1]["url"] = "/v1/chat/completions"
    uploaded = client.files.create(file=("mixed.jsonl", jsonl(lines)), purpose="batch")
    made = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h"
    )
    failed = wait(client, made.id, ("failed",))
    assert failed.id == made.id and failed.failed_at is not None
    assert failed.in_progress_at is None and failed.output_file_id is None
    assert failed.request_counts is not None and failed.request_counts.total == 0
    assert failed.errors is not None and failed.errors.data is not None
    [error] = failed.errors.data
    assert error.line == 2 and error.param == "url" and error.code == "invalid_request"
    assert error.message is not None and "task-1" in error.message
    assert made.id in [b.id for b in client.batches.list()]

    garbage = client.files.create(file=("bad.jsonl", b'{"custom_id": "a"\n'), purpose="batch")
    made = client.batches.create(
        input_file_id=garbage.id, endpoint="/v1/responses", completion_window="24h"
    )
    failed = wait(client, made.id, ("failed",))
    assert failed.errors is not None and failed.errors.data is not None
    [error] = failed.errors.data
    assert error.line == 1 and error.code == "invalid_json_line"
    assert error.message is not None and "Line 1" in error.message

    bad_model = responses_lines(2)
    bad_model[1]["body"]["model"] = "no-such-model"
    file = client.files.create(file=("model.jsonl", jsonl(bad_model)), purpose="batch")
    failed = client.batches.create(
        input_file_id=file.id, endpoint="/v1/responses", completion_window="24h"
    )
    assert failed.status == "failed" and failed.errors and failed.errors.data
    assert failed.errors.data[0].param == "body.model" and failed.errors.data[0].line == 2


def test_the_openai_sdk_sees_a_reference_batch_as_a_batch(client: OpenAI, fake: LeewayServer):
    """``client.batches.retrieve`` and ``list`` agree on a batch made in the reference's shape:
    OpenAI's ``Batch``, with a real status. Anyone else gets the reference's shape."""
    auth = {"Authorization": f"Bearer {fake.key}"}
    made = httpx.post(
        f"{fake.base_url}/batches",
        headers=auth,
        json={"endpoint": "/v1/responses", "requests": responses_items(2)},
    ).json()
    got = client.batches.retrieve(made["id"])
    assert got.object == "batch" and got.endpoint == "/v1/responses"
    assert got.status in ("in_progress", "finalizing", "completed")
    done = wait(client, made["id"])
    listed = next(b for b in client.batches.list() if b.id == made["id"])
    assert listed.model_dump() == done.model_dump()
    assert done.request_counts is not None and done.request_counts.completed == 2
    assert done.output_file_id is None  # its results are read per item, as the reference does
    plain = httpx.get(f"{fake.base_url}/batches/{made['id']}", headers=auth).json()
    assert plain["status_counts"]["COMPLETED"] == 2 and "object" not in plain
    assert client.batches.cancel(made["id"]).status == "completed"  # done: nothing to cancel


def test_upload_with_idempotency_key_replays(client: OpenAI):
    data = jsonl(responses_lines(2))
    key = {"Idempotency-Key": "upload-1"}
    first = client.files.create(file=("a.jsonl", data), purpose="batch", extra_headers=key)
    again = client.files.create(file=("a.jsonl", data), purpose="batch", extra_headers=key)
    assert again.id == first.id
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("a.jsonl", data + b"\n"), purpose="batch", extra_headers=key)


def test_the_sdk_lists_batches_in_openais_shape(client: OpenAI, fake: LeewayServer):
    tenant = OpenAI(base_url=fake.base_url, api_key=fake.new_key("lister"), max_retries=0)
    file = tenant.files.create(file=("t.jsonl", jsonl(responses_lines(1))), purpose="batch")
    made = [
        tenant.batches.create(
            input_file_id=file.id, endpoint="/v1/responses", completion_window="24h"
        ).id
        for _ in range(3)
    ]
    auth = {"Authorization": f"Bearer {tenant.api_key}"}
    reference = httpx.post(  # listed too, in the list's shape
        f"{fake.base_url}/batches",
        headers=auth,
        json={"endpoint": "/v1/responses", "requests": responses_items(1)},
    ).json()["id"]
    newest_first = [reference, *made[::-1]]

    page = tenant.batches.list(limit=2)
    assert [b.id for b in page.data] == newest_first[:2] and page.has_more
    assert page.data[1].object == "batch" and page.data[1].input_file_id == file.id
    assert [b.id for b in tenant.batches.list(limit=2)] == newest_first  # pages with `after`
    assert [b.id for b in tenant.batches.list()] == newest_first
    last = tenant.batches.list(after=made[1], limit=5)
    assert [b.id for b in last.data] == [made[0]] and not last.has_more

    # the reference's bare list, for a client that is not OpenAI's and does not page with `after`
    bare = httpx.get(f"{fake.base_url}/batches", headers=auth, params={"limit": 2}).json()
    assert [b["id"] for b in bare] == newest_first[:2]
    raw = httpx.get(f"{fake.base_url}/batches", headers=auth, params={"after": made[2]}).json()
    assert raw["object"] == "list" and raw["first_id"] == made[1] and raw["last_id"] == made[0]
    with pytest.raises(openai.BadRequestError):
        tenant.batches.list(limit=101)


def responses_items(n: int) -> list[dict[str, Any]]:
    return [
        {"custom_id": f"r{i}", "params": line["body"]} for i, line in enumerate(responses_lines(n))
    ]


SLOW_CONFIG = f"""
poll_seconds = 0.2
batch_expiry_seconds = 1.5

[[models]]
id = "{MODEL}"
engine = "fake"
parallel = 1
fake_tokens = 4
fake_delay = 0.25
"""


def test_a_batch_not_finished_in_time_expires(tmp_path: Path):
    """One item at a time, a second each: at 1.5 s the batch expires with most of it queued."""
    server = LeewayServer(tmp_path, SLOW_CONFIG, ("--engine", "fake")).start()
    try:
        client = OpenAI(base_url=server.base_url, api_key=server.key, max_retries=0)
        file = client.files.create(file=("t.jsonl", jsonl(responses_lines(8))), purpose="batch")
        batch = client.batches.create(
            input_file_id=file.id, endpoint="/v1/responses", completion_window="24h"
        )
        assert batch.expires_at in (batch.created_at + 1, batch.created_at + 2)  # whole seconds
        done = wait(client, batch.id, until=("expired",))
        assert done.expired_at is not None and done.completed_at is None
        counts = done.request_counts
        assert counts is not None and counts.total == 8 and 1 <= counts.completed < 8
        assert counts.failed == 8 - counts.completed and done.error_file_id is not None
        errors = [orjson.loads(x) for x in client.files.content(done.error_file_id).iter_lines()]
        assert len(errors) == counts.failed
        assert {e["error"]["code"] for e in errors} == {"batch_expired"}
        assert done.output_file_id is not None
        output = list(client.files.content(done.output_file_id).iter_lines())
        assert len(output) == counts.completed
    finally:
        server.stop()
