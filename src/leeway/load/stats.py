"""The figures of a replay (or of its simulated twin): per window and overall.

Attainment is the share of a window's requests that finished within its target turn time (a request
that failed or never finished counts as a miss); for ``asap`` it is the share whose first text came
within ``ASAP_TTFT`` (the simulator's ``asap`` attains when it starts within that). Percentiles are
nearest-rank, as the simulator's report takes them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from leeway.jobs import Window
from leeway.load.records import Record
from leeway.sim.report import ASAP_WAIT

ASAP_TTFT = ASAP_WAIT


@dataclass(frozen=True, slots=True)
class WindowStats:
    window: str
    requests: int
    finished: int
    target: float  # seconds (asap: of time to first token)
    attained: float | None
    turn_p50: float | None
    turn_p95: float | None
    turn_p99: float | None
    ttft_p50: float | None
    ttft_p99: float | None


@dataclass(frozen=True, slots=True)
class Overall:
    requests: int
    finished: int
    seconds: float  # of arrivals, as planned
    offered_rate: float  # requests/s due
    sent_rate: float  # requests/s the client sent (below offered: the client fell behind)
    accepted_rate: float  # requests/s the server answered
    lag_p50: float | None  # how late the client sent them
    lag_p99: float | None
    lag_max: float | None
    in_flight_peak: int  # requests sent and not yet final at once, at most
    output_tokens: int
    tokens_per_second: float  # output tokens / first send to last final event
    utilization: float | None = None  # sequences in flight / capacity, time-averaged (/metrics)
    server_tokens_per_second: float | None = None  # the server's counter, same span (/metrics)
    errors: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    windows: tuple[WindowStats, ...]
    overall: Overall

    def window(self, window: Window) -> WindowStats | None:
        return next((w for w in self.windows if w.window == window.value), None)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest rank of the sorted ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(len(ordered) * p / 100) - 1))]


def window_stats(window: Window, records: Sequence[Record], target: float) -> WindowStats:
    turns = [t for r in records if (t := r.turn) is not None]
    ttfts = [t for r in records if (t := r.ttft) is not None and r.error is None]
    if window is Window.ASAP:
        target = ASAP_TTFT
        met = sum(1 for t in ttfts if t <= target)
    else:
        met = sum(1 for t in turns if t <= target)
    return WindowStats(
        window.value,
        len(records),
        len(turns),
        target,
        met / len(records) if records else None,
        percentile(turns, 50),
        percentile(turns, 95),
        percentile(turns, 99),
        percentile(ttfts, 50),
        percentile(ttfts, 99),
    )


def report(
    records: Sequence[Record],
    targets: Mapping[Window, float],
    seconds: float,
    *,
    utilization: float | None = None,
    server_tokens_per_second: float | None = None,
) -> Report:
    by_window: dict[Window, list[Record]] = {}
    for r in records:
        by_window.setdefault(r.request.window, []).append(r)
    rows = tuple(window_stats(w, by_window[w], targets[w]) for w in Window if w in by_window)
    return Report(rows, _overall(records, seconds, utilization, server_tokens_per_second))


def _overall(
    records: Sequence[Record], seconds: float, utilization: float | None, server: float | None
) -> Overall:
    sent = [r.sent for r in records if r.sent is not None]
    accepted = [r.accepted for r in records if r.accepted is not None]
    lags = [lag for r in records if (lag := r.lag) is not None]
    done = [r.done for r in records if r.done is not None]
    tokens = sum(r.output_tokens or 0 for r in records if r.error is None)
    span = max(done) - min(sent) if done and sent else 0.0
    return Overall(
        len(records),
        sum(1 for r in records if r.turn is not None),
        seconds,
        len(records) / seconds if seconds else 0.0,
        _rate(sent, seconds),
        _rate(accepted, seconds),
        percentile(lags, 50),
        percentile(lags, 99),
        max(lags) if lags else None,
        _peak(records),
        tokens,
        tokens / span if span > 0 else 0.0,
        utilization,
        server,
        dict(Counter(r.error for r in records if r.error is not None).most_common()),
    )


def _peak(records: Sequence[Record]) -> int:
    """Most requests in flight at once (one not final is in flight to the end)."""
    events = sorted(
        [(r.sent, 1) for r in records if r.sent is not None]
        + [(r.done, -1) for r in records if r.sent is not None and r.done is not None]
    )
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def _rate(times: Sequence[float], seconds: float) -> float:
    """Events per second over the planned span, or up to the last one if that came later."""
    return len(times) / max(seconds, max(times)) if times and seconds > 0 else 0.0
