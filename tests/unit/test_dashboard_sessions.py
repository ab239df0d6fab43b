"""The dashboard's sign-in, sessions and form protection, over HTTP on the fake engine and a real
SQLite store (the browser tests in tests/browser drive the pages themselves)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from leeway.api.dashboard.sessions import COOKIE, LIFETIME, Sessions, check_csrf, token_digest
from leeway.app import build_app
from leeway.errors import AuthenticationFailed, PermissionDenied
from leeway.keys import issue
from tests.conftest import UnitStore
from tests.unit.operator_service import Service, auth, service

PAGES = ("/dashboard/batches", "/dashboard/usage", "/dashboard/keys", "/dashboard/models")


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    yield from service(tmp_path)


def sign_in(http: TestClient, key: str) -> str:
    """Signs in; the csrf token the pages' forms carry."""
    r = http.post("/dashboard/sign-in", data={"key": key}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    page = http.get("/dashboard").text
    return page.split('name="csrf" value="')[1].split('"')[0]


def test_sign_in_sets_a_strict_http_only_cookie_and_never_echoes_the_key(svc: Service):
    r = svc.http.post("/dashboard/sign-in", data={"key": svc.admin}, follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
    assert svc.admin not in cookie and svc.admin not in r.headers["location"]
    page = svc.http.get("/dashboard")
    assert "<h1>Now</h1>" in page.text and svc.admin not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_a_wrong_key_gets_the_form_again_with_401(svc: Service):
    r = svc.http.post("/dashboard/sign-in", data={"key": "lw-nope"})
    assert r.status_code == 401 and 'name="key"' in r.text
    assert COOKIE not in r.headers.get("set-cookie", "")
    assert svc.http.post("/dashboard/sign-in", data={}).status_code == 401


def test_pages_need_a_session(svc: Service):
    for path in PAGES:
        r = svc.http.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/dashboard", path
    assert 'name="key"' in svc.http.get("/dashboard").text
    r = svc.http.post("/dashboard/keys", data={"tenant": "x"})
    assert r.status_code == 401


def test_forms_need_the_sessions_token_and_this_sites_origin(svc: Service):
    csrf = sign_in(svc.http, svc.admin)
    no_token = svc.http.post("/dashboard/keys", data={"tenant": "gamma"})
    wrong = svc.http.post("/dashboard/keys", data={"tenant": "gamma", "csrf": csrf[:-1] + "x"})
    other_site = svc.http.post(
        "/dashboard/keys",
        data={"tenant": "gamma", "csrf": csrf},
        headers={"Origin": "https://evil.example"},
    )
    for r in (no_token, wrong, other_site):
        assert r.status_code == 403 and "gamma" not in r.text
    ok = svc.http.post(
        "/dashboard/keys",
        data={"tenant": "gamma", "name": "ci", "csrf": csrf},
        headers={"Origin": str(svc.http.base_url).rstrip("/")},
    )
    assert ok.status_code == 200 and 'id="new-key"' in ok.text
    value = ok.text.split('id="new-key" readonly value="')[1].split('"')[0]
    assert svc.respond(value).status_code == 200


def test_revoking_the_key_ends_its_sessions(svc: Service):
    sign_in(svc.http, svc.alpha)
    assert "<h1>Batches</h1>" in svc.http.get("/dashboard/batches").text
    key_id = svc.get("/v1/organization/projects/alpha/api_keys", svc.admin).json()["data"][0]["id"]
    deleted = svc.http.delete(
        f"/v1/organization/projects/alpha/api_keys/{key_id}", headers=auth(svc.admin)
    )
    assert deleted.status_code == 200
    r = svc.http.get("/dashboard/batches", follow_redirects=False)
    assert r.status_code == 303


def test_a_session_works_on_every_process_sharing_the_store(svc: Service):
    sign_in(svc.http, svc.beta)
    token = svc.http.cookies[COOKIE]
    with TestClient(build_app(svc.settings, role="api")) as other:
        other.cookies.set(COOKIE, token, path="/dashboard")
        page = other.get("/dashboard/keys", follow_redirects=False)
        assert page.status_code == 200 and "Keys of beta" in page.text
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        out = other.post("/dashboard/sign-out", data={"csrf": csrf}, follow_redirects=False)
        assert out.status_code == 303
    r = svc.http.get("/dashboard/keys", follow_redirects=False)
    assert r.status_code == 303  # signed out there: here too


def test_a_tenants_key_only_reads_keys(svc: Service):
    csrf = sign_in(svc.http, svc.alpha)
    page = svc.http.get("/dashboard/keys").text
    assert "Keys of alpha" in page and "beta" not in page and "ops" not in page
    r = svc.http.post("/dashboard/keys", data={"tenant": "alpha", "csrf": csrf})
    assert r.status_code == 403


def test_bad_input_gets_a_4xx_naming_the_field(svc: Service):
    csrf = sign_in(svc.http, svc.admin)
    for query, param in (("from=yesterday", "from"), ("by=colour", "by"), ("colour=1", "colour")):
        r = svc.http.get(f"/dashboard/usage?{query}")
        assert r.status_code == 400 and param in r.text, query
    r = svc.http.get("/dashboard/usage?from=2024-01-01&to=2026-01-01")
    assert r.status_code == 400
    r = svc.http.post("/dashboard/keys", data={"tenant": "no spaces", "csrf": csrf})
    assert r.status_code == 400 and "tenant" in r.text
    r = svc.http.post(
        "/dashboard/keys", data={"tenant": "t", "expires_in_days": "-1", "csrf": csrf}
    )
    assert r.status_code == 400 and "expires_in_days" in r.text
    assert svc.http.get("/dashboard/batches/batch_nope").status_code == 404
    assert svc.http.get("/dashboard/static/../app.py").status_code == 404


async def test_sessions_end_with_their_lifetime_and_their_keys_expiry():
    store, now = UnitStore(), [1000.0]
    sessions = Sessions(store, clock=lambda: now[0])
    short = issue("alpha", now[0], expires_at=now[0] + 60)
    await store.add_key(short.key, short.value)
    token = await sessions.sign_in(short.value)
    found = await store.session(token_digest(token), now[0])
    assert found is not None and found[0].expires_at == now[0] + LIFETIME
    now[0] += 61  # the key expired: its session is no use any more, and it signs in no more
    with pytest.raises(AuthenticationFailed, match="expired"):
        await sessions.sign_in(short.value)
    lasting = issue("alpha", now[0])
    await store.add_key(lasting.key, lasting.value)
    token = await sessions.sign_in(lasting.value)
    assert await store.session(token_digest(token), now[0] + LIFETIME - 1) is not None
    assert await store.session(token_digest(token), now[0] + LIFETIME) is None
    await store.close()


def test_csrf_compares_the_whole_token():
    from leeway.api.auth import Caller
    from leeway.api.dashboard.sessions import Viewer

    viewer = Viewer(Caller("alpha", "key_1"), "token-abc", "digest")
    check_csrf(viewer, {"csrf": "token-abc"})
    for sent in ({}, {"csrf": ""}, {"csrf": "token-ab"}, {"csrf": "token-abcd"}):
        with pytest.raises(PermissionDenied):
            check_csrf(viewer, sent)
