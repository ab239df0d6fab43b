"""What the dispatcher has measured about a model's engine: output lengths and speeds, smoothed.
The policy predicts service times from these (before any measurement: cautious defaults)."""

from __future__ import annotations

from dataclasses import dataclass

_WEIGHT = 0.2  # of the newest observation in each moving average


def _mix(old: float | None, new: float) -> float:
    return new if old is None else old + _WEIGHT * (new - old)


@dataclass
class Observed:
    output_tokens: float | None = None  # mean output length of finished jobs
    prefill_rate: float = 500.0  # prompt tokens/s
    decode_rate: float = 5.0  # output tokens/s per sequence, at the engine's usual load
    generated: int = 0  # output tokens in all, for the tokens/s gauge

    def finished(self, output_tokens: int) -> None:
        self.output_tokens = _mix(self.output_tokens, output_tokens)

    def ran(
        self, prompt_tokens: int, tokens: int, prefill_seconds: float, decode_seconds: float
    ) -> None:
        """One run of a job: its prompt took ``prefill_seconds`` to its first token, then ``tokens``
        more took ``decode_seconds``."""
        self.generated += tokens
        if prefill_seconds > 0 and prompt_tokens > 0:
            self.prefill_rate = _mix(self.prefill_rate, prompt_tokens / prefill_seconds)
        if decode_seconds > 0 and tokens > 1:
            self.decode_rate = _mix(self.decode_rate, tokens / decode_seconds)
