"""The POST itself, on ``aiohttp`` with a resolver that checks where it connects.

``GuardedResolver`` resolves a host name itself and refuses if *any* address it resolves to is
refused by the guard; ``aiohttp`` then connects only to the addresses it returned, never to the
name, and resolves again for every new connection (no DNS cache). So a name that resolves, or is
rebound between checks, to a loopback or private address never gets a connection. A literal
address never reaches a resolver: ``HttpPoster.post`` checks the whole URL (``Guard.url_problem``)
first. TLS still verifies the certificate against the URL's host name, and the ``Host`` header is the
URL's. No proxy from the environment is used and redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from leeway.webhooks.guard import Guard, IPAddress, Refused

Resolve = Callable[[str, int], Awaitable[list[IPAddress]]]


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
    """Every address ``host`` resolves to."""
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


class GuardedResolver(AbstractResolver):
    def __init__(self, guard: Guard, resolver: Resolve = resolve) -> None:
        self._guard, self._resolve = guard, resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        addresses = await self._resolve(host, port)
        for ip in addresses:
            if (why := self._guard.refusal(ip)) is not None:
                raise Refused(f"{host} resolves to a refused address: {why}")
        return [
            {
                "hostname": host,
                "host": str(ip),  # what aiohttp connects to: an address checked above
                "port": port,
                "family": socket.AF_INET if ip.version == 4 else socket.AF_INET6,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for ip in addresses
            if family in (socket.AF_UNSPEC, socket.AF_INET if ip.version == 4 else socket.AF_INET6)
        ]

    async def close(self) -> None:
        return None


class HttpPoster:
    def __init__(
        self, guard: Guard, *, timeout: float, connections: int, resolver: Resolve = resolve
    ) -> None:
        self._guard, self._timeout, self._connections = guard, timeout, connections
        self._resolver = GuardedResolver(guard, resolver)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made in the event loop that uses it
            connector = aiohttp.TCPConnector(
                limit=self._connections, use_dns_cache=False, resolver=self._resolver
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                trust_env=False,
                auto_decompress=False,
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        if (problem := self._guard.url_problem(url)) is not None:  # literal addresses too
            raise Refused(f"the URL {problem}")
        try:
            async with self._client().post(
                url, data=body, headers=dict(headers), allow_redirects=False
            ) as response:
                answer = {k.lower(): v for k, v in response.headers.items()}
                return Answer(response.status, answer)
        except TimeoutError as e:
            raise Unreachable(f"no answer within {self._timeout:g} s") from e
        except (aiohttp.ClientError, OSError) as e:
            raise Unreachable(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from e

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
