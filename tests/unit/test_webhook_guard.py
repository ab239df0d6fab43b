"""The URL guard: every refused form of address, the allow-list, and what is checked at submission."""

from __future__ import annotations

import ipaddress

import pytest

from leeway.webhooks.guard import Guard

REFUSED_URLS = [
    "http://127.0.0.1/",
    "http://127.1.2.3:8080/x",
    "http://[::1]/",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata: link-local
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # shared address space (CGNAT)
    "http://0.0.0.0/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:10.0.0.1]/",
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://[ff02::1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://240.0.0.1/",  # reserved
    "http://255.255.255.255/",
    "http://192.0.2.1/",  # documentation
    "http://[2001:db8::1]/",
    # numeric host forms resolvers read as addresses
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://8.8.8.8./",
    "http://1/",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_refused_with_an_empty_allow_list(url: str):
    assert Guard().url_problem(url) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8/",
        "https://1.1.1.1:8443/hook?x=1",
        "http://[2606:4700:4700::1111]/",
        "https://hooks.example.com/leeway",
        "http://localhost:9000/",  # a name: checked on what it resolves to, when sent
        "https://bücher.example/hook",
    ],
)
def test_public_addresses_and_names_pass_at_submission(url: str):
    assert Guard().url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://8.8.8.8/", "http"),
        ("file:///etc/passwd", "http"),
        ("http:///nohost", "host"),
        ("not a url", "http"),
        ("http://user:pw@8.8.8.8/", "credentials"),
        ("http://8.8.8.8:99999/", "valid"),
        ("http://exa mple.com/", "not valid"),
        ("http://127.0.0.1/", "loopback"),
        ("http://10.1.1.1/", "private"),
        ("http://169.254.169.254/", "link-local"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://224.0.0.1/", "multicast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://2130706433/", "numeric host form"),
    ],
)
def test_the_reason_is_named(url: str, words: str):
    problem = Guard().url_problem(url)
    assert problem is not None and words in problem


def test_the_allow_list_opens_only_its_ranges():
    guard = Guard([ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")])
    assert guard.url_problem("http://127.0.0.1:8080/") is None
    assert guard.url_problem("http://127.9.9.9/") is None
    assert guard.url_problem("http://[::1]/") is None
    assert guard.url_problem("http://[::ffff:127.0.0.1]/") is None  # the same loopback
    assert guard.url_problem("http://10.0.0.1/") is not None
    assert guard.url_problem("http://169.254.169.254/") is not None
    assert guard.url_problem("http://0x7f.1/") is not None  # ambiguous forms stay refused


@pytest.mark.parametrize(
    "ip",
    ["127.0.0.1", "::1", "10.0.0.1", "169.254.169.254", "0.0.0.0", "::ffff:127.0.0.1", "fe80::1"],
)
def test_resolved_addresses_are_judged_the_same(ip: str):
    assert Guard().refusal(ipaddress.ip_address(ip)) is not None
    assert (
        Guard([ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]).refusal(
            ipaddress.ip_address(ip)
        )
        is None
    )


def test_a_public_address_is_not_refused():
    assert Guard().refusal(ipaddress.ip_address("93.184.215.14")) is None
    assert Guard().refusal(ipaddress.ip_address("2606:4700:4700::1111")) is None
