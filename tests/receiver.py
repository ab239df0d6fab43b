"""A webhook receiver for tests: an HTTP server on 127.0.0.1 (a thread) that answers each path from a
script and records every request it gets, and every connection it accepts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a slow receiver)


@dataclass(frozen=True)
class Received:
    path: str  # without the query
    target: str  # as requested
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.time() when it arrived


class Receiver:
    """``script[path]``: the replies to give, in order; the last one repeats. Unscripted: 200."""

    def __init__(self, script: dict[str, Sequence[Reply]] | None = None, port: int = 0) -> None:
        self.script = dict(script or {})
        self.requests: list[Received] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), _Handler, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(got := self.to(path)) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{path}: {len(self.to(path))} requests, expected {count}")

    def _reply(self, path: str, number: int) -> Reply:
        replies = self.script.get(path) or [Reply()]
        return replies[min(number, len(replies) - 1)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, receiver: Receiver) -> None:
        self.receiver = receiver
        super().__init__(address, handler)

    def get_request(self) -> Any:
        got = super().get_request()
        with self.receiver._lock:
            self.receiver.connections += 1
        return got


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.partition("?")[0]
        got = Received(path, self.path, headers, body, time.time())
        with receiver._lock:
            number = len([r for r in receiver.requests if r.path == path])
            receiver.requests.append(got)
        reply = receiver._reply(path, number)
        if reply.delay:
            time.sleep(reply.delay)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()
        except OSError:  # the sender gave up waiting and closed the connection
            pass

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def receiving(
    script: dict[str, Sequence[Reply]] | None = None, port: int = 0
) -> Iterator[Receiver]:
    receiver = Receiver(script, port).start()
    try:
        yield receiver
    finally:
        receiver.stop()
