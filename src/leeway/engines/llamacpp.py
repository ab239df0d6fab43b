"""The embedded engine: llama.cpp on the CPU with continuous batching.

One decode thread owns the llama.cpp context. Each step it admits waiting sequences into free slots,
builds one batch (one token for every sequence that is generating, plus prompt chunks of sequences
still being prefilled, up to ``batch_tokens``), decodes it, samples every sequence that produced
logits, and hands the new text to the event loop in one call. Sequences join and leave between steps,
so the batch stays full while work is waiting. Decoding never runs on the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import logging
import queue
import threading
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from leeway.engines import Chunk
from leeway.engines.llama_model import Batch, LlamaModel, Sampler, default_model_path
from leeway.engines.stops import StopMatcher
from leeway.errors import EngineFailed
from leeway.jobs import Finish, Job, Message, Sampling, Usage
from leeway.settings import ModelConfig

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Sequence:
    """A generation in flight, owned by the decode thread once admitted."""

    prompt: list[int]
    sampling: Sampling
    out: asyncio.Queue[Chunk | BaseException]
    slot: int = -1
    fed: int = 0  # prompt tokens already decoded
    generated: int = 0
    last: int = 0  # the last sampled token, fed back next step
    sampler: Sampler | None = None
    text: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    stops: StopMatcher = field(default_factory=lambda: StopMatcher(()))
    cancelled: bool = False


class LlamaCppEngine:
    def __init__(self, config: ModelConfig) -> None:
        self.model, self.parallel, self.context = config.id, config.parallel, config.context
        self._config = config
        self._llama: LlamaModel | None = None
        self._waiting: queue.SimpleQueue[_Sequence | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        path = Path(self._config.path) if self._config.path else default_model_path()
        self._llama = await asyncio.to_thread(
            LlamaModel,
            path,
            parallel=self.parallel,
            context=self.context,
            batch_tokens=self._config.batch_tokens,
            threads=self._config.threads,
        )
        self._thread = threading.Thread(
            target=self._decode_loop,
            args=(self._llama,),
            name=f"llamacpp:{self.model}",
            daemon=True,
        )
        self._thread.start()

    def ready(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self._tokens(messages))

    def _tokens(self, messages: Sequence[Message]) -> list[int]:
        if self._llama is None:
            raise EngineFailed("The llama.cpp engine has not started.")
        return self._llama.tokenize(self._llama.prompt(messages))

    async def generate(self, job: Job) -> AsyncGenerator[Chunk, None]:
        seq = _Sequence(
            self._tokens(job.messages),
            job.sampling,
            asyncio.Queue(),
            stops=StopMatcher(job.sampling.stop),
        )
        self._waiting.put(seq)
        try:
            while True:
                item = await seq.out.get()
                if isinstance(item, BaseException):
                    raise EngineFailed(f"llama.cpp failed: {item}") from item
                yield item
                if item.finish is not None:
                    return
        finally:
            seq.cancelled = True  # a no-op once finished; otherwise the decode thread drops it

    async def close(self) -> None:
        if self._thread is not None:
            self._waiting.put(None)
            await asyncio.to_thread(self._thread.join)
        if self._llama is not None:
            self._llama.close()

    # -- the decode thread -------------------------------------------------------------------

    def _decode_loop(self, llama: LlamaModel) -> None:
        batch = Batch(llama.batch_tokens)
        free = list(range(self.parallel - 1, -1, -1))
        active: list[_Sequence] = []
        try:
            while self._admit(llama, active, free, block=not active):
                self._step(llama, batch, active, free)
        finally:
            for seq in active:
                _release(llama, seq, free)
            batch.close()

    def _admit(
        self, llama: LlamaModel, active: list[_Sequence], free: list[int], block: bool
    ) -> bool:
        """Move waiting sequences into free slots; False once the engine is closing."""
        while free:
            try:
                seq = self._waiting.get(block=block)
            except queue.Empty:
                return True
            if seq is None:
                return False
            block = False
            if seq.cancelled:
                continue
            seq.slot, seq.sampler = free.pop(), Sampler(seq.sampling)
            active.append(seq)
        # llama.cpp decodes a batch whose tokens are ordered by sequence id in far fewer pieces
        # (with one KV stream per sequence, an unordered batch runs up to 3x slower).
        active.sort(key=lambda s: s.slot)
        return True

    def _step(
        self, llama: LlamaModel, batch: Batch, active: list[_Sequence], free: list[int]
    ) -> None:
        for seq in [s for s in active if s.cancelled]:
            active.remove(seq)
            _release(llama, seq, free)
        sampled: list[tuple[_Sequence, int]] = []
        for seq in active:  # every generating sequence gets its next token first
            if seq.fed == len(seq.prompt):
                pos = len(seq.prompt) + seq.generated - 1
                sampled.append((seq, batch.add(seq.last, pos, seq.slot, True)))
        for seq in active:  # then prompt chunks fill what room is left
            room = batch.size - batch.n
            if seq.fed < len(seq.prompt) and room > 0:
                end = min(len(seq.prompt), seq.fed + room)
                for pos in range(seq.fed, end):
                    index = batch.add(seq.prompt[pos], pos, seq.slot, pos == len(seq.prompt) - 1)
                seq.fed = end
                if end == len(seq.prompt):
                    sampled.append((seq, index))
        if batch.n == 0:
            return
        out: list[tuple[_Sequence, Chunk | BaseException]] = []
        try:
            batch.decode(llama)
        except RuntimeError as e:
            log.exception("decode failed; failing %d sequences", len(active))
            out = [(seq, e) for seq in active]
            sampled = []
        for seq, index in sampled:
            if (chunk := self._next_token(llama, seq, index)) is not None:
                out.append((seq, chunk))
        for seq, item in out:
            if isinstance(item, BaseException) or item.finish is not None:
                active.remove(seq)
                _release(llama, seq, free)
        if out:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(_deliver, out)

    def _next_token(self, llama: LlamaModel, seq: _Sequence, index: int) -> Chunk | None:
        assert seq.sampler is not None
        token = seq.sampler.sample(llama, index)
        if llama.is_eog(token):
            return self._final(seq, seq.stops.feed(seq.text.decode(b"", final=True)), Finish.STOP)
        seq.generated += 1
        seq.last = token
        text = seq.stops.feed(seq.text.decode(llama.piece(token)))
        if seq.stops.matched is not None:
            return self._final(seq, text, Finish.STOP)
        room = self.context - len(seq.prompt) - seq.generated
        if seq.generated >= seq.sampling.max_output_tokens or room <= 0:
            return self._final(
                seq, text + seq.stops.feed(seq.text.decode(b"", final=True)), Finish.LENGTH
            )
        return Chunk(text) if text else None

    def _final(self, seq: _Sequence, text: str, finish: Finish) -> Chunk:
        if seq.stops.matched is None:
            text += seq.stops.flush()
        usage = Usage(len(seq.prompt), seq.generated)
        return Chunk(text, finish, usage, seq.stops.matched)


def _deliver(out: list[tuple[_Sequence, Chunk | BaseException]]) -> None:
    """On the event loop: hand one step's new text to every waiting generation."""
    for seq, item in out:
        seq.out.put_nowait(item)


def _release(llama: LlamaModel, seq: _Sequence, free: list[int]) -> None:
    llama.forget(seq.slot)
    free.append(seq.slot)
    if seq.sampler is not None:
        seq.sampler.close()
        seq.sampler = None


def self_check() -> None:
    """Load the default model and decode one token: proves the llama.cpp build runs here (a build
    for another CPU dies with an illegal instruction at the first decode)."""
    llama = LlamaModel(default_model_path(), parallel=1, context=256, batch_tokens=64)
    tokens = llama.tokenize(llama.prompt([Message("user", "Hi")]))
    batch = Batch(64)
    for pos, token in enumerate(tokens):
        batch.add(token, pos, 0, pos == len(tokens) - 1)
    batch.decode(llama)
    sampler = Sampler(Sampling(max_output_tokens=1, temperature=0))
    token = sampler.sample(llama, len(tokens) - 1)
    print(f"llama.cpp self-check ok: first token {llama.piece(token)!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="llama.cpp engine tools")
    parser.add_argument("--self-check", action="store_true", help="decode one token and exit")
    if parser.parse_args().self_check:
        self_check()
