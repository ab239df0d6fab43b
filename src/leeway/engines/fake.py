"""A deterministic engine: replies ``fake fake1 fake2 …`` word by word, instantly or at a set pace."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from leeway.engines import Chunk
from leeway.engines.stops import StopMatcher
from leeway.jobs import Finish, Job, Message, Usage


class FakeEngine:
    def __init__(
        self,
        model: str,
        *,
        parallel: int = 8,
        context: int = 2048,
        tokens: int = 16,
        delay: float = 0.0,
    ) -> None:
        self.model, self.parallel, self.context = model, parallel, context
        self._tokens, self._delay = tokens, delay

    async def start(self) -> None:
        return None

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """One token per word plus three per message, like a chat template's role markers."""
        return sum(len(m.content.split()) + 3 for m in messages)

    async def generate(self, job: Job) -> AsyncGenerator[Chunk, None]:
        stops = StopMatcher(job.sampling.stop)
        n = min(self._tokens, job.sampling.max_output_tokens)
        for i in range(job.partial_tokens, n):
            if self._delay:
                await asyncio.sleep(self._delay)
            text = stops.feed(f"fake{i} " if i else "fake ")
            if stops.matched is not None:
                usage = Usage(job.prompt_tokens, i + 1)
                yield Chunk(text, i + 1, Finish.STOP, usage, stops.matched)
                return
            if text:
                yield Chunk(text, i + 1)
        finish = Finish.LENGTH if n < self._tokens else Finish.STOP
        yield Chunk(stops.flush(), n, finish, Usage(job.prompt_tokens, n))

    def ready(self) -> bool:
        return True

    async def close(self) -> None:
        return None
