"""Back-pressure per tenant: how many creates a second, and how many jobs waiting at once. Over a
limit → 429 with ``Retry-After`` and a message that names the limit. And a monthly budget: once a
tenant's cost this calendar month (UTC) reaches it, creates answer 429 ``insufficient_quota``
(queued and running work still finishes)."""

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

    async def admit(self, tenant: str, jobs: int = 1) -> None:
        """Raise ``RateLimited`` if one more request of ``jobs`` jobs (a batch has many) for
        ``tenant`` is over one of its limits."""
        limits = self._settings.limits_for(tenant)
        if limits.monthly_budget > 0 and self._spending is not None:
            await self._within_budget(tenant, limits.monthly_budget)
        if limits.requests_per_second > 0:
            self._take(tenant, limits.requests_per_second)
        if limits.max_queued > 0:
            queued = await self._store.count_queued(tenant)
            if queued + jobs > limits.max_queued:
                adding = "" if jobs == 1 else f", this batch would add {jobs}"
                raise RateLimited(
                    f"Too many queued jobs: tenant '{tenant}' has {queued} waiting{adding} and its "
                    f"limit is {limits.max_queued} (max_queued). Retry once some have started.",
                    retry_after=_FULL_QUEUE_RETRY,
                )

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

    def _take(self, tenant: str, rate: float) -> None:
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
            )
        self._buckets[tenant] = (tokens - 1, now)
