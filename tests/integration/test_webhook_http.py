"""The POST against real loopback listeners: refused addresses get no connection (also when a name
resolves to one, as DNS rebinding would make it), redirects are not followed, slow receivers time out."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from leeway.webhooks.guard import Guard, IPAddress, Refused
from leeway.webhooks.http import HttpPoster, Unreachable
from tests.receiver import Reply, receiving

LOOPBACK = Guard([ipaddress.ip_network("127.0.0.0/8")])
HEADERS = {"content-type": "application/json", "webhook-id": "whmsg_1"}


def poster(guard: Guard = LOOPBACK, timeout: float = 5.0, **kw: object) -> HttpPoster:
    return HttpPoster(guard, timeout=timeout, connections=4, **kw)  # type: ignore[arg-type]


async def test_posts_the_body_and_headers_and_returns_the_answer():
    with receiving({"/hook": [Reply(202, {"x-seen": "yes"})]}) as rx:
        p = poster()
        try:
            answer = await p.post(rx.url("/hook?a=1"), b'{"k":1}', HEADERS)
        finally:
            await p.close()
    assert answer.status_code == 202 and answer.headers["x-seen"] == "yes"
    [got] = rx.requests
    assert got.target == "/hook?a=1" and got.body == b'{"k":1}'
    assert got.headers["webhook-id"] == "whmsg_1" and got.headers["host"] == f"127.0.0.1:{rx.port}"


async def test_a_loopback_url_without_the_allow_list_gets_no_connection():
    with receiving() as rx:
        p = poster(Guard())
        try:
            for url in (rx.url(), f"http://localhost:{rx.port}/", f"http://2130706433:{rx.port}/"):
                with pytest.raises(Refused, match=r"loopback|numeric host form"):
                    await p.post(url, b"{}", HEADERS)
        finally:
            await p.close()
        assert rx.connections == 0 and rx.requests == []


async def test_a_name_rebound_to_loopback_is_checked_on_what_it_resolves_to():
    answers: list[list[IPAddress]] = [
        [ipaddress.ip_address("93.184.215.14")],  # public when someone looked it up earlier
        [ipaddress.ip_address("127.0.0.1")],  # loopback when the sender connects
    ]

    async def rebinding(host: str, port: int) -> list[IPAddress]:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    with receiving() as rx:
        assert Guard().url_problem(f"http://rebind.example:{rx.port}/") is None  # at submission
        await rebinding("rebind.example", rx.port)  # the earlier, harmless lookup
        p = poster(Guard(), resolver=rebinding)
        try:
            with pytest.raises(Refused, match=r"127\.0\.0\.1 is a loopback address"):
                await p.post(f"http://rebind.example:{rx.port}/", b"{}", HEADERS)
        finally:
            await p.close()
        assert rx.connections == 0


async def test_one_refused_address_among_several_refuses_the_name():
    async def mixed(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.1")]

    p = poster(Guard(), resolver=mixed)
    try:
        with pytest.raises(Refused, match="private"):
            await p.post("http://mixed.example/", b"{}", HEADERS)
    finally:
        await p.close()


async def test_a_name_is_connected_to_by_its_checked_address_with_its_own_host_header():
    async def to_loopback(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("127.0.0.1")]

    with receiving() as rx:
        p = poster(resolver=to_loopback)
        try:
            answer = await p.post(f"http://hooks.test:{rx.port}/x", b"{}", HEADERS)
        finally:
            await p.close()
    assert answer.status_code == 200 and rx.requests[0].headers["host"] == f"hooks.test:{rx.port}"


async def test_redirects_are_not_followed():
    with (
        receiving() as target,
        receiving({"/hook": [Reply(302, {"location": target.url("/")})]}) as rx,
    ):
        p = poster()
        try:
            answer = await p.post(rx.url(), b"{}", HEADERS)
        finally:
            await p.close()
        assert answer.status_code == 302 and answer.headers["location"] == target.url("/")
        assert len(rx.requests) == 1 and target.connections == 0


async def test_a_receiver_slower_than_the_timeout_is_unreachable():
    # The default timeout is 30 s; this receiver takes 3 s against a 0.5 s timeout, so the test
    # stays fast while exercising the same path.
    with receiving({"/hook": [Reply(200, delay=3.0)]}) as rx:
        p = poster(timeout=0.5)
        try:
            with pytest.raises(Unreachable, match=r"no answer within 0\.5 s"):
                await p.post(rx.url(), b"{}", HEADERS)
        finally:
            await p.close()
        assert len(rx.requests) == 1


async def test_nothing_listening_is_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        p = poster()
        try:
            with pytest.raises(Unreachable):
                await p.post(f"http://127.0.0.1:{port}/", b"{}", HEADERS)
        finally:
            await p.close()


async def test_a_name_that_does_not_resolve_is_unreachable():
    p = poster()
    try:
        with pytest.raises(Unreachable, match="could not resolve"):
            await p.post("http://no-such-host.invalid/", b"{}", HEADERS)
    finally:
        await p.close()


async def test_a_path_with_spaces_or_non_ascii_is_escaped_not_dropped():
    with receiving() as rx:
        p = poster()
        try:
            answer = await p.post(rx.url("/hooks/café done?q=a%20b&x=ü"), b"{}", HEADERS)
        finally:
            await p.close()
    assert answer.status_code == 200
    assert rx.requests[0].target == "/hooks/caf%C3%A9%20done?q=a%20b&x=%C3%BC"


async def test_the_url_is_checked_again_when_sent():
    # accepted under an allow-list that was later narrowed: refused without a connection
    with receiving() as rx:
        p = poster(Guard([ipaddress.ip_network("10.0.0.0/8")]))
        try:
            with pytest.raises(Refused, match="loopback"):
                await p.post(rx.url(), b"{}", HEADERS)
            with pytest.raises(Refused, match="numeric host form"):
                await p.post("http://0x7f.1/", b"{}", HEADERS)
        finally:
            await p.close()
        assert rx.connections == 0
