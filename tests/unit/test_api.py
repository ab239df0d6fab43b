"""The HTTP surface on the fake engine and a real SQLite store."""

from __future__ import annotations

import time

import pytest

from leeway.store import SqlStore
from tests.conftest import FAKE_MODEL, Client


def create(c: Client, body: dict, key: str | None = None):
    return c.http.post("/v1/responses", json=body, headers=c.headers(key))


def error_of(r) -> dict:
    """The OpenAI envelope, its request id the one the response's headers carry."""
    body = r.json()
    fields = {"message", "type", "param", "code", "request_id"}
    assert set(body) == {"error"} and set(body["error"]) == fields
    assert body["error"]["request_id"] == r.headers["x-request-id"] == r.headers["request-id"]
    return body["error"]


def poll(c: Client, rid: str, key: str | None = None) -> dict:
    for _ in range(200):
        body = c.http.get(f"/v1/responses/{rid}", headers=c.headers(key)).json()
        if body["status"] not in ("queued", "in_progress"):
            return body
        time.sleep(0.02)
    raise AssertionError(f"{rid} never finished")


def test_missing_or_wrong_key_is_401_in_the_openai_envelope(client: Client):
    r = client.http.get("/v1/models")
    assert r.status_code == 401 and error_of(r)["code"] == "invalid_api_key"
    r = client.http.get("/v1/models", headers={"Authorization": "Bearer lw-nope"})
    assert r.status_code == 401 and "Incorrect API key" in error_of(r)["message"]


def test_models_list_reports_windows(client: Client):
    data = client.http.get("/v1/models", headers=client.headers()).json()
    assert data["object"] == "list"
    by_id = {m["id"]: m for m in data["data"]}
    assert by_id[FAKE_MODEL]["completion_windows"] == ["asap", "priority", "standard", "flex"]
    assert by_id["fake-asap-flex"]["completion_windows"] == ["asap", "flex"]


def test_background_is_202_queued_then_completes(client: Client):
    r = create(client, {"model": FAKE_MODEL, "input": "hi", "background": True})
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "queued" and body["id"].startswith("resp_") and body["output"] == []
    done = poll(client, body["id"])
    assert done["status"] == "completed" and done["completed_at"] >= done["created_at"]
    assert (
        done["output"][0]["content"][0]["text"] == "fake fake1 fake2 fake3 fake4 fake5 fake6 fake7 "
    )
    # "hi" is one word; the fake engine counts words + 3 per message
    assert done["usage"] == {
        "input_tokens": 4,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 8,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 12,
    }


def test_blocking_returns_the_result(client: Client):
    r = create(
        client,
        {
            "model": FAKE_MODEL,
            "input": [{"role": "user", "content": "hi"}],
            "instructions": "be brief",
            "max_output_tokens": 50,
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "completed" and body["instructions"] == "be brief"
    assert body["usage"]["input_tokens"] == 4 + 5  # the instructions became a system message


def test_capped_output_is_reported(client: Client):
    body = create(client, {"model": FAKE_MODEL, "input": "hi", "max_output_tokens": 3}).json()
    assert body["status"] == "completed"  # as the reference service reports it
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["usage"]["output_tokens"] == 3 and body["max_output_tokens"] == 3


def test_other_tenants_ids_are_404(client: Client):
    rid = create(client, {"model": FAKE_MODEL, "input": "hi", "background": True}).json()["id"]
    r = client.http.get(f"/v1/responses/{rid}", headers=client.headers(client.other_key))
    assert r.status_code == 404 and rid in error_of(r)["message"]
    assert client.http.get(f"/v1/responses/{rid}", headers=client.headers()).status_code == 200
    r = client.http.get("/v1/responses/resp_doesnotexist", headers=client.headers())
    assert r.status_code == 404


def test_unknown_model_is_404_model_not_found(client: Client):
    r = create(client, {"model": "gpt-9", "input": "hi"})
    assert r.status_code == 404
    err = error_of(r)
    assert (
        err["code"] == "model_not_found" and "gpt-9" in err["message"] and err["param"] == "model"
    )


@pytest.mark.parametrize(
    ("raw", "needle"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"), (b"", "not valid JSON")],
)
def test_malformed_bodies_are_400(client: Client, raw: bytes, needle: str):
    r = client.http.post("/v1/responses", content=raw, headers=client.headers())
    assert r.status_code == 400 and needle in error_of(r)["message"]


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        ({"input": "hi"}, "model", "Missing required parameter"),
        ({"model": FAKE_MODEL}, "input", "Missing required parameter"),
        ({"model": FAKE_MODEL, "input": 7}, "input", "Invalid value for 'input'"),
        (
            {"model": FAKE_MODEL, "input": "hi", "temperature": 5},
            "temperature",
            "less than or equal to 2",
        ),
        ({"model": FAKE_MODEL, "input": "hi", "top_p": -1}, "top_p", "greater than or equal to 0"),
        (
            {"model": FAKE_MODEL, "input": "hi", "max_output_tokens": 0},
            "max_output_tokens",
            "greater than or equal to 1",
        ),
        (
            {"model": FAKE_MODEL, "input": "hi", "max_output_tokens": "9"},
            "max_output_tokens",
            "valid integer",
        ),
        (
            {"model": FAKE_MODEL, "input": [{"role": "robot", "content": "x"}]},
            "input[0].role",
            "'system', 'developer', 'user' or 'assistant'",
        ),
        (
            {
                "model": FAKE_MODEL,
                "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}],
            },
            "input[0].content[0].type",
            "'input_text' or 'output_text'",
        ),
        ({"model": FAKE_MODEL, "input": "hi", "metadata": {"k": 1}}, "metadata.k", "valid string"),
        (
            {"model": FAKE_MODEL, "input": "hi", "metadata": {f"k{i}": "v" for i in range(17)}},
            "metadata",
            "at most 16",
        ),
        ({"model": FAKE_MODEL, "input": "hi", "bogus": 1}, "bogus", "Unknown parameter"),
        (
            {
                "model": FAKE_MODEL,
                "input": "hi",
                "tools": [{"type": "function", "name": "f", "parameters": {"type": "integer2"}}],
            },
            "tools[0].parameters.type",
            "'integer2' is not a JSON Schema type",
        ),
        (
            {"model": FAKE_MODEL, "input": "hi", "reasoning": {"effort": "low"}},
            "reasoning",
            "The model 'fake-model' does not reason",
        ),
        (
            {
                "model": FAKE_MODEL,
                "input": "hi",
                "text": {
                    "format": {
                        "type": "json_schema",
                        "name": "x",
                        "schema": {"type": "object", "properties": {"a": {"type": "integer2"}}},
                    }
                },
            },
            "text.format.schema.properties.a.type",
            "'integer2' is not a JSON Schema type",
        ),
        ({"model": FAKE_MODEL, "input": "hi", "store": False}, "store", "stores every response"),
        ({"model": FAKE_MODEL, "input": []}, "input", "at least one message"),
    ],
)
def test_invalid_fields_are_400_naming_the_field(client: Client, body, param, needle):
    r = create(client, body)
    assert r.status_code == 400, r.text
    err = error_of(r)
    assert err["param"] == param and needle in err["message"], err
    assert err["type"] == "invalid_request_error"


def test_default_valued_unsupported_parameters_are_accepted(client: Client):
    body = {
        "model": FAKE_MODEL,
        "input": "hi",
        "stream": False,
        "store": True,
        "tools": [],
        "truncation": "disabled",
        "text": {"format": {"type": "text"}},
    }
    assert create(client, body).status_code == 200


def test_oversize_body_is_413(client: Client):
    r = create(client, {"model": FAKE_MODEL, "input": "x" * 70_000})
    assert r.status_code == 413 and "65,536 bytes" in error_of(r)["message"]


def test_input_longer_than_context_is_400_saying_how_long_it_may_be(client: Client):
    r = create(client, {"model": FAKE_MODEL, "input": "word " * 300})
    assert r.status_code == 400
    err = error_of(r)
    assert err["code"] == "context_length_exceeded" and "at most 255 tokens" in err["message"]


def test_window_rules(client: Client):
    def window(body: dict) -> str:
        r = create(client, {"model": FAKE_MODEL, "input": "hi", **body})
        assert r.status_code in (200, 202), r.text
        return r.json()["completion_window"]

    assert window({}) == "standard"
    assert window({"background": True, "metadata": {"completion_window": "24h"}}) == "flex"
    assert window({"metadata": {"completion_window": "15m"}}) == "priority"
    assert window({"metadata": {"completion_window": "asap"}}) == "asap"
    r = create(
        client, {"model": FAKE_MODEL, "input": "hi", "metadata": {"completion_window": "flex"}}
    )
    assert r.status_code == 400 and "background" in error_of(r)["message"]

    r = create(client, {"model": "fake-asap-flex", "input": "hi", "background": True})
    assert r.json()["completion_window"] == "flex"
    r = create(client, {"model": "fake-asap-flex", "input": "hi"})
    assert r.json()["completion_window"] == "asap"
    r = create(
        client,
        {"model": "fake-asap-flex", "input": "hi", "metadata": {"completion_window": "standard"}},
    )
    assert r.status_code == 400
    err = error_of(r)
    assert err["type"] == "invalid_request_error" and "'asap', 'flex'" in err["message"]


def test_unknown_routes_are_404_in_the_envelope_whatever_the_method(client: Client):
    """A path that matches another route's template with another method is no route either."""
    for method, path in [
        ("GET", "/v1/nothing"),
        ("DELETE", "/v1/responses"),
        ("POST", "/v1/responses/compact"),
        ("PUT", "/v1/chat/completions"),
    ]:
        r = client.http.request(method, path, headers=client.headers())
        assert r.status_code == 404, (method, path)
        error = error_of(r)
        assert error["code"] == "not_found" and f"{method} {path}" in error["message"]
    r = client.http.request("POST", "/v1/messages/nothing", headers=client.headers())
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert r.json()["request_id"] == r.headers["request-id"]


def test_health_reports_engines(client: Client):
    body = client.http.get("/health").json()
    assert body["status"] == "ok" and body["engines"][FAKE_MODEL]["parallel"] == 4


def test_metrics_in_prometheus_format(client: Client):
    queued = create(
        client,
        {
            "model": FAKE_MODEL,
            "input": "hi",
            "background": True,
            "metadata": {"completion_window": "priority"},
        },
    ).json()
    poll(client, queued["id"])
    create(client, {"model": FAKE_MODEL, "input": "hi", "max_output_tokens": 3})
    r = client.http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'leeway_queue_depth{window="flex"} 0.0' in text
    assert 'leeway_turn_seconds_count{window="priority"} 1.0' in text
    assert 'leeway_turn_seconds_count{window="standard"} 1.0' in text
    assert 'leeway_output_tokens_total{model="fake-model"} 11.0' in text  # 8 + 3
    assert f'leeway_engine_utilization{{model="{FAKE_MODEL}"}} 0.0' in text
    assert 'leeway_deadline_misses_total{window="priority"}' not in text  # none missed


def test_a_final_response_is_read_from_the_store_each_time(client: Client, monkeypatch):
    """No process keeps final objects of its own: another process may delete or change them."""
    rid = create(client, {"model": FAKE_MODEL, "input": "hi", "background": True}).json()["id"]
    done = poll(client, rid)
    reads = []
    original = SqlStore.get

    async def counting(self, tenant, job_id):
        reads.append(job_id)
        return await original(self, tenant, job_id)

    monkeypatch.setattr(SqlStore, "get", counting)
    again = client.http.get(f"/v1/responses/{rid}", headers=client.headers())
    assert again.json() == done and reads == [rid]
    other = client.http.get(f"/v1/responses/{rid}", headers=client.headers(client.other_key))
    assert other.status_code == 404  # another tenant's
    assert client.http.delete(f"/v1/responses/{rid}", headers=client.headers()).status_code == 200
    assert client.http.get(f"/v1/responses/{rid}", headers=client.headers()).status_code == 404
