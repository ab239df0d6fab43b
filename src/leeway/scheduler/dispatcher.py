"""The one async loop between the store and the engines.

For each engine it keeps exactly ``engine.parallel`` jobs running while work is queued: it claims as
many jobs as there are free sequences (the store hands out the most urgent first: window, then
deadline), runs each, and writes the result back under the claim's lease. Leases of running jobs are
renewed; a process that dies leaves leases that expire, and the jobs are claimed again. A graceful stop
hands running jobs back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

from leeway.engines import Engine
from leeway.events import JobEvents
from leeway.jobs import JobError, Output
from leeway.store import Claim, Result, Store

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        store: Store,
        engines: Mapping[str, Engine],
        events: JobEvents,
        *,
        lease_seconds: float,
        poll_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store, self._engines, self._events = store, engines, events
        self._lease, self._poll, self._clock = lease_seconds, poll_seconds, clock
        self._wake = {model: asyncio.Event() for model in engines}
        self._running: dict[str, tuple[Claim, asyncio.Task[None]]] = {}
        self._loops: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._fill(e), name=f"fill:{m}") for m, e in self._engines.items()
        ]
        self._loops.append(asyncio.create_task(self._renew(), name="renew"))

    def wake(self, model: str) -> None:
        """New work for ``model`` was queued: look now instead of at the next poll."""
        if event := self._wake.get(model):
            event.set()

    def abandon(self, job_id: str) -> None:
        """Stop generating a job that was cancelled or deleted (its lease is already gone)."""
        if (entry := self._running.pop(job_id, None)) is not None:
            entry[1].cancel()

    def running(self, model: str) -> int:
        return sum(1 for c, _ in self._running.values() if c.job.model == model)

    async def stop(self) -> None:
        for task in self._loops:
            task.cancel()
        running = list(self._running.values())
        for _, task in running:
            task.cancel()
        await asyncio.gather(*self._loops, *(t for _, t in running), return_exceptions=True)
        await self._store.release([c for c, _ in running])

    async def _fill(self, engine: Engine) -> None:
        wake = self._wake[engine.model]
        while True:
            wake.clear()
            free = engine.parallel - self.running(engine.model)
            if free > 0 and engine.ready():
                try:
                    claims = await self._store.claim(engine.model, free, self._clock())
                except Exception:
                    log.exception("claiming work for %s failed", engine.model)
                    claims = []
                for claim in claims:
                    task = asyncio.create_task(self._run(engine, claim), name=claim.job.id)
                    self._running[claim.job.id] = (claim, task)
                if len(claims) == free:
                    continue  # there may be more: fill the next free sequence as soon as one opens
            with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can eat a cancel
                async with asyncio.timeout(self._poll):
                    await wake.wait()

    async def _run(self, engine: Engine, claim: Claim) -> None:
        try:
            result = await self._generate(engine, claim)
            job = await self._store.finish(claim, result, self._clock())
            if job is not None:
                self._events.publish_final(job)
            else:
                log.warning("lease on %s was lost; its result was discarded", claim.job.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("storing the result of %s failed; its lease will expire", claim.job.id)
        finally:
            self._running.pop(claim.job.id, None)
            self._wake[engine.model].set()

    async def _generate(self, engine: Engine, claim: Claim) -> Result:
        parts: list[str] = []
        try:
            async with contextlib.aclosing(engine.generate(claim.job)) as chunks:
                async for chunk in chunks:
                    parts.append(chunk.text)
                    if chunk.text:
                        self._events.publish_delta(claim.job.id, chunk.text)
                    if chunk.finish is not None:
                        output = Output("".join(parts), chunk.finish, chunk.stop_sequence)
                        return Result(output, chunk.usage)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("engine %s failed on %s", engine.model, claim.job.id)
            return Result(error=JobError("engine_error", f"The engine failed: {e}"))
        return Result(error=JobError("engine_error", "The engine stopped without finishing."))

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            claims = [c for c, _ in self._running.values()]
            try:
                await self._store.renew(claims, self._clock())
            except Exception:
                log.exception("renewing leases failed")
