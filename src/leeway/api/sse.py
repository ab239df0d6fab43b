"""Server-Sent Events: each surface's stream encoder turns a job's updates into frames."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import orjson
from starlette.responses import StreamingResponse

from leeway.jobs import Job
from leeway.pieces import Update


def frame(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    body = data if isinstance(data, bytes) else orjson.dumps(data)
    return head + b"data: " + body + b"\n\n"


class Encoder(Protocol):
    def start(self) -> list[bytes]: ...

    def delta(self, text: str) -> list[bytes]: ...

    def end(self, job: Job) -> list[bytes]: ...


def stream(
    encoder: Encoder, updates: AsyncIterator[Update], headers: Mapping[str, str] | None = None
) -> StreamingResponse:
    """Frames as the engine produces text. A client that goes away stops only its own stream."""

    async def frames() -> AsyncIterator[bytes]:
        for f in encoder.start():
            if f:
                yield f
        async for update in updates:
            for f in encoder.end(update) if isinstance(update, Job) else encoder.delta(update):
                if f:  # an encoder may skip frames the client has seen (starting_after)
                    yield f

    sent = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})}
    return StreamingResponse(frames(), media_type="text/event-stream", headers=sent)
