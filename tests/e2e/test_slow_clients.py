"""Slow and many clients against ``leeway serve`` (``leeway.server``): deadlines for a request's head
and body, a cap on connections that gives way to clients that send, one budget for bodies in memory,
and a client that leaves mid-upload logged as that."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import LeewayServer

CONFIG = """
[server]
header_timeout_seconds = 1
body_timeout_seconds = 2
body_min_rate = 1000
max_connections = 20
max_buffered_body_bytes = 150000
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LeewayServer]:
    lw = LeewayServer(tmp_path_factory.mktemp("slow"), CONFIG, args=("--engine", "fake")).start()
    try:
        yield lw
    finally:
        lw.stop()


def connect(lw: LeewayServer) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", lw.port))
    s.settimeout(15)
    return s


def answer(s: socket.socket) -> bytes:
    """Everything the server writes until it closes the connection."""
    out = b""
    while True:
        try:
            data = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return out
        if not data:
            return out
        out += data


def head(lw: LeewayServer, length: int) -> bytes:
    return (
        f"POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {lw.key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_a_head_that_never_ends_is_closed_at_its_deadline_even_if_it_trickles(server):
    s = connect(server)
    start = time.monotonic()
    for part in (b"GET /health HTTP/1.1\r\n", b"Host: x\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n"):
        s.sendall(part)  # a byte now and then must not buy more time
        time.sleep(0.3)
    got = answer(s)
    assert got.startswith(b"HTTP/1.1 408") and b'"code":"request_timeout"' in got
    assert time.monotonic() - start < 5


def test_a_body_that_stalls_is_answered_408_and_closed(server):
    s = connect(server)
    s.sendall(head(server, 1000) + b'{"model"')
    got = answer(s)
    assert got.startswith(b"HTTP/1.1 408") and b"connection: close" in got.lower()
    assert b"arrived too slowly" in got


def test_idle_and_trickling_connections_give_way_to_a_request(server):
    idle = [connect(server) for _ in range(25)]  # over max_connections, sending nothing
    trickling = [connect(server) for _ in range(25)]
    for s in trickling:
        s.sendall(b"GET /health HTTP/1.1\r\n")
    try:
        for _ in range(5):
            r = httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=5)
            assert r.status_code == 200
    finally:
        for s in idle + trickling:
            s.close()


def test_when_every_connection_is_busy_a_new_one_gets_a_clear_503(server):
    busy = [connect(server) for _ in range(20)]
    for s in busy:
        s.sendall(head(server, 1000) + b"{")  # each is in its body: busy, not idle
    time.sleep(0.3)
    try:
        r = httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=5)
        assert r.status_code == 503 and r.json()["error"]["code"] == "server_busy"
    finally:
        for s in busy:
            s.close()
    time.sleep(0.3)
    assert httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=5).status_code == 200


def test_bodies_in_memory_share_one_budget(server):
    first, second = connect(server), connect(server)
    for s in (first, second):  # 200,000 declared each; 100,000 sent: 200,000 held > 150,000
        s.sendall(head(server, 200_000) + b" " * 100_000)
    got = answer(second)
    first.close()
    assert got.startswith(b"HTTP/1.1 503") and b'"code":"server_busy"' in got


def test_a_client_leaving_mid_upload_is_logged_as_that(server):
    log: Path = server.log
    s = connect(server)
    form = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n{"a"'
    s.sendall(
        f"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.key}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n".encode()
        + form
    )
    time.sleep(0.3)
    s.close()
    for _ in range(50):
        if "POST /v1/files: The client disconnected" in log.read_text():
            break
        time.sleep(0.1)
    text = log.read_text()
    assert "POST /v1/files: The client disconnected" in text
    assert "Traceback" not in text and "unexpected error" not in text
