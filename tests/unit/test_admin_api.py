"""The key lifecycle and the admin routes, through the HTTP API on the fake engine and a real SQLite
store: projects and keys in OpenAI's admin shapes, 403 for a tenant's key, expired and revoked keys
refused, the last use written off the request's path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request

from leeway.api.auth import Authenticator
from leeway.keys import issue
from tests.conftest import UnitStore
from tests.unit.operator_service import Service, add, auth, service


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
    # an admin key is the organization's: archiving its own project does not lock it out
    own = svc.http.post("/v1/organization/projects/ops/archive", headers=auth(svc.admin))
    assert own.json()["status"] == "archived"
    assert svc.get("/v1/organization/projects", svc.admin).status_code == 200
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
