"""Summaries of a simulation: SLO attainment and turn times per window, utilization, throughput."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from leeway.jobs import Window
from leeway.sim.runner import Outcome
from leeway.windows import DEFAULT_TARGETS

ASAP_WAIT = 1.0  # seconds: asap "attains" when it starts within this


@dataclass(frozen=True, slots=True)
class WindowRow:
    window: Window
    jobs: int
    attained: float  # share meeting the target (asap: started within ASAP_WAIT)
    turn_p50: float
    turn_p99: float
    wait_p99: float  # arrival to first start


@dataclass(frozen=True, slots=True)
class Summary:
    policy: str
    rows: tuple[WindowRow, ...]
    utilization: float  # sequences in flight / capacity, averaged while any job was queued
    tokens_per_s: float  # output tokens / time to the last finish
    batch_done: float | None  # when the last batch-drop job finished
    end: float
    preemptions: int
    reported_late: int

    def row(self, window: Window) -> WindowRow:
        return next(r for r in self.rows if r.window is window)


def summarize(out: Outcome, targets: Mapping[Window, float] = DEFAULT_TARGETS) -> Summary:
    arr = out.arrivals
    turns: dict[Window, list[float]] = {w: [] for w in Window}
    waits: dict[Window, list[float]] = {w: [] for w in Window}
    batch_done: float | None = None
    for i, t in enumerate(arr.time):
        w = arr.window[i]
        turns[w].append(out.finished[i] - t)
        waits[w].append(out.started[i] - t)
        if arr.batch[i]:
            batch_done = max(batch_done or 0.0, out.finished[i])
    rows = []
    for w in Window:
        if not turns[w]:
            continue
        turn, wait = sorted(turns[w]), sorted(waits[w])
        measured, target = (wait, ASAP_WAIT) if w is Window.ASAP else (turn, targets[w])
        attained = sum(1 for x in measured if x <= target) / len(measured)
        rows.append(
            WindowRow(w, len(turn), attained, _pct(turn, 50), _pct(turn, 99), _pct(wait, 99))
        )
    busy = out.busy / (out.backlog_seconds * out.capacity) if out.backlog_seconds else math.nan
    tokens = sum(arr.output)
    return Summary(
        out.policy,
        tuple(rows),
        busy,
        tokens / out.end if out.end else 0.0,
        batch_done,
        out.end,
        out.preemptions,
        out.reported_late,
    )


def table(summaries: Sequence[Summary]) -> str:
    """One line per policy and window, then one per policy for the fleet."""
    lines = [
        f"{'policy':<8} {'window':<9} {'jobs':>8} {'SLO met':>8} {'p50 turn':>9} "
        f"{'p99 turn':>9} {'p99 wait':>9}"
    ]
    for s in summaries:
        for r in s.rows:
            lines.append(
                f"{s.policy:<8} {r.window.value:<9} {r.jobs:>8} {r.attained:>8.2%} "
                f"{_secs(r.turn_p50):>9} {_secs(r.turn_p99):>9} {_secs(r.wait_p99):>9}"
            )
    lines.append("")
    lines.append(
        f"{'policy':<8} {'util (backlog)':>14} {'out tok/s':>10} {'batch done':>10} "
        f"{'end':>9} {'preempts':>9} {'late':>8}"
    )
    for s in summaries:
        done = _secs(s.batch_done) if s.batch_done is not None else "-"
        util = "no backlog" if math.isnan(s.utilization) else f"{s.utilization:.1%}"
        lines.append(
            f"{s.policy:<8} {util:>14} {s.tokens_per_s:>10.0f} {done:>10} "
            f"{_secs(s.end):>9} {s.preemptions:>9} {s.reported_late:>8}"
        )
    return "\n".join(lines)


def _pct(values: Sequence[float], p: float) -> float:
    return values[min(len(values) - 1, max(0, math.ceil(len(values) * p / 100) - 1))]


def _secs(x: float) -> str:
    if x >= 3_600:
        return f"{x / 3_600:.1f}h"
    if x >= 60:
        return f"{x / 60:.1f}m"
    return f"{x:.2f}s" if x < 10 else f"{x:.0f}s"
