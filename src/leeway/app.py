"""``build_app(settings)``: wires store, engines, dispatcher and API; the lifespan starts and stops them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from leeway.api import errors
from leeway.api.auth import Authenticator
from leeway.api.batch_output import Finalizer
from leeway.api.batches import BatchApi, batch_renderer, render_item
from leeway.api.files import FileApi
from leeway.api.intake import Intake
from leeway.api.relay import Relay
from leeway.api.routes import Api
from leeway.api.webhooks import WebhookRoutes, job_renderer
from leeway.engines import Engine
from leeway.engines.build import build_engines
from leeway.errors import ConfigError, LeewayError
from leeway.events import JobEvents
from leeway.retention import KeyPruner
from leeway.scheduler.dispatcher import Dispatcher
from leeway.scheduler.loop_thread import LoopThread
from leeway.scheduler.policy import PolicyConfig
from leeway.settings import Settings
from leeway.store.postgres import PostgresStore
from leeway.store.sqlite import SqliteStore
from leeway.webhooks.guard import Guard
from leeway.webhooks.http import HttpPoster
from leeway.webhooks.outbox import BATCH, JOB
from leeway.webhooks.sender import Sender


def open_store(settings: Settings) -> SqliteStore | PostgresStore:
    """The store ``settings.store_url`` names: PostgreSQL, or SQLite (the default)."""
    lease, attempts = settings.lease_seconds, settings.max_attempts
    if settings.postgres_url is not None:
        return PostgresStore(settings.postgres_url, lease_seconds=lease, max_attempts=attempts)
    return SqliteStore(settings.db_path, lease_seconds=lease, max_attempts=attempts)


def build_app(
    settings: Settings, engines: Sequence[Engine] | None = None, role: str = "all"
) -> Starlette:
    """``role``: ``all`` serves the API and runs the dispatcher; ``api`` serves the API and leaves
    dispatching to other processes sharing the store (its engines still start: they count prompt
    tokens; its dispatcher is never started, so it only wakes, watches and stops work in this
    process, which runs none); ``dispatcher`` runs the dispatcher, the batch finalizer and the
    webhook sender, and serves only ``/health`` and ``/metrics``.

    When other processes may share the store (a role other than ``all``, or PostgreSQL), the
    dispatcher appends streamed pieces to the store and the API relays those of jobs it does not
    run, so a stream through any API process gets every job's text as it is generated."""
    if role not in ("all", "api", "dispatcher"):
        raise ConfigError(f"Unknown role {role!r}; known: 'all', 'api', 'dispatcher'.")
    serves, dispatches = role != "dispatcher", role != "api"
    engines = engines if engines is not None else build_engines(settings)
    by_model: dict[str, Engine] = {}  # each model's first engine: it counts the model's tokens
    for engine in engines:
        by_model.setdefault(engine.model, engine)
    store = open_store(settings)
    events = JobEvents()
    shared = role != "all" or isinstance(store, PostgresStore)
    dispatcher = Dispatcher(
        store,
        engines,
        events,
        lease_seconds=settings.lease_seconds,
        poll_seconds=settings.poll_seconds,
        policy=PolicyConfig(
            targets=settings.window_targets,
            flex_reserve=settings.flex_reserve,
            off_peak_hours=settings.off_peak_hours,
        ),
        publish_seconds=0.05 if shared else None,
    )
    pruner = KeyPruner(store, settings.idempotency_hours)
    outbox, hooks = store.outbox(), settings.webhooks
    sender = Sender(
        outbox,
        {
            JOB: job_renderer(store, strict_incomplete=settings.strict_incomplete),
            BATCH: batch_renderer(store.batches),
        },
        HttpPoster(
            Guard(hooks.allow), timeout=hooks.timeout_seconds, connections=hooks.concurrency
        ),
        hooks,
    )
    relay = Relay(store, events)
    auth = Authenticator(store)
    intake = Intake(settings, store, by_model, dispatcher, events, relay=relay)
    api = Api(settings, store, auth, intake, by_model, dispatcher, events)
    batch_api = BatchApi(
        settings, store.batches, store.batches, store.files, auth, intake, dispatcher
    )
    finalizer = Finalizer(
        store.batches,
        settings.data_dir,
        lambda job: render_item(job, settings.strict_incomplete),
        settings.poll_seconds,
    )

    dispatch = LoopThread("leeway-dispatcher")  # the dispatcher and engines run on their own loop

    async def start_dispatching() -> None:
        await asyncio.gather(*(engine.start() for engine in engines))  # they load side by side
        if dispatches:
            dispatcher.start()
            if isinstance(store, PostgresStore):  # work queued by any process wakes us at once
                await store.listen(dispatcher.wake_model)

    async def stop_dispatching() -> None:
        try:
            await dispatcher.stop()
        finally:
            for engine in engines:
                await engine.close()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        dispatch.start()
        try:
            await dispatch.run(start_dispatching())
            workers: tuple[Relay | KeyPruner | Finalizer | Sender, ...] = (
                (pruner, finalizer, sender) if dispatches else ()
            )
            if shared and serves:
                workers = (*workers, relay)
            for worker in workers:
                await worker.start()
            try:
                yield
            finally:
                for worker in reversed(workers):
                    await worker.stop()
                await dispatch.run(stop_dispatching())
        finally:
            await dispatch.stop()
            await store.close()

    routes = [
        *api.routes(),
        *batch_api.routes(),
        *FileApi(settings, store.files, auth).routes(),
        *WebhookRoutes(auth, outbox).routes(),
    ]
    return Starlette(
        routes=routes if serves else [r for r in routes if r.path in ("/health", "/metrics")],
        lifespan=lifespan,
        exception_handlers={
            LeewayError: errors.on_leeway_error,
            HTTPException: errors.on_http_error,
            Exception: errors.on_unexpected,
        },
    )
