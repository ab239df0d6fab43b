"""Errors rendered once, in OpenAI's envelope: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import logging
import math
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from leeway.errors import (
    ClientGone,
    InvalidRequest,
    LeewayError,
    RateLimited,
    UnsupportedParameter,
)

log = logging.getLogger(__name__)


def envelope(error: LeewayError) -> dict[str, Any]:
    return {
        "error": {
            "message": error.message,
            "type": error.type,
            "param": error.param,
            "code": error.code,
        }
    }


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
}


def anthropic_envelope(error: LeewayError) -> dict[str, Any]:
    kind = _ANTHROPIC_TYPES.get(error.status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": error.message}}


def render(error: LeewayError, path: str = "") -> Response:
    """OpenAI's envelope everywhere; Anthropic's shape on its own route."""
    anthropic = path.startswith("/v1/messages")
    body = anthropic_envelope(error) if anthropic else envelope(error)
    headers = (
        {"Retry-After": str(math.ceil(error.retry_after))}
        if isinstance(error, RateLimited)
        else None
    )
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
        log.error("request failed: %s", exc.message)
    elif isinstance(exc, ClientGone):  # no one is left to answer, and nothing went wrong here
        log.info("%s %s: %s", request.method, request.url.path, exc.message)
    return render(exc, request.url.path)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = {
        404: ("not_found", "Unknown route."),
        405: ("method_not_allowed", "Method not allowed."),
    }
    code, message = kind.get(exc.status_code, (None, str(exc.detail)))
    error = LeewayError(message)
    error.status, error.type, error.code = exc.status_code, "invalid_request_error", code
    return render(error, request.url.path)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error", exc_info=exc)
    return render(LeewayError(), request.url.path)
