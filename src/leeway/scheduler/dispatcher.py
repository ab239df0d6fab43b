"""The one async loop between the store and the engines.

For each engine it keeps every sequence busy while work is queued (a model may have several engines,
each filled on its own from the model's queue): when sequences are free (or an
``asap`` job arrives) it reads the most pressing queued jobs from the store, asks the policy
(``policy.decide``: least slack first, flex in the gaps, asap preempting) which to start and which
running job yields, claims exactly those under a lease, runs them, and writes results back. Leases
of running jobs are renewed; a process that dies leaves leases that expire, and the jobs are claimed
again. A graceful stop hands running jobs back to the queue. A job that yields goes back to the queue
keeping the text it generated and continues from there later.

Several dispatcher processes may share one store and one fleet: each engine is filled only by the
dispatcher holding its lease in the store (``hold_engines``), renewed with the job leases, so an
engine's capacity is never counted twice. A local engine's id is unique to its process, so every
process keeps its own; an upstream engine's id names the server, so one process at a time fills it
and another takes over when the holder stops renewing.

Everything here runs on one event loop: the runtime (``leeway.runtime``) gives the dispatcher and
its engines a thread and loop of their own, so no load on the API's loop can starve them, and hands
calls over to it. Each run's text goes to the piece log (``leeway.pieces``), which followers read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable

from leeway.engines import Engine, EngineRejected, EngineUnavailable
from leeway.jobs import Job, JobError, Output, Window
from leeway.pieces import PieceLog
from leeway.scheduler.metrics import Metrics
from leeway.scheduler.policy import PolicyConfig, PolicyKind, decide
from leeway.scheduler.runs import Run, Slot, snapshot
from leeway.store import QueueOrder, Result, Store

log = logging.getLogger(__name__)

_PEEK = 4  # queued jobs the policy chooses among, per free sequence (at least _MIN_PEEK)
_MIN_PEEK = 16
# Runs of one job in a row that an engine could not take (EngineUnavailable) before the job fails:
# an upstream that errs on one request every time must not keep it in the queue forever.
_MAX_UNAVAILABLE = 5
# what each policy chooses among: the queued jobs first in its own order
_ORDER: dict[PolicyKind, QueueOrder] = {
    PolicyKind.LEEWAY: "deadline",
    PolicyKind.STRICT: "window",
    PolicyKind.FCFS: "arrival",
}


class Dispatcher:
    def __init__(
        self,
        store: Store,
        engines: Iterable[Engine],
        pieces: PieceLog,
        *,
        lease_seconds: float,
        poll_seconds: float,
        kind: PolicyKind = PolicyKind.LEEWAY,
        policy: PolicyConfig | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store, self._log = store, pieces
        self._lease, self._poll, self._clock = lease_seconds, poll_seconds, clock
        self._slots = [Slot(e) for e in engines]
        self._models: dict[str, list[Slot]] = {}
        for slot in self._slots:
            self._models.setdefault(slot.engine.model, []).append(slot)
        self._holder = secrets.token_hex(8)  # this dispatcher, in the store's engine leases
        self._kind, self._policy = kind, policy or PolicyConfig()
        self.metrics = metrics or Metrics()
        self.metrics.configured(kind.value, self._policy.targets, self._policy.urgent_share)
        for slot in self._slots:
            self.metrics.engine(slot.engine.id, slot.engine.model, slot.engine.parallel)
        self._running: dict[str, Run] = {}
        self._unavailable: dict[str, int] = {}  # job id -> runs in a row the engine could not take
        self._leaving: dict[str, Run] = {}  # yielded, still writing their progress back
        self._loops: list[asyncio.Task[None]] = []
        self._started = False

    def start(self) -> None:
        """Start on the running loop: every engine must have been started on it too."""
        self._started = True
        self._loops = [
            asyncio.create_task(self._fill(s), name=f"fill:{s.engine.id}") for s in self._slots
        ]
        self._loops.append(asyncio.create_task(self._renew(), name="renew"))

    @property
    def holder(self) -> str:
        """This dispatcher's name in the store's leases."""
        return self._holder

    def wake(self, job: Job) -> None:
        """``job`` was queued: look now instead of at the next poll."""
        for slot in self._models.get(job.model, ()):
            if job.window is Window.ASAP:
                slot.urgent = True
            slot.wake.set()

    def wake_model(self, model: str) -> None:
        """Jobs of ``model`` were queued elsewhere (another process): look now."""
        for slot in self._models.get(model, ()):
            slot.wake.set()

    def abandon(self, job_id: str) -> None:
        """Stop generating a job that was cancelled or deleted (its lease is already gone); what
        the run generated is billed if the cancel stopped it (``bill_cancelled_run``)."""
        run = self._running.pop(job_id, None)
        if run is not None and run.task is not None:
            run.abandoned = True
            self._leaving[job_id] = run  # until its tokens are billed
            run.task.cancel()

    def running(self, model: str) -> int:
        return sum(1 for r in self._running.values() if r.job.model == model)

    def _busy(self, slot: Slot) -> int:
        """Sequences in use on this engine."""
        return sum(1 for r in self._running.values() if r.slot is slot)

    def _occupied(self, slot: Slot) -> None:
        self.metrics.running(slot.engine.id, self._busy(slot))

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
        if self._started:  # hand the engines over now, not when their leases expire
            with contextlib.suppress(Exception):
                await self._hold_engines(self._clock())

    async def _fill(self, slot: Slot) -> None:
        engine, wake = slot.engine, slot.wake
        while True:
            wake.clear()
            free = engine.parallel - self._busy(slot)
            if slot.held and engine.ready() and (free > 0 or slot.urgent):
                slot.urgent = False
                try:
                    started = await self._schedule(slot, free)
                except Exception:
                    log.exception("scheduling on %s failed", engine.id)
                    started = 0
                if started and started >= free:
                    continue  # there may be more: fill the next free sequence as soon as one opens
            with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can eat a cancel
                async with asyncio.timeout(self._poll):
                    await wake.wait()

    async def _schedule(self, slot: Slot, free: int) -> int:
        """Ask the policy, apply its preemptions, claim and start what it chose; how many started."""
        engine = slot.engine
        limit = max(_MIN_PEEK, _PEEK * free)
        peek = await self._store.queued(engine.model, limit, self._clock(), _ORDER[self._kind])
        # a lease of ours that expired anyway (a long stall) must not start a second run here
        queued = [j for j in peek if j.id not in self._running and j.id not in self._leaving]
        if not queued:
            return 0
        runs = [r for r in self._running.values() if r.slot is slot and not r.yielding]
        decisions = decide(snapshot(slot, runs, queued, self._clock(), self._policy), self._kind)
        for preempt in decisions.preempts:
            self._yield(preempt.job_id)
        ids = [start.job_id for start in decisions.starts]
        now = self._clock()
        claims = await self._store.claim_ids(engine.model, ids, now, self._holder) if ids else []
        for claim in claims:
            job, shown = claim.job, "".join(self._log.begin(claim))
            run = Run(claim, slot, tokens=job.partial_tokens, tail=job.partial_text[len(shown) :])
            run.task = asyncio.create_task(self._run(run), name=claim.job.id)
            self._running[claim.job.id] = run
            self.metrics.prefilling(engine.id, job.prompt_tokens + job.partial_tokens)
        self._occupied(slot)
        return len(claims)

    def _yield(self, job_id: str) -> None:
        """Take a running job off its engine; it goes back to the queue keeping its text."""
        run = self._running.get(job_id)
        if run is None or run.task is None or run.finishing:
            return  # a job already storing its result frees its sequence in a moment anyway
        del self._running[job_id]
        self._leaving[job_id] = run
        run.yielding = True
        run.task.cancel()
        self._occupied(run.slot)

    async def _run(self, run: Run) -> None:
        final: Job | None = None
        try:
            result = await self._generate(run.slot.engine, run)
            run.finishing = True
            self._measure(run)
            self._unavailable.pop(run.job.id, None)
            final = await self._store.finish(run.claim, result, self._clock())
            if final is not None:
                self.metrics.finished(final)
                if final.usage is not None:
                    run.slot.observed.finished(final.usage.output_tokens)
            elif not await self._bill_cancelled(run):  # a cancel just beat the result
                log.warning("lease on %s was lost; its result was discarded", run.job.id)
        except asyncio.CancelledError:
            if not run.yielding:
                raise
            self._measure(run)
            # shielded: the text generated so far must reach the store even if we are stopping
            await asyncio.shield(self._requeue(run))
        except EngineUnavailable as e:
            # back in the queue keeping its text, no attempt spent, nothing billed: it runs again
            # later or on another engine, and only the run that finishes carries usage
            log.warning(
                "engine %s could not run %s, requeued: %s", run.slot.engine.id, run.job.id, e
            )
            await asyncio.shield(self._requeue(run))
        except Exception:
            log.exception("storing the result of %s failed; its lease will expire", run.job.id)
        finally:
            # its followers see the run's pieces until here, then the final job (or, if it
            # yielded or lost its lease, what the store holds)
            self._log.end(run.job.id, final)
            try:
                if run.abandoned:  # a cancel stopped it: what it generated is billed
                    await asyncio.shield(self._bill_cancelled(run))
            finally:
                self._forget(run)
                self._occupied(run.slot)
                run.slot.wake.set()

    def _text(self, run: Run) -> list[str]:
        """The run's pieces so far, earlier runs' included."""
        return self._log.pieces(run.job.id) or []

    async def _bill_cancelled(self, run: Run) -> bool:
        """Bill what a run stopped by a cancel generated (the store bills it only if the cancel
        stopped this very run, and only once)."""
        try:
            return await self._store.bill_cancelled_run(run.claim, run.tokens)
        except Exception:
            log.exception("billing the cancelled run of %s failed", run.job.id)
            return False

    async def _requeue(self, run: Run) -> bool:
        """Back to the queue, keeping everything generated: its pieces, and the tail not shown."""
        return await self._store.requeue(run.claim, self._text(run), run.tokens, run.tail)

    def _forget(self, run: Run) -> None:
        if self._running.get(run.job.id) is run:
            del self._running[run.job.id]
        if self._leaving.get(run.job.id) is run:
            del self._leaving[run.job.id]

    async def _generate(self, engine: Engine, run: Run) -> Result:
        try:
            async with contextlib.aclosing(engine.generate(run.job)) as chunks:
                async for chunk in chunks:
                    self.metrics.decoded(engine.id, chunk.tokens - run.tokens)
                    run.tokens, run.tail = chunk.tokens, chunk.tail
                    if run.first_token is None:
                        run.first_token = time.monotonic()
                    if chunk.text:
                        self._log.append(run.job.id, chunk.text)
                    if chunk.finish is not None:
                        pieces = self._text(run)
                        sizes = tuple(len(p) for p in pieces)
                        text = "".join(pieces)
                        tools = run.job.tools
                        calls = tools.limit(chunk.calls) if tools else chunk.calls
                        output = Output(
                            text, chunk.finish, chunk.stop_sequence, sizes, calls, chunk.reasoning
                        )
                        return Result(output, chunk.usage)
        except asyncio.CancelledError:
            raise
        except EngineUnavailable as e:
            tries = self._unavailable.get(run.job.id, 0) + 1
            if tries < _MAX_UNAVAILABLE:
                self._unavailable[run.job.id] = tries
                raise
            del self._unavailable[run.job.id]
            message = f"The engines could not run this job {tries} times in a row; last: {e}"
            return Result(error=JobError("engine_unavailable", message))
        except EngineRejected as e:  # the engine refused the job: its message is the job's error
            log.warning("engine %s refused %s: %s", engine.id, run.job.id, e)
            return Result(error=JobError("engine_error", e.message))
        except Exception as e:
            log.exception("engine %s failed on %s", engine.model, run.job.id)
            return Result(error=JobError("engine_error", f"The engine failed: {e}"))
        return Result(error=JobError("engine_error", "The engine stopped without finishing."))

    def _measure(self, run: Run) -> None:
        job, now = run.job, time.monotonic()
        tokens = run.tokens - job.partial_tokens
        first = run.first_token or now
        seen = run.slot.observed
        seen.ran(job.prompt_tokens + job.partial_tokens, tokens, first - run.started, now - first)
        self.metrics.generated(job.model, tokens)
        self.metrics.rates(run.slot.engine.id, seen.prefill_rate, seen.decode_rate)

    def utilization(self) -> dict[str, float]:
        return {
            m: self.running(m) / sum(s.engine.parallel for s in slots)
            for m, slots in self._models.items()
        }

    async def _renew(self) -> None:
        """Every third of a lease: renew ours (engines and jobs), requeue those of dead processes,
        measure tokens/s."""
        interval = self._lease / 3
        counted = {m: self._generated(m) for m in self._models}
        while True:
            try:  # ours first, so a stall of this process never expires its own leases
                await self._hold_engines(self._clock() + self._lease)
                runs = list(self._running.values())
                held = await self._store.renew([r.claim for r in runs], self._clock())
                for run in runs:  # cancelled or deleted, perhaps through another process
                    if run.job.id not in held and not run.finishing:
                        self.abandon(run.job.id)
                if await self._store.expire(self._clock()):
                    for slot in self._slots:
                        slot.wake.set()
            except Exception:
                log.exception("renewing or expiring leases failed")
            await asyncio.sleep(interval)
            for model in self._models:
                generated = self._generated(model)
                self.metrics.measured_rate(model, (generated - counted[model]) / interval)
                counted[model] = generated

    async def _hold_engines(self, until: float) -> None:
        """Take or keep the leases of our engines that no other dispatcher holds."""
        ids = [s.engine.id for s in self._slots]
        held = await self._store.hold_engines(self._holder, ids, until, self._clock())
        for slot in self._slots:
            was, slot.held = slot.held, slot.engine.id in held
            if slot.held and not was:
                slot.wake.set()

    def _generated(self, model: str) -> int:
        return sum(s.observed.generated for s in self._models[model])
