"""The sender: one loop that leases due deliveries from the outbox and sends each, at most
``concurrency`` at once, recording every attempt and what follows from it.

Delivery is at least once. A delivery is leased for its attempt (1.5 × ``timeout`` + 1 s); a
process that dies mid-attempt leaves the lease to run out and the delivery is sent again, with the
same ``webhook-id``, so a receiver can drop the duplicate. Stopping cancels attempts in flight the
same way: they are sent again after the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping

from leeway.settings import WebhookSettings
from leeway.webhooks import schedule, signing
from leeway.webhooks.guard import Refused
from leeway.webhooks.http import Answer, Poster, Unreachable
from leeway.webhooks.outbox import Attempt, Delivery, DeliveryStatus, Outbox

log = logging.getLogger(__name__)

Render = Callable[[str, str], Awaitable[bytes | None]]  # (tenant, subject id) -> body, or gone
_PRUNE_EVERY = 3600.0


class Sender:
    def __init__(
        self,
        outbox: Outbox,
        renderers: Mapping[str, Render],
        poster: Poster,
        config: WebhookSettings,
        *,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._outbox, self._renderers, self._poster = outbox, renderers, poster
        self._config, self._clock, self._rand = config, clock, rand
        self._backoff = schedule.Backoff(
            config.backoff_base_seconds, config.backoff_max_seconds, config.retry_for_seconds
        )
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="leeway-webhook-sender")

    async def stop(self) -> None:
        """Stop sending; attempts in flight are cancelled (their deliveries are sent again later)."""
        tasks = [t for t in (self._task, *self._inflight) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        await self._poster.close()

    async def tick(self) -> int:
        """Start attempts for the due deliveries there is room for; how many were started."""
        room = self._config.concurrency - len(self._inflight)
        if room <= 0:
            return 0
        lease = self._config.timeout_seconds * 1.5 + 1.0  # outlasts the attempt and its record
        due = await self._outbox.due(self._clock(), room, lease)
        for delivery in due:
            task = asyncio.create_task(self.attempt(delivery), name=f"webhook-{delivery.id}")
            self._inflight.add(task)
            task.add_done_callback(self._done)
        return len(due)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()  # room for another

    async def _loop(self) -> None:
        pruned = 0.0
        while True:
            self._wake.clear()  # before looking: a slot freed while looking wakes the next look
            try:
                await self.tick()
                if self._clock() - pruned > _PRUNE_EVERY:
                    pruned = self._clock()
                    await self._outbox.prune(pruned - self._config.keep_days * 86_400)
            except Exception:  # the store may be briefly unavailable: try again next tick
                log.exception("webhook sender tick failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._config.poll_seconds):
                    await self._wake.wait()

    async def attempt(self, delivery: Delivery) -> None:
        """Send ``delivery`` once and record the outcome."""
        started = self._clock()
        status_code: int | None = None
        retry_after: float | None = None
        error: str | None
        try:
            answer = await self._send(delivery, started)
        except Refused as e:
            verdict, error = schedule.Verdict.STOP, f"refused: {e}"
        except _Gone as e:
            verdict, error = schedule.Verdict.STOP, str(e)
        except Unreachable as e:
            verdict, error = schedule.Verdict.RETRY, str(e)
        except Exception as e:  # a bug must not end the loop: recorded, and retried later
            log.exception("webhook %s: attempt failed unexpectedly", delivery.id)
            verdict, error = schedule.Verdict.RETRY, f"internal error: {type(e).__name__}: {e}"
        else:
            status_code = answer.status_code
            verdict = schedule.verdict(status_code)
            error = schedule.describe(status_code, answer.headers.get("location"))
            retry_after = schedule.retry_after(answer.headers.get("retry-after"), self._clock())
        try:
            await self._record(delivery, started, status_code, error, verdict, retry_after)
        except Exception:  # its lease runs out and it is attempted again
            log.exception("webhook %s: recording the attempt failed", delivery.id)

    async def _send(self, delivery: Delivery, now: float) -> Answer:
        body = delivery.body
        if body is None:
            render = self._renderers.get(delivery.subject_kind)
            if render is None:
                raise _Gone(f"nothing renders a {delivery.subject_kind!r} delivery")
            body = await render(delivery.tenant, delivery.subject_id)
            if body is None:
                raise _Gone(f"the {delivery.subject_kind} was deleted before it could be delivered")
        secrets = await self._outbox.secrets(delivery.tenant, now)
        headers = signing.headers(secrets, delivery.id, int(now), body, delivery.token)
        return await self._poster.post(delivery.url, body, headers)

    async def _record(
        self,
        delivery: Delivery,
        started: float,
        status_code: int | None,
        error: str | None,
        verdict: schedule.Verdict,
        retry_after: float | None = None,
    ) -> None:
        now = self._clock()
        attempt = Attempt(started, max(0.0, now - started), status_code, error)
        if verdict is schedule.Verdict.DELIVERED:
            await self._outbox.record(delivery.id, attempt, DeliveryStatus.DELIVERED)
            return
        if verdict is schedule.Verdict.RETRY:
            failures = delivery.attempts + 1
            at = self._backoff.next_attempt(
                delivery.created_at, now, failures, self._rand(), retry_after
            )
            if at is not None:
                await self._outbox.record(delivery.id, attempt, DeliveryStatus.PENDING, at)
                return
            attempt = Attempt(
                attempt.at, attempt.duration, status_code, _gave_up(error, self._config)
            )
        log.warning("webhook %s to %s failed: %s", delivery.id, delivery.url, attempt.error)
        await self._outbox.record(delivery.id, attempt, DeliveryStatus.FAILED)


class _Gone(Exception):
    """The delivery's subject cannot be rendered any more (not retried)."""


def _gave_up(error: str | None, config: WebhookSettings) -> str:
    return f"{error or 'failed'}; no retry: past retry_for_seconds ({config.retry_for_seconds:g})"
