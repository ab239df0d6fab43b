"""The upstream engine: jobs run on any OpenAI-compatible server (vLLM, SGLang, llama-server,
another Leeway) over HTTP.

Each job is one streamed ``POST {url}/v1/chat/completions`` (the body: ``engines.openai_wire``,
which also says how windows become priorities and how a resumed job continues) on one pooled
``aiohttp`` session per engine, with the job's id as ``X-Request-Id`` (vLLM names the request
after it in its logs: ``chatcmpl-<job id>``). aiohttp rather than httpx: it is already the project's HTTP client
(webhooks), a direct dependency, and streams a response line by line at less cost per request.

**Usage** comes from the stream's last event (``stream_options.include_usage``); a server that
sends none is billed the job's counted prompt and one token per streamed piece. A run that fails
bills nothing: only a finished run's final chunk carries usage, so a retried job is billed once.

**Failures are mapped once, here.** Connection failures, timeouts, a stream cut short, 408, 429
and 5xx raise ``EngineUnavailable``: the dispatcher puts the job back in the queue (keeping any text
it streamed, spending no attempt) to run again later or on another engine, and this engine reports
not ``ready`` until its next successful health probe (after a 429, not before its
``Retry-After``). Any other 4xx raises ``EngineRejected`` with the server's message: the job fails
with it.

**Health.** A background task probes ``{url}/health`` (vLLM, SGLang) or ``{url}/v1/models`` (any
other server) every ``health_seconds`` (at most every second while unhealthy); ``ready()`` is False
while the last probe failed, so the dispatcher sends no new work until the server recovers.

**Capacity hints.** For vLLM and SGLang the probe also reads ``{url}/metrics`` (Prometheus:
``vllm:num_requests_running`` / ``vllm:num_requests_waiting``, SGLang's ``num_running_reqs`` /
``num_queue_reqs``) when the server exposes it. They are used for one thing only: while more
requests wait in the server's own queue than this engine's ``parallel``, ``ready()`` is False
(backpressure: the server is full with other clients' work, and jobs wait better in Leeway's queue,
where the policy can still reorder them, than in the server's). ``hints`` shows the last reading.

**Token counts** (``count_tokens``) are an estimate: the server's tokenizer is not here. About four
characters a token plus four per message, refined from the prompt sizes the server reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import aiohttp
import orjson

from leeway.catalog import EngineConfig, ModelConfig
from leeway.engines import Chunk
from leeway.engines.openai_wire import (
    Flavor,
    Hints,
    Reply,
    capacity_hints,
    error_message,
    request_body,
    upstream_error,
)
from leeway.errors import EngineFailed, EngineUnavailable
from leeway.jobs import Finish, Job, Message, Usage
from leeway.structured import Tools

log = logging.getLogger(__name__)

_PER_MESSAGE = 4  # tokens a chat template adds around each message (an estimate)
_PROBE_TIMEOUT = 5.0
_UNHEALTHY_PROBE = 1.0  # seconds between probes while the server is down


class OpenAIEngine:
    def __init__(self, config: EngineConfig, model: ModelConfig) -> None:
        self.id, self.model, self.context = config.id or model.id, model.id, model.context
        self.parallel = config.parallel or model.parallel
        self.flavor = Flavor(config.flavor)
        self.upstream_model = config.upstream_model or model.id
        self.hints: Hints | None = None  # the server's load, from its metrics (vLLM, SGLang)
        base = (config.url or "").rstrip("/")
        self._base = base.removesuffix("/v1")
        self._key, self._timeout = config.api_key, config.timeout_seconds
        self._health_seconds = config.health_seconds
        self._session: aiohttp.ClientSession | None = None
        self._probe: asyncio.Task[None] | None = None
        self._healthy = False
        self._paused_until = 0.0  # monotonic: a 429's Retry-After
        self._recheck = asyncio.Event()
        self._chars_per_token = 4.0

    async def start(self) -> None:
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.parallel + 2),  # + the probes
            headers=headers,
            timeout=aiohttp.ClientTimeout(
                total=None, connect=self._timeout, sock_read=self._timeout
            ),
            read_bufsize=1 << 20,  # one SSE line (a long tool call's piece) fits
        )
        await self._check()
        self._probe = asyncio.create_task(self._probe_loop(), name=f"probe:{self.id}")

    def ready(self) -> bool:
        if self._session is None or not self._healthy:
            return False
        if self._paused_until > time.monotonic():
            return False
        return self.hints is None or self.hints.waiting <= self.parallel

    def count_tokens(self, messages: Sequence[Message], tools: Tools | None = None) -> int:
        """An estimate (see the module's docstring), never less than one token a message."""
        return round(_chars(messages, tools) / self._chars_per_token) + _PER_MESSAGE * len(messages)

    async def generate(self, job: Job) -> AsyncGenerator[Chunk, None]:
        if self._session is None:
            raise EngineFailed("The upstream engine has not started.")
        body = request_body(job, self.upstream_model, self.flavor)
        reply, done = Reply(), False
        try:
            url, headers = f"{self._base}/v1/chat/completions", {"X-Request-Id": job.id}
            async with self._session.post(url, json=body, headers=headers) as resp:
                if resp.status != 200:
                    raise self._refused(resp.status, resp.headers, await resp.read())
                async for event in _events(resp.content):
                    if event is None:
                        done = True
                        break
                    if text := reply.feed(event):
                        yield Chunk(text, job.partial_tokens + reply.deltas)
        except (aiohttp.ClientError, TimeoutError) as e:
            self._down(f"{type(e).__name__}: {e}")
            raise EngineUnavailable(f"The upstream engine at {self._base} failed: {e}") from e
        except EngineUnavailable as e:
            self._down(e.message)
            raise
        if reply.finish is None and not done:
            self._down("the stream ended before the reply did")
            raise EngineUnavailable(f"The upstream engine at {self._base} cut the reply short.")
        yield self._final(job, reply)

    def _final(self, job: Job, reply: Reply) -> Chunk:
        finish = Finish.LENGTH if reply.finish == "length" else Finish.STOP
        stop = reply.stop_reason if reply.stop_reason in job.sampling.stop else None
        generated = reply.deltas
        prompt = job.prompt_tokens
        if reply.usage is not None:
            generated = int(reply.usage.get("completion_tokens") or 0)
            if upstream := int(reply.usage.get("prompt_tokens") or 0):
                # continuing, the server's prompt held the text so far: output, not input
                prompt = max(0, upstream - job.partial_tokens)
                if not job.partial_text:
                    self._learn(job, upstream)
        tokens = job.partial_tokens + generated
        calls = reply.tool_calls(job.tools, job.id)
        thought = "".join(reply.reasoning)
        usage = Usage(prompt, tokens, reply.reasoning_tokens() if thought else 0)
        return Chunk("", tokens, finish, usage, stop, calls, reasoning=thought)

    def _learn(self, job: Job, prompt_tokens: int) -> None:
        """Refine the characters-per-token estimate from a prompt size the server reported."""
        content = prompt_tokens - _PER_MESSAGE * len(job.messages)
        if content > 0:
            seen = min(8.0, max(1.0, _chars(job.messages, job.tools) / content))
            self._chars_per_token += (seen - self._chars_per_token) * 0.1

    def _refused(self, status: int, headers: Any, body: bytes) -> Exception:
        if status == 429:
            with contextlib.suppress(TypeError, ValueError):
                pause = min(60.0, float(headers.get("Retry-After", 1)))
                self._paused_until = time.monotonic() + pause
        return upstream_error(status, error_message(body))

    def _down(self, why: str) -> None:
        if self._healthy:
            log.warning("upstream engine %s (%s) is unavailable: %s", self.id, self._base, why)
        self._healthy = False
        self._recheck.set()

    async def _probe_loop(self) -> None:
        while True:
            wait = self._health_seconds if self._healthy else _UNHEALTHY_PROBE
            self._recheck.clear()
            failed = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    failed = await self._recheck.wait()
            if failed:  # a job just failed here: give the server a moment, then look
                await asyncio.sleep(min(self._health_seconds, _UNHEALTHY_PROBE))
            await self._check()

    async def _check(self) -> None:
        """One probe: health, then (vLLM, SGLang) the metrics."""
        assert self._session is not None
        path = "/v1/models" if self.flavor is Flavor.OPENAI else "/health"
        timeout = aiohttp.ClientTimeout(total=min(_PROBE_TIMEOUT, self._timeout))
        was = self._healthy
        try:
            async with self._session.get(self._base + path, timeout=timeout) as resp:
                await resp.read()
                self._healthy = resp.status == 200
            if self._healthy and self.flavor is not Flavor.OPENAI:
                self.hints = await self._metrics(timeout)
        except (aiohttp.ClientError, TimeoutError):
            self._healthy = False
        if self._healthy != was:
            state = "healthy" if self._healthy else "unhealthy"
            log.info("upstream engine %s (%s) is %s", self.id, self._base, state)

    async def _metrics(self, limit: aiohttp.ClientTimeout) -> Hints | None:
        assert self._session is not None
        try:
            async with self._session.get(f"{self._base}/metrics", timeout=limit) as resp:
                return capacity_hints(await resp.text()) if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError):
            return None

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _events(stream: aiohttp.StreamReader) -> AsyncIterator[dict[str, Any] | None]:
    """The stream's server-sent events, as JSON; None for ``[DONE]``."""
    async for raw in stream:
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            yield None
            return
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise EngineFailed(f"The upstream engine sent an unreadable event: {e}") from e
        if isinstance(event, dict):
            yield event


def _chars(messages: Sequence[Message], tools: Tools | None) -> int:
    n = sum(len(m.content) + sum(len(c.name) + len(c.arguments) for c in m.calls) for m in messages)
    if tools is not None:
        n += sum(
            len(t.name) + len(t.description) + len(orjson.dumps(t.parameters or {}))
            for t in tools.tools
        )
    return n
