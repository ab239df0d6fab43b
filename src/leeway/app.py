"""``build_app(settings)``: builds the store, the runtime and the API; its lifespan starts and stops
one list of parts."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from leeway.api import errors
from leeway.api.admin import AdminApi
from leeway.api.auth import Authenticator, KeyUse
from leeway.api.batch_output import Finalizer
from leeway.api.batches import BatchApi, batch_renderer
from leeway.api.chat_store import ChatRoutes
from leeway.api.dashboard import Dashboard
from leeway.api.files import FileApi
from leeway.api.intake import Intake
from leeway.api.message_batches import MessageBatchApi
from leeway.api.request_ids import RequestIds
from leeway.api.routes import Service, job_routes
from leeway.api.surfaces import Surfaces
from leeway.api.tokens import TokenRoutes
from leeway.api.usage import UsageApi
from leeway.api.webhooks import WebhookRoutes, job_renderer
from leeway.engines import Engine
from leeway.engines.build import build_engines
from leeway.errors import ConfigError, LeewayError
from leeway.prices import PriceTable
from leeway.retention import KeyPruner
from leeway.runtime import Runtime
from leeway.runtime.local import InProcess
from leeway.runtime.shared import SharedStore
from leeway.settings import Settings
from leeway.store import SqlStore, open_store
from leeway.webhooks.guard import Guard
from leeway.webhooks.http import HttpPoster
from leeway.webhooks.outbox import BATCH, JOB
from leeway.webhooks.sender import Sender

ROLES = ("all", "api", "dispatcher")


class Part(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def store_from(settings: Settings) -> SqlStore:
    """The store ``settings.store_url`` names: PostgreSQL, or SQLite (the default)."""
    return open_store(
        settings.postgres_url or settings.db_path,
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_attempts,
        max_crashes=settings.max_crashes,
        prices=PriceTable.of(settings.models),
    )


def build_app(
    settings: Settings, engines: Sequence[Engine] | None = None, role: str = "all"
) -> Starlette:
    """``role`` chooses the runtime: ``all`` serves the API and runs the jobs here
    (``InProcess``); ``api`` serves the API and leaves the jobs to dispatcher processes sharing the
    store (``SharedStore``; its engines only count prompt tokens); ``dispatcher`` runs the jobs, the
    batch finalizer and the webhook sender, and serves only ``/health`` and ``/metrics``."""
    if role not in ROLES:
        raise ConfigError(f"Unknown role {role!r}; known: {', '.join(map(repr, ROLES))}.")
    engines = engines if engines is not None else build_engines(settings)
    store = store_from(settings)
    shared = role != "all" or store.dialect == "postgres"  # other processes may share the store
    runtime: Runtime = (
        SharedStore(store, engines)
        if role == "api"
        else InProcess(settings, store, engines, shared=shared)
    )
    auth, surfaces = Authenticator(store), Surfaces(settings)
    intake = Intake(settings, store, runtime, spending=store)
    service = Service(settings, auth, runtime, store)
    routes: list[Route] = service.routes(api=role != "dispatcher")
    parts: list[Part] = [runtime]
    if role != "dispatcher":
        routes += [
            *job_routes(settings, surfaces, auth, intake, runtime, store),
            *TokenRoutes(auth, intake, surfaces.responses, store, settings.max_body_bytes).routes(),
            *BatchApi(settings, store, store, store, auth, intake, runtime, surfaces).routes(),
            *MessageBatchApi(
                settings, store, store, auth, intake, runtime, surfaces.messages.render
            ).routes(),
            *ChatRoutes(auth, store, store, surfaces.chat).routes(),
            *FileApi(settings, store, auth).routes(),
            *WebhookRoutes(auth, store).routes(),
            *AdminApi(auth, store).routes(),
            *UsageApi(auth, store).routes(),
            *Dashboard(settings, store, runtime).routes(),
        ]
        parts.append(KeyUse(auth))
    if role != "api":
        hooks = settings.webhooks
        poster = HttpPoster(
            Guard(hooks.allow), timeout=hooks.timeout_seconds, connections=hooks.concurrency
        )
        renderers = {JOB: job_renderer(store, surfaces), BATCH: batch_renderer(store)}
        parts += [
            KeyPruner(store, settings.idempotency_hours),
            Finalizer(store, settings.data_dir, surfaces.render, settings.poll_seconds),
            Sender(store, renderers, poster, hooks),
        ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        started: list[Part] = []
        try:
            for part in parts:
                await part.start()
                started.append(part)
            yield
        finally:
            for part in reversed(started):
                await part.stop()
            await store.close()

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(RequestIds)],
        exception_handlers={
            LeewayError: errors.on_leeway_error,
            HTTPException: errors.on_http_error,
            Exception: errors.on_unexpected,
        },
    )
