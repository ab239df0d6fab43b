"""Stored chat completions: ``GET /v1/chat/completions`` (the tenant's, oldest first unless
``order=desc``; ``limit`` 1 to 100, 20 by default; ``after`` the completion the page follows;
``model``; ``metadata[key]=value`` pairs, all of which a completion's metadata must hold),
``GET``, ``POST`` (its ``metadata`` replaced) and ``DELETE`` of ``/v1/chat/completions/{id}``, and
``GET …/{id}/messages`` (the messages it was asked with, paged alike).

Leeway keeps every job durably, so a chat completion is stored unless the request said
``store: false``: that one is kept as every job is, but never listed or shown here. Only
completions made one at a time are listed (a batch's are read through their batch), once they have
finished with a reply (one that failed has no completion to show)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leeway.api.auth import Authenticator
from leeway.api.body import load_json, read_bytes
from leeway.api.chat import Chat
from leeway.api.chat_tools import call_out
from leeway.api.create import json_response
from leeway.api.wire import check_metadata
from leeway.errors import InvalidRequest, NotFound
from leeway.jobs import Job, Message, Status, Surface
from leeway.store import ChatStore, Jobs

_SHOWN = (Status.COMPLETED, Status.INCOMPLETE)
_MAX_BODY = 64 * 1024  # an update's body: metadata only


class ChatRoutes:
    def __init__(self, auth: Authenticator, jobs: Jobs, chats: ChatStore, surface: Chat) -> None:
        self._auth, self._jobs, self._chats, self._surface = auth, jobs, chats, surface

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.list, methods=["GET"]),
            Route("/v1/chat/completions/{id}", self.get, methods=["GET"]),
            Route("/v1/chat/completions/{id}", self.update, methods=["POST"]),
            Route("/v1/chat/completions/{id}", self.delete, methods=["DELETE"]),
            Route("/v1/chat/completions/{id}/messages", self.messages, methods=["GET"]),
        ]

    async def list(self, request: Request) -> Response:
        tenant = await self._auth.tenant(request)
        q = request.query_params
        limit, newest_first = _limit(q), _order(q, "asc") == "desc"
        found = await self._chats.list_chats(
            tenant,
            limit + 1,
            after=q.get("after"),
            newest_first=newest_first,
            model=q.get("model"),
            metadata=_metadata_filter(q),
        )
        return json_response(_page([self._shown(j) for j in found], limit))

    async def get(self, request: Request) -> Response:
        return json_response(self._shown(await self._own(request)))

    async def update(self, request: Request) -> Response:
        job = await self._own(request)
        body = load_json(await read_bytes(request, _MAX_BODY))
        if unknown := sorted(set(body) - {"metadata"}):
            raise InvalidRequest(
                f"Unknown parameter: '{unknown[0]}'; only metadata can be changed.",
                param=unknown[0],
            )
        if "metadata" not in body:
            raise InvalidRequest("Missing required parameter: 'metadata'.", param="metadata")
        metadata = check_metadata(body["metadata"])
        updated = await self._chats.set_metadata(job.tenant, job.id, metadata)
        if updated is None:
            raise NotFound(f"No chat completion with id '{job.id}' found.", param="id")
        return json_response(self._shown(updated))

    async def delete(self, request: Request) -> Response:
        job = await self._own(request)
        if not await self._jobs.delete(job.tenant, job.id):
            raise NotFound(f"No chat completion with id '{job.id}' found.", param="id")
        return json_response({"object": "chat.completion.deleted", "id": job.id, "deleted": True})

    async def messages(self, request: Request) -> Response:
        job = await self._own(request)
        q = request.query_params
        limit, order = _limit(q), _order(q, "asc")
        shown = [_message(job, i, m) for i, m in enumerate(job.messages)]
        ordered = shown if order == "asc" else shown[::-1]
        if (after := q.get("after")) is not None:
            at = next((i for i, m in enumerate(ordered) if m["id"] == after), None)
            if at is None:
                raise InvalidRequest(f"No message with id {after!r} in '{job.id}'.", param="after")
            ordered = ordered[at + 1 :]
        return json_response(_page(ordered, limit))

    def _shown(self, job: Job) -> dict[str, Any]:
        return self._surface.render(job)

    async def _own(self, request: Request) -> Job:
        """This tenant's stored chat completion (finished, with a reply), else 404."""
        tenant = await self._auth.tenant(request)
        job_id = request.path_params["id"]
        job = await self._jobs.get(tenant, job_id)
        if (
            job is None
            or job.surface is not Surface.CHAT
            or not job.stored
            or job.batch_id is not None
            or job.status not in _SHOWN
        ):
            raise NotFound(f"No stored chat completion with id '{job_id}' found.", param="id")
        return job


def _message(job: Job, index: int, m: Message) -> dict[str, Any]:
    """A message the completion was asked with, as OpenAI lists it."""
    out: dict[str, Any] = {
        "id": f"{job.id}-{index}",
        "role": m.role,
        "content": m.content if m.content or not m.calls else None,
        "name": None,
        "content_parts": None,
    }
    if m.calls:
        out["tool_calls"] = [call_out(c) for c in m.calls]
    if m.call_id is not None:
        out["tool_call_id"] = m.call_id
    return out


def _page(data: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """``data`` holds one more than ``limit`` when there is more."""
    shown = data[:limit]
    return {
        "object": "list",
        "data": shown,
        "first_id": shown[0]["id"] if shown else None,
        "last_id": shown[-1]["id"] if shown else None,
        "has_more": len(data) > limit,
    }


def _limit(q: QueryParams) -> int:
    raw = q.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise InvalidRequest(f"limit must be an integer from 1 to 100, not {raw!r}.", param="limit")
    return int(raw)


def _order(q: QueryParams, default: str) -> str:
    order = q.get("order", default)
    if order not in ("asc", "desc"):
        raise InvalidRequest(f"order must be 'asc' or 'desc', not {order!r}.", param="order")
    return order


def _metadata_filter(q: QueryParams) -> dict[str, str] | None:
    """``metadata[key]=value`` pairs (as the OpenAI SDK sends a ``metadata`` filter)."""
    pairs = {
        k[len("metadata[") : -1]: v
        for k, v in q.multi_items()
        if k.startswith("metadata[") and k.endswith("]")
    }
    return check_metadata(pairs, "metadata") if pairs else None
