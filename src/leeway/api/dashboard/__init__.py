"""The web dashboard at ``/dashboard``, served by every process that serves the API.

Server-rendered pages (Jinja2 templates shipped in this package, no build step): sign-in with an
API key, then *Now* (``now``), *Batches* (``batches``), *Usage and cost* (``usage``), *Keys*
(``keys``) and *Models and pricing* (``now``). An admin key sees every tenant; a tenant's key only its
own. Charts are drawn in the browser by Chart.js, vendored from its npm package into ``static/``
(with its licence). Sessions, CSRF and the cookie: ``sessions``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from leeway.api.dashboard.batches import BatchPages
from leeway.api.dashboard.keys import KeyPages
from leeway.api.dashboard.now import NowPages
from leeway.api.dashboard.render import page, static
from leeway.api.dashboard.sessions import (
    PATH,
    Sessions,
    SessionStore,
    Viewer,
    clear_cookie,
    read_form,
    set_cookie,
)
from leeway.api.dashboard.usage import UsagePages
from leeway.errors import AuthenticationFailed, LeewayError, NotFound
from leeway.runtime import Runtime
from leeway.settings import Settings
from leeway.store import BatchResults, BatchStore, DashboardStore, KeyStore, UsageStore

Handler = Callable[[Request, Viewer], Awaitable[Response]]


class DashboardData(
    SessionStore, DashboardStore, KeyStore, UsageStore, BatchStore, BatchResults, Protocol
):
    """Every view of the store the dashboard reads (``SqlStore`` is one)."""


class Dashboard:
    def __init__(self, settings: Settings, store: DashboardData, runtime: Runtime) -> None:
        self._sessions = Sessions(store)
        self._now = NowPages(settings, store, runtime)
        self._batches = BatchPages(store)
        self._usage = UsagePages(store)
        self._keys = KeyPages(store)

    def routes(self) -> list[Route]:
        signed = self._signed_in
        return [
            Route(PATH, self.home, methods=["GET"]),
            Route(PATH + "/sign-in", self.sign_in, methods=["POST"]),
            Route(PATH + "/sign-out", signed(self.sign_out), methods=["POST"]),
            Route(PATH + "/models", signed(self._now.models), methods=["GET"]),
            Route(PATH + "/batches", signed(self._batches.list), methods=["GET"]),
            Route(PATH + "/batches/{id}", signed(self._batches.one), methods=["GET"]),
            Route(PATH + "/batches/{id}/cancel", signed(self._batches.cancel), methods=["POST"]),
            Route(PATH + "/usage", signed(self._usage.page), methods=["GET"]),
            Route(PATH + "/usage.csv", signed(self._usage.csv), methods=["GET"]),
            Route(PATH + "/keys", signed(self._keys.list), methods=["GET"]),
            Route(PATH + "/keys", signed(self._keys.create), methods=["POST"]),
            Route(PATH + "/keys/{key_id}/revoke", signed(self._keys.revoke), methods=["POST"]),
            Route(PATH + "/static/{name}", self.static, methods=["GET"]),
        ]

    async def home(self, request: Request) -> Response:
        """*Now* for a signed-in viewer, else the sign-in form."""
        viewer = await self._sessions.viewer(request)
        if viewer is None:
            return page("signin.html", None)
        return await self._now.now(request, viewer)

    async def sign_in(self, request: Request) -> Response:
        try:
            form = await read_form(request)
            token = await self._sessions.sign_in(form.get("key", ""))
        except LeewayError as e:
            return page("signin.html", None, e.status, error=e.message)
        response = RedirectResponse(PATH, 303)
        set_cookie(response, token, request)
        return response

    async def sign_out(self, request: Request, viewer: Viewer) -> Response:
        await self._sessions.sign_out(viewer)
        response = RedirectResponse(PATH, 303)
        clear_cookie(response)
        return response

    async def static(self, request: Request) -> Response:
        found = static(request.path_params["name"])
        if found is None:
            raise NotFound(f"No dashboard file '{request.path_params['name']}'.", param="name")
        return found

    def _signed_in(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` for a signed-in viewer; without a session a GET goes to the sign-in page
        and a POST is refused. Errors are shown as a page."""

        async def endpoint(request: Request) -> Response:
            viewer = await self._sessions.viewer(request)
            if viewer is None:
                if request.method == "GET":
                    return RedirectResponse(PATH, 303)
                error = AuthenticationFailed("Your session has ended; sign in again.")
                return page("signin.html", None, error.status, error=error.message)
            try:
                return await handler(request, viewer)
            except LeewayError as e:
                return page("error.html", viewer, e.status, message=e.message, param=e.param)

        return endpoint
