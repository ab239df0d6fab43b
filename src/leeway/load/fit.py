"""An engine model (``leeway.sim.engine_model``) fitted to the counters a server reports.

The simulator's engine takes ``base + per_sequence × n`` seconds per step with n sequences
decoding (a token for each), and stalls ``prefill_per_token`` seconds per prompt token it admits.
Over an interval in which an engine was busy throughout, its busy seconds are then

    busy = base × steps + per_sequence × output tokens + prefill_per_token × prompt tokens

where steps = output tokens ÷ the mean sequences running (sequence-seconds ÷ busy seconds). Every
pair of consecutive samples (a second apart) is one such equation; the three coefficients are their
least-squares solution with none negative (exact for three unknowns: the best of the solutions on
each subset of them that come out non-negative). Busy intervals in which the number of sequences
varies are what tell ``base`` from ``per_sequence``; a run at one steady load gives their sum at
that load, which is what the simulator needs there.

With too few busy intervals (fewer than ``MIN_INTERVALS``) the model falls back on the rates the
policy itself predicts with (one decode rate per sequence at the usual load, one prefill rate).

A fit over a run at one load says little of the engine at saturation, where a small error in its
speed is a large one in queueing. With a calibration at hand, ``calibrated`` scales the fitted
costs so that the model, saturated, delivers the capacity the calibration measured.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from leeway.load.scrape import EngineCounters, Sample
from leeway.sim.engine_model import EngineModel

MIN_INTERVALS = 10
_BUSY = 0.95  # an interval counts if the engine was busy this share of it or more


@dataclass(frozen=True, slots=True)
class Fit:
    model: EngineModel
    engines: int
    intervals: int  # equations the fit solved (0: the policy's rates were used)
    source: str  # how it was made, in words


def fit(samples: Sequence[Sample], model: str | None = None) -> Fit | None:
    """The engine model of ``model``'s engines (all alike, their equations pooled), or None if the
    samples hold no Leeway engine."""
    if not samples or not samples[-1].engines:
        return None
    last = samples[-1]
    names = [e for e, c in last.engines.items() if model is None or c.model == model]
    if not names:
        return None
    rows, ys = [], []
    for a, b in itertools.pairwise(samples):
        for name in names:
            row = _interval(a.engines.get(name), b.engines.get(name), b.at - a.at)
            if row is not None:
                rows.append(row[:3])
                ys.append(row[3])
    capacity = max(last.engines[e].sequences for e in names)
    if len(rows) >= MIN_INTERVALS:
        base, per_seq, prefill = nonnegative_least_squares(np.array(rows), np.array(ys))
        if base + per_seq > 0:
            name = f"fitted on {len(rows)} busy intervals"
            engine = EngineModel(name, capacity, base, per_seq, prefill)
            return Fit(engine, len(names), len(rows), name)
    return _from_rates([last.engines[e] for e in names], capacity, len(names))


def calibrated(fitted: Fit, tokens_per_second: float, prompt_per_output: float) -> Fit:
    """``fitted`` with its costs scaled so that its engines, saturated with a workload of
    ``prompt_per_output`` prompt tokens per output token, deliver ``tokens_per_second``."""
    m = fitted.model
    modelled = m.throughput(prompt_per_output) * fitted.engines
    if tokens_per_second <= 0 or modelled <= 0:
        return fitted
    k = modelled / tokens_per_second
    source = f"{fitted.source}, scaled x{k:.2f} to the calibrated {tokens_per_second:.1f} tok/s"
    engine = replace(
        m,
        name=source,
        step_base=m.step_base * k,
        step_per_sequence=m.step_per_sequence * k,
        prefill_per_token=m.prefill_per_token * k,
    )
    return replace(fitted, model=engine, source=source)


def _interval(
    a: EngineCounters | None, b: EngineCounters | None, seconds: float
) -> tuple[float, float, float, float] | None:
    """(steps, output tokens, prompt tokens, busy seconds) of one busy interval, else None."""
    if a is None or b is None or seconds <= 0:
        return None
    busy, out = b.busy - a.busy, b.output - a.output
    seq = b.seq_seconds - a.seq_seconds
    if busy < _BUSY * seconds or out <= 0 or seq <= 0:
        return None
    return out * busy / seq, out, b.prompt - a.prompt, busy


def _from_rates(engines: list[EngineCounters], capacity: int, count: int) -> Fit | None:
    decode = [e.decode_rate for e in engines if e.decode_rate]
    prefill = [e.prefill_rate for e in engines if e.prefill_rate]
    if not decode:
        return None
    per_token = 1 / (sum(decode) / len(decode))  # seconds per token of one sequence at full load
    per_prompt = len(prefill) / sum(prefill) if prefill else 0.0
    name = "the policy's rates (too few busy intervals to fit)"
    return Fit(EngineModel(name, capacity, 0.0, per_token / capacity, per_prompt), count, 0, name)


def nonnegative_least_squares(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """argmin |x·c - y| over c ≥ 0, for x with three columns."""
    best: tuple[float, np.ndarray] | None = None
    for size in (3, 2, 1):
        for cols in itertools.combinations(range(3), size):
            sub = x[:, list(cols)]
            c, *_ = np.linalg.lstsq(sub, y, rcond=None)
            if (c < 0).any():
                continue
            residual = float(np.sum((sub @ c - y) ** 2))
            if best is None or residual < best[0]:
                full = np.zeros(3)
                full[list(cols)] = c
                best = (residual, full)
    coef = best[1] if best is not None else np.zeros(3)
    return float(coef[0]), float(coef[1]), float(coef[2])
