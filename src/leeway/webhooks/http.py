"""The POST itself, on ``httpcore`` with a network backend that checks where it connects.

``GuardedBackend.connect_tcp`` resolves the host itself, refuses if *any* address it resolves to is
refused by the guard, and then connects to one of the addresses it checked, never to the name. So a
name that resolves (or is rebound between checks) to a loopback or private address never gets a
connection. TLS still verifies the certificate against the URL's host name (``httpcore`` passes the
URL's host as SNI and for verification), and the ``Host`` header is the URL's. No proxy is used and
redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpcore

from leeway.webhooks.guard import Guard, IPAddress, Refused

Resolve = Callable[[str, int], Awaitable[list[IPAddress]]]
_SAFE = "/?&=%:@!$'()*+,;-._~"  # kept as written: only what HTTP cannot carry is escaped


class Unreachable(Exception):
    """The receiver could not be reached or did not answer in time (retried); the message says
    what happened."""


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    headers: Mapping[str, str]  # lower-case names


class Poster(Protocol):
    """What the sender needs from HTTP: POST a body, get the answer's status and headers."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """Raises ``Refused`` (no connection was made) or ``Unreachable``."""

    async def close(self) -> None: ...


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (a literal address resolves to itself)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise Unreachable(f"could not resolve {host}: {e.strerror or e}") from e
    found: dict[IPAddress, None] = {}
    for *_, sockaddr in infos:
        found[ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])] = None
    if not found:
        raise Unreachable(f"{host} resolves to no address")
    return list(found)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(
        self,
        guard: Guard,
        inner: httpcore.AsyncNetworkBackend | None = None,
        resolver: Resolve = resolve,
    ) -> None:
        self._guard, self._resolve = guard, resolver
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port)
        for ip in addresses:
            if (why := self._guard.refusal(ip)) is not None:
                raise Refused(f"{host} resolves to a refused address: {why}")
        error: Exception = Unreachable(f"could not connect to {host}")
        for ip in addresses:  # each checked above; the name itself is never connected to
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError) as e:
                error = e
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("webhooks are never sent to a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _target(url: str) -> tuple[httpcore.URL, str]:
    """The URL as ``httpcore`` takes it, and the ``Host`` header (the URL's own authority)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").encode("idna").decode("ascii")
    shown = f"[{host}]" if ":" in host else host
    authority = f"{shown}:{parts.port}" if parts.port is not None else shown
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_SAFE)
    return httpcore.URL(scheme=parts.scheme, host=host, port=parts.port, target=target), authority


class HttpPoster:
    def __init__(
        self, guard: Guard, *, timeout: float, connections: int, resolver: Resolve = resolve
    ) -> None:
        self._timeout = timeout
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=connections,
            network_backend=GuardedBackend(guard, resolver=resolver),
        )

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        target, authority = _target(url)
        limit = self._timeout
        sent = [
            (b"host", authority.encode()),
            *((k.encode(), v.encode()) for k, v in headers.items()),
        ]
        timeouts = {"connect": limit, "read": limit, "write": limit, "pool": limit}
        try:
            async with (
                asyncio.timeout(limit),  # the whole attempt, however slowly the bytes trickle
                self._pool.stream(
                    "POST", target, headers=sent, content=body, extensions={"timeout": timeouts}
                ) as response,
            ):
                answer = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers
                }
                return Answer(response.status, answer)
        except (TimeoutError, httpcore.TimeoutException) as e:
            raise Unreachable(f"no answer within {limit:g} s") from e
        except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as e:
            raise Unreachable(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from e

    async def close(self) -> None:
        await self._pool.aclose()
