"""Request ids: every request gets one (``req_…``), sent back in ``x-request-id`` (what OpenAI's SDK
reads) and ``request-id`` (Anthropic's), written in the server's log line for the request and in
the body of any error it is answered with (``leeway.api.errors``), so a client's report and the
server's log meet on one id.

A pure ASGI middleware: it adds two headers to the response's start and logs one line when the
response has been sent (a stream: when it ends), with the method, path, status and duration."""

from __future__ import annotations

import logging
import secrets
import time

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("leeway.requests")
HEADERS = ("x-request-id", "request-id")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(16)


def request_id(request: Request) -> str | None:
    """The id of the request being answered (None outside the middleware: a bare test app)."""
    state = request.scope.get("state") or {}
    found = state.get("request_id") if isinstance(state, dict) else None
    return found if isinstance(found, str) else None


def id_headers(request: Request) -> dict[str, str]:
    """The response headers carrying the request's id (for a response sent past the middleware:
    an unexpected error's)."""
    rid = request_id(request)
    return {name: rid for name in HEADERS} if rid else {}


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        rid = new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        started, status = time.perf_counter(), 500  # an error answered past us is a 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name in HEADERS:
                    if name not in headers:
                        headers.append(name, rid)
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            took = (time.perf_counter() - started) * 1000
            path = scope.get("path", "")
            log.info("%s %s %s %d %.0fms", rid, scope.get("method"), path, status, took)
