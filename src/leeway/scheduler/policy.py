"""Who runs next, and where: the scheduling policy. Pure and synchronous: no I/O, no clock, no asyncio.

Two ways in, the same code behind both:

- ``decide(snapshot)``: a pure function from a ``Snapshot`` (queued jobs, engines with their running
  jobs, now, config) to ``Decisions`` (starts, preemptions, misses). The dispatcher's interface.
- ``make_policy(kind)``: a ``Policy`` object that keeps its queues between calls and is fed arrivals
  (``submit``/``enqueue``) and finishes (``release``), each answering the decisions they lead to. The
  simulator's interface (a million jobs over a thousand engines); ``decide`` is a thin wrapper on it.

Kinds: ``leeway`` (see ``slack.py`` for the rules), and the baselines ``fcfs`` and ``strict``
(``baseline.py``).
"""

from __future__ import annotations

import enum
from dataclasses import replace
from typing import Protocol

from leeway.jobs import Window
from leeway.scheduler.baseline import FcfsPolicy, StrictPolicy
from leeway.scheduler.decisions import Decisions, Preempt, Start
from leeway.scheduler.service import ServiceModel
from leeway.scheduler.slack import SlackPolicy
from leeway.scheduler.snapshot import (
    EngineSpec,
    EngineState,
    PolicyConfig,
    QueuedJob,
    RunningJob,
    Snapshot,
)

__all__ = [
    "Decisions",
    "EngineSpec",
    "EngineState",
    "Policy",
    "PolicyConfig",
    "PolicyKind",
    "Preempt",
    "QueuedJob",
    "RunningJob",
    "Snapshot",
    "Start",
    "decide",
    "make_policy",
]


class PolicyKind(enum.StrEnum):
    LEEWAY = "leeway"
    FCFS = "fcfs"
    STRICT = "strict"


class Policy(Protocol):
    """A scheduling policy that keeps its state between calls. Time is always passed in.

    The caller applies every decision it gets back: ``Start`` puts the job on the engine;
    ``Preempt`` takes the job off its engine, and the caller hands it back with ``enqueue`` (with
    ``generated`` set to the tokens it kept) once applied.
    """

    waiting: int  # queued jobs

    def add_engine(self, spec: EngineSpec) -> None: ...

    def occupy(self, job: RunningJob, engine_id: str, now: float) -> None:
        """Register a job already running on an engine."""

    def enqueue(self, job: QueuedJob, now: float) -> None:
        """Queue a job without starting anything yet (a batch, or a preempted job handed back)."""

    def fill(self, now: float) -> Decisions:
        """Start queued work on free sequences."""
        ...

    def submit(self, job: QueuedJob, now: float) -> Decisions:
        """``enqueue`` then ``fill``: a job arrived."""
        ...

    def release(self, job_id: str, now: float, output_tokens: int | None = None) -> Decisions:
        """A running job finished or failed; its sequence is free. Then ``fill``."""
        ...


def make_policy(kind: PolicyKind | str, config: PolicyConfig | None = None) -> Policy:
    kind = PolicyKind(kind)
    if kind is PolicyKind.FCFS:
        return FcfsPolicy(config)
    if kind is PolicyKind.STRICT:
        return StrictPolicy(config)
    return SlackPolicy(config)


def decide(snapshot: Snapshot, kind: PolicyKind | str = PolicyKind.LEEWAY) -> Decisions:
    """The decisions for one snapshot. ``late`` lists every queued job (asap aside) whose deadline
    can no longer be met: it still runs, after those that can, and counts as a miss."""
    config = snapshot.config
    if snapshot.observed_output is not None:
        config = replace(config, output_estimate=snapshot.observed_output)
    policy = make_policy(kind, config)
    now = snapshot.now
    for state in snapshot.engines:
        policy.add_engine(state.spec)
    for state in snapshot.engines:
        for running in state.running:
            policy.occupy(running, state.spec.id, now)
    for job in snapshot.queued:
        policy.enqueue(job, now)
    decisions = policy.fill(now)
    return replace(decisions, late=_late(snapshot, config))


def _late(snapshot: Snapshot, config: PolicyConfig) -> tuple[str, ...]:
    service = ServiceModel(config.output_estimate)
    for state in snapshot.engines:
        service.add_engine(state.spec)
    return tuple(
        job.id
        for job in snapshot.queued
        if job.window is not Window.ASAP and service.latest_start(job) < snapshot.now
    )
