"""What the dispatcher reports, in Prometheus' text format (``GET /metrics``).

Per window: queue depth, turn time (arrival → final state), deadline misses. Per engine: sequences
in flight ÷ capacity, output tokens (a counter: take its rate) and the measured decode rate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from leeway.jobs import Job, Window

_TURN_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
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

    def render(
        self, depths: Mapping[Window, int], utilization: Callable[[], Mapping[str, float]]
    ) -> bytes:
        for window in Window:
            self._depth.labels(window.value).set(depths.get(window, 0))
        for model, share in utilization().items():
            self._util.labels(model).set(share)
        return generate_latest(self.registry)
