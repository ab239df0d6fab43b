"""The Responses surface's own routes: ``GET``, ``POST …/cancel``, ``DELETE`` and
``GET …/input_items`` of ``/v1/responses/{id}``."""

from __future__ import annotations

import time

import orjson
from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import Route

from leeway.api import response_items
from leeway.api.auth import Authenticator
from leeway.api.create import json_response
from leeway.api.responses import Responses
from leeway.api.sse import stream
from leeway.errors import InvalidRequest, NotFound
from leeway.jobs import Job, Surface
from leeway.runtime import Runtime
from leeway.store import Jobs


class ResponseRoutes:
    """``GET``, ``POST …/cancel`` and ``DELETE`` of ``/v1/responses/{id}``."""

    def __init__(
        self, surface: Responses, auth: Authenticator, store: Jobs, runtime: Runtime
    ) -> None:
        self._surface, self._auth, self._store, self._runtime = surface, auth, store, runtime

    def routes(self) -> list[Route]:
        return [
            Route("/v1/responses/{id}", self.get, methods=["GET"]),
            Route("/v1/responses/{id}", self.delete, methods=["DELETE"]),
            Route("/v1/responses/{id}/cancel", self.cancel, methods=["POST"]),
            Route("/v1/responses/{id}/input_items", self.input_items, methods=["GET"]),
        ]

    async def get(self, request: HttpRequest) -> Response:
        """The response in its current state; ``?stream=true&starting_after=N`` streams a
        background response from its event N + 1 on (its text from the first piece, then live)."""
        job = await self._own(request)
        if request.query_params.get("stream", "false").lower() not in ("true", "1"):
            return Response(orjson.dumps(self._surface.render(job)), media_type="application/json")
        if not job.background:
            raise InvalidRequest(
                "Only responses created with background: true can be streamed "
                "with GET; this one was returned whole when it was created.",
                param="stream",
            )
        raw = request.query_params.get("starting_after", "-1")
        try:
            after = int(raw)
        except ValueError:
            raise InvalidRequest(
                f"starting_after must be an event sequence number (an integer), not {raw!r}.",
                param="starting_after",
            ) from None
        return stream(self._surface.encoder(job, after=after), self._runtime.follow(job, 0))

    async def input_items(self, request: HttpRequest) -> Response:
        job = await self._own(request)
        return json_response(
            response_items.page(response_items.input_items(job), request.query_params)
        )

    async def cancel(self, request: HttpRequest) -> Response:
        job = await self._own(request)
        if not job.background:
            raise InvalidRequest(
                "Only responses created with background: true can be cancelled.", param="id"
            )
        return json_response(self._surface.render(await self._stop(job)))

    async def delete(self, request: HttpRequest) -> Response:
        """Deleting a response that is still queued or running cancels it first."""
        job = await self._own(request)
        if job.batch_id is not None:
            raise InvalidRequest(
                f"Response '{job.id}' is an item of batch '{job.batch_id}' and is kept with it; "
                "cancel it instead (POST /v1/responses/{id}/cancel), or cancel the batch.",
                param="id",
            )
        if not job.status.is_final:
            await self._stop(job)
        if not await self._store.delete(job.tenant, job.id):
            raise NotFound(f"No response with id '{job.id}' found.", param="id")
        return json_response({"id": job.id, "object": "response", "deleted": True})

    async def _stop(self, job: Job) -> Job:
        """Cancel in the store, stop generating, and end the job's streams."""
        cancelled = await self._store.cancel(job.tenant, job.id, time.time())
        if cancelled is None:
            raise NotFound(f"No response with id '{job.id}' found.", param="id")
        self._runtime.cancel(cancelled)
        return cancelled

    async def _own(self, request: HttpRequest) -> Job:
        """This tenant's response (a job created on another surface is not a response)."""
        tenant = await self._auth.tenant(request)
        job_id = request.path_params["id"]
        job = await self._store.get(tenant, job_id)
        if job is None or job.surface is not Surface.RESPONSES:
            raise NotFound(f"No response with id '{job_id}' found.", param="id")
        return job
