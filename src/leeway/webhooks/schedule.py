"""What a receiver's answer means, and when the next attempt is due. Pure: no I/O, no clock.

    2xx                      delivered
    408, 429, 5xx            retried (``Retry-After`` honoured, in seconds or as an HTTP date)
    network error, timeout   retried
    3xx                      failed: redirects are not followed (the target is not what was
                             configured, and following it would bypass the URL guard), and
                             retrying would get the same redirect
    410 Gone                 failed: the receiver asked for no more
    other 4xx                failed: resending the same request gets the same answer
    refused address          failed, without a connection (``guard``)

Retries wait ``base · 2^(n-1)`` seconds after the n-th failed attempt, capped at ``max``, with jitter
(a uniform share of the second half, so the wait is between half that and all of it), and stop once
the next attempt would start more than ``retry_for`` seconds after the delivery was created.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    STOP = "stop"


def verdict(status_code: int) -> Verdict:
    if 200 <= status_code < 300:
        return Verdict.DELIVERED
    if status_code in (408, 429) or status_code >= 500:
        return Verdict.RETRY
    return Verdict.STOP


def describe(status_code: int, location: str | None = None) -> str | None:
    """The error an answer is recorded with (None for a 2xx)."""
    if 200 <= status_code < 300:
        return None
    if 300 <= status_code < 400:
        where = f" to {location}" if location else ""
        return f"redirect{where} not followed (answered {status_code})"
    if status_code == 410:
        return "the receiver answered 410 Gone: no more attempts"
    kind = "retried" if verdict(status_code) is Verdict.RETRY else "not retried"
    return f"answered {status_code} ({kind})"


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (a number of seconds or an HTTP date); None if
    there is none or it cannot be read."""
    if value is None or not (value := value.strip()):
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # an HTTP date is always GMT
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float = 5.0
    max: float = 3_600.0
    retry_for: float = 86_400.0

    def delay(self, failures: int, rand: float) -> float:
        """The wait after ``failures`` failed attempts (≥ 1); ``rand`` in [0, 1) picks the jitter."""
        full = min(self.max, self.base * 2.0 ** min(failures - 1, 64))
        return full / 2 + full / 2 * rand

    def next_attempt(
        self,
        created_at: float,
        now: float,
        failures: int,
        rand: float,
        retry_after: float | None = None,
    ) -> float | None:
        """When to try again after ``failures`` failed attempts, the last ending at ``now``; None
        when that would be past the retry period (the delivery has failed). A receiver's
        ``Retry-After`` replaces the computed wait."""
        wait = retry_after if retry_after is not None else self.delay(failures, rand)
        at = now + wait
        return at if at <= created_at + self.retry_for else None
