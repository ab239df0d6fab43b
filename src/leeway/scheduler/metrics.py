"""What the dispatcher reports, in Prometheus' text format (``GET /metrics``).

Per window: queue depth, turn time (arrival → final state), deadline misses, the target turn time.
Per model: sequences in flight ÷ capacity, output tokens (a counter: take its rate) and the measured
decode rate. The policy in use (``leeway_scheduler_policy``).

Per engine, what a fitted engine model needs (``leeway load --sim`` fits one from their rates): its
sequences (capacity), counters of the output tokens it generated (counted as they stream), of the
prompt tokens sent to it to prefill, of sequence-seconds (sequences running × seconds) and of busy
seconds (at least one sequence running), and the rates the policy predicts service times with (the
dispatcher's smoothed prefill tokens/s and decode tokens/s per sequence).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from leeway.jobs import Job, Window

_TURN_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)


class Metrics:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._clock = clock
        self._depth = Gauge("leeway_queue_depth", "Jobs queued", ["window"], registry=r)
        self._turn = Histogram(
            "leeway_turn_seconds",
            "Arrival to final state",
            ["window"],
            buckets=_TURN_BUCKETS,
            registry=r,
        )
        self._misses = Counter(
            "leeway_deadline_misses", "Jobs final after their deadline", ["window"], registry=r
        )
        self._target = Gauge(
            "leeway_window_target_seconds", "Arrival to deadline", ["window"], registry=r
        )
        self._policy = Gauge(
            "leeway_scheduler_policy", "The scheduling policy in use (1)", ["policy"], registry=r
        )
        self._urgent_share = Gauge(
            "leeway_scheduler_urgent_share",
            "Share of an engine's sequences standard and flex fill beside asap or priority work",
            registry=r,
        )
        self._util = Gauge(
            "leeway_engine_utilization", "Sequences in flight / capacity", ["model"], registry=r
        )
        self._tokens = Counter(
            "leeway_output_tokens", "Output tokens generated", ["model"], registry=r
        )
        self._rate = Gauge(
            "leeway_engine_tokens_per_second",
            "Measured output tokens/s over the last interval",
            ["model"],
            registry=r,
        )
        self._engines = _EngineMetrics(r)

    def configured(
        self, policy: str, targets: Mapping[Window, float], urgent_share: float = 1.0
    ) -> None:
        self._policy.labels(policy).set(1)
        self._urgent_share.set(urgent_share)
        for window, seconds in targets.items():
            self._target.labels(window.value).set(seconds)

    def finished(self, job: Job) -> None:
        """A job reached its final state."""
        assert job.completed_at is not None
        window = job.window.value
        self._turn.labels(window).observe(job.completed_at - job.created_at)
        if job.window is not Window.ASAP and job.completed_at > job.deadline:
            self._misses.labels(window).inc()

    def generated(self, model: str, tokens: int) -> None:
        self._tokens.labels(model).inc(tokens)

    def measured_rate(self, model: str, tokens_per_second: float) -> None:
        self._rate.labels(model).set(tokens_per_second)

    def engine(self, engine: str, model: str, sequences: int) -> None:
        """An engine this dispatcher fills."""
        self._engines.add(engine, model, sequences, self._clock())

    def running(self, engine: str, sequences: int) -> None:
        """``engine`` runs ``sequences`` from now on."""
        self._engines.running(engine, sequences, self._clock())

    def prefilling(self, engine: str, tokens: int) -> None:
        """``tokens`` of prompt (a resumed job's earlier text included) were sent to ``engine``."""
        self._engines.prompt.labels(engine).inc(tokens)

    def decoded(self, engine: str, tokens: int) -> None:
        """``engine`` generated ``tokens`` more (counted as they stream)."""
        if tokens > 0:
            self._engines.output.labels(engine).inc(tokens)

    def rates(self, engine: str, prefill: float, decode: float) -> None:
        """The rates the policy predicts with: prompt tokens/s, output tokens/s per sequence."""
        self._engines.prefill_rate.labels(engine).set(prefill)
        self._engines.decode_rate.labels(engine).set(decode)

    def render(
        self, depths: Mapping[Window, int], utilization: Callable[[], Mapping[str, float]]
    ) -> bytes:
        for window in Window:
            self._depth.labels(window.value).set(depths.get(window, 0))
        for model, share in utilization().items():
            self._util.labels(model).set(share)
        self._engines.flush(self._clock())
        return generate_latest(self.registry)


class _EngineMetrics:
    """Per engine: the counters a fitted engine model is read from. Sequence-seconds and busy
    seconds are integrated from each change of the running count (and up to now when rendered)."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.sequences = Gauge(
            "leeway_engine_sequences", "Sequences decoded at once", ["engine", "model"], registry=r
        )
        self.output = Counter(
            "leeway_engine_output_tokens", "Output tokens generated", ["engine"], registry=r
        )
        self.prompt = Counter(
            "leeway_engine_prompt_tokens", "Prompt tokens sent to prefill", ["engine"], registry=r
        )
        self.seq_seconds = Counter(
            "leeway_engine_sequence_seconds", "Sequences running × seconds", ["engine"], registry=r
        )
        self.busy = Counter(
            "leeway_engine_busy_seconds", "Seconds with a sequence running", ["engine"], registry=r
        )
        self.prefill_rate = Gauge(
            "leeway_engine_prefill_tokens_per_second",
            "Prompt tokens/s the policy predicts with",
            ["engine"],
            registry=r,
        )
        self.decode_rate = Gauge(
            "leeway_engine_decode_tokens_per_second",
            "Output tokens/s per sequence the policy predicts with",
            ["engine"],
            registry=r,
        )
        self._state: dict[str, tuple[float, int]] = {}  # engine -> (since, sequences running)

    def add(self, engine: str, model: str, sequences: int, now: float) -> None:
        self.sequences.labels(engine, model).set(sequences)
        for counter in (self.output, self.prompt, self.seq_seconds, self.busy):
            counter.labels(engine)  # shown as 0 from the start
        self._state[engine] = (now, 0)

    def running(self, engine: str, sequences: int, now: float) -> None:
        self._advance(engine, now)
        self._state[engine] = (now, sequences)

    def flush(self, now: float) -> None:
        for engine in self._state:
            self.running(engine, self._state[engine][1], now)

    def _advance(self, engine: str, now: float) -> None:
        since, n = self._state.get(engine, (now, 0))
        if n > 0 and now > since:
            self.seq_seconds.labels(engine).inc(n * (now - since))
            self.busy.labels(engine).inc(now - since)
