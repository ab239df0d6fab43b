"""What the store promises: the values it takes and gives, and the narrow views of it that its users
take (``Jobs`` for the API, ``Queue`` for dispatchers, ``Sharing`` for processes sharing a store,
``BatchStore``, ``BatchResults``, ``FileStore``, ``ChatStore``; the operator's views, keys, usage
and the dashboard's, are in ``leeway.store.operator_views``, and the webhook ``Outbox`` is defined
with its sender in ``leeway.webhooks.outbox``).
``leeway.store.SqlStore`` implements them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from leeway.batches import Batch, BatchError, ItemState, Shape, StoredFile
from leeway.jobs import Finish, Job, JobError, Output, Status, Usage, Window

# The order a policy wants queued jobs in: ``deadline`` (leeway: asap, then deadlines ahead, then
# those missed), ``window`` (strict: asap, priority, standard, flex, each by arrival), ``arrival``
# (fcfs).
QueueOrder = Literal["deadline", "window", "arrival"]


@dataclass(frozen=True, slots=True)
class Claim:
    job: Job
    token: str


@dataclass(frozen=True, slots=True)
class Result:
    """What running a job produced: an output with its usage, or an error."""

    output: Output | None = None
    usage: Usage | None = None
    error: JobError | None = None

    @property
    def status(self) -> Status:
        """The final state this result puts its job in."""
        if self.error is not None:
            return Status.FAILED
        if self.output is not None and self.output.finish is Finish.LENGTH:
            return Status.INCOMPLETE
        return Status.COMPLETED


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A client's ``Idempotency-Key`` (scoped to the job's tenant) and the SHA-256 fingerprint of the
    request that carries it."""

    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class JobPieces:
    """A followed job's status and its stored text pieces, ``(seq, text)`` in order."""

    status: Status
    pieces: list[tuple[int, str]]


class Jobs(Protocol):
    """What the API does with jobs: create and read them, stop them, count what waits."""

    async def create(self, job: Job, idempotency: IdempotencyKey | None = None) -> Job:
        """Persist a new queued job; returns only once it is durable. With a key, the key is stored
        in the same transaction; if the tenant's key is already held, nothing is written and the
        job that holds it is returned instead (``IdempotencyMismatch`` if its fingerprint differs).
        """

    async def held(self, tenant: str, idempotency: IdempotencyKey) -> Job | None:
        """The job this tenant's key made, in its current state (``IdempotencyMismatch`` if the key
        was used with another fingerprint); None if the key is free."""

    async def get(self, tenant: str, job_id: str) -> Job | None:
        """The job in its current state, or None if it is not this tenant's."""

    async def cancel(self, tenant: str, job_id: str, now: float) -> Job | None:
        """Cancel a queued or running job (its lease is dropped, so a late result changes
        nothing); a final job is returned unchanged. None if no such job. It is billed what it
        generated: its prompt if it ever ran, what earlier runs kept, and (``bill_cancelled_run``)
        what the run it stopped generated."""

    async def delete(self, tenant: str, job_id: str) -> bool:
        """Remove the job; False if there was none."""

    async def count_queued(self, tenant: str) -> int:
        """How many of ``tenant``'s jobs are waiting."""

    async def queue_depths(self) -> dict[Window, int]: ...

    async def prune_keys(self, before: float) -> int:
        """Forget idempotency keys created before ``before``; how many were forgotten."""


class Queue(Protocol):
    """What a dispatcher does: pick and lease queued jobs, keep the leases, store results."""

    async def queued(
        self, model: str, limit: int, now: float, order: QueueOrder = "deadline"
    ) -> list[Job]:
        """What a policy picks from (nothing is claimed). In ``deadline`` order: up to ``limit``
        each of the queued asap jobs of ``model``, those whose deadline is still ahead, and those
        that missed it, each earliest deadline first; in ``window`` or ``arrival`` order: the first
        ``limit`` in that order."""

    async def claim_ids(
        self, model: str, ids: list[str], now: float, holder: str | None = None
    ) -> list[Claim]:
        """Lease exactly these jobs, those still queued (expired leases are requeued first), most
        urgent first. ``holder``: the dispatcher taking them (its engine leases tell whether it is
        alive when a lease runs out)."""

    async def renew(self, claims: list[Claim], now: float) -> set[str]:
        """Extend the leases still held; returns their jobs' ids (a job missing was cancelled or
        deleted, perhaps by another process: its run should stop)."""

    async def expire(self, now: float) -> int:
        """Requeue jobs whose lease ran out, or fail them: one whose holder still lives stalled,
        which spends an attempt (``max_attempts`` spent: failed); one whose holder died spends
        none but counts a crash (failed once its holders died running it ``max_crashes`` times).
        How many changed."""

    async def finish(self, claim: Claim, result: Result, now: float) -> Job | None:
        """Store the final state, billed at the model's prices in the job's window now; None (and
        nothing changed) if the lease is no longer held."""

    async def bill_cancelled_run(self, claim: Claim, tokens: int) -> bool:
        """A run stopped because its job was cancelled while it ran: bill the ``tokens`` it had
        generated (earlier runs' included), once, and only if ``claim`` is the run the cancel
        stopped. False if it is not (or was billed already)."""

    async def requeue(self, claim: Claim, pieces: list[str], tokens: int, tail: str = "") -> bool:
        """Put a running job back in the queue keeping what it generated (it yielded its engine to
        more urgent work): its ``pieces`` and the ``tail`` it had not shown; no attempt is spent.
        False if the lease is no longer held."""

    async def release(self, claims: list[Claim]) -> None:
        """Hand claims back to the queue without spending an attempt (graceful stop)."""


class Sharing(Protocol):
    """What processes sharing one store coordinate through it: who fills each engine, and the text
    of running jobs for API processes that do not run them."""

    async def hold_engines(
        self, holder: str, engine_ids: list[str], until: float, now: float
    ) -> set[str]:
        """Take (or extend to ``until``) ``holder``'s lease on each engine no other holder has an
        unexpired lease on; returns the engines ``holder`` now holds. ``until=now`` hands them
        over."""

    async def append_pieces(self, pieces: Sequence[tuple[Claim, int, Sequence[str]]]) -> set[str]:
        """Store running jobs' new text pieces in one write: for each claim, ``pieces`` numbered
        from ``seq`` (a piece stored already is left as it is). Only a claim still holding its
        job's lease stores anything; returns the ids of the jobs whose pieces were stored (the others
        may be retried). A job's pieces are dropped when it leaves in_progress."""

    async def pieces(self, after: Mapping[str, int]) -> dict[str, JobPieces]:
        """For each job ``{id: seq}`` that exists: its status and its stored pieces numbered
        ``seq`` and on, in one read."""


class Store(Jobs, Queue, Sharing, Protocol):
    """What the core does with jobs (``SqlStore`` implements it, and every view below)."""

    async def listen(self, on_queued: Callable[[str], None]) -> None:
        """Call ``on_queued(model)`` on the caller's loop whenever work of ``model`` becomes queued
        in any process (PostgreSQL; on SQLite, never: dispatchers poll)."""

    async def close(self) -> None: ...


class BatchStore(Protocol):
    """Creating batches: items are staged in chunks while the body is read, then made visible
    (queued) at once with the batch, or discarded: a batch is stored whole or not at all."""

    async def open_batch(self, batch: Batch) -> None:
        """Write the batch, not yet visible to anyone."""

    async def stage_items(self, items: Sequence[tuple[int, Job]]) -> None:
        """Store these items (index in the batch, job) invisibly."""

    async def commit_batch(
        self, batch: Batch, total: int, idempotency: IdempotencyKey | None
    ) -> Batch:
        """Make the batch and its staged items visible and queued, with the key in the same
        transaction. If the key is held already, discard this batch and return the holder's
        (``IdempotencyMismatch`` if its fingerprint differs)."""

    async def fail_batch(
        self,
        batch: Batch,
        errors: Sequence[BatchError],
        idempotency: IdempotencyKey | None,
        now: float,
    ) -> Batch:
        """Store the batch (its staging discarded already) as failed, final at ``now``, with
        ``errors`` and no items, the key in the same transaction (the holder's batch instead if the
        key is held)."""

    async def delete_batch(self, tenant: str, batch_id: str) -> bool:
        """Remove a batch that ended and its items; False if there is no such ended batch."""

    async def discard_batch(self, batch_id: str) -> None: ...

    async def held_batch(self, tenant: str, idempotency: IdempotencyKey) -> Batch | None:
        """The batch this tenant's key made (``IdempotencyMismatch`` on another fingerprint)."""

    async def get_batch(self, tenant: str, batch_id: str) -> Batch | None: ...

    async def list_batches(
        self,
        tenant: str,
        limit: int,
        after_id: str | None = None,
        before_id: str | None = None,
        shape: Shape | None = None,
    ) -> list[Batch]:
        """Newest first: the newest, or the nearest created after/before a cursor batch (of
        ``shape`` only, if given)."""

    async def cancel_batch(self, tenant: str, batch_id: str, now: float) -> Batch | None:
        """Cancel the items still queued (running ones finish); None if no such batch."""


class BatchResults(Protocol):
    """Reading a batch's items, and its output files once every item is final."""

    async def item(self, tenant: str, batch_id: str, custom_id: str) -> Job | None: ...

    async def item_states(self, batch_id: str, after: int, limit: int) -> list[ItemState]:
        """Items in batch order, from index ``after`` + 1."""

    async def item_jobs(self, batch_id: str, after: int, limit: int) -> list[tuple[int, Job]]:
        """Items with their jobs, in batch order, from index ``after`` + 1."""

    async def batches_to_finalize(self) -> list[Batch]:
        """Batches whose every item is final, not yet finalized."""

    async def expire_batches(self, now: float) -> int:
        """Expire the batches whose ``expires_at`` is ``now`` or before with items not yet final
        (and no cancel asked for): their queued items are cancelled (``completed_at`` = ``now``;
        running ones finish) and ``expired_at`` = ``now``, in one transaction. How many expired."""

    async def finalize_batch(
        self, batch: Batch, output: StoredFile | None, errors: StoredFile | None, now: float
    ) -> None:
        """Record the batch's output and error files (those it has), and that it is finalized."""


class FileStore(Protocol):
    async def add_file(self, file: StoredFile, idempotency: IdempotencyKey | None) -> StoredFile:
        """Record an uploaded file; the holder's file instead if the key is held already."""

    async def held_file(self, tenant: str, idempotency: IdempotencyKey) -> StoredFile | None: ...

    async def get_file(self, tenant: str, file_id: str) -> StoredFile | None: ...

    async def list_files(
        self, tenant: str, limit: int, purpose: str | None = None, after: str | None = None
    ) -> list[StoredFile]:
        """Newest first, from just after the cursor file ``after``."""

    async def delete_file(self, tenant: str, file_id: str) -> bool: ...


class ChatStore(Protocol):
    """Stored chat completions: listed, and their metadata changed."""

    async def list_chats(
        self,
        tenant: str,
        limit: int,
        *,
        after: str | None = None,
        newest_first: bool = False,
        model: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[Job]:
        """The tenant's finished chat completions made alone (no batch's) and stored, oldest
        first (or newest), from just past the completion ``after``; only ``model``'s and those
        whose metadata holds every pair of ``metadata``, if given."""

    async def set_metadata(
        self, tenant: str, job_id: str, metadata: Mapping[str, str]
    ) -> Job | None:
        """Replace the job's metadata; the job, or None if it is not this tenant's."""
