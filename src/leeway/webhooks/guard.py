"""Which addresses a webhook may reach.

Refused, for IPv4 and IPv6 alike: unspecified, loopback, private, link-local, multicast, reserved, and
anything else that is not globally routable (shared address space, documentation ranges, …). An IPv6
address that carries an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, Teredo, NAT64) is judged
by that IPv4 address too. Ranges in ``[webhooks] allow`` are let through.

The check runs twice: on the URL when a request is submitted (``url_problem``: what is visibly bad,
including numeric host forms such as ``2130706433`` or ``0x7f.1`` that resolvers read as addresses),
and on every address a host name resolves to, at connect time (``refusal``, from ``http``), so a
name that resolves (or is rebound) to a refused address never gets a connection.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT
# Labels a resolver may read as a number: decimal, octal (leading 0) or hex (0x…).
_NUMERIC = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$")
_HOST = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$")


class Refused(Exception):
    """A webhook URL or address the guard will not contact; the message says why."""


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to, if it carries one."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _category(ip: IPAddress) -> str | None:
    """Why ``ip`` is refused, or None if it is a public address."""
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED, "a shared (CGNAT) address"),
        (not ip.is_global, "not a globally routable address"),
    )
    return next((why for refused, why in checks if refused), None)


class Guard:
    def __init__(self, allow: Iterable[IPNetwork] = ()) -> None:
        self._allow = tuple(allow)

    def _allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self._allow)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why a connection to ``ip`` is refused, or None if it may be made."""
        inner = embedded_ipv4(ip)
        if self._allowed(ip) or (inner is not None and self._allowed(inner)):
            return None
        if inner is not None and (why := _category(inner)) is not None:
            return f"{ip} leads to {inner}, {why}"
        if (why := _category(ip)) is not None:
            return f"{ip} is {why}"
        return None

    def url_problem(self, url: str) -> str | None:
        """What is visibly wrong with a webhook URL before anything is resolved, or None."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            return f"is not a valid URL ({e})"
        if parts.scheme not in ("http", "https"):
            return "must be an http:// or https:// URL"
        if parts.username is not None or parts.password is not None:
            return "must not carry credentials (send a token as metadata.webhook_token)"
        host = parts.hostname
        if not host:
            return "must name a host"
        if port == 0:
            return "must not use port 0"
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return _name_problem(host)
        if (why := self.refusal(ip)) is not None:
            return f"is refused: {why}"
        return None


def _name_problem(host: str) -> str | None:
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return f"has a host name that is not valid: {host!r}"
    if _NUMERIC.match(ascii_host):
        return (
            f"uses the numeric host form {host!r}, which resolvers read as an IP address; "
            "write an address as a dotted quad (1.2.3.4) or [IPv6]"
        )
    if not _HOST.match(ascii_host):
        return f"has a host name that is not valid: {host!r}"
    return None
