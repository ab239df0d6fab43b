"""Taking in a batch's requests with bounded memory, all or nothing.

The body (or the uploaded file) is first spooled to disk as it arrives, hashed for its idempotency
fingerprint and capped in size (413 as soon as it is over). Then, in a worker thread, its requests
are read one at a time (``ijson`` over the JSON body, a line at a time over JSONL), each validated
exactly as the surface would validate it alone, and staged in the store in chunks. Only when every
item is valid are they made visible, in one transaction with the batch; an invalid item (400 naming
its index and custom_id) discards what was staged. No more than one chunk of requests is ever held
in memory, whatever the size of the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import ijson  # type: ignore[import-untyped]
import orjson
from starlette.requests import Request

from leeway.api import chat, idempotency, messages, responses
from leeway.api.body import parse, stream
from leeway.api.bounds import declared_length
from leeway.api.intake import BatchItem, Draft, Intake
from leeway.batches import Batch, Shape
from leeway.errors import InvalidRequest, LeewayError, PayloadTooLarge
from leeway.jobs import WINDOW_ALIASES, Job, Window
from leeway.runtime import Runtime
from leeway.settings import Settings
from leeway.store import BatchStore, IdempotencyKey

CHUNK = 5000  # items staged per write
# the window names (and aliases) batch items may ask for: those of standard and flex
_BATCH_WINDOWS = frozenset(
    name
    for name, window in [*((w.value, w) for w in Window), *WINDOW_ALIASES.items()]
    if window in (Window.STANDARD, Window.FLEX)
)
_LABEL = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# custom_id rules beyond the length, per shape: Anthropic's Message Batches take these only
_CUSTOM_IDS = {
    Shape.ANTHROPIC: (re.compile(r"[A-Za-z0-9_-]{1,64}"), "1 to 64 letters, digits, '_' or '-'")
}
MAX_CUSTOM_ID = 512
ENDPOINTS = ("/v1/responses", "/v1/chat/completions")


class InvalidInput(InvalidRequest):
    """A batch's requests are invalid: a 400 for a batch made inline; a batch made from a file
    keeps it as its error (``failed``): ``kind`` is OpenAI's code for it, ``line`` the file's line
    (1-based) at fault, if one is, and ``field`` the field of that line."""

    def __init__(
        self,
        message: str,
        *,
        param: str,
        kind: str = "invalid_request",
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, param=param)
        self.kind, self.line, self.field = kind, line, field


@dataclass(frozen=True, slots=True)
class Spooled:
    path: Path
    size: int
    fingerprint: str  # of the route and the body, for the Idempotency-Key


async def spool(request: Request, limit: int, folder: Path) -> Spooled:
    """Write the request body to a temporary file under ``folder`` as it arrives (the caller
    removes it); 413 before anything is read if it declares more than ``limit`` bytes, else as soon
    as it is over."""
    declared = declared_length(request.headers)
    if declared is not None and declared > limit:
        raise PayloadTooLarge(too_large(limit))
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a metadata operation
    fd, name = tempfile.mkstemp(dir=folder, suffix=".part")
    path, size, digest = Path(name), 0, idempotency.hasher(request.url.path)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in stream(request):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(too_large(limit))
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)  # noqa: ASYNC240 - a metadata operation
        raise
    return Spooled(path, size, digest.hexdigest())


@dataclass(frozen=True, slots=True)
class Received:
    """A batch create's body, spooled to ``path``, and what its Idempotency-Key holds."""

    path: Path
    held: IdempotencyKey | None  # the key with the body's fingerprint, if one was sent
    replay: Batch | None  # the batch this key made already: answered again, nothing stored


@contextlib.asynccontextmanager
async def received(
    request: Request, settings: Settings, batches: BatchStore, tenant: str
) -> AsyncIterator[Received]:
    """The prelude of both batch creates (OpenAI's and Anthropic's): spool the body (bounded by
    ``max_batch_bytes``), look its Idempotency-Key up; the spooled file goes on exit."""
    key = idempotency.header(request)
    spooled = await spool(request, settings.max_batch_bytes, settings.data_dir / "tmp")
    try:
        held = None if key is None else IdempotencyKey(key, spooled.fingerprint)
        replay = None if held is None else await batches.held_batch(tenant, held)
        yield Received(spooled.path, held, replay)
    finally:
        spooled.path.unlink(missing_ok=True)


def raced(stored: Batch, made: Batch, headers: Mapping[str, str]) -> dict[str, str]:
    """``headers``, marked a replay if a concurrent request with the same key stored its batch
    (``stored``) before this one's (``made``)."""
    return dict(headers) if stored.id == made.id else {**headers, **idempotency.REPLAYED}


def too_large(limit: int) -> str:
    return f"A batch may be at most {limit:,} bytes; split it into several batches."


def envelope(f: BinaryIO) -> dict[str, Any]:
    """The body's top-level fields, with ``requests`` left out (it is read item by item later):
    a ``requests`` key maps to True."""
    builder = ijson.ObjectBuilder()
    try:
        for prefix, event, value in ijson.parse(f, use_float=True):
            if prefix == "requests" or prefix.startswith("requests."):
                continue
            builder.event(event, value)
            if prefix == "" and event == "map_key" and value == "requests":
                builder.event("boolean", True)
    except (ijson.JSONError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"The body of your request is not valid JSON ({e}).") from e
    if not isinstance(builder.value, dict):
        raise InvalidRequest("The body must be a JSON object.")
    writable(builder.value, "The body of your request", None)
    return builder.value


def writable(value: Any, what: str, param: str | None) -> Any:
    """``value`` if it can be written as JSON again: ijson lets through what orjson refuses (a lone
    surrogate such as ``"\\ud800"``, nesting past 255 levels), and a job is stored as JSON."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as e:
        raise InvalidRequest(f"{what} is not valid JSON ({e}).", param=param) from e
    return value


def inline_items(f: BinaryIO) -> Iterator[Any]:
    """The reference shape: the items of the body's ``requests`` array, one at a time."""
    try:
        yield from ijson.items(f, "requests.item", use_float=True)
    except (ijson.JSONError, UnicodeDecodeError) as e:
        raise InvalidRequest(
            f"The requests array is not valid JSON ({e}).", param="requests"
        ) from e


def file_items(f: BinaryIO) -> Iterator[Any]:
    """OpenAI's shape: one request per line of a JSONL file (blank lines are skipped)."""
    for number, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise InvalidInput(
                f"Line {number} of the input file is not valid JSON ({e}).",
                param="input_file_id",
                kind="invalid_json_line",
                line=number,
            ) from e


class Ingest:
    """Turns a stream of raw batch items into staged jobs of one batch, and stores the batch."""

    def __init__(
        self, intake: Intake, store: BatchStore, runtime: Runtime, max_requests: int
    ) -> None:
        self._intake, self._store, self._runtime = intake, store, runtime
        self._max = max_requests

    async def store(
        self,
        batch: Batch,
        items: Iterator[Any],
        key: IdempotencyKey | None,
        *,
        inline: bool,
        key_id: str | None = None,
    ) -> tuple[Batch, dict[str, str]]:
        """Stage ``items``, admit them under the tenant's limits and budget (all or nothing),
        then commit the batch: the batch stored (the key's holder's if a concurrent request with
        the key won) and the tenant's ``x-ratelimit-*`` headers. ``key_id``: the API key that
        asked for it, which its jobs are billed to."""
        count, woken = await self.run(batch, items, inline=inline, key_id=key_id)
        try:
            headers = await self._intake.admit(batch.tenant, count)
        except BaseException:
            await self._store.discard_batch(batch.id)
            raise
        stored = await self._store.commit_batch(batch, count, key)
        for job in woken:
            self._runtime.wake(job)
        return stored, headers

    async def run(
        self, batch: Batch, items: Iterator[Any], *, inline: bool, key_id: str | None = None
    ) -> tuple[int, list[Job]]:
        """Stage every item of ``items`` (read in a worker thread): how many there were, and one
        item per model (to wake the dispatcher with once they are queued). Raises
        ``InvalidRequest`` for the first invalid item, after discarding the batch."""
        loop = asyncio.get_running_loop()
        await self._store.open_batch(batch)

        def stage(chunk: list[tuple[int, Job]]) -> None:
            asyncio.run_coroutine_threadsafe(self._store.stage_items(chunk), loop).result()

        def work() -> tuple[int, dict[str, Job]]:
            seen: set[str] = set()
            models: dict[str, Job] = {}  # one item per model, to wake the dispatcher with
            chunk: list[tuple[int, Job]] = []
            count = 0
            for index, raw in enumerate(items):
                if index >= self._max:
                    raise InvalidInput(
                        f"A batch holds at most {self._max:,} requests; split this one.",
                        param="requests" if inline else "input_file_id",
                        kind="too_many_requests",
                    )
                job = self._item(batch, index, raw, seen, inline, key_id)
                models.setdefault(job.model, job)
                chunk.append((index, job))
                count += 1
                if len(chunk) >= CHUNK:
                    stage(chunk)
                    chunk = []
            if chunk:
                stage(chunk)
            return count, models

        try:
            count, models = await asyncio.to_thread(work)
            if count == 0:
                raise InvalidInput(
                    "A batch needs at least one request.",
                    param="requests" if inline else "input_file_id",
                    kind="empty_file",
                )
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.discard_batch(batch.id))
            raise
        return count, list(models.values())

    def _item(
        self,
        batch: Batch,
        index: int,
        raw: Any,
        seen: set[str],
        inline: bool,
        key_id: str | None = None,
    ) -> Job:
        where = f"requests[{index}]" if inline else f"line {index + 1} of the input file"

        def invalid(message: str, field: str | None = None) -> InvalidInput:
            param = _param(index, inline, field)
            return InvalidInput(message, param=param, line=index + 1, field=field)

        if not isinstance(raw, dict):
            raise invalid(f"{where} must be a JSON object.")
        writable(raw, where, _param(index, inline))
        custom_id = raw.get("custom_id")
        rule = _CUSTOM_IDS.get(batch.shape)
        if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
            raise invalid(
                f"{where} needs a custom_id: a string of 1 to {MAX_CUSTOM_ID} characters.",
                "custom_id",
            )
        if rule is not None and not rule[0].fullmatch(custom_id):
            raise invalid(f"{where}: custom_id {custom_id!r} must be {rule[1]}.", "custom_id")
        where = f"{where} (custom_id {custom_id!r})"
        if custom_id in seen:
            raise invalid(
                f"{where}: custom_id is used twice; each request in a batch needs its own.",
                "custom_id",
            )
        seen.add(custom_id)
        try:
            params = _params(raw, batch.endpoint, inline)
        except LeewayError as e:
            raise invalid(f"{where}: {e.message}", e.param) from e
        field = "params" if inline else "body"
        try:
            draft = _draft(batch, params)
            window = _window(draft.requested_window or batch.completion_window)
            item = BatchItem(batch.id, custom_id, window, batch.created_at, key_id)
            return self._intake.prepare(batch.tenant, draft, item)
        except LeewayError as e:
            raise invalid(
                f"{where}: {e.message}", f"{field}.{e.param}" if e.param else field
            ) from e


def _draft(batch: Batch, params: dict[str, Any]) -> Draft:
    if params.get("stream"):
        raise InvalidRequest("Batch items cannot be streamed; leave stream out.", param="stream")
    if batch.endpoint == "/v1/chat/completions":
        return chat.draft(parse(chat.CreateChatCompletion, params), in_batch=True)
    if batch.endpoint == "/v1/messages":
        return messages.draft(parse(messages.CreateMessage, params))
    body = parse(responses.CreateResponse, params)
    if body.background is False:
        raise InvalidRequest(
            "Batch items run in the background; leave background out or set it to true.",
            param="background",
        )
    return responses.draft(body)


def _window(requested: str) -> str:
    """The window a batch item asks for, if batch items may use it."""
    if requested not in _BATCH_WINDOWS:
        raise InvalidRequest(
            f"Completion window {requested!r} is not available to batch items; use "
            "'standard' or 'flex' (or send latency-sensitive requests one at a time).",
            param="metadata.completion_window",
        )
    return requested


def _params(raw: dict[str, Any], endpoint: str, inline: bool) -> dict[str, Any]:
    """The item's request body, after checking the item's own fields."""
    if inline:
        allowed, body_field = {"custom_id", "params"}, "params"
    else:
        allowed, body_field = {"custom_id", "method", "url", "body"}, "body"
        if raw.get("method", "POST") != "POST":
            raise InvalidRequest("method must be 'POST'.", param="method")
        if raw.get("url", endpoint) != endpoint:
            raise InvalidRequest(
                f"url is {raw.get('url')!r} but the batch's endpoint is {endpoint!r}; every "
                "request in a batch goes to the batch's endpoint.",
                param="url",
            )
    if unknown := sorted(set(raw) - allowed):
        raise InvalidRequest(
            f"Unknown field(s) {unknown}; an item holds {sorted(allowed)}.", param=unknown[0]
        )
    body = raw.get(body_field)
    if not isinstance(body, dict):
        raise InvalidRequest(
            f"{body_field} must be a JSON object (the request body).", param=body_field
        )
    return body


def _param(index: int, inline: bool, rest: str | None = None) -> str:
    base = f"requests[{index}]" if inline else f"input_file_id:line {index + 1}"
    return f"{base}.{rest}" if rest else base


def check_label(label: Any) -> str | None:
    if label is None:
        return None
    if not isinstance(label, str) or not _LABEL.match(label):
        raise InvalidRequest(
            "label must be 1 to 128 characters of letters, digits, '-' and '_'.", param="label"
        )
    return label
