"""Running Leeway as a service, through the HTTP API on the fake engine and a real SQLite store: the
key lifecycle, the admin routes (403 for a tenant's key), usage and costs in OpenAI's shapes (each
bad parameter a 4xx naming it), budgets, and the cost shown beside usage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request
from starlette.testclient import TestClient

from leeway.api.auth import Authenticator
from leeway.app import build_app, store_from
from leeway.catalog import ModelConfig, Price
from leeway.jobs import Window
from leeway.keys import issue
from leeway.settings import Limits, Settings
from tests.conftest import FAKE_MODEL, UnitStore, fake_settings

# 8 output tokens a reply; the prompt "hello there" is 5 tokens on the fake engine
PRICED = ModelConfig(
    FAKE_MODEL,
    engine="fake",
    parallel=4,
    context=256,
    fake_tokens=8,
    prices={Window.STANDARD: Price(1000.0, 2000.0), Window.FLEX: Price(200.0, 400.0)},
)
REPLY_COST = (5 * 1000.0 + 8 * 2000.0) / 1e6  # a standard reply: $0.021


@dataclass
class Service:
    http: TestClient
    settings: Settings
    admin: str  # an admin key of tenant "ops"
    alpha: str  # tenant alpha's key
    beta: str

    def get(self, path: str, key: str, **params: Any) -> httpx.Response:
        return self.http.get(path, headers=auth(key), params=params)

    def respond(self, key: str, **body: Any) -> httpx.Response:
        payload = {"model": FAKE_MODEL, "input": "hello there", **body}
        return self.http.post("/v1/responses", headers=auth(key), json=payload)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def add(settings: Settings, tenant: str, **options: Any) -> str:
    async def work() -> str:
        store = store_from(settings)
        try:
            issued = issue(tenant, time.time(), **options)
            await store.add_key(issued.key, issued.value)
            return issued.value
        finally:
            await store.close()

    return asyncio.run(work())


def service(tmp_path: Path, **overrides: Any) -> Iterator[Service]:
    settings = fake_settings(tmp_path, models=(PRICED,), **overrides)
    keys = add(settings, "ops", admin=True), add(settings, "alpha"), add(settings, "beta")
    with TestClient(build_app(settings)) as http:
        yield Service(http, settings, *keys)


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    yield from service(tmp_path)


def test_admin_routes_answer_403_to_a_tenants_key(svc: Service):
    routes = [
        ("GET", "/v1/organization/projects"),
        ("POST", "/v1/organization/projects"),
        ("GET", "/v1/organization/projects/alpha"),
        ("POST", "/v1/organization/projects/alpha/archive"),
        ("GET", "/v1/organization/projects/alpha/api_keys"),
        ("POST", "/v1/organization/projects/alpha/api_keys"),
        ("DELETE", "/v1/organization/projects/alpha/api_keys/key_x"),
        ("GET", "/v1/organization/admin_api_keys"),
        ("POST", "/v1/organization/admin_api_keys"),
    ]
    for method, path in routes:
        r = svc.http.request(method, path, headers=auth(svc.alpha), json={"name": "x"})
        assert r.status_code == 403, (method, path)
        assert r.json()["error"]["code"] == "permission_denied"
        assert "admin key" in r.json()["error"]["message"]
    assert svc.http.get("/v1/organization/projects").status_code == 401  # and no key: 401


def test_projects_are_created_listed_renamed_and_archived(svc: Service):
    made = svc.http.post(
        "/v1/organization/projects", headers=auth(svc.admin), json={"name": "Team C", "id": "c"}
    )
    assert made.status_code == 200
    assert made.json() | {"created_at": 0} == {
        "object": "organization.project",
        "id": "c",
        "name": "Team C",
        "created_at": 0,
        "archived_at": None,
        "status": "active",
    }
    generated = svc.http.post(
        "/v1/organization/projects", headers=auth(svc.admin), json={"name": "No id"}
    ).json()
    assert generated["id"].startswith("proj_")
    again = svc.http.post(
        "/v1/organization/projects", headers=auth(svc.admin), json={"name": "x", "id": "c"}
    )
    assert again.status_code == 400 and again.json()["error"]["param"] == "id"
    listed = svc.get("/v1/organization/projects", svc.admin, limit=2).json()
    assert [p["id"] for p in listed["data"]] == ["ops", "alpha"] and listed["has_more"]
    rest = svc.get("/v1/organization/projects", svc.admin, after="alpha").json()
    assert [p["id"] for p in rest["data"]] == ["beta", "c", generated["id"]]
    renamed = svc.http.post(
        "/v1/organization/projects/c", headers=auth(svc.admin), json={"name": "Team Cee"}
    )
    assert renamed.json()["name"] == "Team Cee"
    archived = svc.http.post("/v1/organization/projects/alpha/archive", headers=auth(svc.admin))
    assert archived.json()["status"] == "archived"
    r = svc.respond(svc.alpha)
    assert r.status_code == 401 and "archived" in r.json()["error"]["message"]
    ids = [p["id"] for p in svc.get("/v1/organization/projects", svc.admin).json()["data"]]
    assert "alpha" not in ids
    missing = svc.get("/v1/organization/projects/nope", svc.admin)
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "project_id"


def test_a_project_key_is_shown_once_listed_and_revoked(svc: Service):
    path = "/v1/organization/projects/alpha/api_keys"
    made = svc.http.post(
        path, headers=auth(svc.admin), json={"name": "ci", "expires_in_seconds": 3600}
    )
    assert made.status_code == 200
    key = made.json()
    assert key["object"] == "organization.project.api_key" and key["value"].startswith("lw-")
    assert key["redacted_value"] == key["value"][:8] + "…"
    assert key["expires_at"] - time.time() == pytest.approx(3600, abs=60)
    assert key["owner"]["type"] == "service_account" and key["owner_project_access"] == "active"
    assert svc.respond(key["value"], background=True).status_code == 202
    listed = svc.get(path, svc.admin).json()
    assert [k["name"] for k in listed["data"]] == ["", "ci"]
    assert all("value" not in k for k in listed["data"])
    got = svc.get(f"{path}/{key['id']}", svc.admin).json()
    assert got["id"] == key["id"] and "value" not in got
    gone = svc.http.delete(f"{path}/{key['id']}", headers=auth(svc.admin))
    assert gone.json() == {
        "object": "organization.project.api_key.deleted",
        "id": key["id"],
        "deleted": True,
    }
    time.sleep(0.6)  # this process remembered the key for half a second at most
    r = svc.respond(key["value"], background=True)
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    assert [k["name"] for k in svc.get(path, svc.admin).json()["data"]] == [""]
    every = svc.get(path, svc.admin, include_revoked="true").json()["data"]
    assert [k["revoked_at"] is not None for k in every] == [False, True]
    wrong = svc.get(f"/v1/organization/projects/beta/api_keys/{key['id']}", svc.admin)
    assert wrong.status_code == 404 and wrong.json()["error"]["param"] == "key_id"


def test_bad_key_bodies_and_params_are_400_naming_them(svc: Service):
    path = "/v1/organization/projects/alpha/api_keys"
    for body, param in [
        ({"expires_in_seconds": 0}, "expires_in_seconds"),
        ({"expires_in_seconds": "soon"}, "expires_in_seconds"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
    ]:
        r = svc.http.post(path, headers=auth(svc.admin), json=body)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, body
    for params, param in [({"limit": "0"}, "limit"), ({"colour": "red"}, "colour")]:
        r = svc.get(path, svc.admin, **params)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, params
    r = svc.http.post(
        "/v1/organization/projects", headers=auth(svc.admin), json={"name": "x", "id": "a b"}
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "id"


def test_admin_keys_are_made_listed_and_revoked_but_not_by_themselves(svc: Service):
    path = "/v1/organization/admin_api_keys"
    made = svc.http.post(path, headers=auth(svc.admin), json={"name": "second"}).json()
    assert made["object"] == "organization.admin_api_key" and made["admin"]
    assert svc.get("/v1/organization/projects", made["value"]).status_code == 200
    listed = svc.get(path, svc.admin).json()["data"]
    assert [k["name"] for k in listed] == ["", "second"]
    first_id = listed[0]["id"]
    itself = svc.http.delete(f"{path}/{first_id}", headers=auth(svc.admin))
    assert itself.status_code == 400 and itself.json()["error"]["param"] == "key_id"
    assert svc.http.delete(f"{path}/{first_id}", headers=auth(made["value"])).json()["deleted"]
    assert svc.get(f"{path}/{listed[0]['id']}", made["value"]).json()["revoked_at"] is not None
    time.sleep(0.6)
    assert svc.get("/v1/organization/projects", svc.admin).status_code == 401


def test_an_expired_key_is_401_saying_it_expired(svc: Service):
    old = add(svc.settings, "alpha", expires_at=time.time() - 1)
    r = svc.respond(old)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert "expired at" in r.json()["error"]["message"]


def request(key: str) -> Request:
    return Request({"type": "http", "headers": [(b"authorization", f"Bearer {key}".encode())]})


async def test_the_last_use_is_written_off_the_request_path_at_most_once_a_minute():
    store, now = UnitStore(), [1000.0]
    issued = issue("alpha", 0.0)
    await store.add_key(issued.key, issued.value)
    auth = Authenticator(store, wall=lambda: now[0])

    async def last_used() -> float | None:
        key = await store.get_key(issued.key.id)
        assert key is not None
        return key.last_used_at

    assert (await auth.caller(request(issued.value))).key_id == issued.key.id
    assert await last_used() is None  # nothing is written on the request's path
    assert await auth.write_use() == 1 and await last_used() == 1000.0
    now[0] = 1030.0
    await auth.caller(request(issued.value))
    assert await auth.write_use() == 0 and await last_used() == 1000.0  # within the minute
    now[0] = 1061.0
    await auth.caller(request(issued.value))
    assert await auth.write_use() == 1 and await last_used() == 1061.0
    await store.close()


def finished(svc: Service, key: str, n: int, **body: Any) -> list[dict[str, Any]]:
    return [svc.respond(key, **body).json() for _ in range(n)]


def test_each_response_shows_what_it_cost_and_its_window(svc: Service):
    r = svc.respond(svc.alpha)
    assert r.status_code == 200
    body = r.json()
    assert body["usage"]["input_tokens"] == 5 and body["usage"]["output_tokens"] == 8
    assert body["cost"] == {
        "value": pytest.approx(REPLY_COST),
        "currency": "usd",
        "completion_window": "standard",
        "input_price": 1000.0,
        "output_price": 2000.0,
        "price_unit": "1M tokens",
    }
    chat = svc.http.post(
        "/v1/chat/completions",
        headers=auth(svc.alpha),
        json={"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hello there"}]},
    ).json()
    assert chat["cost"]["completion_window"] == "standard" and chat["cost"]["value"] > 0
    msg = svc.http.post(
        "/v1/messages",
        headers={"x-api-key": svc.alpha, "anthropic-version": "2023-06-01"},
        json={
            "model": FAKE_MODEL,
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "hello there"}],
        },
    ).json()
    assert msg["completion_window"] == "standard" and msg["cost"]["value"] > 0
    queued = svc.respond(svc.alpha, background=True).json()
    assert queued["cost"] is None  # not final yet


def test_usage_groups_per_project_model_key_and_window_in_openais_shape(svc: Service):
    finished(svc, svc.alpha, 2)
    finished(svc, svc.beta, 1, metadata={"completion_window": "flex"}, background=True)
    deadline = time.time() + 10
    start = int(time.time()) - 120
    while time.time() < deadline:
        page = svc.get(
            "/v1/organization/usage/completions",
            svc.admin,
            start_time=start,
            bucket_width="1h",
            **{"group_by[]": ["project_id", "completion_window"]},
        ).json()
        results = [r for b in page["data"] for r in b["results"]]
        if sum(r["num_model_requests"] for r in results) == 3:
            break
        time.sleep(0.05)
    assert page["object"] == "page" and page["data"][0]["object"] == "bucket"
    got = {(r["project_id"], r["completion_window"]): r for r in results}
    assert set(got) == {("alpha", "standard"), ("beta", "flex")}
    alpha = got["alpha", "standard"]
    assert alpha["object"] == "organization.usage.completions.result"
    assert (alpha["num_model_requests"], alpha["input_tokens"], alpha["output_tokens"]) == (
        2,
        10,
        16,
    )
    assert alpha["model"] is None and alpha["api_key_id"] is None  # not grouped by those
    mine = svc.get(
        "/v1/organization/usage/completions",
        svc.alpha,
        start_time=start,
        group_by="project_id,model,api_key_id",
    ).json()
    rows = [r for b in mine["data"] for r in b["results"]]
    assert [(r["project_id"], r["model"]) for r in rows] == [("alpha", FAKE_MODEL)]
    assert rows[0]["api_key_id"].startswith("key_")
    other = svc.get(
        "/v1/organization/usage/completions", svc.alpha, start_time=start, project_ids="beta"
    )
    assert other.status_code == 403 and other.json()["error"]["param"] == "project_ids"


def test_costs_per_line_item_and_project(svc: Service):
    finished(svc, svc.alpha, 2)
    start = int(time.time()) - 60
    page = svc.get(
        "/v1/organization/costs", svc.admin, start_time=start, group_by="line_item,project_id"
    ).json()
    today = page["data"][-1]
    assert today["end_time"] - today["start_time"] == 86400
    items = {r["line_item"]: r for r in today["results"]}
    assert set(items) == {
        f"{FAKE_MODEL}, standard, input_tokens",
        f"{FAKE_MODEL}, standard, output_tokens",
    }
    out = items[f"{FAKE_MODEL}, standard, output_tokens"]
    assert out["amount"] == {"value": pytest.approx(2 * 8 * 2000 / 1e6), "currency": "usd"}
    assert out["quantity"] == 16 and out["project_id"] == "alpha"
    whole = svc.get("/v1/organization/costs", svc.alpha, start_time=start).json()
    (total,) = whole["data"][-1]["results"]
    assert total["object"] == "organization.costs.result" and total["line_item"] is None
    assert total["amount"]["value"] == pytest.approx(2 * REPLY_COST)
    only = svc.get(
        "/v1/organization/costs",
        svc.admin,
        start_time=start,
        line_items=f"{FAKE_MODEL}, standard, input_tokens",
    ).json()
    assert only["data"][-1]["results"][0]["amount"]["value"] == pytest.approx(2 * 5 * 1000 / 1e6)


def test_pages_of_buckets_follow_next_page_and_list_empty_buckets(svc: Service):
    start = int(time.time()) - 10 * 86400
    first = svc.get("/v1/organization/costs", svc.admin, start_time=start, limit=4).json()
    assert len(first["data"]) == 4 and first["has_more"] and first["next_page"]
    assert all(b["results"] == [] for b in first["data"])
    second = svc.get(
        "/v1/organization/costs", svc.admin, start_time=start, limit=4, page=first["next_page"]
    ).json()
    assert second["data"][0]["start_time"] == first["data"][-1]["end_time"]
    end = svc.get(
        "/v1/organization/costs", svc.admin, start_time=start, limit=31, end_time=start + 86400
    ).json()
    assert len(end["data"]) in (1, 2) and not end["has_more"] and end["next_page"] is None


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"bucket_width": "2h"}, "bucket_width"),
        ({"group_by": "colour"}, "group_by"),
        ({"group_by": "user_id"}, "group_by"),
        ({"start_time": str(int(time.time()) + 3600)}, "start_time"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"start_time": None}, "start_time"),
        ({"end_time": "1"}, "end_time"),
        ({"limit": "0"}, "limit"),
        ({"limit": "32"}, "limit"),
        ({"bucket_width": "1m", "limit": "1441"}, "limit"),
        ({"page": "garbage"}, "page"),
        ({"batch": "maybe"}, "batch"),
        ({"completion_windows": "urgent"}, "completion_windows"),
        ({"user_ids": "u1"}, "user_ids"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_each_bad_usage_parameter_is_400_naming_it(svc: Service, params: dict, param: str):
    query = {"start_time": str(int(time.time()) - 86400), **params}
    query = {k: v for k, v in query.items() if v is not None}
    r = svc.get("/v1/organization/usage/completions", svc.admin, **query)
    assert r.status_code == 400, r.json()
    assert r.json()["error"]["param"] == param


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"bucket_width": "1h"}, "bucket_width"),
        ({"group_by": "model"}, "group_by"),
        ({"limit": "181"}, "limit"),
        ({"models": "x"}, "models"),
    ],
)
def test_each_bad_costs_parameter_is_400_naming_it(svc: Service, params: dict, param: str):
    query = {"start_time": str(int(time.time()) - 86400), **params}
    r = svc.get("/v1/organization/costs", svc.admin, **query)
    assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_billing_counters_on_metrics(svc: Service):
    finished(svc, svc.alpha, 2)
    samples = {
        (s.name, s.labels.get("tenant"), s.labels.get("kind")): s
        for family in text_string_to_metric_families(svc.http.get("/metrics").text)
        for s in family.samples
    }
    requests = samples["leeway_billed_requests_total", "alpha", None]
    assert requests.value == 2
    assert requests.labels == {"tenant": "alpha", "model": FAKE_MODEL, "window": "standard"}
    assert samples["leeway_billed_tokens_total", "alpha", "output"].value == 16
    assert samples["leeway_billed_tokens_total", "alpha", "input"].value == 10
    cost = samples["leeway_billed_cost_usd_total", "alpha", None]
    assert cost.value == pytest.approx(2 * REPLY_COST)


@pytest.fixture
def budgeted(tmp_path: Path) -> Iterator[Service]:
    limits = {"alpha": Limits(monthly_budget=0.05)}  # a little over two replies
    yield from service(tmp_path, tenant_limits=limits, limits=Limits(monthly_budget=100.0))


def test_over_its_monthly_budget_a_tenant_gets_429_insufficient_quota(budgeted: Service):
    assert [r["status"] for r in finished(budgeted, budgeted.alpha, 3)] == ["completed"] * 3
    r = budgeted.respond(budgeted.alpha)
    assert r.status_code == 429
    err = r.json()["error"]
    assert err["code"] == "insufficient_quota" and err["type"] == "insufficient_quota"
    assert "'alpha'" in err["message"] and "$0.05" in err["message"]
    assert f"${3 * REPLY_COST:.2f}" in err["message"]  # its spend
    assert budgeted.respond(budgeted.beta).status_code == 200  # [limits]: another budget
    batch = budgeted.http.post(
        "/v1/batches",
        headers=auth(budgeted.alpha),
        json={
            "endpoint": "/v1/responses",
            "requests": [{"custom_id": "a", "params": {"model": FAKE_MODEL, "input": "x"}}],
        },
    )
    assert batch.status_code == 429 and batch.json()["error"]["code"] == "insufficient_quota"
    listed = budgeted.http.get("/v1/batches", headers=auth(budgeted.alpha)).json()
    assert listed == []  # refused as a whole: nothing stored
