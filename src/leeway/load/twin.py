"""The twin: the same requests through the simulator (``leeway.sim``), with an engine model fitted
to the server's own counters (``leeway.load.fit``) and the server's policy, window targets and
number of engines, so its prediction can be set beside the measurement.

"The same requests": each one the server took, at the time it was sent, in its window, with the
prompt and output lengths the server reported for it (the drawn ones for a request that never
finished) and its ``max_output_tokens``, from its tenant with its system prompt. What the twin
does not model: the client and the network, the API's own time, and prefill that overlaps decoding
(the simulator stalls the engine for it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from leeway.jobs import Window
from leeway.load.fit import Fit
from leeway.load.records import Record
from leeway.load.stats import Report, WindowStats, report
from leeway.scheduler.policy import PolicyConfig
from leeway.sim.runner import simulate
from leeway.sim.workload import Arrivals, Workload

_TAKEN = ("failed:", "unfinished", "stream ended early", "timeout")  # the server had queued these


def twin(
    records: Sequence[Record],
    workload: Workload,
    fitted: Fit,
    policy: str,
    targets: Mapping[Window, float],
    seconds: float,
    end: float,
    urgent_share: float = 1.0,
) -> Report:
    """The simulator's report for ``records``; a request it finishes after ``end`` (seconds from
    the start: the replay's last moment) counts as unfinished, as it would have live."""
    taken = sorted(
        (r for r in records if r.sent is not None and _taken(r)),
        key=lambda r: r.sent or 0.0,
    )
    arrivals = Arrivals()
    for r in taken:
        q = r.request
        prompt = r.input_tokens or q.prompt_tokens
        output = r.output_tokens or q.output_tokens
        arrivals.add(r.sent or 0.0, q.window, prompt, output, q.tenant, q.prefix)
        arrivals.limit.append(q.output_tokens)
    config = PolicyConfig(targets=dict(targets), urgent_share=urgent_share)
    out = simulate(workload, fitted.model, fitted.engines, policy, config, arrivals)
    model = fitted.model
    predicted = []
    for i, r in enumerate(taken):
        t = arrivals.time[i]
        first = out.started[i] + model.prefill_per_token * arrivals.prompt[i]
        done = out.finished[i]
        predicted.append(
            Record(
                r.request,
                sent=t,
                accepted=t,
                first=first,
                done=done if done <= end else None,
                input_tokens=arrivals.prompt[i],
                output_tokens=arrivals.output[i],
                error=None if done <= end else "unfinished",
            )
        )
    return report(predicted, targets, seconds)


def _taken(record: Record) -> bool:
    return record.error is None or record.error.startswith(_TAKEN)


@dataclass(frozen=True, slots=True)
class Gap:
    window: str
    measured: WindowStats
    predicted: WindowStats

    @property
    def attained_points(self) -> float | None:
        """Predicted minus measured attainment, in percentage points."""
        m, p = self.measured.attained, self.predicted.attained
        return None if m is None or p is None else 100 * (p - m)

    @property
    def turn_p50_share(self) -> float | None:
        """Predicted p50 turn time off the measured one, as a share of it."""
        m, p = self.measured.turn_p50, self.predicted.turn_p50
        return None if not m or p is None else (p - m) / m


def gaps(measured: Report, predicted: Report) -> list[Gap]:
    out = []
    for row in measured.windows:
        other = predicted.window(Window(row.window))
        if other is not None:
            out.append(Gap(row.window, row, other))
    return out


def gap_table(measured: Report, predicted: Report, fitted: Fit) -> str:
    m = fitted.model
    lines = [
        f"the twin: {fitted.engines} engine(s) of {m.capacity} sequences, step "
        f"{m.step_base * 1e3:.2f} ms + {m.step_per_sequence * 1e3:.3f} ms/sequence, prefill "
        f"{_per_s(m.prefill_per_token)} tok/s ({fitted.source})",
        f"{'window':<9} {'attained':>17} {'gap':>7}   {'p50 turn':>17} {'gap':>7}   "
        f"{'p99 turn':>17}   {'p50 TTFT':>17}",
        f"{'':<9} {'live':>8} {'twin':>8} {'points':>7}   {'live':>8} {'twin':>8} {'share':>7}   "
        f"{'live':>8} {'twin':>8}   {'live':>8} {'twin':>8}",
    ]
    for g in gaps(measured, predicted):
        a, b = g.measured, g.predicted
        lines.append(
            f"{g.window:<9} {_pct(a.attained):>8} {_pct(b.attained):>8} "
            f"{_signed(g.attained_points, ''):>7}   {_s(a.turn_p50):>8} {_s(b.turn_p50):>8} "
            f"{_signed(_times(g.turn_p50_share, 100), '%'):>7}   {_s(a.turn_p99):>8} "
            f"{_s(b.turn_p99):>8}   {_s(a.ttft_p50):>8} {_s(b.ttft_p50):>8}"
        )
    mo, po = measured.overall, predicted.overall
    lines.append(
        f"output tok/s: live {mo.tokens_per_second:.1f}, twin {po.tokens_per_second:.1f} "
        f"({_signed(_times(_share(po.tokens_per_second, mo.tokens_per_second), 100), '%')})"
    )
    return "\n".join(lines)


def _share(p: float, m: float) -> float | None:
    return (p - m) / m if m else None


def _times(x: float | None, k: float) -> float | None:
    return None if x is None else x * k


def _signed(x: float | None, unit: str) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:+.1f}{unit}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}s" if x < 10 else f"{x:.1f}s"


def _per_s(per: float) -> str:
    return f"{1 / per:,.0f}" if per > 0 else "∞"
