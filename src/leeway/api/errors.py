"""Errors rendered once: OpenAI's envelope ``{"error": {"message", "type", "param", "code",
"request_id"}}``, or Anthropic's ``{"type": "error", "error": {"type", "message"}, "request_id"}``
on Anthropic's routes (``/v1/messages…``) and to Anthropic clients (an ``anthropic-version``
header). An unknown route is 404, even where its path is another route's with another method."""

from __future__ import annotations

import logging
import math
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from leeway.api.request_ids import id_headers, request_id
from leeway.errors import (
    ClientGone,
    InvalidRequest,
    LeewayError,
    NotFound,
    RateLimited,
    UnsupportedParameter,
)

log = logging.getLogger(__name__)


def envelope(error: LeewayError, request_id: str | None = None) -> dict[str, Any]:
    body = {
        "message": error.message,
        "type": error.type,
        "param": error.param,
        "code": error.code,
    }
    return {"error": {**body, "request_id": request_id} if request_id else body}


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
}


def anthropic_envelope(error: LeewayError, request_id: str | None = None) -> dict[str, Any]:
    kind = _ANTHROPIC_TYPES.get(error.status, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": error.message}}
    return {**body, "request_id": request_id} if request_id else body


def anthropic(request: Request) -> bool:
    """The request is Anthropic's: on its routes, or from its SDK (``anthropic-version``)."""
    return request.url.path.startswith("/v1/messages") or "anthropic-version" in request.headers


def render(error: LeewayError, request: Request) -> Response:
    """OpenAI's envelope everywhere; Anthropic's shape to Anthropic's requests."""
    rid = request_id(request)
    body = anthropic_envelope(error, rid) if anthropic(request) else envelope(error, rid)
    headers = id_headers(request)
    if isinstance(error, RateLimited):
        headers = {**headers, **error.headers, "Retry-After": str(math.ceil(error.retry_after))}
    return Response(
        orjson.dumps(body), status_code=error.status, media_type="application/json", headers=headers
    )


def from_validation(error: ValidationError, body: Any = None) -> InvalidRequest:
    """The most specific problem pydantic found, as a message naming the field and what it allows.

    For a field that takes one of several shapes (``input``: a string or a list of messages) pydantic
    reports a failure per shape; the deepest one is the closest to what the client meant. ``body``
    (the request as parsed JSON) tells the fields in a location from the shapes' labels.
    """
    first = max(error.errors(include_url=False), key=lambda e: _closeness(e, body))
    param = _path(_fields(first["loc"], body))
    if first["type"] == "extra_forbidden":
        return UnsupportedParameter(f"Unknown parameter: '{param}'.", param=param)
    if first["type"] == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    got = first.get("input")
    shown = orjson.dumps(got).decode()[:80] if _is_json(got) else type(got).__name__
    return InvalidRequest(f"Invalid value for '{param}': {first['msg']}; got {shown}.", param=param)


def _closeness(error: Any, body: Any) -> tuple[int, bool]:
    """Deeper is closer; at the same depth, a shape that took the value's type but not its value
    (a list over its length) is closer than one that wanted another type."""
    return len(_fields(error["loc"], body)), not error["type"].endswith("_type")


def _fields(loc: tuple[int | str, ...], body: Any = None) -> list[int | str]:
    """The location without pydantic's labels for the shapes of a union (``str``, ``list[...]``,
    a model's name, a discriminator's tag): with the body, a name that is not a key of the value
    it is looked up in is a label (unless it is the last: a missing field)."""
    if body is None:
        return [p for p in loc if isinstance(p, int) or not (p == "str" or "[" in p)]
    out: list[int | str] = []
    here = body
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out.append(part)
            here = here[part] if isinstance(here, list) and part < len(here) else None
        elif isinstance(here, dict) and part in here:
            out.append(part)
            here = here[part]
        elif i == len(loc) - 1 and isinstance(here, dict):
            out.append(part)
    return out


def _path(parts: list[int | str]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


def _is_json(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


async def on_leeway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LeewayError)
    if exc.status >= 500:
        log.error("%s request failed: %s", request_id(request), exc.message)
    elif isinstance(exc, ClientGone):  # no one is left to answer, and nothing went wrong here
        log.info("%s %s %s: %s", request_id(request), request.method, request.url.path, exc.message)
    return render(exc, request)


async def on_http_error(request: Request, exc: Exception) -> Response:
    """404 for a route that does not exist, whatever the method (a path that matches a route
    taking other methods is no route either: Starlette's 405 becomes 404)."""
    assert isinstance(exc, HTTPException)
    error: LeewayError
    if exc.status_code in (404, 405):
        error = NotFound(f"Unknown route: {request.method} {request.url.path}.")
    else:
        error = LeewayError(str(exc.detail))
        error.status, error.type = exc.status_code, "invalid_request_error"
    return render(error, request)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("%s unexpected error", request_id(request), exc_info=exc)
    return render(LeewayError(), request)
