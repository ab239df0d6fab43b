"""Turning a validated request into a stored job, the same way for every surface."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from leeway import windows
from leeway.engines import Engine
from leeway.errors import ContextLengthExceeded, ModelNotFound
from leeway.events import JobEvents
from leeway.jobs import Job, Message, Sampling, Surface, new_id
from leeway.scheduler.dispatcher import Dispatcher
from leeway.settings import Settings
from leeway.store import Store

_RECHECK_SECONDS = 2.0  # a blocking wait re-reads the store this often, whatever it was told


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
    metadata: Mapping[str, str] = field(default_factory=dict)
    echo: Mapping[str, Any] = field(default_factory=dict)


class Intake:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        engines: Mapping[str, Engine],
        dispatcher: Dispatcher,
        events: JobEvents,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings, self._store, self._engines = settings, store, engines
        self._dispatcher, self._events, self._clock = dispatcher, events, clock

    async def submit(self, tenant: str, draft: Draft) -> Job:
        """Validate against the model, store durably, and wake the dispatcher."""
        model, engine = self._settings.model(draft.model), self._engines.get(draft.model)
        if model is None or engine is None:
            raise ModelNotFound(
                f"The model '{draft.model}' does not exist. GET /v1/models lists "
                "the models this server serves.",
                param="model",
            )
        window = windows.resolve(draft.requested_window, model.windows, background=draft.background)
        prompt_tokens = engine.count_tokens(draft.messages)
        room = engine.context - prompt_tokens
        if room < 1:
            raise ContextLengthExceeded(
                f"The input is {prompt_tokens} tokens once formatted for this model; its context "
                f"holds {engine.context} tokens, so the input may be at most {engine.context - 1} "
                "tokens (and leaves that much less room for output).",
                param="input",
            )
        now = self._clock()
        job = Job(
            id=new_id(draft.id_prefix),
            tenant=tenant,
            surface=draft.surface,
            model=draft.model,
            messages=draft.messages,
            sampling=Sampling(
                min(draft.max_output_tokens or room, room), draft.temperature, draft.top_p
            ),
            window=window,
            requested_window=draft.requested_window,
            created_at=now,
            deadline=windows.deadline(window, now, self._settings.window_targets),
            prompt_tokens=prompt_tokens,
            metadata=draft.metadata,
            echo=draft.echo,
        )
        await self._store.create(job)
        self._dispatcher.wake(job.model)
        return job

    async def wait_final(self, job: Job) -> Job:
        """Block until the job is final (told in-process, or seen in the store)."""
        while True:
            if (final := await self._events.wait_final(job.id, _RECHECK_SECONDS)) is not None:
                return final
            current = await self._store.get(job.tenant, job.id)
            if current is not None and current.status.is_final:
                return current
