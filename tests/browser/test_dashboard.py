"""The dashboard in a real Chromium: sign in, watch a batch's progress bar reach done, cancel a
batch, create and revoke a key (the API refuses it), read a cost that matches the costs API, see
the usage charts drawn, and a tenant's key never shows another tenant's data."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import SLOW, Dash
from tests.e2e.conftest import MODEL


def signed_in(browser: Any, dash: Dash, key: str) -> Any:
    page = browser.new_context().new_page()
    page.goto(f"{dash.url}/dashboard")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:text('Now')")
    assert key not in page.url
    return page


@pytest.fixture
def admin(browser: Any, dash: Dash) -> Iterator[Any]:
    page = signed_in(browser, dash, dash.admin)
    yield page
    page.context.close()


def api(dash: Dash, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{dash.url}/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def batch(dash: Dash, key: str, n: int, model: str = SLOW) -> str:
    requests = [
        {"custom_id": f"r{i}", "params": {"model": model, "input": f"item {i}"}} for i in range(n)
    ]
    with api(dash, key) as http:
        r = http.post("/batches", json={"endpoint": "/v1/responses", "requests": requests})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def progress(page: Any) -> tuple[int, int]:
    bar = page.locator("progress#progress")
    return int(bar.get_attribute("value")), int(bar.get_attribute("max"))


def test_a_batchs_progress_bar_moves_to_done(admin: Any, dash: Dash):
    batch_id = batch(dash, dash.alpha, 6)
    admin.goto(f"{dash.url}/dashboard/batches/{batch_id}")
    seen = [progress(admin)]
    deadline = time.monotonic() + 60
    while seen[-1][0] < seen[-1][1] and time.monotonic() < deadline:
        time.sleep(0.3)
        admin.reload()
        seen.append(progress(admin))
    assert seen[-1] == (6, 6), seen
    assert seen[0][0] < 6 and len({done for done, _ in seen}) >= 3, seen  # it moved, step by step
    assert "completed 6" in admin.inner_text("dl.facts")
    admin.goto(f"{dash.url}/dashboard/batches")
    bar = admin.locator(f"tr[data-batch='{batch_id}'] progress")
    assert bar.get_attribute("value") == bar.get_attribute("max") == "6"


def test_cancelling_a_batch(admin: Any, dash: Dash):
    batch_id = batch(dash, dash.beta, 40)
    admin.goto(f"{dash.url}/dashboard/batches")
    admin.click(f"tr[data-batch='{batch_id}'] button:text('Cancel')")
    admin.wait_for_url(f"**/dashboard/batches/{batch_id}")
    assert "cancel asked" in admin.inner_text("dl.facts")
    with api(dash, dash.beta) as http:
        counts = http.get(f"/batches/{batch_id}").json()["status_counts"]
    assert counts["CANCELLED"] >= 30 and counts["QUEUED"] == 0, counts
    assert f"cancelled {counts['CANCELLED']}" in admin.inner_text("dl.facts")


def test_a_key_created_and_revoked(admin: Any, dash: Dash):
    admin.goto(f"{dash.url}/dashboard/keys")
    admin.fill("form.create-key input[name=tenant]", "gamma")
    admin.fill("form.create-key input[name=name]", "from the browser")
    admin.click("form.create-key button")
    value = admin.input_value("#new-key")
    assert value.startswith("lw-") and value not in admin.url
    with api(dash, value) as http:
        assert http.get("/models").status_code == 200
        key_id = admin.inner_text(".created code")
        admin.click(f"tr[data-key='{key_id}'] button:text('Revoke')")
        assert admin.inner_text(f"tr[data-key='{key_id}'] td.revoked").strip()
        deadline = time.monotonic() + 2  # every process refuses it within a second
        while (r := http.get("/models")).status_code != 401 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert r.status_code == 401
    admin.reload()
    assert value not in admin.content()  # shown once


def test_usage_cost_matches_the_costs_api_and_charts_are_drawn(browser: Any, dash: Dash):
    with api(dash, dash.alpha) as http:
        for i in range(3):
            r = http.post("/responses", json={"model": MODEL, "input": f"hello {i}"})
            assert r.status_code == 200
        day = int(time.time()) // 86400 * 86400
        costs = http.get("/organization/costs", params={"start_time": day}).json()
    expected = sum(r["amount"]["value"] for b in costs["data"] for r in b["results"])
    assert expected > 0
    page = signed_in(browser, dash, dash.alpha)
    page.goto(f"{dash.url}/dashboard/usage")
    shown = float(page.inner_text("#total-cost").lstrip("$").replace(",", ""))
    assert shown == pytest.approx(expected, abs=1e-6)
    drawn = page.evaluate(
        "() => ['cost-chart', 'tokens-chart'].map(id => "
        "Chart.getChart(document.getElementById(id))?.data.datasets.length ?? 0)"
    )
    assert drawn[0] >= 1 and drawn[1] >= 1
    with page.expect_download() as download:
        page.click("text=Download CSV")
    text = Path(download.value.path()).read_text()
    assert text.startswith("day,window,requests") and "standard" in text
    page.context.close()


def test_a_tenants_key_never_shows_another_tenants_data(browser: Any, dash: Dash):
    beta_batch = batch(dash, dash.beta, 2, MODEL)
    with api(dash, dash.beta) as http:
        http.post("/responses", json={"model": MODEL, "input": "beta's own"})
    alpha_batch = batch(dash, dash.alpha, 2, MODEL)
    page = signed_in(browser, dash, dash.alpha)
    pages = ["", "/batches", "/usage", "/usage?by=tenant", "/keys", "/models"]
    for path in pages:
        page.goto(f"{dash.url}/dashboard{path}")
        html = page.content()
        assert beta_batch not in html and "beta" not in html, path
        assert "ops" not in page.inner_text("main"), path  # the admin key's tenant
    page.goto(f"{dash.url}/dashboard/batches")
    assert page.locator(f"tr[data-batch='{alpha_batch}']").count() == 1
    page.goto(f"{dash.url}/dashboard/batches/{beta_batch}")
    assert "No batch" in page.content()
    page.context.close()
