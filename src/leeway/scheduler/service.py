"""Predicted service time: how long a job holds a sequence, from its size and the engines' rates."""

from __future__ import annotations

from leeway.scheduler.snapshot import EngineSpec, QueuedJob


class ServiceModel:
    """Prefill the prompt (plus any tokens kept from a preempted run), then decode the expected
    output: ``min(max_output_tokens, observed mean output)``, since ``max_output_tokens`` is usually
    far above what a model really writes. Rates are the mean over the engines registered."""

    __slots__ = ("_decode", "_engines", "_outputs", "_prefill", "_total", "estimate")

    def __init__(self, output_estimate: float | None = None) -> None:
        self.estimate = output_estimate  # mean output tokens, or None: trust max_output_tokens
        self._prefill = self._decode = 0.0
        self._engines = 0
        self._outputs, self._total = 0, 0.0

    def add_engine(self, spec: EngineSpec) -> None:
        n = self._engines
        self._prefill = (self._prefill * n + spec.prefill_rate) / (n + 1)
        self._decode = (self._decode * n + spec.decode_rate) / (n + 1)
        self._engines = n + 1

    def observe(self, output_tokens: int) -> None:
        """A job finished with ``output_tokens``: fold it into the running mean."""
        self._outputs += 1
        self._total += output_tokens
        self.estimate = self._total / self._outputs

    def expected_output(self, job: QueuedJob) -> float:
        limit = float(job.max_output_tokens)
        return limit if self.estimate is None else min(limit, self.estimate)

    def seconds(self, job: QueuedJob) -> float:
        """Predicted time from start to finish on a typical engine of this fleet."""
        if self._engines == 0:
            return 0.0
        remaining = max(self.expected_output(job) - job.generated, 1.0)
        return (job.prompt_tokens + job.generated) / self._prefill + remaining / self._decode

    def decode_seconds(self, tokens: float) -> float:
        return tokens / self._decode if self._engines else 0.0

    def latest_start(self, job: QueuedJob) -> float:
        """The last moment the job can start and still meet its deadline; slack = this - now."""
        return job.deadline - self.seconds(job)
