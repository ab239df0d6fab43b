"""The Batch API in the reference's shape (plain HTTP), against `leeway serve --engine fake`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.conftest import ALIAS, FAKE_CONFIG, MODEL
from tests.e2e.server import LeewayServer


@pytest.fixture
def http(fake: LeewayServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {fake.key}"}
    with httpx.Client(base_url=fake.base_url, headers=headers, timeout=60) as client:
        yield client


def items(n: int, **params: Any) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"request-{i}",
            "params": {"model": ALIAS, "input": f"Say {i}.", "max_output_tokens": 8, **params},
        }
        for i in range(n)
    ]


def wait_done(http: httpx.Client, batch_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http.get(f"/batches/{batch_id}").json()
        if all(
            s["status"] in ("COMPLETED", "FAILED", "CANCELLED")
            for s in status["request_status"].values()
        ):
            return status  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} did not finish: {status['status_counts']}")


def test_create_poll_and_fetch_each_result(http: httpx.Client):
    created = http.post(
        "/batches", json={"endpoint": "/v1/responses", "label": "my-batch_1", "requests": items(40)}
    )
    assert created.status_code == 200, created.text
    batch = created.json()
    assert set(batch) == {"id", "label", "created_at", "request_counts"}
    assert batch["id"].startswith("batch_") and batch["label"] == "my-batch_1"
    assert batch["request_counts"] == 40 and isinstance(batch["created_at"], int)

    status = wait_done(http, batch["id"])
    assert list(status["request_status"]) == [f"request-{i}" for i in range(40)]  # batch order
    assert {s["status"] for s in status["request_status"].values()} == {"COMPLETED"}
    assert status["status_counts"]["COMPLETED"] == 40 and status["request_counts"] == 40

    result = http.get(f"/batches/{batch['id']}/request-7").json()
    assert result["object"] == "response" and result["status"] == "completed"
    assert result["model"] == MODEL  # the alias runs on the model it names
    assert result["metadata"] == {}
    assert result["output"][0]["content"][0]["text"]
    # exactly what GET /v1/responses/{id} returns for it
    assert http.get(f"/responses/{result['id']}").json() == result
    # an item stays with its batch
    assert _error(http.delete(f"/responses/{result['id']}"))["param"] == "id"


def test_items_default_to_standard_and_accept_flex(http: httpx.Client):
    body = items(2)
    body[1]["params"]["metadata"] = {"completion_window": "flex"}
    batch = http.post("/batches", json={"endpoint": "/v1/responses", "requests": body}).json()
    wait_done(http, batch["id"])
    windows = [
        http.get(f"/batches/{batch['id']}/request-{i}").json()["completion_window"]
        for i in range(2)
    ]
    assert windows == ["standard", "flex"]


def _error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]  # type: ignore[no-any-return]


def test_every_bad_batch_is_refused_whole(http: httpx.Client):
    before = len(http.get("/batches", params={"limit": 200}).json())

    def post(**body: Any) -> httpx.Response:
        return http.post("/batches", json={"endpoint": "/v1/responses", **body})

    err = _error(post(label="no spaces allowed", requests=items(1)))
    assert err["param"] == "label" and "128" in err["message"]
    err = _error(post(label="x" * 129, requests=items(1)))
    assert err["param"] == "label"
    err = _error(http.post("/batches", json={"endpoint": "/v1/embeddings", "requests": items(1)}))
    assert err["param"] == "endpoint"
    err = _error(post(requests=[]))
    assert "at least one" in err["message"]
    err = _error(post(label="x"))
    assert err["param"] == "requests"

    bad = items(30)
    bad[17]["params"]["metadata"] = {"completion_window": "asap"}
    err = _error(post(requests=bad))
    assert "requests[17]" in err["message"] and "request-17" in err["message"]
    assert "'standard'" in err["message"] and "'flex'" in err["message"]
    assert err["param"] == "requests[17].params.metadata.completion_window"

    dup = items(5)
    dup[3]["custom_id"] = "request-1"
    err = _error(post(requests=dup))
    assert "requests[3]" in err["message"] and "twice" in err["message"]

    missing = items(2500)  # past the first staged chunk: what was staged is discarded
    del missing[2400]["params"]["input"]
    err = _error(post(requests=missing))
    assert "requests[2400]" in err["message"] and "request-2400" in err["message"]
    assert err["param"].startswith("requests[2400].params")

    unknown = items(3)
    unknown[2]["params"]["model"] = "no-such-model"
    err = _error(post(requests=unknown))
    assert "requests[2]" in err["message"] and "no-such-model" in err["message"]

    err = _error(post(requests=items(3001)))
    assert "3,000" in err["message"]
    big = [
        {"custom_id": f"r{i}", "params": {"model": ALIAS, "input": "x" * 5000}} for i in range(500)
    ]
    _error(post(requests=big), 413)
    err = _error(http.post("/batches", content=b'{"endpoint": "/v1/responses", "requests": [{'))
    assert "JSON" in err["message"]

    assert len(http.get("/batches", params={"limit": 200}).json()) == before  # nothing stored


def test_cancel_stops_queued_items_and_running_ones_finish(http: httpx.Client):
    batch = http.post("/batches", json={"endpoint": "/v1/responses", "requests": items(600)}).json()
    cancelled = http.post(f"/batches/{batch['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["cancelled_at"] is not None
    status = wait_done(http, batch["id"])
    counts = status["status_counts"]
    assert counts["CANCELLED"] > 0 and counts["QUEUED"] == counts["RUNNING"] == 0
    assert sum(counts.values()) == 600
    some = next(c for c, s in status["request_status"].items() if s["status"] == "CANCELLED")
    assert http.get(f"/batches/{batch['id']}/{some}").json()["status"] == "cancelled"
    assert _error(http.post("/batches/batch_nope/cancel"), 404)["param"] == "id"


def test_list_is_newest_first_and_pages_both_ways(http: httpx.Client):
    ids = [
        http.post("/batches", json={"endpoint": "/v1/responses", "requests": items(1)}).json()["id"]
        for _ in range(5)
    ]
    newest = http.get("/batches", params={"limit": 2}).json()
    assert [b["id"] for b in newest] == ids[::-1][:2]
    assert set(newest[0]) == {"id", "label", "created_at", "request_counts"}
    older = http.get("/batches", params={"limit": 2, "before_id": ids[3]}).json()
    assert [b["id"] for b in older] == [ids[2], ids[1]]
    newer = http.get("/batches", params={"limit": 2, "after_id": ids[1]}).json()
    assert [b["id"] for b in newer] == [ids[3], ids[2]]
    for bad in ("0", "201", "x"):
        assert _error(http.get("/batches", params={"limit": bad}))["param"] == "limit"


def test_idempotency_key_replays_the_batch(http: httpx.Client):
    body = orjson.dumps({"endpoint": "/v1/responses", "requests": items(3)})
    headers = {"Idempotency-Key": "batch-key-1", "Content-Type": "application/json"}
    first = http.post("/batches", content=body, headers=headers)
    again = http.post("/batches", content=body, headers=headers)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = orjson.dumps({"endpoint": "/v1/responses", "requests": items(4)})
    err = _error(http.post("/batches", content=other, headers=headers))
    assert err["code"] == "idempotency_error"


def test_a_batch_over_the_tenants_queue_limit_is_429_and_not_stored(fake: LeewayServer):
    headers = {"Authorization": f"Bearer {fake.new_key('small')}"}
    with httpx.Client(base_url=fake.base_url, headers=headers, timeout=60) as http:
        too_many = http.post("/batches", json={"endpoint": "/v1/responses", "requests": items(6)})
        err = _error(too_many, 429)
        assert "max_queued" in err["message"] and "6" in err["message"]
        assert too_many.headers["Retry-After"]
        assert http.get("/batches").json() == []
        fits = http.post("/batches", json={"endpoint": "/v1/responses", "requests": items(5)})
        assert fits.status_code == 200


def test_unknown_batch_and_item_are_404(http: httpx.Client):
    assert _error(http.get("/batches/batch_missing"), 404)["param"] == "id"
    batch = http.post("/batches", json={"endpoint": "/v1/responses", "requests": items(1)}).json()
    assert _error(http.get(f"/batches/{batch['id']}/nope"), 404)["param"] == "custom_id"


def test_a_restart_mid_batch_loses_nothing_and_counts_never_go_back(tmp_path: Path):
    config = "lease_seconds = 2\n" + FAKE_CONFIG.replace("fake_delay = 0.02", "fake_delay = 0.05")
    server = LeewayServer(tmp_path, config, ("--engine", "fake")).start()
    headers = {"Authorization": f"Bearer {server.key}"}
    try:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
            batch = http.post(
                "/batches", json={"endpoint": "/v1/responses", "requests": items(300)}
            ).json()
            done_before = 0
            while done_before < 40:
                done_before = http.get(f"/batches/{batch['id']}").json()["status_counts"][
                    "COMPLETED"
                ]
                time.sleep(0.1)
            server.crash()
            server.start()
            seen = [done_before]
            while True:
                status = http.get(f"/batches/{batch['id']}").json()
                seen.append(status["status_counts"]["COMPLETED"])
                if seen[-1] == 300:
                    break
                time.sleep(0.2)
            assert seen == sorted(seen)  # never backwards
            assert len(status["request_status"]) == 300
            ids = {http.get(f"/batches/{batch['id']}/request-{i}").json()["id"] for i in range(300)}
            assert len(ids) == 300  # one job per item: none lost, none duplicated
    finally:
        server.stop()


def test_batch_items_carry_formats_and_tools(http: httpx.Client):
    schema = {
        "type": "object",
        "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5}},
        "required": ["score"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "name": "score", "schema": schema, "strict": True}
    tool = {"type": "function", "name": "lookup", "parameters": schema}
    body = items(2, text={"format": fmt})
    body[1]["params"] |= {"tools": [tool], "tool_choice": "required", "max_output_tokens": 40}
    del body[1]["params"]["text"]
    batch = http.post("/batches", json={"endpoint": "/v1/responses", "requests": body}).json()
    wait_done(http, batch["id"])
    scored = http.get(f"/batches/{batch['id']}/request-0").json()
    assert orjson.loads(scored["output"][0]["content"][0]["text"]) == {"score": 1}
    called = http.get(f"/batches/{batch['id']}/request-1").json()
    assert [(o["type"], o["name"], o["arguments"]) for o in called["output"]] == [
        ("function_call", "lookup", '{"score":1}')
    ]
    bad = items(3, text={"format": {**fmt, "schema": {"type": "object", "oneOf": []}}})
    err = _error(http.post("/batches", json={"endpoint": "/v1/responses", "requests": bad}))
    assert err["param"] == "requests[0].params.text.format.schema.oneOf", err
