"""Hostile and careless input (issue: hardening): each cause of a 500 found from outside, and each
bound, answered 4xx naming the field (and the bound)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from leeway.app import build_app
from tests.conftest import FAKE_MODEL, Client, add_keys, fake_settings


def nested(depth: int) -> dict:
    value: dict = {"type": "string"}
    for _ in range(depth):
        value = {"type": "object", "properties": {"a": value}}
    return value


def error(r, status: int = 400) -> dict:
    assert r.status_code == status, r.text
    return r.json()["error"]


@pytest.mark.parametrize("route", ["/v1/batches", "/v1/files", "/v1/webhooks/deliveries"])
@pytest.mark.parametrize("limit", ["²", "٣", "1e3", "99999999999999999999"])
def test_a_limit_that_is_not_ascii_digits_is_400(client: Client, route: str, limit: str):
    got = error(client.http.get(f"{route}?limit={limit}", headers=client.headers()))
    assert got["param"] == "limit" and "integer from 1 to" in got["message"]


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        (
            "/v1/responses",
            {"text": {"format": {"type": "json_schema", "name": "x", "schema": nested(150)}}},
            "text.format.schema",
        ),
        (
            "/v1/responses",
            {"tools": [{"type": "function", "name": "f", "parameters": nested(150)}]},
            "tools[0].parameters",
        ),
        (
            "/v1/chat/completions",
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": nested(40)},
                }
            },
            "response_format.json_schema.schema",
        ),
    ],
)
def test_json_nested_past_what_is_stored_is_400_naming_the_field(client, route, body, param):
    base = {"model": FAKE_MODEL}
    base |= (
        {"input": "hi"}
        if route == "/v1/responses"
        else {"messages": [{"role": "user", "content": "hi"}]}
    )
    got = error(client.http.post(route, json=base | body, headers=client.headers()))
    assert got["param"] == param and "deeper than 64 levels" in got["message"]


def test_a_tool_use_input_nested_too_deep_is_400_in_anthropics_shape(client: Client):
    deep: dict = {}
    for _ in range(300):
        deep = {"a": deep}
    body = {
        "model": FAKE_MODEL,
        "max_tokens": 8,
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": deep}],
            }
        ],
    }
    r = client.http.post("/v1/messages", json=body, headers=client.headers())
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert "deeper than 64 levels" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("route", "body", "param", "bound"),
    [
        ("/v1/messages", {"stop_sequences": ["x"] * 65}, "stop_sequences", "64"),
        ("/v1/messages", {"stop_sequences": ["x" * 257]}, "stop_sequences[0]", "256"),
        ("/v1/chat/completions", {"stop": ["a", "b", "c", "d", "e"]}, "stop", "4"),
        ("/v1/chat/completions", {"user": "u" * 65}, "user", "64"),
        ("/v1/responses", {"user": "u" * 65}, "user", "64"),
        ("/v1/responses", {"previous_response_id": "r" * 257}, "previous_response_id", "256"),
        (
            "/v1/responses",
            {"tools": [{"type": "function", "name": f"f{i}"} for i in range(129)]},
            "tools",
            "128",
        ),
    ],
)
def test_each_bound_is_400_naming_the_field_and_the_bound(client, route, body, param, bound):
    base: dict = {"model": FAKE_MODEL}
    if route == "/v1/responses":
        base["input"] = "hi"
    else:
        base["messages"] = [{"role": "user", "content": "hi"}]
    if route == "/v1/messages":
        base["max_tokens"] = 8
    r = client.http.post(route, json=base | body, headers=client.headers())
    assert r.status_code == 400, r.text
    got = r.json()["error"]
    assert bound in got["message"]
    assert route == "/v1/messages" or got["param"] == param


@pytest.mark.parametrize(
    "body",
    [
        b'{"endpoint": "/v1/responses", "label": "\xff\xfe", "requests": []}',
        b'{"endpoint": "/v1/responses", "metadata": {"a": "\\udc00"}, "requests": []}',
        b'{"endpoint": "/v1/responses", "requests": [{"custom_id": "a", "params": '
        b'{"model": "fake-model", "input": "\\udc00x"}}]}',
    ],
)
def test_a_batch_body_that_is_not_utf8_is_400(client: Client, body: bytes):
    error(client.http.post("/v1/batches", content=body, headers=client.headers()))


@pytest.mark.parametrize("file_id", [1, [], {}, None, True, "x" * 10_000])
def test_an_input_file_id_that_names_no_file_is_404(client: Client, file_id):
    body = {"input_file_id": file_id, "endpoint": "/v1/responses"}
    got = error(client.http.post("/v1/batches", json=body, headers=client.headers()), 404)
    assert got["param"] == "input_file_id"


def upload(c: Client, name: str, content: bytes = b'{"a": 1}\n', **data):
    return c.http.post(
        "/v1/files",
        files={"file": (name, content)},
        data={"purpose": "batch", **data},
        headers=c.headers(),
    )


def test_a_long_file_name_is_kept_and_one_past_the_part_bound_is_400(client: Client):
    r = upload(client, "x" * 5000 + ".jsonl")
    assert r.status_code == 200 and r.json()["filename"] == "x" * 5000 + ".jsonl"
    got = error(upload(client, "y" * 20_000))
    assert got["param"] == "file" and "16 KiB" in got["message"]


@pytest.mark.parametrize(
    "form",
    [
        b"garbage",
        b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--b--garbage',
        b"--b\r\nbad header line\r\n\r\n",
    ],
)
def test_a_malformed_form_is_400(client: Client, form: bytes):
    headers = {**client.headers(), "content-type": "multipart/form-data; boundary=b"}
    r = client.http.post("/v1/files", content=form, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["param"] in ("file", "purpose")


def test_fields_beside_the_file_count_toward_the_size_cap(tmp_path: Path):
    settings = fake_settings(tmp_path, max_batch_bytes=10_000)
    (key,) = add_keys(settings, "alpha")
    with TestClient(build_app(settings)) as http:
        r = http.post(
            "/v1/files",
            files={"file": ("a.jsonl", b'{"a": 1}\n')},
            data={"purpose": "batch", "other": "o" * 200_000},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert r.status_code == 413


def test_list_cursors_of_another_tenant_answer_as_unknown_ids(client: Client):
    def batch(key: str | None) -> str:
        up = client.http.post(
            "/v1/files",
            files={
                "file": (
                    "a.jsonl",
                    b'{"custom_id": "a", "body": {"model": "fake-model", "input": "x"}}\n',
                )
            },
            data={"purpose": "batch"},
            headers=client.headers(key),
        ).json()["id"]
        body = {"input_file_id": up, "endpoint": "/v1/responses"}
        return client.http.post("/v1/batches", json=body, headers=client.headers(key)).json()["id"]

    mine, theirs = batch(None), batch(client.other_key)
    theirs_file = client.http.get("/v1/files", headers=client.headers(client.other_key)).json()
    theirs_file = theirs_file["data"][0]["id"]
    for query in ("after={}", "after_id={}", "before_id={}"):
        unknown = client.http.get(
            f"/v1/batches?{query.format('batch_nope')}", headers=client.headers()
        )
        foreign = client.http.get(f"/v1/batches?{query.format(theirs)}", headers=client.headers())
        assert foreign.status_code == unknown.status_code == 200
        assert foreign.json() == unknown.json()
    own = client.http.get(f"/v1/batches?before_id={mine}", headers=client.headers())
    assert own.status_code == 200
    unknown = client.http.get("/v1/files?after=file-nope", headers=client.headers()).json()
    foreign = client.http.get(f"/v1/files?after={theirs_file}", headers=client.headers()).json()
    assert foreign == unknown and foreign["data"] == []
