"""Completion webhooks at the HTTP edge: the body a delivery sends (what the job's surface renders
for it) and ``GET /v1/webhooks/deliveries``. What a request's metadata may ask for is checked in
``webhook_metadata``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leeway.api.auth import Authenticator
from leeway.api.bounds import query_int
from leeway.api.errors import anthropic_envelope, envelope
from leeway.api.surfaces import Surfaces
from leeway.errors import LeewayError
from leeway.jobs import Job, Surface
from leeway.store import Jobs
from leeway.webhooks.outbox import JOB, DeliveryLog, Outbox
from leeway.webhooks.sender import Render

_MAX_LIMIT = 100


def body(job: Job, surfaces: Surfaces) -> bytes:
    """What a completion webhook for ``job`` sends: for a response, exactly what
    ``GET /v1/responses/{id}`` returns; for a chat completion or a message, the object its create
    request returns, or for a failed one its error (in that surface's envelope) with the job's id."""
    try:
        return orjson.dumps(surfaces.render(job))
    except LeewayError as e:
        shaped = anthropic_envelope(e) if job.surface is Surface.MESSAGES else envelope(e)
        return orjson.dumps({"id": job.id, **shaped})


def job_renderer(store: Jobs, surfaces: Surfaces) -> Render:
    async def render(tenant: str, job_id: str) -> bytes | None:
        job = await store.get(tenant, job_id)
        return None if job is None else body(job, surfaces)

    return render


def _at(t: float | None) -> float | None:
    return None if t is None else round(t, 3)


def _view(log: DeliveryLog) -> dict[str, Any]:
    d = log.delivery
    return {
        "id": d.id,
        "object": "webhook.delivery",
        "subject_type": d.subject_kind,
        "subject_id": d.subject_id,
        "job_id": d.subject_id if d.subject_kind == JOB else None,
        "url": d.url,
        "status": d.status.value,
        "created_at": _at(d.created_at),
        "finished_at": _at(d.finished_at),
        "next_attempt_at": _at(d.next_attempt_at) if d.finished_at is None else None,
        "attempts": [
            {
                "number": n,
                "at": _at(a.at),
                "duration_ms": round(a.duration * 1000),
                "status_code": a.status_code,
                "error": a.error,
            }
            for n, a in enumerate(log.attempts, 1)
        ],
    }


class WebhookRoutes:
    def __init__(self, auth: Authenticator, outbox: Outbox) -> None:
        self._auth, self._outbox = auth, outbox

    def routes(self) -> list[Route]:
        return [Route("/v1/webhooks/deliveries", self.list_deliveries, methods=["GET"])]

    async def list_deliveries(self, request: Request) -> Response:
        """The tenant's most recent deliveries, newest first, each with its attempts."""
        tenant = await self._auth.tenant(request)
        limit = query_int(request.query_params, "limit", 20, 1, _MAX_LIMIT)
        job_id = request.query_params.get("job_id") or None
        logs = await self._outbox.deliveries(tenant, limit, job_id)
        content = {"object": "list", "data": [_view(log) for log in logs]}
        return Response(orjson.dumps(content), media_type="application/json")
