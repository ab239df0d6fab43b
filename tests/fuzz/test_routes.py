"""No 5xx for anything a client sends, and every error in its documented envelope.

Hypothesis drives every route of the app (the fake engine, a real SQLite store) with bodies made
from the wire models (mostly valid, then bent), arbitrary JSON and raw bytes, odd query strings,
other tenants' ids and multipart forms, and asserts that no answer is a 5xx and that every 4xx is
OpenAI's envelope (Anthropic's on ``/v1/messages``). ``make test`` runs ``FUZZ_EXAMPLES`` (300);
``make fuzz`` runs 20,000 (``make fuzz FUZZ_EXAMPLES=100000``) and prints the tally.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route
from starlette.testclient import TestClient

from leeway.api import chat, messages, responses
from leeway.app import build_app
from tests.conftest import FAKE_MODEL, add_keys, fake_settings
from tests.fuzz.bodies import (
    bent,
    encoded,
    from_schema,
    json_values,
    query_values,
    raw_bodies,
    text,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
BODIES = {
    "/v1/responses": from_schema(responses.CreateResponse.model_json_schema()),
    "/v1/chat/completions": from_schema(chat.CreateChatCompletion.model_json_schema()),
    "/v1/messages": from_schema(messages.CreateMessage.model_json_schema()),
}
QUERY = ["limit", "after", "after_id", "before_id", "purpose", "stream", "starting_after", "job_id"]
tally: Counter[int] = Counter()


class Fuzzed:
    def __init__(self, http: TestClient, keys: list[str]) -> None:
        self.http, self.keys = http, keys
        self.ids: dict[str, list[str]] = {key: [] for key in keys}  # what each tenant made
        self.routes = [
            (r.path, method)
            for r in http.app.routes  # type: ignore[attr-defined]
            if isinstance(r, Route)
            for method in sorted(set(r.methods or ()) - {"HEAD"})
        ]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    settings_ = fake_settings(tmp, max_body_bytes=256 * 1024)
    keys = add_keys(settings_, "alpha", "beta")
    with TestClient(build_app(settings_), raise_server_exceptions=False) as http:
        f = Fuzzed(http, keys)
        for key in keys:  # one object of each kind per tenant, so ids of both are at hand
            seed(f, key)
        yield f
    if tally:
        total = sum(tally.values())
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(tally.items()))
        print(
            f"\nfuzz: {total} requests, {sum(n for s, n in tally.items() if s >= 500)} 5xx ({shown})"
        )


def seed(f: Fuzzed, key: str) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    body = {"model": FAKE_MODEL, "input": "hi", "background": True}
    f.ids[key].append(f.http.post("/v1/responses", json=body, headers=auth).json()["id"])
    line = encoded({"custom_id": "a", "method": "POST", "url": "/v1/responses", "body": body})
    up = f.http.post(
        "/v1/files", files={"file": ("in.jsonl", line)}, data={"purpose": "batch"}, headers=auth
    )
    f.ids[key].append(up.json()["id"])
    batch = {"input_file_id": up.json()["id"], "endpoint": "/v1/responses"}
    f.ids[key].append(f.http.post("/v1/batches", json=batch, headers=auth).json()["id"])


def path_of(template: str, f: Fuzzed, data: st.DataObject) -> str:
    path = template
    for name in ("{id}", "{custom_id:path}"):
        if name in path:
            value = data.draw(known(f) | text | st.sampled_from(["a", "resp_x"]))
            path = path.replace(name, escaped(value) or "x")
    return path


def escaped(value: str) -> str:
    """Percent-encoded as UTF-8; a lone surrogate as the bytes it would be (not valid UTF-8)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def known(f: Fuzzed) -> st.SearchStrategy[str]:
    """An id one of the tenants made. Drawn as an index, so that what the draws are does not
    depend on how many ids there are by then (Hypothesis replays draws)."""
    ids = [i for made in f.ids.values() for i in made]
    return st.integers(0, 1 << 20).map(lambda n: ids[n % len(ids)])


def body_of(path: str, f: Fuzzed, data: st.DataObject) -> tuple[bytes, dict[str, str]]:
    """The body and its content type for a request to ``path``."""
    json_type = {"content-type": "application/json"}
    if data.draw(st.integers(0, 9)) == 0:
        return data.draw(raw_bodies), json_type
    if path in BODIES:
        return encoded(data.draw(bent(BODIES[path]))), json_type
    if path == "/v1/batches":
        return encoded(data.draw(bent(batch_bodies(f)))), json_type
    if path == "/v1/files":
        return multipart(data)
    return encoded(data.draw(json_values)), json_type


def batch_bodies(f: Fuzzed) -> st.SearchStrategy[dict[str, Any]]:
    item = st.fixed_dictionaries(
        {
            "custom_id": text | st.text("ab", min_size=1, max_size=3),
            "params": BODIES["/v1/responses"],
        }
    )
    reference = st.fixed_dictionaries(
        {"endpoint": st.just("/v1/responses"), "requests": st.lists(item, max_size=3)},
        optional={"label": text, "metadata": json_values},
    )
    openai = st.fixed_dictionaries(
        {"input_file_id": known(f) | json_values},
        optional={
            "endpoint": st.sampled_from(["/v1/responses", "/v1/chat/completions"]) | text,
            "completion_window": st.sampled_from(["24h", "flex", "standard"]) | json_values,
            "metadata": json_values,
        },
    )
    return reference | openai


def multipart(data: st.DataObject) -> tuple[bytes, dict[str, str]]:
    boundary = data.draw(st.sampled_from(["b", "xx", "----boundary"]))
    name = data.draw(text | st.just("x" * 20_000) | st.just("in.jsonl"))
    lines = data.draw(
        st.lists(st.binary(max_size=40) | st.builds(encoded, json_values), max_size=3)
    )
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'.encode()
        + data.draw(st.sampled_from([b"batch", b"x", b""]))
        + b"\r\n",
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/jsonl\r\n\r\n".encode(errors="surrogateescape")
        + b"\n".join(lines)
        + b"\r\n",
    ]
    body = b"".join(data.draw(st.permutations(parts))) + f"--{boundary}--\r\n".encode()
    if data.draw(st.booleans()):
        cut = data.draw(st.integers(0, len(body)))
        body = body[:cut] + data.draw(st.binary(max_size=8))  # malformed
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


def headers_of(f: Fuzzed, data: st.DataObject) -> dict[str, str]:
    key = data.draw(st.sampled_from([f.keys[0]] * 7 + [f.keys[1]] * 2 + ["lw-nope", ""]))
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if data.draw(st.integers(0, 4)) == 0:
        headers["Idempotency-Key"] = data.draw(st.text("abc", min_size=0, max_size=300))
    if data.draw(st.booleans()):
        headers["X-Stainless-Lang"] = "python"
    return headers


def check_envelope(path: str, body: Any) -> None:
    if path.startswith("/v1/messages"):  # Anthropic's: the request's id beside the error
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
        assert set(body) == {"type", "error", "request_id"}
        assert body["request_id"].startswith("req_")
    else:  # OpenAI's: the request's id inside the error
        assert set(body) == {"error"}
        assert set(body["error"]) == {"message", "type", "param", "code", "request_id"}
        assert body["error"]["request_id"].startswith("req_")
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_no_request_gets_a_5xx_and_every_error_is_enveloped(fuzzed: Fuzzed, data: st.DataObject):
    template, method = data.draw(st.sampled_from(fuzzed.routes))
    path = path_of(template, fuzzed, data)
    query = data.draw(st.dictionaries(st.sampled_from(QUERY), query_values, max_size=3))
    headers = headers_of(fuzzed, data)
    content = b""
    if method == "POST":
        content, kind = body_of(template, fuzzed, data)
        headers.update(kind)
    if query:
        path += "?" + "&".join(f"{k}={escaped(v)}" for k, v in query.items())
    r = fuzzed.http.request(method, path, content=content, headers=headers)
    tally[r.status_code] += 1
    assert r.status_code < 500, (
        f"{method} {path} {query} → {r.status_code} {r.text[:300]}\n{content[:500]!r}"
    )
    html = r.headers.get("content-type", "").startswith("text/html")
    if r.status_code >= 400 and html and path.startswith("/dashboard"):  # a page for a person
        assert "<html" in r.text
    elif r.status_code >= 400:
        check_envelope(path, r.json())
    elif method == "POST" and r.headers.get("content-type") == "application/json":
        remember(fuzzed, headers, r.json())


def remember(fuzzed: Fuzzed, headers: dict[str, str], made: Any) -> None:
    """Keep the id of what a request made, to send back in later requests (a few hundred)."""
    if isinstance(made, dict) and isinstance(made.get("id"), str):
        key = headers.get("Authorization", "").removeprefix("Bearer ")
        if key in fuzzed.ids and len(fuzzed.ids[key]) < 200:
            fuzzed.ids[key].append(made["id"])
