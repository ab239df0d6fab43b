"""The HTTP routes: the create route of each surface (one flow, ``create``), each surface's own
routes, and the service's: ``/health``, ``/metrics``, ``/v1/models`` (``leeway.api.models``)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leeway.api import usage_metrics
from leeway.api.auth import Authenticator
from leeway.api.create import Create, json_response
from leeway.api.intake import Intake
from leeway.api.models import ModelRoutes
from leeway.api.response_routes import ResponseRoutes
from leeway.api.surfaces import Surfaces
from leeway.runtime import Runtime
from leeway.settings import Settings
from leeway.store import Jobs, UsageStore


class Service:
    """``/health``, ``/metrics`` and ``/v1/models``."""

    def __init__(
        self,
        settings: Settings,
        auth: Authenticator,
        runtime: Runtime,
        usage: UsageStore | None = None,
    ) -> None:
        """``usage``: where billing counters are read for ``/metrics`` (None: left out)."""
        self._settings, self._auth, self._runtime = settings, auth, runtime
        self._usage = usage

    def routes(self, api: bool = True) -> list[Route]:
        """``api``: False for a process that serves no API (only health and metrics)."""
        routes = [
            Route("/health", self.health, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
        ]
        return [*routes, *ModelRoutes(self._settings, self._auth).routes()] if api else routes

    async def health(self, _: Request) -> Response:
        health = await self._runtime.health()
        body = {"status": "ok" if health.ok else "starting", "engines": health.engines}
        return json_response(body, 200 if health.ok else 503)

    async def metrics(self, _: Request) -> Response:
        text = await self._runtime.metrics()
        if self._usage is not None:
            text += await usage_metrics.render(self._usage)
        return Response(text, media_type=CONTENT_TYPE_LATEST)


def job_routes(
    settings: Settings,
    surfaces: Surfaces,
    auth: Authenticator,
    intake: Intake,
    runtime: Runtime,
    store: Jobs,
) -> list[Route]:
    """Every surface's create route, and the Responses surface's own routes."""
    limit = settings.max_body_bytes
    creates = [
        Route(
            path,
            Create(wire, surface, auth, intake, runtime, store, limit).handle,
            methods=["POST"],
        )
        for path, wire, surface in surfaces.creates
    ]
    return [*creates, *ResponseRoutes(surfaces.responses, auth, store, runtime).routes()]
