"""A batch on the wire, in the shape it was created in: the reference's or OpenAI's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from leeway.batches import Batch, ItemState
from leeway.jobs import Status

_ITEM_STATUS = {
    Status.QUEUED: "QUEUED",
    Status.IN_PROGRESS: "RUNNING",
    Status.COMPLETED: "COMPLETED",
    Status.INCOMPLETE: "COMPLETED",  # it has a response, cut short by max_output_tokens
    Status.FAILED: "FAILED",
    Status.CANCELLED: "CANCELLED",
}
DONE_WITHOUT_RESPONSE = frozenset({Status.FAILED, Status.CANCELLED})  # their lines: the error file


def reference(batch: Batch) -> dict[str, Any]:
    """The reference's batch object (what POST and GET /v1/batches answer for it)."""
    return {
        "id": batch.id,
        "label": batch.label,
        "created_at": int(batch.created_at),
        "request_counts": batch.counts.total,
    }


def reference_status(batch: Batch) -> dict[str, Any]:
    """The reference batch with its counts per status (``request_status`` is streamed after)."""
    c = batch.counts
    return {
        **reference(batch),
        "status_counts": {
            "QUEUED": c.queued,
            "RUNNING": c.running,
            "COMPLETED": c.completed + c.incomplete,
            "FAILED": c.failed,
            "CANCELLED": c.cancelled,
        },
        "cancelled_at": _int(batch.cancelled_at),
        "finished_at": _int(batch.finished_at),
    }


async def reference_stream(
    batch: Batch, pages: Callable[[int], Awaitable[list[ItemState]]]
) -> AsyncIterator[bytes]:
    """``GET /v1/batches/{id}`` as JSON, written a page of items at a time: the whole
    ``request_status`` map is never built in memory. ``pages(after)`` reads the items after
    index ``after``."""
    head = orjson.dumps(reference_status(batch))
    yield head[:-1] + b',"request_status":{'
    after, first = -1, True
    while items := await pages(after):
        parts = [
            orjson.dumps(i.custom_id) + b':{"status":"' + _ITEM_STATUS[Status(i.status)].encode()
            for i in items
        ]
        yield (b"" if first else b",") + b'"},'.join(parts) + b'"}'
        after, first = items[-1].index, False
    yield b"}}"


def openai(batch: Batch) -> dict[str, Any]:
    """OpenAI's ``Batch`` object, for a batch of any shape. A batch is validated while it is
    created (it went ``validating`` → ``in_progress`` by the time it is seen), or it ``failed``
    then with its ``errors`` (made from a file whose requests are invalid); it is ``finalizing``
    while its output files are written (and, once expired, while its running items finish); it
    is ``expired`` when it was not finished by ``expires_at``."""
    c, finished, cancelled = batch.counts, batch.finished_at, batch.cancelled_at
    closed = batch.finalized_at is not None
    if batch.failed_at is not None:
        return _failed(batch)
    if batch.expired_at is not None:
        status = "expired" if closed else "finalizing"
    elif cancelled is not None:
        status = "cancelled" if batch.finalized_at is not None else "cancelling"
    elif finished is None:
        status = "in_progress"
    else:
        status = "completed" if batch.finalized_at is not None else "finalizing"
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "errors": None,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": status,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "created_at": int(batch.created_at),
        "in_progress_at": int(batch.created_at),
        "expires_at": _int(batch.expires_at),
        "finalizing_at": _int(batch.expired_at or finished),
        "completed_at": _int(batch.finalized_at) if status == "completed" else None,
        "failed_at": None,
        "expired_at": _int(batch.expired_at),
        "cancelling_at": _int(cancelled),
        "cancelled_at": _int(batch.finalized_at) if cancelled is not None else None,
        "request_counts": {
            "total": c.total,
            "completed": c.completed + c.incomplete,
            "failed": c.failed + c.cancelled,
        },
        "metadata": dict(batch.metadata) or None,
    }


def _failed(batch: Batch) -> dict[str, Any]:
    errors = [
        {"code": e.code, "message": e.message, "param": e.param, "line": e.line}
        for e in batch.errors
    ]
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "errors": {"object": "list", "data": errors},
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": "failed",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": int(batch.created_at),
        "in_progress_at": None,
        "expires_at": _int(batch.expires_at),
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": _int(batch.failed_at),
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": dict(batch.metadata) or None,
    }


def _int(t: float | None) -> int | None:
    return None if t is None else int(t)
