"""The admin routes, in the shape of OpenAI's admin API (an admin key only; any other key gets 403):

- tenants are OpenAI's projects: ``/v1/organization/projects`` (list, create), ``/{id}`` (retrieve,
  rename), ``/{id}/archive`` (its keys stop working);
- a project's keys: ``/v1/organization/projects/{id}/api_keys`` (list, create: the key is in the
  answer's ``value``, shown once), ``/{key_id}`` (retrieve, delete: the key is revoked);
- admin keys: ``/v1/organization/admin_api_keys`` (list, create), ``/{key_id}`` (retrieve, delete).

A revoked key is refused by every process sharing the store within a second; it stays listed with
``include_revoked=true`` (Leeway's), with its ``revoked_at``."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import Annotated

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leeway.api import admin_wire
from leeway.api.auth import Authenticator
from leeway.api.body import load_json, parse, read_bytes
from leeway.api.bounds import Id
from leeway.api.create import json_response
from leeway.api.params import Params
from leeway.api.wire import Wire
from leeway.errors import InvalidRequest, NotFound
from leeway.keys import ApiKey, Tenant, issue
from leeway.store import KeyStore

_PROJECT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MAX_BODY = 64 * 1024
_YEAR = 366 * 86400
Name = Annotated[str, Field(min_length=1, max_length=256)]
Lifetime = Annotated[int, Field(ge=1, le=100 * _YEAR)]


class NewProject(Wire):
    name: Name
    id: Id | None = None  # Leeway's: the tenant id (default: proj_…)


class ProjectUpdate(Wire):
    name: Name


class NewKey(Wire):
    name: Name = "key"
    expires_in_seconds: Lifetime | None = None


class NewAdminKey(NewKey):
    project_id: Id = "default"  # Leeway's: the tenant the admin key's own requests act for


class AdminApi:
    def __init__(
        self, auth: Authenticator, keys: KeyStore, clock: Callable[[], float] = time.time
    ) -> None:
        self._auth, self._keys, self._clock = auth, keys, clock

    def routes(self) -> list[Route]:
        projects, admin_keys = "/v1/organization/projects", "/v1/organization/admin_api_keys"
        return [
            Route(projects, self.list_projects, methods=["GET"]),
            Route(projects, self.create_project, methods=["POST"]),
            Route(projects + "/{project_id}", self.get_project, methods=["GET"]),
            Route(projects + "/{project_id}", self.update_project, methods=["POST"]),
            Route(projects + "/{project_id}/archive", self.archive_project, methods=["POST"]),
            Route(projects + "/{project_id}/api_keys", self.list_keys, methods=["GET"]),
            Route(projects + "/{project_id}/api_keys", self.create_key, methods=["POST"]),
            Route(projects + "/{project_id}/api_keys/{key_id}", self.get_key, methods=["GET"]),
            Route(
                projects + "/{project_id}/api_keys/{key_id}", self.revoke_key, methods=["DELETE"]
            ),
            Route(admin_keys, self.list_admin_keys, methods=["GET"]),
            Route(admin_keys, self.create_admin_key, methods=["POST"]),
            Route(admin_keys + "/{key_id}", self.get_admin_key, methods=["GET"]),
            Route(admin_keys + "/{key_id}", self.revoke_admin_key, methods=["DELETE"]),
        ]

    async def list_projects(self, request: Request) -> Response:
        await self._auth.admin(request)
        q = Params(request.query_params, ("after", "limit", "include_archived"))
        limit = q.whole("limit", 20, lo=1, hi=100)
        found = await self._keys.list_tenants(
            limit + 1, q.text("after"), bool(q.flag("include_archived"))
        )
        return json_response(admin_wire.listed(found, limit, admin_wire.project))

    async def create_project(self, request: Request) -> Response:
        await self._auth.admin(request)
        body = parse(NewProject, load_json(await read_bytes(request, _MAX_BODY)))
        tenant_id = body.id if body.id is not None else "proj_" + secrets.token_hex(12)
        if not _PROJECT_ID.match(tenant_id):
            raise InvalidRequest("id must be 1 to 64 letters, digits, '_', '-' or '.'.", param="id")
        tenant = await self._keys.add_tenant(Tenant(tenant_id, body.name, self._clock()))
        if tenant is None:
            raise InvalidRequest(f"A project with id '{tenant_id}' exists already.", param="id")
        return json_response(admin_wire.project(tenant))

    async def get_project(self, request: Request) -> Response:
        await self._auth.admin(request)
        return json_response(admin_wire.project(await self._project(request)))

    async def update_project(self, request: Request) -> Response:
        await self._auth.admin(request)
        body = parse(ProjectUpdate, load_json(await read_bytes(request, _MAX_BODY)))
        tenant = await self._keys.rename_tenant((await self._project(request)).id, body.name)
        assert tenant is not None
        return json_response(admin_wire.project(tenant))

    async def archive_project(self, request: Request) -> Response:
        await self._auth.admin(request)
        tenant = await self._keys.archive_tenant((await self._project(request)).id, self._clock())
        assert tenant is not None
        return json_response(admin_wire.project(tenant))

    async def list_keys(self, request: Request) -> Response:
        await self._auth.admin(request)
        tenant = await self._project(request)
        return await self._listed(request, tenant=tenant.id, admin=False)

    async def create_key(self, request: Request) -> Response:
        await self._auth.admin(request)
        tenant = await self._project(request)
        body = parse(NewKey, load_json(await read_bytes(request, _MAX_BODY)))
        if tenant.archived_at is not None:
            raise InvalidRequest(
                f"Project '{tenant.id}' is archived: its keys would not work.", param="project_id"
            )
        return await self._issue(tenant.id, body, admin=False)

    async def get_key(self, request: Request) -> Response:
        await self._auth.admin(request)
        key = await self._project_key(request)
        return json_response(admin_wire.project_key(key, self._clock()))

    async def revoke_key(self, request: Request) -> Response:
        await self._auth.admin(request)
        key = await self._project_key(request)
        await self._keys.revoke_key(key.id, self._clock())
        return json_response(admin_wire.deleted(key, "organization.project.api_key.deleted"))

    async def list_admin_keys(self, request: Request) -> Response:
        await self._auth.admin(request)
        return await self._listed(request, tenant=None, admin=True)

    async def create_admin_key(self, request: Request) -> Response:
        await self._auth.admin(request)
        body = parse(NewAdminKey, load_json(await read_bytes(request, _MAX_BODY)))
        if not _PROJECT_ID.match(body.project_id):
            raise InvalidRequest("project_id is not a project id.", param="project_id")
        return await self._issue(body.project_id, body, admin=True)

    async def get_admin_key(self, request: Request) -> Response:
        await self._auth.admin(request)
        key = await self._admin_key(request)
        return json_response(admin_wire.admin_key(key, self._clock()))

    async def revoke_admin_key(self, request: Request) -> Response:
        caller = await self._auth.admin(request)
        key = await self._admin_key(request)
        if key.id == caller.key_id:
            raise InvalidRequest(
                "An admin key cannot delete itself; use another admin key (or `leeway keys "
                "revoke`).",
                param="key_id",
            )
        await self._keys.revoke_key(key.id, self._clock())
        return json_response(admin_wire.deleted(key, "organization.admin_api_key.deleted"))

    async def _listed(self, request: Request, *, tenant: str | None, admin: bool) -> Response:
        q = Params(request.query_params, ("after", "limit", "include_revoked", "order"))
        q.choice("order", ("asc",), "asc")
        limit = q.whole("limit", 20, lo=1, hi=100)
        found = await self._keys.list_keys(
            limit + 1,
            tenant=tenant,
            admin=admin,
            include_revoked=bool(q.flag("include_revoked")),
            after=q.text("after"),
        )
        now = self._clock()
        show = admin_wire.admin_key if admin else admin_wire.project_key
        return json_response(admin_wire.listed(found, limit, lambda k: show(k, now)))

    async def _issue(self, tenant: str, body: NewKey, *, admin: bool) -> Response:
        now = self._clock()
        lifetime = body.expires_in_seconds
        issued = issue(
            tenant,
            now,
            name=body.name,
            admin=admin,
            expires_at=None if lifetime is None else now + lifetime,
        )
        await self._keys.add_key(issued.key, issued.value)
        show = admin_wire.admin_key if admin else admin_wire.project_key
        return json_response({**show(issued.key, now), "value": issued.value})

    async def _project(self, request: Request) -> Tenant:
        tenant_id = request.path_params["project_id"]
        if (tenant := await self._keys.get_tenant(tenant_id)) is None:
            raise NotFound(f"No project with id '{tenant_id}' found.", param="project_id")
        return tenant

    async def _project_key(self, request: Request) -> ApiKey:
        tenant, key_id = await self._project(request), request.path_params["key_id"]
        key = await self._keys.get_key(key_id)
        if key is None or key.tenant != tenant.id or key.admin:
            raise NotFound(
                f"No API key with id '{key_id}' in project '{tenant.id}'.", param="key_id"
            )
        return key

    async def _admin_key(self, request: Request) -> ApiKey:
        key_id = request.path_params["key_id"]
        key = await self._keys.get_key(key_id)
        if key is None or not key.admin:
            raise NotFound(f"No admin API key with id '{key_id}'.", param="key_id")
        return key
