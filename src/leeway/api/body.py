"""Reading a request body: bounded in size before it is read whole (the raw bytes are what an
idempotency key is fingerprinted with), then parsed as one JSON object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request

from leeway.api.bounds import declared_length
from leeway.api.errors import from_validation
from leeway.errors import ClientGone, InvalidRequest, PayloadTooLarge

M = TypeVar("M", bound=BaseModel)


async def read_bytes(request: Request, limit: int) -> bytes:
    declared = declared_length(request.headers)
    if declared is not None and declared > limit:
        raise PayloadTooLarge(_too_large(limit))
    chunks, size = [], 0
    async for chunk in stream(request):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(_too_large(limit))
        chunks.append(chunk)
    return b"".join(chunks)


async def stream(request: Request) -> AsyncIterator[bytes]:
    """The body as it arrives. A client that leaves before it is read whole is ``ClientGone``: logged
    as that, not as an error of ours."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise ClientGone("The client disconnected before its request body was read.") from None


def load_json(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(
            f"The body of your request is not valid JSON ({e}). Send a JSON object with "
            "`Content-Type: application/json`."
        ) from e
    if not isinstance(body, dict):
        raise InvalidRequest(f"The body must be a JSON object, not {type(body).__name__}.")
    return body


def parse(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as e:
        raise from_validation(e, body) from e


def _too_large(limit: int) -> str:
    return f"The request body is larger than this server accepts ({limit:,} bytes)."
