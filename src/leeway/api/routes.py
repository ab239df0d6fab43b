"""The HTTP routes: each handler authenticates, converts wire ↔ job, and leaves the rest to the core."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leeway.api import responses
from leeway.api.auth import Authenticator
from leeway.api.body import parse, read_json
from leeway.api.intake import Intake
from leeway.engines import Engine
from leeway.errors import NotFound
from leeway.scheduler.dispatcher import Dispatcher
from leeway.settings import Settings
from leeway.store import Store


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


class Api:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        auth: Authenticator,
        intake: Intake,
        engines: Mapping[str, Engine],
        dispatcher: Dispatcher,
    ) -> None:
        self._settings, self._store, self._auth, self._intake = settings, store, auth, intake
        self._engines, self._dispatcher = engines, dispatcher

    def routes(self) -> list[Route]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1/responses", self.create_response, methods=["POST"]),
            Route("/v1/responses/{id}", self.get_response, methods=["GET"]),
        ]

    async def health(self, _: Request) -> Response:
        engines = {
            m: {"ready": e.ready(), "parallel": e.parallel, "running": self._dispatcher.running(m)}
            for m, e in self._engines.items()
        }
        ok = all(e["ready"] for e in engines.values())
        return _json({"status": "ok" if ok else "starting", "engines": engines}, 200 if ok else 503)

    async def list_models(self, request: Request) -> Response:
        await self._auth.tenant(request)
        data = [
            {
                "id": m.id,
                "object": "model",
                "created": 0,
                "owned_by": "leeway",
                "completion_windows": [w.value for w in m.windows],
            }
            for m in self._settings.models
        ]
        return _json({"object": "list", "data": data})

    async def create_response(self, request: Request) -> Response:
        tenant = await self._auth.tenant(request)
        body = parse(
            responses.CreateResponse, await read_json(request, self._settings.max_body_bytes)
        )
        job = await self._intake.submit(tenant, responses.draft(body))
        if body.background:
            return self._response(job, status=202)
        return self._response(await self._intake.wait_final(job))

    async def get_response(self, request: Request) -> Response:
        tenant = await self._auth.tenant(request)
        job_id = request.path_params["id"]
        job = await self._store.get(tenant, job_id)
        if job is None or not job_id.startswith("resp_"):
            raise NotFound(f"No response with id '{job_id}' found.", param="id")
        return self._response(job)

    def _response(self, job: Any, status: int = 200) -> Response:
        strict = self._settings.strict_incomplete
        return _json(responses.render(job, strict_incomplete=strict), status)
