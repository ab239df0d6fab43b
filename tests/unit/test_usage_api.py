"""Usage and cost through the HTTP API on the fake engine and a real SQLite store: the cost shown
beside usage, the usage and costs APIs in OpenAI's shapes (each bad parameter a 400 naming it),
billing counters on /metrics, monthly budgets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from leeway.settings import Limits
from tests.conftest import FAKE_MODEL
from tests.unit.operator_service import REPLY_COST, Service, auth, service


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    yield from service(tmp_path)


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
