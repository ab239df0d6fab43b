"""The submit path: each request is one streamed Responses create, timed from the events it streams
back. Two clients send the same bodies and read the same events:

- ``SdkClient`` (the default): the official ``openai`` SDK on its aiohttp transport
  (``DefaultAioHttpClient``), exactly as users call it;
- ``RawClient`` (``--client aiohttp``): a bare aiohttp POST reading the SSE lines, parsing only
  the final event's JSON. The SDK costs about 6 ms of CPU a request (pydantic models for every
  event), which caps one process at ~150 requests/s on the 2-core dev machine; this path does ~10×
  that, for loads the SDK cannot offer.

Every window is streamed (its first text is its time to first token, its final event its turn
time); ``flex`` is also ``background: true``, as Leeway requires. The window travels as
``metadata.completion_window`` (a server that knows no windows ignores it), the tenant as
``metadata.tenant``; with several API keys, tenant k sends with key k mod n. Nothing is retried: a
429 or a 5xx is counted, not hidden. A request is *sent* when it holds one of the client's connections
(``connections`` each): one that waits for a free one is still only offered, so a client out of
connections shows in the report as a sent rate below the offered one, not as a slow server.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any, Protocol

import aiohttp
import openai
import orjson
from openai import AsyncOpenAI, DefaultAioHttpClient
from openai._constants import DEFAULT_CONNECTION_LIMITS

from leeway.jobs import Window
from leeway.load.prompts import system_prompt, user_text
from leeway.load.records import Record, Request

_FINAL = ("response.completed", "response.incomplete", "response.failed", "error")


class Client(Protocol):
    start: float  # monotonic time the records' times count from

    def now(self) -> float: ...

    async def warm(self) -> Record: ...

    async def send(self, request: Request, record: Record | None = None) -> Record:
        """Send ``request`` now and follow it to its final event, filling in ``record`` as it goes
        (so a run stopped midway keeps what it saw)."""
        ...

    async def close(self) -> None: ...


class _Base:
    def __init__(
        self, model: str, prefixes: Sequence[str], keys: int, seed: int, pools: list[int]
    ) -> None:
        """``pools``: the connections of each of the client's pools (requests of key k use pool
        k mod their number)."""
        self._model, self._prefixes, self._keys, self._seed = model, prefixes, keys, seed
        self._slots = [asyncio.Semaphore(n) for n in pools]
        self.start = time.monotonic()

    async def send(self, request: Request, record: Record | None = None) -> Record:
        record = record or Record(request)
        async with self._slots[self._key(request) % len(self._slots)]:
            record.sent = self.now()
            return await self._send(request, record)

    async def _send(self, request: Request, record: Record) -> Record:
        raise NotImplementedError

    def now(self) -> float:
        return time.monotonic() - self.start

    async def warm(self) -> Record:
        """One small asap request, not counted: a client's first call loads its types and opens a
        connection (over a second for the SDK), which would delay a run's first requests."""
        return await self.send(Request(-1, 0.0, Window.ASAP, 40, 1, 0, 0))

    def _body(self, request: Request) -> dict[str, Any]:
        rng = random.Random(self._seed * 1_000_003 + request.index)
        window = request.window
        return {
            "model": self._model,
            "instructions": system_prompt(self._prefixes[request.prefix]),
            "input": user_text(request.prompt_tokens, rng),
            "max_output_tokens": request.output_tokens,
            "stream": True,
            "background": window is Window.FLEX,
            "metadata": {"completion_window": window.value, "tenant": f"t{request.tenant}"},
        }

    def _key(self, request: Request) -> int:
        return request.tenant % self._keys

    def _event(self, record: Record, kind: str) -> None:
        if record.accepted is None:
            record.accepted = self.now()
        if kind == "response.output_text.delta" and record.first is None:
            record.first = self.now()

    def _final(self, record: Record, kind: str, usage: Any, error: str | None) -> None:
        """``usage``: (input tokens, output tokens) or None."""
        record.done = self.now()
        if kind == "response.failed":
            record.error = f"failed: {error or 'unknown'}"
        elif kind == "error":
            record.error = f"error: {error or 'unknown'}"
        elif usage is not None:
            record.input_tokens, record.output_tokens = usage


class SdkClient(_Base):
    def __init__(
        self,
        base_url: str,
        api_keys: Sequence[str],
        model: str,
        *,
        prefixes: Sequence[str],
        timeout: float,
        connections: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__(model, prefixes, len(api_keys), seed, [connections] * len(api_keys))
        limits = type(DEFAULT_CONNECTION_LIMITS)(  # the SDK's own Limits type, whichever httpx
            max_connections=connections, max_keepalive_connections=connections
        )
        self._clients = [
            AsyncOpenAI(
                base_url=base_url,
                api_key=key,
                max_retries=0,
                timeout=timeout,
                http_client=DefaultAioHttpClient(limits=limits, timeout=timeout),
            )
            for key in api_keys
        ]

    async def close(self) -> None:
        for client in self._clients:
            await client.close()

    async def _send(self, request: Request, record: Record) -> Record:
        try:
            client = self._clients[self._key(request)]
            stream = await client.responses.create(**self._body(request))
            async for event in stream:
                self._event(record, event.type)
                if event.type in _FINAL:
                    self._sdk_final(record, event)
        except openai.APIStatusError as e:
            record.error = f"http {e.status_code}"
        except openai.APITimeoutError:
            record.error = "timeout"
        except openai.APIConnectionError:
            record.error = "connection"
        if record.done is None and record.error is None:
            record.error = "stream ended early"
        return record

    def _sdk_final(self, record: Record, event: Any) -> None:
        if event.type == "error":
            self._final(record, event.type, None, getattr(event, "code", None))
            return
        response = event.response
        usage = response.usage
        code = response.error.code if response.error is not None else None
        tokens = (usage.input_tokens, usage.output_tokens) if usage is not None else None
        self._final(record, event.type, tokens, code)


class RawClient(_Base):
    def __init__(
        self,
        base_url: str,
        api_keys: Sequence[str],
        model: str,
        *,
        prefixes: Sequence[str],
        timeout: float,
        connections: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__(model, prefixes, len(api_keys), seed, [connections])
        self._url = f"{base_url.rstrip('/')}/responses"
        self._headers = [
            {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            for key in api_keys
        ]
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _send(self, request: Request, record: Record) -> Record:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._connections)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        body, headers = orjson.dumps(self._body(request)), self._headers[self._key(request)]
        try:
            async with self._session.post(self._url, data=body, headers=headers) as resp:
                if resp.status >= 400:
                    record.error = f"http {resp.status}"
                    return record
                await self._read(record, resp.content)
        except TimeoutError:
            record.error = "timeout"
        except aiohttp.ClientError:
            record.error = "connection"
        if record.done is None and record.error is None:
            record.error = "stream ended early"
        return record

    async def _read(self, record: Record, content: aiohttp.StreamReader) -> None:
        kind = ""
        async for line in content:
            if line.startswith(b"event:"):
                kind = line[6:].strip().decode()
                self._event(record, kind)
            elif line.startswith(b"data:") and (kind in _FINAL or not kind):
                data = orjson.loads(line[5:])
                kind = kind or data.get("type", "")
                if kind in _FINAL:
                    self._raw_final(record, kind, data)
                    return
                self._event(record, kind)
                kind = ""

    def _raw_final(self, record: Record, kind: str, data: dict[str, Any]) -> None:
        if kind == "error":
            self._final(record, kind, None, data.get("code"))
            return
        response = data.get("response") or {}
        usage, error = response.get("usage"), response.get("error") or {}
        tokens = (usage["input_tokens"], usage["output_tokens"]) if usage else None
        self._final(record, kind, tokens, error.get("code"))


def make_client(kind: str, base_url: str, api_keys: Sequence[str], model: str, **kw: Any) -> Client:
    cls = RawClient if kind == "aiohttp" else SdkClient
    return cls(base_url, api_keys, model, **kw)
