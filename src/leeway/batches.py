"""Batches and files: the shared vocabulary of the Batch API (frozen dataclasses, no I/O).

A batch is a set of ordinary jobs that carry its id; the batch itself only holds what the client
said about the whole (label, endpoint, window) and counts of its items per state, kept by the store.
It is created in one of three shapes and answers in that shape: the reference's (requests inline in
the body), OpenAI's (requests in an uploaded JSONL file, results in output and error files) or
Anthropic's (a Message Batch: requests inline, results read back as JSONL).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from leeway.jobs import Webhook


class Shape(enum.StrEnum):
    REFERENCE = "reference"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


@dataclass(frozen=True, slots=True)
class BatchError:
    """Why a batch's input was refused (an OpenAI-shaped batch that ``failed``): one line of it."""

    code: str
    message: str
    param: str | None = None
    line: int | None = None  # 1-based line of the input file


@dataclass(frozen=True, slots=True)
class Counts:
    """A batch's items per state."""

    queued: int = 0
    running: int = 0
    completed: int = 0
    incomplete: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.running + self.done

    @property
    def done(self) -> int:
        return self.completed + self.incomplete + self.failed + self.cancelled


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    tenant: str
    shape: Shape
    endpoint: str
    completion_window: str  # as the client named it
    created_at: float
    label: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    input_file_id: str | None = None
    counts: Counts = Counts()
    cancelled_at: float | None = None  # when a cancel was asked for
    finished_at: float | None = None  # when the last item reached a final state
    finalized_at: float | None = None  # when its output files were written
    output_file_id: str | None = None
    error_file_id: str | None = None
    expires_at: float | None = None  # OpenAI's shape: when it expires if not finished by then
    expired_at: float | None = None  # when it expired (its queued items were cancelled)
    webhook: Webhook | None = None  # called once the whole batch is final
    failed_at: float | None = None  # its input was invalid: it holds no items
    errors: tuple[BatchError, ...] = ()  # why it failed


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    tenant: str
    purpose: str  # 'batch' (an upload) or 'batch_output' (what a batch wrote)
    filename: str
    bytes: int
    created_at: float


@dataclass(frozen=True, slots=True)
class ItemState:
    """One batch item as the batch's status map lists it."""

    index: int
    custom_id: str
    status: str  # a job Status value
