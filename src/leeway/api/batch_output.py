"""Finishing batches: once every item of an OpenAI-shaped batch is final, its results are written to
an output file (one line per item with a response) and an error file (one per failed or cancelled
item), in OpenAI's batch output format, and the batch becomes ``completed`` (or ``cancelled``).

An OpenAI-shaped batch not finished by its ``expires_at`` (``batch_expiry_seconds`` after it was
created: OpenAI's 24 h window plus a grace) expires: its queued items are cancelled, its running
ones finish, and it is finalized like any other, its cancelled items' lines carrying the error code
``batch_expired``; it then reports ``expired``.

A loop expires overdue batches and looks for finished ones every few seconds. A stop between writing the files and recording
them leaves only unreferenced files behind; the batch is finalized again at the next start."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from leeway.api.batch_wire import DONE_WITHOUT_RESPONSE
from leeway.api.files import file_path
from leeway.batches import Batch, Shape, StoredFile
from leeway.jobs import Job, Status, new_id
from leeway.periodic import Periodic
from leeway.store import BatchResults

log = logging.getLogger(__name__)
_PAGE = 1000


class Finalizer(Periodic):
    def __init__(
        self,
        results: BatchResults,
        data_dir: Path,
        render: Callable[[Job], dict[str, Any]],  # the item as its surface renders it
        poll_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("leeway-batch-finalizer", poll_seconds, at_once=True)
        self._results, self._dir, self._render = results, data_dir, render
        self._clock = clock

    async def tick(self) -> None:
        """Expire the batches past their expiry, then finalize every finished batch."""
        await self._results.expire_batches(self._clock())
        for batch in await self._results.batches_to_finalize():
            await self.finalize(batch)

    async def finalize(self, batch: Batch) -> None:
        if batch.shape is not Shape.OPENAI:  # the reference shape has no files to write
            await self._results.finalize_batch(batch, None, None, self._clock())
            return
        output = _Writer(self._dir, batch, "output")
        errors = _Writer(self._dir, batch, "errors")
        try:
            after = -1
            while page := await self._results.item_jobs(batch.id, after, _PAGE):
                lines = [(_line(batch, job, self._render), job.status) for _, job in page]
                await asyncio.to_thread(_write, lines, output, errors)
                after = page[-1][0]
            files = output.close(), errors.close()
            await self._results.finalize_batch(batch, *files, self._clock())
        finally:
            output.discard()
            errors.discard()


class _Writer:
    """One output JSONL file being written; renamed into place when it has lines."""

    def __init__(self, folder: Path, batch: Batch, kind: str) -> None:
        self.batch, self.kind = batch, kind
        self.folder = folder / "files"
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.folder, suffix=".part")
        self.part, self.out = Path(name), os.fdopen(fd, "wb")
        self.size = 0

    def write(self, line: bytes) -> None:
        self.out.write(line)
        self.size += len(line)

    def close(self) -> StoredFile | None:
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()
        if self.size == 0:
            return None
        file = StoredFile(
            id=new_id("file-"),
            tenant=self.batch.tenant,
            purpose="batch_output",
            filename=f"{self.batch.id}_{self.kind}.jsonl",
            bytes=self.size,
            created_at=time.time(),
        )
        self.part.rename(file_path(self.folder.parent, file.id))
        return file

    def discard(self) -> None:
        if not self.out.closed:
            self.out.close()
        self.part.unlink(missing_ok=True)


def _write(lines: list[tuple[bytes, Status]], output: _Writer, errors: _Writer) -> None:
    for line, status in lines:
        (errors if status in DONE_WITHOUT_RESPONSE else output).write(line)


def _line(batch: Batch, job: Job, render: Callable[[Job], dict[str, Any]]) -> bytes:
    """The item in OpenAI's batch output format."""
    request_id = f"batch_req_{job.id.split('_', 1)[-1]}"
    if job.status is Status.FAILED:
        error = job.error
        line: dict[str, Any] = {
            "id": request_id,
            "custom_id": job.custom_id,
            "response": None,
            "error": {
                "code": error.code if error else "failed",
                "message": error.message if error else "The request failed.",
            },
        }
    elif job.status is Status.CANCELLED and _expired(batch, job):
        line = {
            "id": request_id,
            "custom_id": job.custom_id,
            "response": None,
            "error": {
                "code": "batch_expired",
                "message": "This request could not be executed before the completion window "
                "expired.",
            },
        }
    elif job.status is Status.CANCELLED:
        line = {
            "id": request_id,
            "custom_id": job.custom_id,
            "response": None,
            "error": {
                "code": "batch_cancelled",
                "message": "The batch was cancelled before this request ran.",
            },
        }
    else:
        line = {
            "id": request_id,
            "custom_id": job.custom_id,
            "response": {"status_code": 200, "request_id": job.id, "body": render(job)},
            "error": None,
        }
    return orjson.dumps(line) + b"\n"


def _expired(batch: Batch, job: Job) -> bool:
    """Whether the item was cancelled because its batch expired (it was still queued then)."""
    expired, cancelled = batch.expired_at, job.completed_at
    return expired is not None and cancelled is not None and cancelled >= expired
