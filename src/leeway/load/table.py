"""A replay's report as a table for people (``table``) and as JSON for machines (``as_json``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from leeway.load.stats import Report


def table(report: Report) -> str:
    lines = [
        f"{'window':<9} {'requests':>8} {'done':>6} {'target':>9} {'attained':>9} "
        f"{'p50 turn':>9} {'p95 turn':>9} {'p99 turn':>9} {'p50 TTFT':>9} {'p99 TTFT':>9}"
    ]
    for w in report.windows:
        target = f"TTFT≤{w.target:g}s" if w.window == "asap" else _secs(w.target)
        lines.append(
            f"{w.window:<9} {w.requests:>8,} {w.finished:>6,} {target:>9} "
            f"{_pct(w.attained):>9} {_secs(w.turn_p50):>9} {_secs(w.turn_p95):>9} "
            f"{_secs(w.turn_p99):>9} {_secs(w.ttft_p50):>9} {_secs(w.ttft_p99):>9}"
        )
    o = report.overall
    lag = f"lag p50 {_ms(o.lag_p50)}, p99 {_ms(o.lag_p99)}, max {_ms(o.lag_max)}"
    behind = o.sent_rate < 0.99 * o.offered_rate
    lines += [
        "",
        f"arrivals: {o.requests:,} requests over {o.seconds:g} s: offered {o.offered_rate:.2f}/s, "
        f"sent {o.sent_rate:.2f}/s ({lag}), accepted {o.accepted_rate:.2f}/s, "
        f"{o.in_flight_peak:,} in flight at most"
        + (
            f"  << the client fell behind: {1 - o.sent_rate / o.offered_rate:.1%} under offered"
            if behind
            else ""
        ),
        f"output: {o.output_tokens:,} tokens, {o.tokens_per_second:.1f} tok/s (first send to last "
        f"final event); server: {_num(o.server_tokens_per_second)} tok/s, engine utilization "
        f"{_pct(o.utilization)}",
        "errors: "
        + (", ".join(f"{k} × {n:,}" for k, n in o.errors.items()) if o.errors else "none"),
    ]
    return "\n".join(lines)


def as_json(report: Report, **extra: Any) -> dict[str, Any]:
    return {**dataclasses.asdict(report), **extra}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.0f} ms"


def _secs(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 3_600:
        return f"{x / 3_600:.1f}h"
    if x >= 60:
        return f"{x / 60:.1f}m"
    return f"{x:.2f}s" if x < 10 else f"{x:.0f}s"
