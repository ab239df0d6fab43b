"""The one async loop between the store and the engines.

For each engine it keeps exactly ``engine.parallel`` jobs running while work is queued: it claims as
many jobs as there are free sequences (the store hands out the most urgent first: window, then
deadline), runs each, and writes the result back under the claim's lease. Leases of running jobs are
renewed; a process that dies leaves leases that expire, and the jobs are claimed again. A graceful stop
hands running jobs back to the queue.

An ``asap`` job that arrives while its engine is full takes the place of the running job that loses
least (flex first, then the standard job with the latest deadline; never priority or asap work). The
yielded job goes back to the queue keeping the text it generated and continues from there later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from leeway.engines import Engine
from leeway.events import JobEvents
from leeway.jobs import Job, JobError, Output, Window, split
from leeway.store import Claim, Result, Store

log = logging.getLogger(__name__)

_YIELDS = (Window.FLEX, Window.STANDARD)  # windows whose running jobs may yield to asap work


@dataclass(eq=False)
class _Run:
    claim: Claim
    task: asyncio.Task[None] | None = None
    parts: list[str] = field(default_factory=list)  # text so far, earlier runs included
    tokens: int = 0  # output tokens so far, earlier runs included
    yielding: bool = False  # cancelled to make room for urgent work, not stopped

    @property
    def job(self) -> Job:
        return self.claim.job


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
        self._urgent = dict.fromkeys(engines, 0)  # asap arrivals not yet claimed, per model
        self._running: dict[str, _Run] = {}
        self._loops: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._fill(e), name=f"fill:{m}") for m, e in self._engines.items()
        ]
        self._loops.append(asyncio.create_task(self._renew(), name="renew"))

    def wake(self, job: Job) -> None:
        """``job`` was queued: look now instead of at the next poll."""
        if (event := self._wake.get(job.model)) is not None:
            if job.window is Window.ASAP:
                self._urgent[job.model] += 1
            event.set()

    def abandon(self, job_id: str) -> None:
        """Stop generating a job that was cancelled or deleted (its lease is already gone)."""
        if (run := self._running.pop(job_id, None)) is not None and run.task is not None:
            run.task.cancel()

    def pieces(self, job_id: str) -> list[str] | None:
        """The text a job running here has streamed so far, piece by piece; None if not running
        here."""
        run = self._running.get(job_id)
        return list(run.parts) if run is not None else None

    def running(self, model: str) -> int:
        return sum(1 for r in self._running.values() if r.job.model == model)

    async def stop(self) -> None:
        for task in self._loops:
            task.cancel()
        runs = list(self._running.values())
        for run in runs:
            if run.task is not None:
                run.task.cancel()
        await asyncio.gather(
            *self._loops, *(r.task for r in runs if r.task), return_exceptions=True
        )
        await self._store.release([r.claim for r in runs])

    async def _fill(self, engine: Engine) -> None:
        model, wake = engine.model, self._wake[engine.model]
        while True:
            wake.clear()
            free = engine.parallel - self.running(model)
            if free <= 0 and self._urgent[model] and self._make_room(model):
                continue
            if free > 0 and engine.ready():
                claims = await self._claim(model, free)
                for claim in claims:
                    job = claim.job
                    parts = split(job.partial_text, job.partial_deltas)
                    run = _Run(claim, parts=parts, tokens=job.partial_tokens)
                    run.task = asyncio.create_task(self._run(engine, run), name=claim.job.id)
                    self._running[claim.job.id] = run
                if len(claims) == free:
                    continue  # there may be more: fill the next free sequence as soon as one opens
            with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can eat a cancel
                async with asyncio.timeout(self._poll):
                    await wake.wait()

    async def _claim(self, model: str, limit: int) -> list[Claim]:
        try:
            claims = await self._store.claim(model, limit, self._clock())
        except Exception:
            log.exception("claiming work for %s failed", model)
            return []
        asap = sum(1 for c in claims if c.job.window is Window.ASAP)
        # whatever asap work was waiting has been claimed now (here or by another process)
        self._urgent[model] = max(0, self._urgent[model] - asap) if asap else 0
        return claims

    def _make_room(self, model: str) -> bool:
        """Yield the running job of ``model`` that loses least; False if none may yield."""
        candidates = [
            r
            for r in self._running.values()
            if r.job.model == model and r.job.window in _YIELDS and not r.yielding
        ]
        if not candidates:
            self._urgent[model] = 0  # nothing can make room: asap waits for a free sequence
            return False
        victim = max(candidates, key=lambda r: (r.job.window is Window.FLEX, r.job.deadline))
        victim.yielding = True
        self._running.pop(victim.job.id)
        assert victim.task is not None
        victim.task.cancel()
        return True

    async def _run(self, engine: Engine, run: _Run) -> None:
        try:
            result = await self._generate(engine, run)
            job = await self._store.finish(run.claim, result, self._clock())
            if job is not None:
                self._events.publish_final(job)
            else:
                log.warning("lease on %s was lost; its result was discarded", run.job.id)
        except asyncio.CancelledError:
            if not run.yielding:
                raise
            # shielded: the text generated so far must reach the store even if we are stopping
            await asyncio.shield(self._store.requeue(run.claim, run.parts, run.tokens))
        except Exception:
            log.exception("storing the result of %s failed; its lease will expire", run.job.id)
        finally:
            if self._running.get(run.job.id) is run:
                del self._running[run.job.id]
            self._wake[engine.model].set()

    async def _generate(self, engine: Engine, run: _Run) -> Result:
        try:
            async with contextlib.aclosing(engine.generate(run.job)) as chunks:
                async for chunk in chunks:
                    run.tokens = chunk.tokens
                    if chunk.text:
                        run.parts.append(chunk.text)
                        self._events.publish_delta(run.job.id, chunk.text)
                    if chunk.finish is not None:
                        sizes = tuple(len(p) for p in run.parts)
                        text = "".join(run.parts)
                        output = Output(text, chunk.finish, chunk.stop_sequence, sizes)
                        return Result(output, chunk.usage)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("engine %s failed on %s", engine.model, run.job.id)
            return Result(error=JobError("engine_error", f"The engine failed: {e}"))
        return Result(error=JobError("engine_error", "The engine stopped without finishing."))

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            claims = [r.claim for r in self._running.values()]
            try:
                await self._store.renew(claims, self._clock())
            except Exception:
                log.exception("renewing leases failed")
