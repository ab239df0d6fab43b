"""A deterministic engine: replies ``fake fake1 fake2 …`` word by word, instantly or at a set pace.

A job with an output format or tools gets a structured reply instead, so tests and gateway
benchmarks can use formats and tools without a model: the smallest value that matches the format's
schema (``leeway.grammar.instance``), or a call of the first allowed tool with the smallest
arguments that match its parameters. Under ``tool_choice: auto`` it calls a tool unless the last
message is a tool result, which it answers with text (or the format's value): a two-turn tool loop.
The structured reply is streamed in pieces of four characters, one token each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from leeway.engines import Chunk
from leeway.engines.reply import ReplyFilter
from leeway.grammar.calls import NO_PARAMETERS, encode
from leeway.grammar.instance import minimal
from leeway.grammar.schema import compact
from leeway.jobs import Finish, Job, Message, Usage
from leeway.structured import ToolCall, ToolChoice, ToolKind, Tools

_PIECE = 4  # characters per token of a structured reply


class FakeEngine:
    def __init__(
        self,
        model: str,
        *,
        parallel: int = 8,
        context: int = 2048,
        tokens: int = 16,
        delay: float = 0.0,
        id: str | None = None,
    ) -> None:
        self.model, self.parallel, self.context = model, parallel, context
        self.id = id or model
        self._tokens, self._delay = tokens, delay

    async def start(self) -> None:
        return None

    def count_tokens(self, messages: Sequence[Message], tools: Tools | None = None) -> int:
        """One token per word plus three per message, like a chat template's role markers (and
        ten per tool)."""
        shown = 0 if tools is None else 10 * len(tools.tools)
        return sum(len(m.content.split()) + 3 for m in messages) + shown

    async def generate(self, job: Job) -> AsyncGenerator[Chunk, None]:
        structured = _structured(job)
        if structured is None:
            pieces = [f"fake{i} " if i else "fake " for i in range(self._tokens)]
        else:
            pieces = [structured[i : i + _PIECE] for i in range(0, len(structured), _PIECE)]
        reply = ReplyFilter(job)
        n = min(len(pieces), job.sampling.max_output_tokens)
        for i in range(job.partial_tokens, n):
            if self._delay:
                await asyncio.sleep(self._delay)
            text = reply.feed(pieces[i])
            if reply.stop_sequence is not None:
                usage = Usage(job.prompt_tokens, i + 1)
                yield Chunk(text, i + 1, Finish.STOP, usage, reply.stop_sequence, reply.calls())
                return
            if text:
                yield Chunk(text, i + 1, tail=reply.tail)
        finish = Finish.LENGTH if n < len(pieces) else Finish.STOP
        usage = Usage(job.prompt_tokens, n)
        yield Chunk(reply.flush(), n, finish, usage, calls=reply.calls())

    def ready(self) -> bool:
        return True

    async def close(self) -> None:
        return None


def _structured(job: Job) -> str | None:
    tools = job.tools
    if tools is not None and (allowed := tools.allowed()):
        answering = bool(job.messages) and job.messages[-1].role == "tool"
        if tools.choice is ToolChoice.REQUIRED or not answering:
            tool = allowed[0]
            if tool.kind is ToolKind.CUSTOM:
                return encode(ToolCall("", tool.name, "", tool.kind))
            args = compact(minimal(tool.parameters or NO_PARAMETERS))
            return encode(ToolCall("", tool.name, args, tool.kind))
    if job.output_format is not None:
        schema = job.output_format.schema
        return compact(minimal(schema if schema is not None else {"type": "object"}))
    return None
