"""``leeway run``: hand a JSONL file of requests to any Leeway (or any service speaking the OpenAI
Responses API with background mode), poll, and write each result as it finishes.

Each input line is a Responses body, or ``{"custom_id", "params"}`` with one. Every request is sent
in the background with an ``Idempotency-Key`` derived from its custom id and body. Two files make a
run resumable: the output (one line per finished request, written once) and ``OUT.accepted`` (one
line per request the server accepted, with its response id). Interrupted and restarted with the
same arguments, a run polls what was accepted, submits only what was not, and never rewrites a
result it wrote.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import openai
from openai import AsyncOpenAI
from tqdm import tqdm

_FINAL = ("completed", "failed", "incomplete", "cancelled")
_RETRY_LATER = (408, 409, 429)


@dataclass(frozen=True, slots=True)
class Request:
    custom_id: str
    body: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        canonical = json.dumps(self.body, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(f"{self.custom_id}\n{canonical}".encode()).hexdigest()
        return f"leeway-run-{digest[:40]}"


def requests(path: Path, model: str | None, window: str | None) -> Iterator[Request]:
    with path.open() as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError(f"{path}:{number}: each line must be a JSON object")
            custom_id, body = (
                (str(item["custom_id"]), dict(item["params"]))
                if "params" in item
                else (str(number), dict(item))
            )
            body.setdefault("model", model)
            if body["model"] is None:
                raise ValueError(f"{path}:{number}: no model (give --model or a 'model' field)")
            body["background"] = True
            if window is not None:
                body["metadata"] = {**body.get("metadata", {}), "completion_window": window}
            yield Request(custom_id, body)


def _load(path: Path, field: str) -> dict[str, Any]:
    """``custom_id -> line[field]`` of a JSONL file; an unfinished last line (a crash while it was
    written) is cut off so the file can be appended to again."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        path.write_bytes(complete)
    seen = {}
    for line in complete.splitlines():
        item = json.loads(line)
        seen[item["custom_id"]] = item[field]
    return seen


class BulkRun:
    def __init__(
        self,
        client: AsyncOpenAI,
        source: Path,
        out: Path,
        *,
        model: str | None,
        window: str | None,
        concurrency: int,
        poll_seconds: float,
    ) -> None:
        self._client, self._source, self._out = client, source, out
        self._model, self._window = model, window
        self._gate = asyncio.Semaphore(concurrency)  # requests in flight, submissions and polls
        self._workers = concurrency
        self._results: TextIO | None = None
        self.rejected = 0
        self._poll = poll_seconds
        self._accepted_path = out.with_name(out.name + ".accepted")

    async def run(self) -> int:
        """Returns how many results were written in all (earlier runs included)."""
        written = _load(self._out, "custom_id")
        accepted = {
            cid: rid for cid, rid in _load(self._accepted_path, "id").items() if cid not in written
        }
        todo = [
            r
            for r in requests(self._source, self._model, self._window)
            if r.custom_id not in written and r.custom_id not in accepted
        ]
        total = len(written) + len(accepted) + len(todo)
        with (
            self._out.open("a") as out,
            self._accepted_path.open("a") as log,
            tqdm(total=total, initial=total - len(todo), desc="submitted", position=0) as sent,
            tqdm(total=total, initial=len(written), desc="completed", position=1) as done,
        ):
            self._results = out
            submitting = asyncio.create_task(self._submit_all(todo, accepted, log, sent))
            await self._collect(accepted, submitting, done)
            await submitting
        return int(done.n) + self.rejected

    async def _submit_all(
        self, todo: list[Request], accepted: dict[str, str], log: TextIO, bar: tqdm[Any]
    ) -> None:
        queue = iter(todo)  # shared by the workers: each takes the next request

        async def worker() -> None:
            for request in queue:
                async with self._gate:
                    try:
                        created = await self._client.responses.create(
                            **request.body,
                            extra_headers={"Idempotency-Key": request.idempotency_key},
                        )
                    except openai.APIStatusError as e:
                        if e.status_code in _RETRY_LATER or e.status_code >= 500:
                            raise  # the SDK retried already: stop; a rerun resumes from here
                        self._reject(request, e)  # the request itself is wrong: say so, go on
                        bar.update(1)
                        continue
                log.write(json.dumps({"custom_id": request.custom_id, "id": created.id}) + "\n")
                log.flush()
                accepted[request.custom_id] = created.id
                bar.update(1)

        await asyncio.gather(*(worker() for _ in range(self._workers)))

    def _reject(self, request: Request, error: openai.APIStatusError) -> None:
        body = error.body if isinstance(error.body, dict) else {"message": str(error)}
        self._write(
            {
                "custom_id": request.custom_id,
                "id": None,
                "status": "rejected",
                "response": None,
                "error": body,
            }
        )
        self.rejected += 1

    async def _collect(
        self, pending: dict[str, str], submitting: asyncio.Task[None], bar: tqdm[Any]
    ) -> None:
        while pending or not submitting.done():
            if submitting.done() and submitting.exception() is not None:
                return  # re-raised by the caller's await
            await asyncio.gather(
                *(self._check(cid, rid, pending, bar) for cid, rid in list(pending.items()))
            )
            if pending or not submitting.done():
                await asyncio.sleep(self._poll)

    async def _check(
        self, custom_id: str, response_id: str, pending: dict[str, str], bar: tqdm[Any]
    ) -> None:
        async with self._gate:
            response = await self._client.responses.retrieve(response_id)
        if response.status not in _FINAL or custom_id not in pending:
            return
        body = response.model_dump(mode="json")
        self._write(
            {
                "custom_id": custom_id,
                "id": response_id,
                "status": response.status,
                "response": body,
                "error": body.get("error"),
            }
        )
        del pending[custom_id]
        bar.update(1)

    def _write(self, result: dict[str, Any]) -> None:
        assert self._results is not None
        self._results.write(json.dumps(result) + "\n")
        self._results.flush()
