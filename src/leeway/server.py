"""Serving the app over HTTP: uvicorn (with httptools), plus what it lacks against slow and many clients.

uvicorn closes a connection idle *between* requests (``timeout_keep_alive``) and can answer 503 once a
request's headers are in (``limit_concurrency``, counting every open connection, so a flood of idle
ones makes it refuse everyone). It has no deadline for a request's head or body: a connection that
never finishes its headers, or its body, is kept forever (with its file descriptor and buffered body).
So, on top of it:

- ``guarded(...)``, uvicorn's httptools protocol subclassed: a request's head (request line and
  headers, at most 64 KiB) must arrive within ``header_timeout_seconds`` of the connection opening or
  of the request's first byte, else 408 and the connection is closed. At most ``max_connections`` are
  open: a new one over that closes the connection that has waited longest for a request (idle, or
  still sending its head: a client that trickles gives way to one that sends); if every connection
  is busy with a request, the new one is answered 503 and closed. A connection whose response went
  out before its request body had arrived is closed unless the body is in within that deadline.
- ``Paced``, an ASGI middleware: a request body must arrive within ``body_timeout_seconds`` plus one
  second per ``body_min_rate`` bytes, with no pause longer than ``body_timeout_seconds``, else 408
  (and the connection closes); and request bodies held
  in memory by all requests together stay under ``max_buffered_body_bytes``, else 503.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import resource
import time
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from leeway.api.errors import envelope
from leeway.errors import LeewayError, RequestTimeout, ServerBusy
from leeway.settings import ServerSettings, Settings

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024  # bytes of a request line and its headers
_M_MMAP_THRESHOLD, _MMAP_THRESHOLD = -3, 256 * 1024  # glibc's mallopt: blocks over 256 KiB mmapped
_RESERVED_FILES = 128  # descriptors kept for the store, spooled bodies, webhook deliveries, …
_Scope = dict[str, Any]
_Message = dict[str, Any]


def serve(app: Any, settings: Settings) -> None:
    """Serve ``app`` on ``settings.host:port`` until interrupted."""
    return_large_frees()
    server = settings.server
    uvicorn.run(
        Paced(app, server, settings.max_body_bytes),
        host=settings.host,
        port=settings.port,
        http=guarded(server, connection_limit(server.max_connections)),
        log_level="info",
        access_log=False,
    )


def return_large_frees() -> None:
    """Have glibc give every large block (a request body, a rendered response) back to the system
    when it is freed. By default glibc raises its mmap threshold to the largest block freed (up to
    32 MiB), after which blocks that size come from its heaps and stay in the process once freed:
    100 responses of 11 MiB left 231 MB behind (bench/hardening.py memory). Nothing elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


def connection_limit(configured: int) -> int:
    """``configured``, or fewer if the process may not open that many files (each connection is
    one): past the open-file limit nothing could be accepted, not even to be refused."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or configured <= soft - _RESERVED_FILES:
        return configured
    limit = max(1, soft - _RESERVED_FILES)
    log.warning(
        "max_connections %d lowered to %d: this process may open %d files", configured, limit, soft
    )
    return limit


def _answer(status: int, error: LeewayError) -> bytes:
    """A whole response to a request that never reached the app (the connection closes after)."""
    body = orjson.dumps(envelope(error))
    reason = {
        408: "Request Timeout",
        431: "Request Header Fields Too Large",
        503: "Service Unavailable",
    }
    return (
        f"HTTP/1.1 {status} {reason[status]}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def guarded(server: ServerSettings, max_connections: int) -> type[HttpToolsProtocol]:
    """uvicorn's HTTP protocol with a deadline for each request's head and a cap on connections.
    Every connection of one server shares ``idle``: those waiting for a request, oldest first."""
    idle: dict[Guarded, None] = {}
    timeout = server.header_timeout_seconds

    class Guarded(HttpToolsProtocol):
        _head: asyncio.TimerHandle | None = None
        _head_bytes = 0
        _in_body = False

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                if not idle:
                    log.warning("at %d connections, all busy: refusing one", max_connections)
                    self._refuse(503, ServerBusy("The server is at its connection limit; retry."))
                    return
                next(iter(idle))._give_way()
            self._wait()
            self._head = self.loop.call_later(timeout, self._too_slow)

        def _wait(self) -> None:
            idle[self] = None
            self._head_bytes = 0

        def _give_way(self) -> None:
            """Closed to make room for a new connection: this one waited longest for a request."""
            if self._head_bytes:
                self._refuse(503, ServerBusy("Closed to make room: the request was too slow."))
            else:
                self.transport.close()  # idle: clients reconnect, as after any keep-alive close
            self._done_waiting()

        def _too_slow(self) -> None:
            log.info("closed a connection that sent no whole request head within %g s", timeout)
            message = f"The request's headers did not arrive within {timeout:g} seconds."
            self._refuse(408, RequestTimeout(message))

        def _refuse(self, status: int, error: LeewayError) -> None:
            if not self.transport.is_closing():
                self.transport.write(_answer(status, error))
                self.transport.close()
            self._done_waiting()

        def _done_waiting(self) -> None:
            idle.pop(self, None)
            if self._head is not None:
                self._head.cancel()
                self._head = None

        def data_received(self, data: bytes) -> None:
            if self in idle:
                if self._head_bytes >= MAX_HEAD:
                    message = f"The request's line and headers are over {MAX_HEAD:,} bytes."
                    self._refuse(431, LeewayError(message))
                    return
                self._head_bytes += len(data)
            super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._head is None:  # a request on a kept-alive connection begins
                self._head = self.loop.call_later(timeout, self._too_slow)

        def on_headers_complete(self) -> None:
            self._done_waiting()
            self._in_body = True
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._in_body:  # answered before its body came in (a 401, a 413): give it a while
                self.loop.call_later(timeout, self._unless_in)
            elif not self.transport.is_closing() and not self.pipeline:
                self._wait()

        def _unless_in(self) -> None:
            """Close the connection if the body of a request already answered is still arriving."""
            if self._in_body:
                self.transport.close()

        def on_message_complete(self) -> None:
            self._in_body = False
            super().on_message_complete()
            if self.cycle is not None and self.cycle.response_complete and not self.pipeline:
                self._wait()  # the body of a request already answered is in: idle again

        def connection_lost(self, exc: Exception | None) -> None:
            self._done_waiting()
            super().connection_lost(exc)

    return Guarded


class Paced:
    """ASGI middleware: a deadline for each request body (a minimum rate), and one budget for the
    request bodies all requests hold in memory."""

    def __init__(self, app: Any, server: ServerSettings, max_body_bytes: int) -> None:
        self.app, self._server, self._max_body = app, server, max_body_bytes
        self.buffered = 0  # body bytes received by requests still being answered (≤ max_body each)

    async def __call__(self, scope: _Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _Body(self, receive)

        async def sending(message: _Message) -> None:
            if message["type"] == "http.response.start" and body.failed:
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, body.receive, sending)
        finally:
            self.buffered -= body.counted


class _Body:
    """One request's body as the app receives it, paced and counted."""

    def __init__(self, paced: Paced, receive: Any) -> None:
        self._paced, self._receive = paced, receive
        self._started, self._received = time.monotonic(), 0
        self.counted, self.failed, self._done = 0, False, False

    async def receive(self) -> _Message:
        if self._done:  # the body is in: what follows is the disconnect (for streaming responses)
            return await self._receive()  # type: ignore[no-any-return]
        server = self._paced._server
        now, gap = time.monotonic(), server.body_timeout_seconds
        due = self._started + gap + self._received / server.body_min_rate
        try:
            async with asyncio.timeout(min(due, now + gap) - now):
                message: _Message = await self._receive()
        except TimeoutError:
            self.failed = True
            log.info("closed a request whose body arrived too slowly (%d bytes)", self._received)
            raise RequestTimeout(
                f"The request body arrived too slowly: {self._received:,} bytes in "
                f"{time.monotonic() - self._started:.0f} s; a body may take "
                f"{gap:g} s plus a second per {server.body_min_rate:,.0f} bytes, and "
                f"{gap:g} s at most between two of its pieces."
            ) from None
        if message["type"] == "http.request":
            self._done = not message.get("more_body", False)
            self._count(len(message.get("body", b"")))
        return message

    def _count(self, size: int) -> None:
        """Count what the app may hold in memory: a body over ``max_body_bytes`` is refused or
        written to disk, so it stops counting."""
        paced = self._paced
        self._received += size
        if self._received > paced._max_body:
            paced.buffered -= self.counted
            self.counted = 0
            return
        paced.buffered += size
        self.counted += size
        if paced.buffered > paced._server.max_buffered_body_bytes:
            self.failed = True
            log.warning("request bodies in memory over %d bytes: refusing one", paced.buffered)
            raise ServerBusy(
                "The server holds as many request bodies as it may at once; retry shortly."
            )
