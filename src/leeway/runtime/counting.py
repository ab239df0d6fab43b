"""Counting a prompt's tokens with the engine that serves its model (its tokenizer and chat
template), whichever runtime asks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from leeway.engines import Engine
from leeway.jobs import Message
from leeway.runtime import Health, TokenCount
from leeway.structured import Tools


class Counters:
    """Each model's first engine, which counts the model's tokens."""

    def __init__(self, engines: Sequence[Engine]) -> None:
        self._by_model: dict[str, Engine] = {}
        for engine in engines:
            self._by_model.setdefault(engine.model, engine)

    def count_tokens(
        self, model: str, messages: Sequence[Message], tools: Tools | None
    ) -> TokenCount | None:
        engine = self._by_model.get(model)
        if engine is None:
            return None
        return TokenCount(engine.count_tokens(messages, tools), engine.context)

    def health(self, running: Mapping[str, int]) -> Health:
        engines = {
            m: {"ready": e.ready(), "parallel": e.parallel, "running": running.get(m, 0)}
            for m, e in self._by_model.items()
        }
        return Health(all(e["ready"] for e in engines.values()), engines)
