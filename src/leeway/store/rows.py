"""Jobs to and from table rows (shared by every SQL dialect)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson

from leeway.batches import Batch, BatchError, Counts, Shape, StoredFile
from leeway.grammar.calls import OPEN, read
from leeway.jobs import (
    Cost,
    Finish,
    Job,
    JobError,
    Output,
    Sampling,
    Status,
    Surface,
    Usage,
    Webhook,
    Window,
)
from leeway.store.contract import JobPieces, Result
from leeway.store.structure import (
    calls_from,
    calls_json,
    message_from,
    message_json,
    structure_from,
    structure_json,
)
from leeway.structured import ToolCall, Tools
from leeway.webhooks.outbox import Attempt, Delivery, DeliveryStatus


def job_row(job: Job) -> dict[str, Any]:
    request = {
        "messages": [message_json(m) for m in job.messages],
        "sampling": [
            job.sampling.max_output_tokens,
            job.sampling.temperature,
            job.sampling.top_p,
            job.sampling.seed,
            list(job.sampling.stop),
        ],
        **structure_json(job),
    }
    if job.background:
        request["background"] = True
    if job.instructions is not None:
        request["instructions"] = job.instructions
    return {
        "id": job.id,
        "tenant": job.tenant,
        "surface": job.surface.value,
        "model": job.model,
        "status": job.status.value,
        "completion_window": job.window.value,
        "requested_window": job.requested_window,
        "window_rank": job.window.rank,
        "created_at": job.created_at,
        "deadline": job.deadline,
        "prompt_tokens": job.prompt_tokens,
        "request": orjson.dumps(request).decode(),
        "metadata": orjson.dumps(job.metadata).decode(),
        "echo": orjson.dumps(job.echo).decode(),
        "webhook_url": job.webhook.url if job.webhook else None,
        "webhook_token": job.webhook.token if job.webhook else None,
        "batch_id": job.batch_id,
        "custom_id": job.custom_id,
        "key_id": job.key_id,
        "stored": int(job.stored),
    }


def result_row(result: Result) -> dict[str, Any]:
    out, usage, error = result.output, result.usage, result.error
    return {
        "status": result.status.value,
        "output_text": out.text if out else None,
        "finish": out.finish.value if out else None,
        "stop_sequence": out.stop_sequence if out else None,
        "piece_sizes": orjson.dumps(out.piece_sizes).decode() if out else None,
        "output_calls": calls_json(out.calls) if out and out.calls else None,
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "error": error_json(error) if error else None,
        "output_reasoning": out.reasoning if out and out.reasoning else None,
        "reasoning_tokens": usage.reasoning_tokens if usage and usage.reasoning_tokens else None,
    }


def error_json(error: JobError) -> str:
    return orjson.dumps({"code": error.code, "message": error.message}).decode()


def row_job(row: Any) -> Job:
    """``row``: any mapping-like row (sqlite3.Row, a driver's record)."""
    request = orjson.loads(row["request"])
    max_out, temperature, top_p, seed, stop = request["sampling"]
    error = orjson.loads(row["error"]) if row["error"] else None
    echo, structure = orjson.loads(row["echo"]), structure_from(request)
    usage = (
        Usage(row["input_tokens"], row["output_tokens"], row["reasoning_tokens"] or 0)
        if row["output_tokens"] is not None
        else None
    )
    return Job(
        id=row["id"],
        tenant=row["tenant"],
        surface=Surface(row["surface"]),
        model=row["model"],
        messages=tuple(message_from(m) for m in request["messages"]),
        sampling=Sampling(max_out, temperature, top_p, seed, tuple(stop)),
        window=Window(row["completion_window"]),
        requested_window=row["requested_window"],
        created_at=row["created_at"],
        deadline=row["deadline"],
        prompt_tokens=row["prompt_tokens"],
        metadata=orjson.loads(row["metadata"]),
        echo=echo,
        # (jobs stored before 012 kept these two in the echo)
        background=request.get("background", echo.get("background", False)),
        instructions=request.get("instructions", echo.get("instructions")),
        webhook=_webhook(row),
        stored=bool(row["stored"]),
        status=Status(row["status"]),
        attempts=row["attempts"],
        partial_text=row["partial_text"],
        partial_tokens=row["partial_tokens"],
        partial_piece_sizes=tuple(orjson.loads(row["partial_piece_sizes"])),
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        output=_output(row, structure.get("tools")) if row["finish"] else None,
        usage=usage,
        error=JobError(error["code"], error["message"]) if error else None,
        **structure,
        batch_id=row["batch_id"],
        custom_id=row["custom_id"],
        key_id=row["key_id"],
        cost=_cost(row, usage),
    )


def _cost(row: Any, usage: Usage | None) -> Cost | None:
    """What a final job was billed (None before it is final, or if it was never priced)."""
    if row["input_price"] is None:
        return None
    return Cost.of(usage, row["input_price"], row["output_price"])


def _output(row: Any, tools: Tools | None) -> Output:
    text, calls = row["output_text"], tuple[ToolCall, ...]()
    if row["output_calls"]:
        calls = calls_from(row["output_calls"])
    elif tools is not None and OPEN in text:  # stored before 012: its calls still in its text
        reply = read(text, tools, row["id"])
        text, calls = reply.text, reply.calls
    return Output(
        text,
        Finish(row["finish"]),
        row["stop_sequence"],
        tuple(orjson.loads(row["piece_sizes"] or "[]")),
        calls,
        row["output_reasoning"] or "",
    )


def _webhook(row: Any) -> Webhook | None:
    return Webhook(row["webhook_url"], row["webhook_token"]) if row["webhook_url"] else None


def batch_row(batch: Batch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "tenant": batch.tenant,
        "shape": batch.shape.value,
        "endpoint": batch.endpoint,
        "label": batch.label,
        "completion_window": batch.completion_window,
        "metadata": orjson.dumps(batch.metadata).decode(),
        "input_file_id": batch.input_file_id,
        "created_at": batch.created_at,
        "expires_at": batch.expires_at,
        "webhook_url": batch.webhook.url if batch.webhook else None,
        "webhook_token": batch.webhook.token if batch.webhook else None,
    }


def row_batch(row: Any) -> Batch:
    return Batch(
        id=row["id"],
        tenant=row["tenant"],
        shape=Shape(row["shape"]),
        endpoint=row["endpoint"],
        completion_window=row["completion_window"],
        created_at=row["created_at"],
        label=row["label"],
        metadata=orjson.loads(row["metadata"]),
        input_file_id=row["input_file_id"],
        counts=Counts(
            row["n_queued"],
            row["n_running"],
            row["n_completed"],
            row["n_incomplete"],
            row["n_failed"],
            row["n_cancelled"],
        ),
        cancelled_at=row["cancelled_at"],
        finished_at=row["finished_at"],
        finalized_at=row["finalized_at"],
        output_file_id=row["output_file_id"],
        error_file_id=row["error_file_id"],
        expires_at=row["expires_at"],
        expired_at=row["expired_at"],
        webhook=_webhook(row),
        failed_at=row["failed_at"],
        errors=tuple(BatchError(**e) for e in orjson.loads(row["errors"] or "[]")),
    )


def batch_errors_json(errors: Sequence[BatchError]) -> str:
    return orjson.dumps([dataclasses.asdict(e) for e in errors]).decode()


def file_row(file: StoredFile) -> dict[str, Any]:
    return {
        "id": file.id,
        "tenant": file.tenant,
        "purpose": file.purpose,
        "filename": file.filename,
        "bytes": file.bytes,
        "created_at": file.created_at,
    }


def row_file(row: Any) -> StoredFile:
    return StoredFile(
        row["id"], row["tenant"], row["purpose"], row["filename"], row["bytes"], row["created_at"]
    )


def delivery_row(d: Delivery) -> dict[str, Any]:
    """The parameters of ``insert_delivery``."""
    return {
        "id": d.id,
        "tenant": d.tenant,
        "subject_kind": d.subject_kind,
        "subject_id": d.subject_id,
        "url": d.url,
        "token": d.token,
        "body": d.body,
        "next_attempt_at": d.next_attempt_at,
        "created_at": d.created_at,
    }


def row_delivery(row: Any) -> Delivery:
    return Delivery(
        id=row["id"],
        tenant=row["tenant"],
        subject_kind=row["subject_kind"],
        subject_id=row["subject_id"],
        url=row["url"],
        token=row["token"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        finished_at=row["finished_at"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        body=row["body"],
    )


def attempt_row(
    delivery_id: str, attempt: Attempt, status: DeliveryStatus, next_attempt_at: float | None
) -> dict[str, Any]:
    """An attempt and the state it leaves its delivery in (finished unless still pending)."""
    final = status is not DeliveryStatus.PENDING
    return {
        "id": delivery_id,
        "at": attempt.at,
        "duration": attempt.duration,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "status": status.value,
        "next_attempt_at": next_attempt_at,
        "finished_at": attempt.at + attempt.duration if final else None,
    }


def row_attempt(row: Any) -> Attempt:
    return Attempt(row["at"], row["duration"], row["status_code"], row["error"])


def collect_pieces(rows: Sequence[Any]) -> dict[str, JobPieces]:
    """Rows of ``(id, status, seq, text)`` (seq NULL: no pieces) by job."""
    found: dict[str, JobPieces] = {}
    for job_id, status, seq, text in rows:
        got = found.setdefault(job_id, JobPieces(Status(status), []))
        if seq is not None:
            got.pieces.append((seq, text))
    return found
