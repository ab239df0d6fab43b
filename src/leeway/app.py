"""``build_app(settings)``: wires store, engines, dispatcher and API; the lifespan starts and stops them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from leeway.api import errors
from leeway.api.auth import Authenticator
from leeway.api.batch_output import Finalizer
from leeway.api.batches import BatchApi, batch_renderer, render_item
from leeway.api.files import FileApi
from leeway.api.intake import Intake
from leeway.api.routes import Api
from leeway.api.webhooks import WebhookRoutes, job_renderer
from leeway.engines import Engine
from leeway.engines.build import build_engines
from leeway.errors import LeewayError
from leeway.events import JobEvents
from leeway.retention import KeyPruner
from leeway.scheduler.dispatcher import Dispatcher
from leeway.scheduler.loop_thread import LoopThread
from leeway.scheduler.policy import PolicyConfig
from leeway.settings import Settings
from leeway.store.sqlite import SqliteStore
from leeway.webhooks.guard import Guard
from leeway.webhooks.http import HttpPoster
from leeway.webhooks.outbox import BATCH, JOB
from leeway.webhooks.sender import Sender


def open_store(settings: Settings) -> SqliteStore:
    return SqliteStore(
        settings.db_path, lease_seconds=settings.lease_seconds, max_attempts=settings.max_attempts
    )


def first_engines(engines: list[Engine]) -> dict[str, Engine]:
    """Each model's first engine, keyed by model.

    TODO(issue 8): the dispatcher, intake and API take one engine per model for now; the other
    engines of a model are built but not run until the dispatcher runs several per model.
    """
    by_model: dict[str, Engine] = {}
    for engine in engines:
        by_model.setdefault(engine.model, engine)
    return by_model


def build_app(settings: Settings, engines: Mapping[str, Engine] | None = None) -> Starlette:
    engines = engines if engines is not None else first_engines(build_engines(settings))
    store = open_store(settings)
    events = JobEvents()
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
    auth, intake = Authenticator(store), Intake(settings, store, engines, dispatcher, events)
    api = Api(settings, store, auth, intake, engines, dispatcher, events)
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
        for engine in engines.values():
            await engine.start()
        dispatcher.start()

    async def stop_dispatching() -> None:
        try:
            await dispatcher.stop()
        finally:
            for engine in engines.values():
                await engine.close()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        dispatch.start()
        try:
            await dispatch.run(start_dispatching())
            await pruner.start()
            await finalizer.start()
            await sender.start()
            try:
                yield
            finally:
                await sender.stop()
                await finalizer.stop()
                await pruner.stop()
                await dispatch.run(stop_dispatching())
        finally:
            await dispatch.stop()
            await store.close()

    return Starlette(
        routes=[
            *api.routes(),
            *batch_api.routes(),
            *FileApi(settings, store.files, auth).routes(),
            *WebhookRoutes(auth, outbox).routes(),
        ],
        lifespan=lifespan,
        exception_handlers={
            LeewayError: errors.on_leeway_error,
            HTTPException: errors.on_http_error,
            Exception: errors.on_unexpected,
        },
    )
