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

The server runs the dispatcher and its engines on a thread and loop of their own (``LoopThread``),
so no load on the API's loop can starve them. ``wake`` and ``abandon`` may be called from any
thread; ``pieces``, ``watch``, ``running`` and ``utilization`` read under a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from leeway.engines import Engine, EngineRejected, EngineUnavailable
from leeway.events import JobEvents, Subscription
from leeway.jobs import Job, JobError, Output, Window, split
from leeway.scheduler.metrics import Metrics
from leeway.scheduler.policy import PolicyConfig, decide
from leeway.scheduler.runs import Run, Slot, snapshot
from leeway.store import Result, Store

log = logging.getLogger(__name__)

T = TypeVar("T")
_PEEK = 4  # queued jobs the policy chooses among, per free sequence (at least _MIN_PEEK)
_MIN_PEEK = 16
# Runs of one job in a row that an engine could not take (EngineUnavailable) before the job fails:
# an upstream that errs on one request every time must not keep it in the queue forever.
_MAX_UNAVAILABLE = 5


class Dispatcher:
    def __init__(
        self,
        store: Store,
        engines: Iterable[Engine],
        events: JobEvents,
        *,
        lease_seconds: float,
        poll_seconds: float,
        policy: PolicyConfig | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        publish_seconds: float | None = None,
    ) -> None:
        """``publish_seconds``: also append running jobs' new pieces to the store this often, so
        API processes that do not run a job can stream it (``leeway.api.relay``); None: only
        in-process subscribers stream."""
        self._store, self._events = store, events
        self._publish = publish_seconds
        self._lease, self._poll, self._clock = lease_seconds, poll_seconds, clock
        self._slots = [Slot(e) for e in engines]
        self._models: dict[str, list[Slot]] = {}
        for slot in self._slots:
            self._models.setdefault(slot.engine.model, []).append(slot)
        self._holder = secrets.token_hex(8)  # this dispatcher, in the store's engine leases
        self._policy = policy or PolicyConfig()
        self.metrics = metrics or Metrics()
        self._running: dict[str, Run] = {}
        self._unavailable: dict[str, int] = {}  # job id -> runs in a row the engine could not take
        self._leaving: dict[str, Run] = {}  # yielded, still writing their progress back
        # Changed only on the dispatcher's loop; held there while changing the two maps above or a
        # run's text, and by readers on other threads.
        self._lock = threading.Lock()
        self._loops: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0

    def start(self) -> None:
        """Start on the running loop: every engine must have been started on it too."""
        self._loop, self._thread = asyncio.get_running_loop(), threading.get_ident()
        self._loops = [
            asyncio.create_task(self._fill(s), name=f"fill:{s.engine.id}") for s in self._slots
        ]
        self._loops.append(asyncio.create_task(self._renew(), name="renew"))
        if self._publish is not None:
            self._loops.append(asyncio.create_task(self._publish_pieces(), name="publish"))

    def wake(self, job: Job) -> None:
        """``job`` was queued: look now instead of at the next poll."""
        slots = self._models.get(job.model, ())
        # already set: the fill loop has yet to clear it, and reads the queue after it does
        if job.window is Window.ASAP or any(not s.wake.is_set() for s in slots):
            self._call(self._woken, job)

    def wake_model(self, model: str) -> None:
        """Jobs of ``model`` were queued elsewhere (another process): look now."""
        for slot in self._models.get(model, ()):
            self._call(lambda s: s.wake.set(), slot)

    def abandon(self, job_id: str) -> None:
        """Stop generating a job that was cancelled or deleted (its lease is already gone)."""
        self._call(self._abandoned, job_id)

    def pieces(self, job_id: str) -> list[str] | None:
        """The text a job running here has streamed so far, piece by piece; None if not running
        here."""
        with self._lock:
            return self._pieces(job_id)

    def watch(self, job_id: str, events: JobEvents) -> tuple[Subscription, list[str] | None]:
        """Subscribe to a job's updates and take its ``pieces`` at once: every piece is in one
        or the other, never in both."""
        with self._lock:
            return events.subscribe(job_id), self._pieces(job_id)

    def running(self, model: str) -> int:
        with self._lock:
            return sum(1 for r in self._running.values() if r.job.model == model)

    def _busy(self, slot: Slot) -> int:
        """Sequences in use on this engine."""
        return sum(1 for r in self._running.values() if r.slot is slot)

    def _call(self, fn: Callable[[T], None], arg: T) -> None:
        """``fn(arg)`` on the dispatcher's loop: now if called there, else as soon as it can."""
        if self._loop is None or threading.get_ident() == self._thread:
            fn(arg)  # not started yet: no loop runs anything else here
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing runs to stop
                self._loop.call_soon_threadsafe(fn, arg)

    def _woken(self, job: Job) -> None:
        for slot in self._models.get(job.model, ()):
            if job.window is Window.ASAP:
                slot.urgent = True
            slot.wake.set()

    def _abandoned(self, job_id: str) -> None:
        with self._lock:
            run = self._running.pop(job_id, None)
        if run is not None and run.task is not None:
            run.task.cancel()

    def _pieces(self, job_id: str) -> list[str] | None:
        run = self._running.get(job_id) or self._leaving.get(job_id)
        return list(run.parts) if run is not None else None

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
        if self._loop is not None:  # hand the engines over now, not when their leases expire
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
        peek = await self._store.queued(engine.model, max(_MIN_PEEK, _PEEK * free), self._clock())
        # a lease of ours that expired anyway (a long stall) must not start a second run here
        queued = [j for j in peek if j.id not in self._running and j.id not in self._leaving]
        if not queued:
            return 0
        runs = [r for r in self._running.values() if r.slot is slot and not r.yielding]
        decisions = decide(snapshot(slot, runs, queued, self._clock(), self._policy))
        for preempt in decisions.preempts:
            self._yield(preempt.job_id)
        ids = [start.job_id for start in decisions.starts]
        claims = await self._store.claim_ids(engine.model, ids, self._clock()) if ids else []
        for claim in claims:
            job = claim.job
            run = Run(
                claim,
                slot,
                parts=split(job.partial_text, job.partial_deltas),
                tokens=job.partial_tokens,
            )
            run.task = asyncio.create_task(self._run(run), name=job.id)
            with self._lock:
                self._running[job.id] = run
        return len(claims)

    def _yield(self, job_id: str) -> None:
        """Take a running job off its engine; it goes back to the queue keeping its text."""
        run = self._running.get(job_id)
        if run is None or run.task is None or run.finishing:
            return  # a job already storing its result frees its sequence in a moment anyway
        with self._lock:
            del self._running[job_id]
            self._leaving[job_id] = run
        run.yielding = True
        run.task.cancel()

    async def _run(self, run: Run) -> None:
        try:
            result = await self._generate(run.slot.engine, run)
            run.finishing = True
            self._measure(run)
            self._unavailable.pop(run.job.id, None)
            job = await self._store.finish(run.claim, result, self._clock())
            if job is not None:
                with self._lock:  # a watcher sees either the run or the stored final job
                    self._forget(run)
                    self._events.publish_final(job)
                self.metrics.finished(job)
                if job.usage is not None:
                    run.slot.observed.finished(job.usage.output_tokens)
            else:
                log.warning("lease on %s was lost; its result was discarded", run.job.id)
        except asyncio.CancelledError:
            if not run.yielding:
                raise
            self._measure(run)
            # shielded: the text generated so far must reach the store even if we are stopping
            await asyncio.shield(self._store.requeue(run.claim, run.parts, run.tokens))
        except EngineUnavailable as e:
            # back in the queue keeping its text, no attempt spent, nothing billed: it runs again
            # later or on another engine, and only the run that finishes carries usage
            log.warning(
                "engine %s could not run %s, requeued: %s", run.slot.engine.id, run.job.id, e
            )
            await asyncio.shield(self._store.requeue(run.claim, run.parts, run.tokens))
        except Exception:
            log.exception("storing the result of %s failed; its lease will expire", run.job.id)
        finally:
            with self._lock:
                self._forget(run)
            run.slot.wake.set()

    def _forget(self, run: Run) -> None:
        if self._running.get(run.job.id) is run:
            del self._running[run.job.id]
        if self._leaving.get(run.job.id) is run:
            del self._leaving[run.job.id]

    async def _generate(self, engine: Engine, run: Run) -> Result:
        try:
            async with contextlib.aclosing(engine.generate(run.job)) as chunks:
                async for chunk in chunks:
                    run.tokens = chunk.tokens
                    if run.first_token is None:
                        run.first_token = time.monotonic()
                    if chunk.text:
                        with self._lock:  # a watcher gets this piece from one or the other
                            run.parts.append(chunk.text)
                            seq = len(run.parts) - 1
                            self._events.publish_delta(run.job.id, chunk.text, seq)
                    if chunk.finish is not None:
                        sizes = tuple(len(p) for p in run.parts)
                        text = "".join(run.parts)
                        output = Output(text, chunk.finish, chunk.stop_sequence, sizes)
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
        run.slot.observed.ran(
            job.prompt_tokens + job.partial_tokens, tokens, first - run.started, now - first
        )
        self.metrics.generated(job.model, tokens)

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
                        self._abandoned(run.job.id)
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

    async def _publish_pieces(self) -> None:
        """Append every running job's new pieces to the store in one write, then wait a little: a
        slow store makes pieces wait for the next write, never the engines (the write runs beside
        them). A run's first write stores its earlier runs' pieces again (a requeue dropped them)."""
        assert self._publish is not None
        while True:
            await asyncio.sleep(self._publish)
            runs = [
                (r, len(r.parts))
                for r in (*self._running.values(), *self._leaving.values())
                if len(r.parts) > r.stored
            ]
            if not runs:
                continue
            try:
                stored = await self._store.append_deltas(
                    [(r.claim, r.stored, r.parts[r.stored : n]) for r, n in runs]
                )
            except Exception:
                log.exception("storing streamed pieces failed; they go in the next write")
                continue
            for run, n in runs:
                if run.job.id in stored:
                    run.stored = max(run.stored, n)

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
