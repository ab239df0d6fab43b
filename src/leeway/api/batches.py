"""The Batch API: ``/v1/batches`` in the reference's shape (requests inline) and OpenAI's (requests in
an uploaded file). Both shapes share one create route, told apart by the body: ``requests`` or
``input_file_id``. A batch answers in the shape it was created in, except to an OpenAI SDK, which
sees every batch (Anthropic's Message Batches too) as OpenAI's ``Batch``, in its list and when it
retrieves or cancels one. A batch made from a file whose requests are invalid is kept, ``failed``
with its ``errors``, as OpenAI's is; one made inline is refused with a 400 (nothing is kept)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from leeway.api import batch_wire
from leeway.api.auth import Authenticator
from leeway.api.batch_ingest import (
    ENDPOINTS,
    Ingest,
    InvalidInput,
    check_label,
    envelope,
    file_items,
    inline_items,
    raced,
    received,
)
from leeway.api.bounds import query_int
from leeway.api.create import json_response
from leeway.api.files import file_path
from leeway.api.idempotency import REPLAYED
from leeway.api.intake import Intake
from leeway.api.message_batch_wire import message_batch
from leeway.api.surfaces import Surfaces
from leeway.api.wire import check_metadata
from leeway.batches import Batch, BatchError, Shape
from leeway.errors import InvalidRequest, NotFound
from leeway.jobs import Webhook, new_id
from leeway.runtime import Runtime
from leeway.settings import Settings
from leeway.store import BatchResults, BatchStore, FileStore, IdempotencyKey
from leeway.webhooks.sender import Render

_PAGE = 5000  # items read per query when listing a batch's statuses
_REFERENCE_FIELDS = {"endpoint", "label", "requests", "metadata"}  # metadata: Leeway's addition
_OPENAI_FIELDS = {"input_file_id", "endpoint", "completion_window", "metadata"}


class BatchApi:
    def __init__(
        self,
        settings: Settings,
        batches: BatchStore,
        results: BatchResults,
        files: FileStore,
        auth: Authenticator,
        intake: Intake,
        runtime: Runtime,
        surfaces: Surfaces,
    ) -> None:
        self._settings, self._batches, self._results, self._files = (
            settings,
            batches,
            results,
            files,
        )
        self._auth, self._runtime, self._intake = auth, runtime, intake
        self._ingest = Ingest(intake, batches, runtime, settings.max_batch_requests)
        self._surfaces = surfaces

    def routes(self) -> list[Route]:
        return [
            Route("/v1/batches", self.create, methods=["POST"]),
            Route("/v1/batches", self.list, methods=["GET"]),
            Route("/v1/batches/{id}", self.get, methods=["GET"]),
            Route("/v1/batches/{id}/cancel", self.cancel, methods=["POST"]),
            Route("/v1/batches/{id}/{custom_id:path}", self.item, methods=["GET"]),
        ]

    async def create(self, request: Request) -> Response:
        caller = await self._auth.caller(request)
        tenant = caller.tenant
        async with received(request, self._settings, self._batches, tenant) as body:
            if body.replay is not None:
                return self._created(body.replay, REPLAYED)
            fields = await asyncio.to_thread(_read, body.path, envelope)
            if "input_file_id" in fields:
                batch = await self._openai(tenant, fields)
                stored, headers = await self._from_file(batch, body.held, caller.key_id)
            else:
                batch = self._reference(tenant, fields)
                with body.path.open("rb") as f:
                    stored, headers = await self._ingest.store(
                        batch, inline_items(f), body.held, inline=True, key_id=caller.key_id
                    )
        return self._created(stored, raced(stored, batch, headers))

    def _reference(self, tenant: str, fields: dict[str, Any]) -> Batch:
        _known(fields, _REFERENCE_FIELDS, "a batch with inline requests")
        if fields.get("endpoint") != "/v1/responses":
            raise InvalidRequest(
                f"endpoint must be '/v1/responses', not {fields.get('endpoint')!r}.",
                param="endpoint",
            )
        if "requests" not in fields:
            raise InvalidRequest(
                "requests is required: a list of {custom_id, params}.", param="requests"
            )
        metadata, hook = self._metadata(fields)
        return Batch(
            id=new_id("batch_"),
            tenant=tenant,
            shape=Shape.REFERENCE,
            endpoint="/v1/responses",
            completion_window="standard",
            created_at=time.time(),
            label=check_label(fields.get("label")),
            metadata=metadata,
            webhook=hook,
        )

    async def _openai(self, tenant: str, fields: dict[str, Any]) -> Batch:
        _known(fields, _OPENAI_FIELDS, "a batch made from an input file")
        endpoint, window = fields.get("endpoint"), fields.get("completion_window", "24h")
        if endpoint not in ENDPOINTS:
            raise InvalidRequest(
                f"endpoint must be one of {list(ENDPOINTS)}, not {endpoint!r}.", param="endpoint"
            )
        if window not in ("24h", "standard", "flex"):
            raise InvalidRequest(
                f"completion_window must be '24h' (flex), 'standard' or 'flex', not {window!r}.",
                param="completion_window",
            )
        file_id = fields["input_file_id"]
        found = await self._files.get_file(tenant, file_id) if isinstance(file_id, str) else None
        if found is None or found.purpose != "batch":
            raise NotFound(
                f"No file with id {file_id!r} and purpose 'batch' found; upload the JSONL with "
                "POST /v1/files (purpose=batch) first.",
                param="input_file_id",
            )
        now, (metadata, hook) = time.time(), self._metadata(fields)
        return Batch(
            id=new_id("batch_"),
            tenant=tenant,
            shape=Shape.OPENAI,
            endpoint=endpoint,
            completion_window=window,
            created_at=now,
            metadata=metadata,
            webhook=hook,
            input_file_id=file_id,
            expires_at=now + self._settings.batch_expiry_seconds,
        )

    def _metadata(self, fields: dict[str, Any]) -> tuple[dict[str, str], Webhook | None]:
        """The batch's metadata, and the webhook it names (called when the batch is final)."""
        metadata = check_metadata(fields.get("metadata"))
        return metadata, self._intake.webhook(metadata)

    async def _from_file(
        self, batch: Batch, key: IdempotencyKey | None, key_id: str
    ) -> tuple[Batch, dict[str, str]]:
        """Stage and commit the input file's items (all or nothing, so a batch over its
        tenant's limits or budget is refused whole); if they are invalid, the batch is kept as
        ``failed`` with the error (as OpenAI validates a batch after accepting it)."""
        path = file_path(self._settings.data_dir, batch.input_file_id or "")
        try:
            with path.open("rb") as f:
                return await self._ingest.store(
                    batch, file_items(f), key, inline=False, key_id=key_id
                )
        except InvalidInput as e:
            error = BatchError(e.kind, e.message, e.field, e.line)
            return await self._batches.fail_batch(batch, [error], key, time.time()), {}

    async def list(self, request: Request) -> Response:
        """The reference's bare list (``after_id``/``before_id``, ``limit`` 1-200), or OpenAI's list
        object (``after``, ``limit`` 1-100) for a request that is OpenAI's: one that pages with
        ``after``, or that an OpenAI SDK sends (it names itself in ``X-Stainless-Lang``), so
        ``client.batches.list()`` works. Either lists every batch, in the list's shape."""
        tenant = await self._auth.tenant(request)
        q = request.query_params
        if "after" in q or openai_sdk(request):
            limit = query_int(q, "limit", 20, 1, 100)
            return await self._openai_list(tenant, q.get("after"), limit)
        limit = query_int(q, "limit", 25, 1, 200)
        after, before = q.get("after_id") or None, q.get("before_id") or None
        if after and before:
            raise InvalidRequest("Send after_id or before_id, not both.", param="before_id")
        found = []
        if not await self._foreign(tenant, after or before):
            found = await self._batches.list_batches(tenant, limit, after, before)
        return json_response([batch_wire.reference(b) for b in found])

    async def _foreign(self, tenant: str, cursor: str | None) -> bool:
        """A page's cursor that is not one of the tenant's batches: its page is empty, as for an
        id that does not exist (another tenant's batch is never confirmed to exist)."""
        return cursor is not None and await self._batches.get_batch(tenant, cursor) is None

    async def _openai_list(self, tenant: str, after: str | None, limit: int) -> Response:
        """OpenAI's page: newest first, ``after`` a batch id (the page holds older ones)."""
        found = []
        if not await self._foreign(tenant, after or None):
            found = await self._batches.list_batches(tenant, limit + 1, before_id=after or None)
        data = [batch_wire.openai(b) for b in found[:limit]]
        return json_response(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": len(found) > limit,
            }
        )

    async def get(self, request: Request) -> Response:
        batch = await self._own(request)
        if batch.shape is not Shape.REFERENCE or openai_sdk(request):
            return json_response(batch_wire.openai(batch))

        async def pages(after: int) -> list[Any]:
            return await self._results.item_states(batch.id, after, _PAGE)

        return StreamingResponse(
            batch_wire.reference_stream(batch, pages), media_type="application/json"
        )

    async def item(self, request: Request) -> Response:
        batch = await self._own(request)
        custom_id = request.path_params["custom_id"]
        job = await self._results.item(batch.tenant, batch.id, custom_id)
        if job is None:
            raise NotFound(
                f"Batch '{batch.id}' has no request with custom_id {custom_id!r}.",
                param="custom_id",
            )
        return json_response(self._surfaces.render(job))

    async def cancel(self, request: Request) -> Response:
        batch = await self._own(request)
        cancelled = await self._batches.cancel_batch(batch.tenant, batch.id, time.time())
        if openai_sdk(request):
            return json_response(batch_wire.openai(cancelled or batch))
        return self._render(cancelled or batch)

    async def _own(self, request: Request) -> Batch:
        tenant = await self._auth.tenant(request)
        batch_id = request.path_params["id"]
        if (batch := await self._batches.get_batch(tenant, batch_id)) is None:
            raise NotFound(f"No batch with id '{batch_id}' found.", param="id")
        return batch

    def _created(self, batch: Batch, headers: Mapping[str, str] | None) -> Response:
        if batch.shape is Shape.REFERENCE:
            return json_response(batch_wire.reference(batch), 200, headers)
        return json_response(batch_wire.openai(batch), 200, headers)

    def _render(self, batch: Batch) -> Response:
        if batch.shape is Shape.REFERENCE:
            return json_response(batch_wire.reference_status(batch))
        return json_response(batch_wire.openai(batch))


def openai_sdk(request: Request) -> bool:
    """The request comes from an OpenAI SDK: it names itself in ``X-Stainless-Lang`` (as every
    official SDK does; Anthropic's too, which also sends ``anthropic-version``)."""
    headers = request.headers
    return "x-stainless-lang" in headers and "anthropic-version" not in headers


def batch_renderer(batches: BatchStore) -> Render:
    """A batch-level webhook's body: the batch as GET shows it (in the reference shape, its counts
    without the per-item map; a Message Batch as Anthropic's ``message_batch``)."""

    async def render(tenant: str, batch_id: str) -> bytes | None:
        batch = await batches.get_batch(tenant, batch_id)
        if batch is None:
            return None
        if batch.shape is Shape.ANTHROPIC:
            return orjson.dumps(message_batch(batch))
        if batch.shape is Shape.OPENAI:
            return orjson.dumps(batch_wire.openai(batch))
        return orjson.dumps(batch_wire.reference_status(batch))

    return render


def _read(path: Path, reader: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    with path.open("rb") as f:
        return reader(f)


def _known(fields: dict[str, Any], known: set[str], what: str) -> None:
    if unknown := sorted(set(fields) - known):
        raise InvalidRequest(
            f"Unknown field(s) {unknown} for {what}; its fields are {sorted(known)}.",
            param=unknown[0],
        )
