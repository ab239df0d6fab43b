"""The shared-store runtime (``--role api``): this process answers requests and runs no job.
Dispatcher processes sharing the store take the jobs it stores (PostgreSQL's NOTIFY wakes them at
once; on SQLite they poll), stop those it cancels at their next lease renewal, and store the pieces
of what they run, which the relay reads for the followers here."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from leeway import pieces
from leeway.engines import Engine
from leeway.jobs import Job, Message
from leeway.pieces import Following, PieceLog, Relay
from leeway.runtime import Health, TokenCount
from leeway.runtime.counting import Counters
from leeway.scheduler.metrics import Metrics
from leeway.store import Store
from leeway.structured import Tools


class SharedStore:
    def __init__(self, store: Store, engines: Sequence[Engine]) -> None:
        """``engines``: started only to count prompt tokens (never given work)."""
        self._store, self._engines = store, engines
        self._counters = Counters(engines)
        self._log = PieceLog()  # no run here: only followers, fed by the relay
        self._relay = Relay(self._log, store, store)
        self._metrics = Metrics()

    async def start(self) -> None:
        await asyncio.gather(*(e.start() for e in self._engines))  # they load side by side
        await self._relay.start()

    async def stop(self) -> None:
        try:
            await self._relay.stop()
        finally:
            for engine in self._engines:
                await engine.close()

    def count_tokens(
        self, model: str, messages: Sequence[Message], tools: Tools | None
    ) -> TokenCount | None:
        return self._counters.count_tokens(model, messages, tools)

    def wake(self, job: Job) -> None:
        """Nothing to do here: the store tells the dispatchers (or they poll it)."""

    def cancel(self, job: Job) -> None:
        self._log.publish_final(job)

    def follow(self, job: Job, start: int | None) -> Following:
        return pieces.follow(job, start, self._log, self._store, self._relay)

    async def health(self) -> Health:
        return self._counters.health({})

    async def metrics(self) -> bytes:
        return self._metrics.render(await self._store.queue_depths(), dict)
