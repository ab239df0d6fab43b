"""What the dispatcher keeps for each engine (``Slot``) and each running job (``Run``), and how they
look to the policy (``snapshot``)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field

from leeway.engines import Engine
from leeway.jobs import Job
from leeway.scheduler.observed import Observed
from leeway.scheduler.policy import (
    EngineSpec,
    EngineState,
    PolicyConfig,
    QueuedJob,
    RunningJob,
    Snapshot,
)
from leeway.store import Claim


@dataclass(eq=False)
class Slot:
    """One engine and what the dispatcher keeps for it."""

    engine: Engine
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    urgent: bool = False  # an asap job arrived since the last decision
    held: bool = False  # this dispatcher holds the engine's lease: it may start work there
    observed: Observed = field(default_factory=Observed)


@dataclass(eq=False)
class Run:
    claim: Claim
    slot: Slot
    task: asyncio.Task[None] | None = None
    tokens: int = 0  # output tokens so far, earlier runs included
    tail: str = ""  # text generated but not shown yet (the engine holds it back)
    yielding: bool = False  # cancelled to make room for urgent work, not stopped
    abandoned: bool = False  # stopped because its job was cancelled or deleted
    finishing: bool = False  # generation is over; storing the result
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None

    @property
    def job(self) -> Job:
        return self.claim.job


def snapshot(
    slot: Slot, runs: list[Run], queued: list[Job], now: float, policy: PolicyConfig
) -> Snapshot:
    """What the policy sees of one engine: its rates, its ``runs`` (those not yielding), and the
    ``queued`` jobs it may start."""
    engine, seen = slot.engine, slot.observed
    spec = EngineSpec(engine.id, engine.parallel, seen.prefill_rate, seen.decode_rate)
    expected = seen.output_tokens
    running = tuple(
        RunningJob(
            r.job.id,
            r.job.window,
            r.job.deadline,
            r.tokens,
            remaining=max(
                1.0,
                min(
                    r.job.sampling.max_output_tokens,
                    expected or r.job.sampling.max_output_tokens,
                )
                - r.tokens,
            ),
        )
        for r in runs
    )
    waiting = tuple(
        QueuedJob(
            j.id,
            j.window,
            j.created_at,
            j.deadline,
            j.prompt_tokens,
            j.sampling.max_output_tokens,
            prefix=prefix(j),
            tenant=j.tenant,
            generated=j.partial_tokens,
        )
        for j in queued
    )
    return Snapshot(now, waiting, (EngineState(spec, running),), expected, policy)


def prefix(job: Job) -> str:
    """Jobs whose first message is the same (a shared system prompt or leading input) share a
    prompt prefix."""
    first = job.messages[0]
    return hashlib.blake2b(f"{first.role}\0{first.content}".encode(), digest_size=8).hexdigest()
