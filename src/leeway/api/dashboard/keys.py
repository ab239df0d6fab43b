"""*Keys*: the keys an admin key manages (every tenant's, revoked ones too), created here (the key
is shown once, on the page that answers the form, never in a URL) and revoked (refused by every
process within a second). A tenant's key sees its own tenant's keys and changes nothing: creating
and revoking keys is an admin's, as on the admin API."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from leeway.api.dashboard.render import page
from leeway.api.dashboard.sessions import Viewer, check_csrf, read_form
from leeway.api.params import Params
from leeway.errors import InvalidRequest, NotFound, PermissionDenied
from leeway.keys import issue
from leeway.store import KeyStore

KEYS_PER_PAGE = 100
_TENANT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # as the admin API's project ids
_MOST_DAYS = 100 * 366


class KeyPages:
    def __init__(self, store: KeyStore, clock: Callable[[], float] = time.time) -> None:
        self._store, self._clock = store, clock

    async def list(self, request: Request, viewer: Viewer) -> Response:
        return await self._page(request, viewer)

    async def create(self, request: Request, viewer: Viewer) -> Response:
        form = await read_form(request)
        check_csrf(viewer, form)
        _admin_only(viewer)
        tenant, name = form.get("tenant", "").strip(), form.get("name", "").strip() or "key"
        if not _TENANT.match(tenant):
            raise InvalidRequest(
                "tenant must be 1 to 64 letters, digits, '_', '-' or '.'.", param="tenant"
            )
        if len(name) > 256:
            raise InvalidRequest("name is longer than 256 characters.", param="name")
        existing = await self._store.get_tenant(tenant)
        if existing is not None and existing.archived_at is not None:
            raise InvalidRequest(f"Tenant '{tenant}' is archived: its keys would not work.")
        now = self._clock()
        days = _days(form.get("expires_in_days", ""))
        issued = issue(
            tenant,
            now,
            name=name,
            admin=form.get("admin") == "on",
            expires_at=None if days is None else now + days * 86400,
        )
        await self._store.add_key(issued.key, issued.value)
        return await self._page(request, viewer, created=(issued.key.id, issued.value))

    async def revoke(self, request: Request, viewer: Viewer) -> Response:
        check_csrf(viewer, await read_form(request))
        _admin_only(viewer)
        key_id = request.path_params["key_id"]
        if (key := await self._store.get_key(key_id)) is None:
            raise NotFound(f"No API key with id '{key_id}'.", param="key_id")
        if key.id == viewer.caller.key_id:
            raise InvalidRequest(
                "You are signed in with this key: revoke it with another admin key.",
                param="key_id",
            )
        await self._store.revoke_key(key.id, self._clock())
        return await self._page(request, viewer, revoked=key.id)

    async def _page(
        self,
        request: Request,
        viewer: Viewer,
        created: tuple[str, str] | None = None,
        revoked: str | None = None,
    ) -> Response:
        after = Params(request.query_params, ("after",)).text("after")
        found = await self._store.list_keys(
            KEYS_PER_PAGE + 1,
            tenant=viewer.tenant,
            admin=None if viewer.admin else False,
            include_revoked=True,
            after=after,
        )
        keys = found[:KEYS_PER_PAGE]
        return page(
            "keys.html",
            viewer,
            keys=keys,
            now=self._clock(),
            newer=keys[-1].id if len(found) > KEYS_PER_PAGE else None,
            created=created,
            revoked=revoked,
        )


def _admin_only(viewer: Viewer) -> None:
    if not viewer.admin:
        raise PermissionDenied("Only an admin key creates and revokes keys.")


def _days(text: str) -> int | None:
    if not text.strip():
        return None
    if not text.strip().isdigit() or not 1 <= int(text) <= _MOST_DAYS:
        raise InvalidRequest(
            f"expires_in_days must be a whole number of days, 1 to {_MOST_DAYS}.",
            param="expires_in_days",
        )
    return int(text)
