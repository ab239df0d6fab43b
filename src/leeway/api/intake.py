"""Turning a validated request into a stored job, the same way for every surface and for batch items:
``prepare`` checks a draft against its model and makes the job (nothing stored), ``accept`` stores
it durably and wakes the dispatchers. An idempotency key that already made a job is not an error:
``held`` finds that job, and ``accept`` says when a concurrent request with the same key won."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from leeway import windows
from leeway.api.limits import Limiter
from leeway.api.webhook_metadata import webhook
from leeway.catalog import ModelConfig
from leeway.errors import ContextLengthExceeded, ModelNotFound, UnsupportedParameter
from leeway.jobs import Job, Message, Sampling, Surface, Webhook, new_id
from leeway.runtime import Runtime, TokenCount
from leeway.settings import Settings
from leeway.store import IdempotencyKey, Jobs, Spending
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
    instructions: str | None = None  # the system message given apart (Responses' instructions)
    input_param: str = "input"  # the wire field holding the prompt, for error messages
    output_format: OutputFormat | None = None
    tools: Tools | None = None
    reasoning: Mapping[str, Any] | None = None
    reasoning_param: str = "reasoning"  # the wire field that asked for it, for error messages
    window_param: str = "metadata.completion_window"  # the field that asked for the window
    stored: bool = True  # listed and retrievable later (Chat's ``store: false``: not)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """What a batch adds to a draft: whose item it is, and when the batch arrived."""

    batch_id: str
    custom_id: str
    window: str  # the window asked for: the item's own, else the batch's
    arrived: float
    key_id: str | None = None  # the key that created the batch


@dataclass(frozen=True, slots=True)
class Taken:
    """A job the service has: the one a request made, or (``replayed``) the one its idempotency
    key had made already."""

    job: Job
    replayed: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)  # the tenant's x-ratelimit-*


class Intake:
    def __init__(
        self,
        settings: Settings,
        store: Jobs,
        runtime: Runtime,
        clock: Callable[[], float] = time.time,
        spending: Spending | None = None,
    ) -> None:
        """``spending``: where tenants' monthly budgets are checked (None: they are not)."""
        self._settings, self._store, self._runtime, self._clock = settings, store, runtime, clock
        self._limiter = Limiter(settings, store, spending=spending)
        self._guard = Guard(settings.webhooks.allow)

    async def held(self, tenant: str, idempotency: IdempotencyKey | None) -> Job | None:
        """The job the tenant's key made already, in its current state (a retry is answered with
        it before its request is validated again: the same body was valid when first accepted)."""
        return None if idempotency is None else await self._store.held(tenant, idempotency)

    async def accept(self, job: Job, idempotency: IdempotencyKey | None = None) -> Taken:
        """Store ``job`` durably and wake the dispatchers; if a concurrent request with the same
        key won, the job it made instead."""
        # a replay never gets here: it costs no budget
        headers = await self._limiter.admit(job.tenant)
        stored = await self._store.create(job, idempotency)
        if stored.id != job.id:
            return Taken(stored, replayed=True, headers=headers)
        self._runtime.wake(job)
        return Taken(job, headers=headers)

    def webhook(self, metadata: Mapping[str, str]) -> Webhook | None:
        """The webhook ``metadata`` names (400 naming the field if it is visibly unusable)."""
        return webhook(metadata, self._guard)

    async def admit(self, tenant: str, jobs: int) -> dict[str, str]:
        """Raise ``RateLimited`` if a batch of ``jobs`` is over the tenant's limits; else the
        ``x-ratelimit-*`` headers to answer with."""
        return await self._limiter.admit(tenant, jobs)

    def count(self, draft: Draft) -> tuple[ModelConfig, TokenCount]:
        """The draft's model, and its prompt's tokens once formatted for it: what its job's input
        is billed as (404 naming ``model`` for a model this server does not serve)."""
        model = self._settings.model(draft.model)
        counted = None
        if model is not None:
            counted = self._runtime.count_tokens(model.id, draft.messages, draft.tools)
        if model is None or counted is None:
            raise ModelNotFound(
                f"The model '{draft.model}' does not exist. GET /v1/models lists "
                "the models this server serves.",
                param="model",
            )
        return model, counted

    def prepare(
        self,
        tenant: str,
        draft: Draft,
        item: BatchItem | None = None,
        key_id: str | None = None,
    ) -> Job:
        """The job ``draft`` becomes, checked against its model (nothing is stored). A batch
        ``item`` runs in the background, in the window it names, from the batch's arrival.
        ``key_id``: the key that asked for it (a batch item's is the batch's)."""
        model, counted = self.count(draft)
        if draft.reasoning is not None and not model.reasoning:
            raise UnsupportedParameter(
                f"The model '{draft.model}' does not reason: remove '{draft.reasoning_param}' "
                "or choose a model that reasons.",
                param=draft.reasoning_param,
            )
        hook = webhook(draft.metadata, self._guard)
        requested = draft.requested_window if item is None else item.window
        background = draft.background or item is not None
        window = windows.resolve(
            requested, model.windows, background=background, param=draft.window_param
        )
        room = counted.context - counted.tokens
        if room < 1:
            raise ContextLengthExceeded(
                f"The input is {counted.tokens} tokens or more once formatted for this model; its "
                f"context holds {counted.context} tokens, so the input may be at most "
                f"{counted.context - 1} tokens (and leaves that much less room for output).",
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
            prompt_tokens=counted.tokens,
            metadata=draft.metadata,
            echo=draft.echo,
            background=background,
            instructions=draft.instructions,
            webhook=hook,
            batch_id=None if item is None else item.batch_id,
            custom_id=None if item is None else item.custom_id,
            output_format=draft.output_format,
            tools=draft.tools,
            reasoning=draft.reasoning,
            key_id=key_id if item is None else item.key_id,
            stored=draft.stored,
        )
