"""Inference engines. An engine serves one model: it counts prompt tokens, reports how many sequences
it runs at once, and turns a job into a stream of text chunks ending with the finish reason and usage
(and, from an upstream that reasons, the reasoning text that came before the reply).

``openvino`` is the embedded default (CPU, OpenVINO GenAI's continuous batching), ``llamacpp`` the
embedded alternative (llama.cpp, an optional extra), ``openai`` sends jobs to any OpenAI-compatible
server (vLLM, SGLang, another Leeway), ``fake`` is deterministic and instant, for tests and for
measuring the gateway alone. ``engines.build`` makes them from the settings.

How ``generate`` fails says what happens to the job: ``EngineUnavailable`` (the engine could not
run it now: a connection failure, an upstream 5xx or 429) puts the job back in the queue keeping
the text generated so far, spending no attempt and billing nothing (usage comes only from a run
that finishes); any other exception fails the job, ``EngineFailed``'s message becoming its error.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol

from leeway.errors import EngineFailed, EngineRejected, EngineUnavailable
from leeway.jobs import Finish, Job, Message, Usage
from leeway.structured import ToolCall, Tools


@dataclass(frozen=True, slots=True)
class Chunk:
    """New text to show (a piece of the job's log); the last chunk of a generation also carries
    why it stopped, the exact usage and the tools the reply called (read by the engine from its
    own encoding, ids kept where the engine has them)."""

    text: str
    tokens: int = 0  # output tokens generated so far (earlier runs of the job included)
    finish: Finish | None = None
    usage: Usage | None = None
    stop_sequence: str | None = None
    calls: tuple[ToolCall, ...] = ()
    # text generated so far but not shown: held back where a stop sequence or a call may start
    # (a run that yields keeps it, so the next one continues after it)
    tail: str = ""
    reasoning: str = ""  # the last chunk: the reasoning before the reply (an upstream's)


__all__ = ["Chunk", "Engine", "EngineFailed", "EngineRejected", "EngineUnavailable"]


class Engine(Protocol):
    id: str  # names the engine in the store's engine leases: unique to a process if it is local
    model: str
    parallel: int  # sequences it decodes at once: the dispatcher keeps exactly this many running
    context: int  # tokens per sequence, prompt and output together

    async def start(self) -> None: ...

    def count_tokens(self, messages: Sequence[Message], tools: Tools | None = None) -> int:
        """Prompt tokens of these messages (and tools) once the model's chat template is
        applied."""

    def generate(self, job: Job) -> AsyncGenerator[Chunk, None]:
        """Run one job; the last chunk has ``finish`` and ``usage`` set. A job with
        ``partial_tokens`` continues after its ``partial_text`` (re-prefilled, not re-generated;
        its pieces were shown already, the rest of it is a tail held back).
        A job with an output format or tools replies as they require (how is the engine's
        business: a grammar, a guided-decoding parameter, a script)."""

    def ready(self) -> bool:
        """False while it must get no new work (not started, unhealthy, or backpressured)."""

    async def close(self) -> None: ...


def local_id(model: str) -> str:
    """An engine id for an engine inside this process: no other process fills it."""
    return f"{model}@{socket.gethostname()}:{os.getpid()}"
