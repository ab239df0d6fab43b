"""A small OpenAI-compatible server on 127.0.0.1 that records what it is sent and answers as a test
scripts it: streamed text, tool calls, an HTTP error, or a connection dropped mid-stream."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Event = dict[str, Any]


def text_events(
    *pieces: str, finish: str = "stop", usage: tuple[int, int] = (7, 3), **choice: Any
) -> list[Event]:
    """A reply streamed as vLLM does: a role delta, one event per piece, the finish, the usage."""
    events: list[Event] = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    events += [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish, **choice}]})
    events.append(
        {"choices": [], "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}}
    )
    return events


def reasoning_events(
    thoughts: list[str],
    pieces: list[str],
    *,
    key: str = "reasoning_content",
    usage: tuple[int, int] = (7, 9),
    details: int | None = None,
) -> list[Event]:
    """A reply from a server that reasons, as vLLM's reasoning parsers stream it: the reasoning's
    deltas under ``key`` first, then the content's; the usage (with ``reasoning_tokens`` in its
    ``completion_tokens_details`` if ``details`` is given)."""
    events = text_events(*pieces, usage=usage)
    thinking = [{"choices": [{"index": 0, "delta": {key: t}}]} for t in thoughts]
    if details is not None:
        events[-1]["usage"]["completion_tokens_details"] = {"reasoning_tokens": details}
    return [events[0], *thinking, *events[1:]]


@dataclass
class Answer:
    status: int = 200
    events: list[Event] = field(default_factory=lambda: text_events("Hello", " world"))
    error: str = "upstream error"
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None  # close the connection after this many events


@dataclass
class Stub:
    answers: list[Answer] = field(default_factory=list)  # used in order; then the default
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    health: int = 200
    metrics: str | None = None
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Stub:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"data": []}, status=self.health)

    async def _metrics(self, _: web.Request) -> web.Response:
        if self.metrics is None:
            return web.Response(status=404)
        return web.Response(text=self.metrics)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        answer = self.answers.pop(0) if self.answers else Answer()
        if answer.status != 200:
            body = {"error": {"message": answer.error, "type": "x", "code": answer.status}}
            return web.json_response(body, status=answer.status, headers=answer.headers)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i, event in enumerate(answer.events):
            if answer.drop_after is not None and i >= answer.drop_after:
                assert request.transport is not None
                request.transport.close()
                return resp
            await resp.write(f"data: {json.dumps(event)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
