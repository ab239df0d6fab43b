"""Deliveries and the ``Outbox`` boundary: where they are written, leased and recorded.

A delivery is about a *subject*: ``("job", id)`` for a completion webhook, and whatever else later
needs one (a batch reaching its final state: ``("batch", id)``). The sender renders a subject's body
with the renderer registered for its kind, unless the delivery carries its body already.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

JOB = "job"  # the subject kind of a completion webhook
BATCH = "batch"  # a batch reaching its final state


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or being attempted)
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # a final refusal, or no 2xx before retries ran out


@dataclass(frozen=True, slots=True)
class Attempt:
    at: float  # when it started
    duration: float  # seconds until the answer (or the error)
    status_code: int | None = None  # the receiver's answer, if it answered
    error: str | None = None  # why it did not count as delivered


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str  # the ``webhook-id``: the same on every attempt, so receivers can drop duplicates
    tenant: str
    subject_kind: str
    subject_id: str
    url: str
    token: str | None  # sent as ``Authorization: Bearer``
    created_at: float
    next_attempt_at: float
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    finished_at: float | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    body: bytes | None = None  # pre-rendered; None: rendered from the subject when sent


@dataclass(frozen=True, slots=True)
class DeliveryLog:
    """A delivery as a tenant sees it: with every attempt, oldest first."""

    delivery: Delivery
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)


class Outbox(Protocol):
    async def enqueue(self, delivery: Delivery) -> None:
        """Add a delivery (completion webhooks need not: the store writes theirs in the same
        transaction as the job's final state)."""

    async def due(self, now: float, limit: int, lease: float) -> list[Delivery]:
        """Lease up to ``limit`` pending deliveries whose time has come, oldest first: none is due
        again before ``now + lease``, so one whose sender died mid-attempt is sent again then."""

    async def record(
        self,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float | None = None,
    ) -> None:
        """Store an attempt and what follows it: delivered, failed, or pending until
        ``next_attempt_at``. A delivery no longer pending keeps its status."""

    async def deliveries(
        self, tenant: str, limit: int, subject_id: str | None = None
    ) -> list[DeliveryLog]:
        """The tenant's most recent deliveries (of one subject, if given), newest first."""

    async def secrets(self, tenant: str, now: float) -> list[str]:
        """The tenant's signing secrets still valid at ``now``, newest first; the first is created
        here if the tenant has none."""

    async def rotate_secret(self, tenant: str, now: float, grace: float) -> str:
        """A new signing secret for ``tenant``; those it replaces keep signing for ``grace``
        seconds, so receivers can switch to the new one without missing a delivery."""

    async def prune(self, before: float) -> int:
        """Forget deliveries that finished before ``before`` (and retired secrets); how many."""
