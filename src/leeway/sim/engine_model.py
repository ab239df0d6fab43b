"""Fitted engine speed: one continuous-batching step decodes one token for every running sequence.

    step time = base + per_sequence * (sequences decoding)
    prefill   = prefill_per_token * (prompt tokens), during which the engine decodes nothing

A sequence's speed is ``1 / step time``; the engine's is ``sequences / step time``.
"""

from __future__ import annotations

from dataclasses import dataclass

from leeway.scheduler.snapshot import EngineSpec


@dataclass(frozen=True, slots=True)
class EngineModel:
    name: str
    capacity: int  # sequences decoded together
    step_base: float  # seconds
    step_per_sequence: float  # seconds per running sequence
    prefill_per_token: float  # seconds per prompt token

    def step_time(self, sequences: int) -> float:
        return self.step_base + self.step_per_sequence * sequences

    def decode_rate(self, sequences: int) -> float:
        """Output tokens/s of the whole engine with ``sequences`` decoding and nothing to prefill."""
        return sequences / self.step_time(sequences)

    def throughput(self, prompt_per_output: float) -> float:
        """Output tokens/s at full capacity, prefilling ``prompt_per_output`` tokens per token out."""
        per_token = self.step_time(self.capacity) / self.capacity
        return 1.0 / (per_token + prompt_per_output * self.prefill_per_token)

    def spec(self, engine_id: str, prompt_per_output: float) -> EngineSpec:
        """What a dispatcher would measure on this engine under full load."""
        per_sequence = self.throughput(prompt_per_output) / self.capacity
        return EngineSpec(engine_id, self.capacity, 1.0 / self.prefill_per_token, per_sequence)


# SmolLM2-135M-Instruct Q4_1 through llama.cpp, 2 threads, measured on the 2-core dev machine:
# batched decoding gave ~105 tok/s at 1 sequence, ~170 at 8, ~190 at 32; prefill ~1,500 tok/s.
# Least-squares fit of step time (1/105, 8/170, 32/190 s) on sequences: 5.20 ms + 5.107 ms per
# sequence, which gives back 97, 173 and 190 tok/s.
CPU_SMOLLM = EngineModel("cpu-smollm", 32, 5.20e-3, 5.107e-3, 1 / 1_500)

# Llama-3.1-8B (bf16) on one H100 with vLLM. Approximate published figures, not our measurements:
# ~80 tok/s for a single sequence (vLLM's v0.6.0 performance blog, Sept. 2024, reports TPOT around
# 12 ms for Llama 8B on H100), and a few thousand output tok/s aggregate at batch 128-256 (Red Hat's
# MLPerf Inference v5.1 submission, Llama-3.1-8B FP8 on vLLM 0.10, 1x H100: 5,777 tok/s offline,
# 5,103 tok/s server). Fit: 12.5 ms per step at batch 1, 36.6 ms at batch 256 (7,000 tok/s decode
# only); prefill ~30,000 tok/s (about half the H100's bf16 peak for a 16 GFLOP/token model).
H100_8B = EngineModel("h100-8b", 256, 12.5e-3, 0.0944e-3, 1 / 30_000)

PRESETS: dict[str, EngineModel] = {m.name: m for m in (CPU_SMOLLM, H100_8B)}
