"""A Message Batch on the wire, as Anthropic shows it: the ``message_batch`` object and the lines
of its results (``{"custom_id", "result": {"type": "succeeded" | "errored" | "canceled" |
"expired", …}}``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from leeway.batches import Batch
from leeway.jobs import Job, Status

_ERROR_TYPES = {"engine_unavailable": "overloaded_error"}  # else api_error: the server's fault


def rfc3339(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def results_path(batch_id: str) -> str:
    return f"/v1/messages/batches/{batch_id}/results"


def message_batch(batch: Batch, base: str = "") -> dict[str, Any]:
    """Anthropic's ``message_batch``: ``in_progress``, ``canceling`` once a cancel was asked for,
    ``ended`` once every request is final (then ``results_url``, under ``base``: the server's URL,
    or none, a path). Its counts are live: ``processing`` (queued or running) falls as the others
    rise; the cancelled requests of a batch that expired count as ``expired``."""
    c = batch.counts
    ended = batch.finished_at is not None
    expired = batch.expired_at is not None
    status = "ended" if ended else "canceling" if batch.cancelled_at is not None else "in_progress"
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {
            "processing": c.queued + c.running,
            "succeeded": c.completed + c.incomplete,
            "errored": c.failed,
            "canceled": 0 if expired else c.cancelled,
            "expired": c.cancelled if expired else 0,
        },
        "created_at": rfc3339(batch.created_at),
        "expires_at": rfc3339(batch.expires_at),
        "ended_at": rfc3339(batch.finished_at),
        "cancel_initiated_at": rfc3339(batch.cancelled_at),
        "archived_at": None,
        "results_url": base + results_path(batch.id) if ended else None,
    }


def result_line(batch: Batch, job: Job, render: Callable[[Job], dict[str, Any]]) -> bytes:
    """One request's line of the results: its message, its error, or why it never ran."""
    result: dict[str, Any]
    if job.status in (Status.COMPLETED, Status.INCOMPLETE):
        result = {"type": "succeeded", "message": render(job)}
    elif job.status is Status.FAILED:
        code = job.error.code if job.error else ""
        message = job.error.message if job.error else "The request failed."
        kind = _ERROR_TYPES.get(code, "api_error")
        error = {"type": "error", "error": {"type": kind, "message": message}}
        result = {"type": "errored", "error": error}
    else:  # cancelled while queued: by a cancel, or because the batch expired first
        expired = batch.expired_at is not None and (job.completed_at or 0) >= batch.expired_at
        result = {"type": "expired" if expired else "canceled"}
    return orjson.dumps({"custom_id": job.custom_id, "result": result}) + b"\n"
