"""What the scheduling policy sees: queued jobs, engines and their running jobs, and its settings.

Plain frozen values, built by the dispatcher from the store and the engines (or by the simulator);
the policy never reads a clock or does I/O, so ``now`` is part of every snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from leeway.jobs import Window
from leeway.windows import DEFAULT_TARGETS


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """A job waiting for a sequence. ``generated`` > 0 for a job that was preempted and kept its
    tokens: it resumes with ``prompt_tokens + generated`` to prefill and fewer tokens to go."""

    id: str
    window: Window
    arrival: float
    deadline: float
    prompt_tokens: int
    max_output_tokens: int
    prefix: str | None = None  # jobs with the same key share a prompt prefix (e.g. a system prompt)
    tenant: str = ""
    generated: int = 0


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job holding a sequence on an engine."""

    id: str
    window: Window
    deadline: float
    generated: int
    remaining: float  # expected output tokens still to come


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """An engine's size and measured speed. Rates are per sequence at the engine's usual load."""

    id: str
    capacity: int  # sequences decoded together
    prefill_rate: float  # prompt tokens/s
    decode_rate: float  # output tokens/s per sequence


@dataclass(frozen=True, slots=True)
class EngineState:
    spec: EngineSpec
    running: tuple[RunningJob, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Tunables. Times in seconds; ``now`` is seconds since the epoch (UTC) in the server and since
    midnight in the simulator, so off-peak hours work the same in both."""

    targets: Mapping[Window, float] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    # a flex job with less slack than this competes like any deadline job
    flex_aging: float = 3_600.0
    # share of each engine's sequences flex leaves free (for asap bursts)
    flex_reserve: float = 0.02
    # while asap or priority work runs on an engine, standard and flex start there only below this
    # share of its sequences (fewer sequences decode faster each; 1: no limit)
    urgent_share: float = 1.0
    # UTC [start, end) hours in which flex may fill every sequence
    off_peak_hours: tuple[tuple[float, float], ...] = ()
    tie_share: float = 1 / 60  # slack within this share of the window's target counts as a tie
    output_estimate: float | None = None  # mean output tokens before any is observed

    def is_off_peak(self, now: float) -> bool:
        hour = (now % 86_400.0) / 3_600.0
        return any(start <= hour < end for start, end in self.off_peak_hours)

    def tie_quantum(self, window: Window) -> float:
        """Width of the slack bands inside which tenants take turns."""
        return max(self.targets[window] * self.tie_share, 1e-3)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one scheduling decision needs, for one model."""

    now: float
    queued: tuple[QueuedJob, ...]
    engines: tuple[EngineState, ...]
    observed_output: float | None = None  # mean output tokens recently seen for this model
    config: PolicyConfig = field(default_factory=PolicyConfig)
