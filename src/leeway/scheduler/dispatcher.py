"""The one async loop between the store and the engines.

For each engine it keeps every sequence busy while work is queued: when sequences are free (or an
``asap`` job arrives) it reads the most pressing queued jobs from the store, asks the policy
(``policy.decide``: least slack first, flex in the gaps, asap preempting) which to start and which
running job yields, claims exactly those under a lease, runs them, and writes results back. Leases
of running jobs are renewed; a process that dies leaves leases that expire, and the jobs are claimed
again. A graceful stop hands running jobs back to the queue. A job that yields goes back to the queue
keeping the text it generated and continues from there later.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from leeway.engines import Engine
from leeway.events import JobEvents
from leeway.jobs import Job, JobError, Output, Window, split
from leeway.scheduler.metrics import Metrics
from leeway.scheduler.observed import Observed
from leeway.scheduler.policy import (
    EngineSpec,
    EngineState,
    PolicyConfig,
    QueuedJob,
    RunningJob,
    Snapshot,
    decide,
)
from leeway.store import Claim, Result, Store

log = logging.getLogger(__name__)

_PEEK = 4  # queued jobs the policy chooses among, per free sequence (at least _MIN_PEEK)
_MIN_PEEK = 16


@dataclass(eq=False)
class _Run:
    claim: Claim
    task: asyncio.Task[None] | None = None
    parts: list[str] = field(default_factory=list)  # text so far, earlier runs included
    tokens: int = 0  # output tokens so far, earlier runs included
    yielding: bool = False  # cancelled to make room for urgent work, not stopped
    finishing: bool = False  # generation is over; storing the result
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None

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
        policy: PolicyConfig | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store, self._engines, self._events = store, engines, events
        self._lease, self._poll, self._clock = lease_seconds, poll_seconds, clock
        self._wake = {model: asyncio.Event() for model in engines}
        self._policy = policy or PolicyConfig()
        self.metrics = metrics or Metrics()
        self._observed = {model: Observed() for model in engines}
        self._urgent = dict.fromkeys(engines, False)  # an asap job arrived since the last decision
        self._running: dict[str, _Run] = {}
        self._leaving: dict[str, _Run] = {}  # yielded, still writing their progress back
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
                self._urgent[job.model] = True
            event.set()

    def abandon(self, job_id: str) -> None:
        """Stop generating a job that was cancelled or deleted (its lease is already gone)."""
        if (run := self._running.pop(job_id, None)) is not None and run.task is not None:
            run.task.cancel()

    def pieces(self, job_id: str) -> list[str] | None:
        """The text a job running here has streamed so far, piece by piece; None if not running
        here."""
        run = self._running.get(job_id) or self._leaving.get(job_id)
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
        leaving = [r.task for r in self._leaving.values() if r.task is not None]
        await asyncio.gather(
            *self._loops, *(r.task for r in runs if r.task), *leaving, return_exceptions=True
        )
        await self._store.release([r.claim for r in runs])

    async def _fill(self, engine: Engine) -> None:
        model, wake = engine.model, self._wake[engine.model]
        while True:
            wake.clear()
            free = engine.parallel - self.running(model)
            if engine.ready() and (free > 0 or self._urgent[model]):
                self._urgent[model] = False
                try:
                    started = await self._schedule(engine, free)
                except Exception:
                    log.exception("scheduling %s failed", model)
                    started = 0
                if started and started >= free:
                    continue  # there may be more: fill the next free sequence as soon as one opens
            with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can eat a cancel
                async with asyncio.timeout(self._poll):
                    await wake.wait()

    async def _schedule(self, engine: Engine, free: int) -> int:
        """Ask the policy, apply its preemptions, claim and start what it chose; how many started."""
        peek = await self._store.queued(engine.model, max(_MIN_PEEK, _PEEK * free), self._clock())
        # a lease of ours that expired anyway (a long stall) must not start a second run here
        queued = [j for j in peek if j.id not in self._running and j.id not in self._leaving]
        if not queued:
            return 0
        decisions = decide(self._snapshot(engine, queued))
        for preempt in decisions.preempts:
            self._yield(preempt.job_id)
        ids = [start.job_id for start in decisions.starts]
        claims = await self._store.claim_ids(engine.model, ids, self._clock()) if ids else []
        for claim in claims:
            job = claim.job
            run = _Run(
                claim, parts=split(job.partial_text, job.partial_deltas), tokens=job.partial_tokens
            )
            run.task = asyncio.create_task(self._run(engine, run), name=job.id)
            self._running[job.id] = run
        return len(claims)

    def _snapshot(self, engine: Engine, queued: list[Job]) -> Snapshot:
        seen = self._observed[engine.model]
        spec = EngineSpec(engine.model, engine.parallel, seen.prefill_rate, seen.decode_rate)
        expected = seen.output_tokens
        running = tuple(
            RunningJob(
                r.job.id,
                r.job.window,
                r.job.deadline,
                r.tokens,
                remaining=max(
                    1.0,
                    min(
                        r.job.sampling.max_output_tokens,
                        expected or r.job.sampling.max_output_tokens,
                    )
                    - r.tokens,
                ),
            )
            for r in self._running.values()
            if r.job.model == engine.model and not r.yielding
        )
        waiting = tuple(
            QueuedJob(
                j.id,
                j.window,
                j.created_at,
                j.deadline,
                j.prompt_tokens,
                j.sampling.max_output_tokens,
                prefix=_prefix(j),
                tenant=j.tenant,
                generated=j.partial_tokens,
            )
            for j in queued
        )
        return Snapshot(
            self._clock(), waiting, (EngineState(spec, running),), expected, self._policy
        )

    def _yield(self, job_id: str) -> None:
        """Take a running job off its engine; it goes back to the queue keeping its text."""
        run = self._running.get(job_id)
        if run is None or run.task is None or run.finishing:
            return  # a job already storing its result frees its sequence in a moment anyway
        del self._running[job_id]
        run.yielding = True
        run.task.cancel()
        self._leaving[job_id] = run

    async def _run(self, engine: Engine, run: _Run) -> None:
        try:
            result = await self._generate(engine, run)
            run.finishing = True
            self._measure(run)
            job = await self._store.finish(run.claim, result, self._clock())
            if job is not None:
                self._events.publish_final(job)
                self.metrics.finished(job)
                if job.usage is not None:
                    self._observed[job.model].finished(job.usage.output_tokens)
            else:
                log.warning("lease on %s was lost; its result was discarded", run.job.id)
        except asyncio.CancelledError:
            if not run.yielding:
                raise
            self._measure(run)
            # shielded: the text generated so far must reach the store even if we are stopping
            await asyncio.shield(self._store.requeue(run.claim, run.parts, run.tokens))
        except Exception:
            log.exception("storing the result of %s failed; its lease will expire", run.job.id)
        finally:
            if self._running.get(run.job.id) is run:
                del self._running[run.job.id]
            if self._leaving.get(run.job.id) is run:
                del self._leaving[run.job.id]
            self._wake[engine.model].set()

    async def _generate(self, engine: Engine, run: _Run) -> Result:
        try:
            async with contextlib.aclosing(engine.generate(run.job)) as chunks:
                async for chunk in chunks:
                    run.tokens = chunk.tokens
                    if run.first_token is None:
                        run.first_token = time.monotonic()
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

    def _measure(self, run: _Run) -> None:
        job, now = run.job, time.monotonic()
        tokens = run.tokens - job.partial_tokens
        first = run.first_token or now
        self._observed[job.model].ran(
            job.prompt_tokens + job.partial_tokens, tokens, first - run.started, now - first
        )
        self.metrics.generated(job.model, tokens)

    def utilization(self) -> dict[str, float]:
        return {m: self.running(m) / e.parallel for m, e in self._engines.items()}

    async def _renew(self) -> None:
        """Every third of a lease: renew ours, requeue those of dead processes, measure tokens/s."""
        interval = self._lease / 3
        counted = {m: o.generated for m, o in self._observed.items()}
        while True:
            try:  # ours first, so a stall of this process never expires its own leases
                await self._store.renew([r.claim for r in self._running.values()], self._clock())
                if await self._store.expire(self._clock()):
                    for event in self._wake.values():
                        event.set()
            except Exception:
                log.exception("renewing or expiring leases failed")
            await asyncio.sleep(interval)
            for model, seen in self._observed.items():
                self.metrics.measured_rate(model, (seen.generated - counted[model]) / interval)
                counted[model] = seen.generated


def _prefix(job: Job) -> str:
    """Jobs whose first message is the same (a shared system prompt or leading input) share a
    prompt prefix."""
    first = job.messages[0]
    return hashlib.blake2b(f"{first.role}\0{first.content}".encode(), digest_size=8).hexdigest()
