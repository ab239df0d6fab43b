"""Anthropic's Message Batches: ``/v1/messages/batches`` (create, list), ``…/{id}`` (retrieve,
delete), ``…/{id}/cancel`` and ``…/{id}/results`` (JSONL). A Message Batch is a batch like the
others (``leeway.api.batches``): its requests are ordinary background jobs of the Messages surface,
taken in with the same streamed, all-or-nothing ingest (up to ``max_batch_requests`` requests,
``max_batch_bytes``), in the standard window unless a request's ``metadata.completion_window``
says flex, with the ``Idempotency-Key``, webhooks (a request's own, and the batch's: Leeway
accepts a ``metadata`` beside ``requests`` for it) and limits of any create. It expires
``batch_expiry_seconds`` after it was created. Errors are Anthropic's shape."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from leeway.api.auth import Authenticator
from leeway.api.batch_ingest import Ingest, envelope, inline_items, raced, received
from leeway.api.create import json_response
from leeway.api.idempotency import REPLAYED
from leeway.api.intake import Intake
from leeway.api.message_batch_wire import message_batch, result_line
from leeway.api.wire import check_metadata
from leeway.batches import Batch, Shape
from leeway.errors import InvalidRequest, NotFound
from leeway.jobs import Job, new_id
from leeway.runtime import Runtime
from leeway.settings import Settings
from leeway.store import BatchResults, BatchStore

_FIELDS = {"requests", "metadata"}  # metadata: Leeway's addition (the batch's webhook)
_PAGE = 1000  # results read per query


class MessageBatchApi:
    def __init__(
        self,
        settings: Settings,
        batches: BatchStore,
        results: BatchResults,
        auth: Authenticator,
        intake: Intake,
        runtime: Runtime,
        render: Callable[[Job], dict[str, Any]],  # a request's message
    ) -> None:
        self._settings, self._batches, self._results = settings, batches, results
        self._auth, self._intake, self._render = auth, intake, render
        self._ingest = Ingest(intake, batches, runtime, settings.max_batch_requests)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/messages/batches", self.create, methods=["POST"]),
            Route("/v1/messages/batches", self.list, methods=["GET"]),
            Route("/v1/messages/batches/{id}", self.get, methods=["GET"]),
            Route("/v1/messages/batches/{id}", self.delete, methods=["DELETE"]),
            Route("/v1/messages/batches/{id}/cancel", self.cancel, methods=["POST"]),
            Route("/v1/messages/batches/{id}/results", self.results, methods=["GET"]),
        ]

    async def create(self, request: Request) -> Response:
        caller = await self._auth.caller(request)
        tenant = caller.tenant
        async with received(request, self._settings, self._batches, tenant) as body:
            if body.replay is not None:
                return json_response(message_batch(body.replay, _base(request)), 200, REPLAYED)
            with body.path.open("rb") as f:
                fields = await asyncio.to_thread(envelope, f)
            batch = self._batch(tenant, fields)
            with body.path.open("rb") as f:
                stored, headers = await self._ingest.store(
                    batch, inline_items(f), body.held, inline=True, key_id=caller.key_id
                )
        headers = raced(stored, batch, headers)
        return json_response(message_batch(stored, _base(request)), 200, headers)

    def _batch(self, tenant: str, fields: dict[str, Any]) -> Batch:
        if unknown := sorted(set(fields) - _FIELDS):
            raise InvalidRequest(
                f"Unknown field(s) {unknown}; a Message Batch is created with 'requests' "
                "(and Leeway's 'metadata').",
                param=unknown[0],
            )
        if "requests" not in fields:
            raise InvalidRequest(
                "requests is required: a list of {custom_id, params}.", param="requests"
            )
        metadata = check_metadata(fields.get("metadata"))
        now = time.time()
        return Batch(
            id=new_id("msgbatch_"),
            tenant=tenant,
            shape=Shape.ANTHROPIC,
            endpoint="/v1/messages",
            completion_window="standard",
            created_at=now,
            metadata=metadata,
            webhook=self._intake.webhook(metadata),
            expires_at=now + self._settings.batch_expiry_seconds,
        )

    async def list(self, request: Request) -> Response:
        """Newest first, Anthropic's page: ``after_id`` pages to older batches, ``before_id`` to
        newer ones."""
        tenant = await self._auth.tenant(request)
        q = request.query_params
        raw = q.get("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            raise InvalidRequest(
                f"limit must be an integer from 1 to 1000, not {raw!r}.", param="limit"
            )
        limit, older, newer = int(raw), q.get("after_id"), q.get("before_id")
        if older and newer:
            raise InvalidRequest("Send after_id or before_id, not both.", param="before_id")
        found = await self._batches.list_batches(
            tenant, limit + 1, after_id=newer, before_id=older, shape=Shape.ANTHROPIC
        )
        shown = found[-limit:] if newer else found[:limit]
        data = [message_batch(b, _base(request)) for b in shown]
        return json_response(
            {
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": len(found) > limit,
            }
        )

    async def get(self, request: Request) -> Response:
        return json_response(message_batch(await self._own(request), _base(request)))

    async def cancel(self, request: Request) -> Response:
        batch = await self._own(request)
        cancelled = await self._batches.cancel_batch(batch.tenant, batch.id, time.time())
        return json_response(message_batch(cancelled or batch, _base(request)))

    async def delete(self, request: Request) -> Response:
        batch = await self._own(request)
        if batch.finished_at is None or not await self._batches.delete_batch(
            batch.tenant, batch.id
        ):
            raise InvalidRequest(
                f"Message Batch '{batch.id}' is still processing: a batch can be deleted once "
                "it has ended; cancel it first (POST /v1/messages/batches/{id}/cancel).",
                param="id",
            )
        return json_response({"id": batch.id, "type": "message_batch_deleted"})

    async def results(self, request: Request) -> Response:
        batch = await self._own(request)
        if batch.finished_at is None:
            raise InvalidRequest(
                f"Message Batch '{batch.id}' has not ended yet: its results are ready once its "
                "processing_status is 'ended'.",
                param="id",
            )

        async def lines() -> AsyncIterator[bytes]:
            after = -1
            while page := await self._results.item_jobs(batch.id, after, _PAGE):
                yield b"".join(result_line(batch, job, self._render) for _, job in page)
                after = page[-1][0]

        return StreamingResponse(lines(), media_type="application/x-jsonl")

    async def _own(self, request: Request) -> Batch:
        tenant = await self._auth.tenant(request)
        batch_id = request.path_params["id"]
        batch = await self._batches.get_batch(tenant, batch_id)
        if batch is None or batch.shape is not Shape.ANTHROPIC:
            raise NotFound(f"No Message Batch with id '{batch_id}' found.", param="id")
        return batch


def _base(request: Request) -> str:
    """The server's URL as the client reached it (``results_url`` is under it)."""
    return str(request.base_url).rstrip("/")
