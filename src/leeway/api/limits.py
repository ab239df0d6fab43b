"""Back-pressure per tenant: how many creates a second, and how many jobs waiting at once. Over a
limit → 429 with ``Retry-After`` and a message that names the limit. A tenant with limits gets
OpenAI-shaped ``x-ratelimit-*`` headers on its creates (and on the 429): ``limit``, ``remaining``
and ``reset`` for ``requests`` (the bucket of ``requests_per_second``: its size, the requests left
in it, the time until it is full again), ``limit`` and ``remaining`` for ``queued``
(``max_queued``). And a monthly budget: once a tenant's cost this calendar month (UTC) reaches it,
creates answer 429 ``insufficient_quota`` (queued and running work still finishes)."""

from __future__ import annotations

import time
from collections.abc import Callable

from leeway.errors import QuotaExceeded, RateLimited
from leeway.settings import Settings
from leeway.store import Jobs, Spending
from leeway.usage import month_start

_FULL_QUEUE_RETRY = 5.0  # seconds: a full queue drains at the engines' pace, not ours


class Limiter:
    def __init__(
        self,
        settings: Settings,
        store: Jobs,
        clock: Callable[[], float] = time.monotonic,
        spending: Spending | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``spending``: where budgets are read (None: budgets are not checked)."""
        self._settings, self._store, self._clock = settings, store, clock
        self._spending, self._wall = spending, wall
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, when)

    async def admit(self, tenant: str, jobs: int = 1) -> dict[str, str]:
        """Raise ``RateLimited`` if one more request of ``jobs`` jobs (a batch has many) for
        ``tenant`` is over one of its limits; else the ``x-ratelimit-*`` headers to answer with."""
        limits = self._settings.limits_for(tenant)
        if limits.monthly_budget > 0 and self._spending is not None:
            await self._within_budget(tenant, limits.monthly_budget)
        headers: dict[str, str] = {}
        if limits.requests_per_second > 0:
            headers.update(self._take(tenant, limits.requests_per_second))
        if limits.max_queued > 0:
            queued = await self._store.count_queued(tenant)
            headers["x-ratelimit-limit-queued"] = str(limits.max_queued)
            headers["x-ratelimit-remaining-queued"] = str(max(0, limits.max_queued - queued))
            if queued + jobs > limits.max_queued:
                adding = "" if jobs == 1 else f", this batch would add {jobs}"
                raise RateLimited(
                    f"Too many queued jobs: tenant '{tenant}' has {queued} waiting{adding} and its "
                    f"limit is {limits.max_queued} (max_queued). Retry once some have started.",
                    retry_after=_FULL_QUEUE_RETRY,
                    headers=headers,
                )
            headers["x-ratelimit-remaining-queued"] = str(limits.max_queued - queued - jobs)
        return headers

    async def _within_budget(self, tenant: str, budget: float) -> None:
        assert self._spending is not None
        since = month_start(self._wall())
        spent = await self._spending.spent(tenant, since)
        if spent >= budget:
            month = time.strftime("%B %Y", time.gmtime(since))
            raise QuotaExceeded(
                f"Tenant '{tenant}' has spent ${spent:.2f} of its monthly budget of "
                f"${budget:.2f} (monthly_budget) in {month} (UTC): new requests are refused until "
                "the budget is raised or the month ends. Queued and running work still finishes."
            )

    def _take(self, tenant: str, rate: float) -> dict[str, str]:
        """A token bucket holding one second's worth of requests."""
        now, burst = self._clock(), max(1.0, rate)
        tokens, then = self._buckets.get(tenant, (burst, now))
        tokens = min(burst, tokens + (now - then) * rate)
        if tokens < 1:
            wait = (1 - tokens) / rate
            self._buckets[tenant] = (tokens, now)
            raise RateLimited(
                f"Too many requests: tenant '{tenant}' is over its limit of {rate:g} requests per "
                f"second (requests_per_second). Retry after {wait:.2f} s.",
                retry_after=wait,
                headers=_bucket_headers(burst, tokens, rate),
            )
        self._buckets[tenant] = (tokens - 1, now)
        return _bucket_headers(burst, tokens - 1, rate)


def _bucket_headers(burst: float, tokens: float, rate: float) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": f"{burst:g}",
        "x-ratelimit-remaining-requests": str(int(tokens)),
        "x-ratelimit-reset-requests": duration((burst - tokens) / rate),
    }


def duration(seconds: float) -> str:
    """As OpenAI writes a reset time: ``17ms``, ``1s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.0f}s" if minutes else f"{rest:.3g}s"
