"""Turning a validated request into a stored job, the same way for every surface."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from leeway import windows
from leeway.api.idempotency import Replayed
from leeway.api.limits import Limiter
from leeway.api.relay import Relay
from leeway.api.webhook_metadata import check_metadata
from leeway.engines import Engine
from leeway.errors import ContextLengthExceeded, ModelNotFound, UnsupportedParameter
from leeway.events import JobEvents, Update
from leeway.jobs import Job, Message, Sampling, Surface, new_id
from leeway.scheduler.dispatcher import Dispatcher
from leeway.settings import Settings
from leeway.store import IdempotencyKey, Store
from leeway.structured import OutputFormat, Tools
from leeway.webhooks.guard import Guard


@dataclass(frozen=True, slots=True)
class Draft:
    """A request in canonical form, before the service has accepted it."""

    surface: Surface
    id_prefix: str
    model: str
    messages: tuple[Message, ...]
    max_output_tokens: int | None
    temperature: float
    top_p: float
    background: bool
    requested_window: str | None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    echo: Mapping[str, Any] = field(default_factory=dict)
    input_param: str = "input"  # the wire field holding the prompt, for error messages
    output_format: OutputFormat | None = None
    tools: Tools | None = None
    reasoning: Mapping[str, Any] | None = None
    reasoning_param: str = "reasoning"  # the wire field that asked for it, for error messages


@dataclass(frozen=True, slots=True)
class BatchItem:
    """What a batch adds to a draft: whose item it is, and when the batch arrived."""

    batch_id: str
    custom_id: str
    window: str  # the window asked for: the item's own, else the batch's
    arrived: float


class Intake:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        engines: Mapping[str, Engine],
        dispatcher: Dispatcher,
        events: JobEvents,
        clock: Callable[[], float] = time.time,
        relay: Relay | None = None,
    ) -> None:
        self._settings, self._store, self._engines = settings, store, engines
        self.relay = relay or Relay(store, events)  # never started: relays nothing
        self._dispatcher, self._events, self._clock = dispatcher, events, clock
        self._limiter = Limiter(settings, store)
        self._guard = Guard(settings.webhooks.allow)

    async def submit(
        self, tenant: str, draft: Draft, idempotency: IdempotencyKey | None = None
    ) -> Job:
        """Validate against the model, store durably, and wake the dispatcher. Raises ``Replayed``
        with the job an idempotency key already made (checked before anything else)."""
        await self.replay_if_held(tenant, idempotency)
        job = self.prepare(tenant, draft)
        await self._accept(job, idempotency)
        return job

    async def follow(
        self,
        tenant: str,
        draft: Draft,
        idempotency: IdempotencyKey | None = None,
        *,
        pieces: bool = True,
    ) -> tuple[Job, AsyncIterator[Update]]:
        """Submit, already subscribed to the job's progress: text deltas (unless not ``pieces``:
        then they may be left out), then the final job. The job may run in any process."""
        await self.replay_if_held(tenant, idempotency)
        job = self.prepare(tenant, draft)
        sub = self._events.subscribe(job.id)
        try:
            await self._accept(job, idempotency)
        except BaseException:
            sub.close()
            raise
        self.relay.follow(job, 0 if pieces else None)
        return job, sub.updates(lambda: self.final(job), start=0)

    async def run(
        self, tenant: str, draft: Draft, idempotency: IdempotencyKey | None = None
    ) -> Job:
        """Submit and wait for the final job (a blocking request)."""
        _, updates = await self.follow(tenant, draft, idempotency, pieces=False)
        async for update in updates:
            if isinstance(update, Job):
                return update
        raise AssertionError("updates end with the final job")

    async def settled(self, job: Job) -> Job:
        """The job once it is final: now if it is already, else when it becomes final."""
        sub = self._events.subscribe(job.id)
        try:
            if (final := await self.final(job)) is not None:
                return final
            self.relay.follow(job, None)
            async for update in sub.updates(lambda: self.final(job)):
                if isinstance(update, Job):
                    return update
            raise AssertionError("updates end with the final job")
        finally:
            sub.close()

    async def replay_if_held(self, tenant: str, idempotency: IdempotencyKey | None) -> None:
        """Raise ``Replayed`` if the key already made a job: a retry replays it before the request
        is validated again (the same body was valid when it was first accepted)."""
        if idempotency is not None and (held := await self._store.held(tenant, idempotency)):
            raise Replayed(held)

    def check_webhook(self, metadata: Mapping[str, str]) -> None:
        """400 naming the field if ``metadata`` names a webhook that is visibly unusable."""
        check_metadata(metadata, self._guard)

    async def admit(self, tenant: str, jobs: int) -> None:
        """Raise ``RateLimited`` if a batch of ``jobs`` is over the tenant's limits."""
        await self._limiter.admit(tenant, jobs)

    def prepare(self, tenant: str, draft: Draft, item: BatchItem | None = None) -> Job:
        """The job ``draft`` becomes, checked against its model (nothing is stored). A batch
        ``item`` runs in the background, in the window it names, from the batch's arrival."""
        model = self._settings.model(draft.model)
        engine = self._engines.get(model.id) if model is not None else None
        if model is None or engine is None:
            raise ModelNotFound(
                f"The model '{draft.model}' does not exist. GET /v1/models lists "
                "the models this server serves.",
                param="model",
            )
        if draft.reasoning is not None and not model.reasoning:
            raise UnsupportedParameter(
                f"The model '{draft.model}' does not reason: remove '{draft.reasoning_param}' "
                "or choose a model that reasons.",
                param=draft.reasoning_param,
            )
        check_metadata(draft.metadata, self._guard)
        requested = draft.requested_window if item is None else item.window
        background = draft.background or item is not None
        window = windows.resolve(requested, model.windows, background=background)
        prompt_tokens = engine.count_tokens(draft.messages, draft.tools)
        room = engine.context - prompt_tokens
        if room < 1:
            raise ContextLengthExceeded(
                f"The input is {prompt_tokens} tokens once formatted for this model; its context "
                f"holds {engine.context} tokens, so the input may be at most {engine.context - 1} "
                "tokens (and leaves that much less room for output).",
                param=draft.input_param,
            )
        now = self._clock() if item is None else item.arrived
        return Job(
            id=new_id(draft.id_prefix),
            tenant=tenant,
            surface=draft.surface,
            model=model.id,
            messages=draft.messages,
            sampling=Sampling(
                min(draft.max_output_tokens or room, room),
                draft.temperature,
                draft.top_p,
                draft.seed,
                draft.stop,
            ),
            window=window,
            requested_window=requested,
            created_at=now,
            deadline=windows.deadline(window, now, self._settings.window_targets),
            prompt_tokens=prompt_tokens,
            metadata=draft.metadata,
            echo=draft.echo if item is None else {**draft.echo, "background": True},
            batch_id=None if item is None else item.batch_id,
            custom_id=None if item is None else item.custom_id,
            output_format=draft.output_format,
            tools=draft.tools,
            reasoning=draft.reasoning,
        )

    async def _accept(self, job: Job, idempotency: IdempotencyKey | None) -> None:
        await self._limiter.admit(job.tenant)  # a replay never gets here: it costs no budget
        stored = await self._store.create(job, idempotency)
        if stored.id != job.id:  # a concurrent request with the same key won: replay its job
            raise Replayed(stored)
        self._dispatcher.wake(job)

    async def final(self, job: Job) -> Job | None:
        """The job as stored, if it is final now."""
        current = await self._store.get(job.tenant, job.id)
        return current if current is not None and current.status.is_final else None
