"""The in-process runtime (``--role all``, ``--role dispatcher``): the dispatcher and the engines run
here, on a thread and event loop of their own (``LoopThread``: no load on the API's loop can
starve them). Every hand-over between the API's loop and theirs is here: calls go over with
``LoopThread.call`` (wake, cancel) or ``LoopThread.run`` (health, metrics, start, stop), and
streamed text through the piece log (``leeway.pieces``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from leeway import pieces
from leeway.engines import Engine
from leeway.jobs import Job, Message, Window
from leeway.pieces import Following, PieceLog, Publisher, Relay
from leeway.runtime import Health, TokenCount
from leeway.runtime.counting import Counters
from leeway.runtime.loop_thread import LoopThread
from leeway.scheduler.dispatcher import Dispatcher
from leeway.scheduler.policy import PolicyConfig, PolicyKind
from leeway.settings import Settings
from leeway.store import Store
from leeway.structured import Tools


class InProcess:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        engines: Sequence[Engine],
        *,
        shared: bool,
        dispatches: bool = True,
    ) -> None:
        """``shared``: other processes may share the store (its runs' pieces are stored for them,
        and those of runs elsewhere relayed from it). ``dispatches``: False runs the engines for
        counting only (a process that other processes' dispatchers serve)."""
        self._store, self._engines, self._dispatches = store, engines, dispatches
        self._thread = LoopThread("leeway-dispatcher")
        self._log = PieceLog()
        self._counters = Counters(engines)
        self._dispatcher = Dispatcher(
            store,
            engines,
            self._log,
            lease_seconds=settings.lease_seconds,
            poll_seconds=settings.poll_seconds,
            kind=PolicyKind(settings.policy),
            policy=PolicyConfig(
                targets=settings.window_targets,
                flex_reserve=settings.flex_reserve,
                urgent_share=settings.urgent_share,
                off_peak_hours=settings.off_peak_hours,
            ),
        )
        self._publisher = Publisher(self._log, store) if shared and dispatches else None
        self._relay = Relay(self._log, store, store)
        self._relays = shared

    async def start(self) -> None:
        self._thread.start()
        await self._thread.run(self._start_there())
        if self._relays:
            await self._relay.start()

    async def _start_there(self) -> None:
        await asyncio.gather(*(e.start() for e in self._engines))  # they load side by side
        if self._dispatches:
            self._dispatcher.start()
            await self._store.listen(self._dispatcher.wake_model)  # queued by any process
            if self._publisher is not None:
                await self._publisher.start()

    async def stop(self) -> None:
        try:
            await self._relay.stop()
            await self._thread.run(self._stop_there())
        finally:
            await self._thread.stop()

    async def _stop_there(self) -> None:
        try:
            if self._publisher is not None:
                await self._publisher.stop()
            await self._dispatcher.stop()
        finally:
            for engine in self._engines:
                await engine.close()

    def count_tokens(
        self, model: str, messages: Sequence[Message], tools: Tools | None
    ) -> TokenCount | None:
        return self._counters.count_tokens(model, messages, tools)

    def wake(self, job: Job) -> None:
        self._thread.call(self._dispatcher.wake, job)

    def cancel(self, job: Job) -> None:
        self._thread.call(self._dispatcher.abandon, job.id)
        self._log.publish_final(job)

    def follow(self, job: Job, start: int | None) -> Following:
        return pieces.follow(job, start, self._log, self._store, self._relay)

    async def health(self) -> Health:
        return await self._thread.run(self._health_there())

    async def _health_there(self) -> Health:
        running = {e.model: self._dispatcher.running(e.model) for e in self._engines}
        return self._counters.health(running)

    async def metrics(self) -> bytes:
        depths = await self._store.queue_depths()
        return await self._thread.run(self._render(depths))

    async def _render(self, depths: dict[Window, int]) -> bytes:
        return self._dispatcher.metrics.render(depths, self._dispatcher.utilization)
