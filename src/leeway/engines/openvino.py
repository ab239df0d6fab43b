"""The embedded engine: OpenVINO GenAI's continuous-batching pipeline on the CPU.

One decode thread owns the pipeline. Each turn it adds the waiting sequences as requests (their
prompt as token ids, their sampling as a ``GenerationConfig``), runs one ``step()`` (OpenVINO's
scheduler packs every running sequence's next token and chunks of new prompts, up to
``batch_tokens``, into one inference, reusing the KV cache of any prompt prefix it has seen), reads
the new tokens of every request and hands the new text to the event loop in one call. Requests join
and leave between steps. Decoding never runs on the event loop.

The model is the configured GGUF file; a file with tensors OpenVINO imports lossily (the shipped
Q4_1 SmolLM2) is read through its Q8_0 copy (``engines.gguf_file``). Text comes from the GGUF's own
vocabulary, byte-exact, through an incremental UTF-8 decoder; stop strings are matched here
(``engines.stops``) so no part of one ever reaches a client. A job with an output format or tools
decodes under its ``leeway.grammar`` grammar, handed to OpenVINO's structured output (xgrammar) as
EBNF; a job resumed after yielding its sequence decodes under what its grammar allows after the text
it had (``grammar.residual``). OpenVINO has no per-request priority: Leeway's dispatcher decides
what runs, as for every engine.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import itertools
import logging
import queue
import random
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino_genai as ovg

from leeway import grammar
from leeway.catalog import ModelConfig
from leeway.engines import Chunk, local_id
from leeway.engines.chat_template import ChatTemplate
from leeway.engines.gguf_file import default_model_path, for_openvino, vocabulary
from leeway.engines.stops import StopMatcher
from leeway.errors import EngineFailed
from leeway.grammar import gbnf
from leeway.grammar.residual import Cursor
from leeway.jobs import Finish, Job, Message, Sampling, Usage
from leeway.structured import Tools

log = logging.getLogger(__name__)

_GRAMMARS = 256  # grammars kept translated to EBNF


@dataclass(eq=False)
class _Sequence:
    """A generation in flight, owned by the decode thread once added."""

    prompt: list[int]  # what is prefilled: the formatted input, then any text generated earlier
    sampling: Sampling
    out: asyncio.Queue[Chunk | BaseException]
    input_tokens: int  # of the formatted input alone (what usage reports)
    generated: int  # output tokens so far, earlier runs of the job included
    resumed: str = ""  # the text earlier runs generated (its tokens are in the prompt)
    resumed_tokens: int = 0  # the output tokens earlier runs generated (billed once, by the last)
    grammar: grammar.Grammar | None = None  # the reply is constrained to this
    handle: Any = None  # OpenVINO's GenerationHandle once added
    text: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    stops: StopMatcher = field(default_factory=lambda: StopMatcher(()))
    cancelled: bool = False


class OpenVINOEngine:
    def __init__(self, config: ModelConfig, id: str | None = None) -> None:
        self.model, self.parallel, self.context = config.id, config.parallel, config.context
        self.id = id or local_id(config.id)
        self._config = config
        self._pipe: Any = None
        self._tokenizer: Any = None
        self._template: ChatTemplate | None = None
        self._pieces: list[bytes] = []
        self._eog: set[int] = set()
        self._ebnf: OrderedDict[str, str] = OrderedDict()  # owned by the decode thread
        self._waiting: queue.SimpleQueue[_Sequence | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        source = Path(self._config.path) if self._config.path else default_model_path()
        path = await asyncio.to_thread(for_openvino, source)
        # the pipeline compiles in OpenVINO (the GIL released) while Python reads the vocabulary
        self._pipe, (self._pieces, self._eog) = await asyncio.gather(
            asyncio.to_thread(pipeline, path, self._config),
            asyncio.to_thread(vocabulary, path),
        )
        self._tokenizer = self._pipe.get_tokenizer()
        self._eog |= set(self._pipe.get_config().stop_token_ids)
        self._template = template_of(self._tokenizer)
        self._thread = threading.Thread(
            target=self._decode_loop, name=f"openvino:{self.model}", daemon=True
        )
        self._thread.start()

    def ready(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def count_tokens(self, messages: Sequence[Message], tools: Tools | None = None) -> int:
        return len(self._tokens(messages, tools))

    def tokenize(self, text: str) -> list[int]:
        if self._tokenizer is None:
            raise EngineFailed("The OpenVINO engine has not started.")
        if not text:
            return []
        ids = self._tokenizer.encode(text, add_special_tokens=False).input_ids.data
        return [int(t) for t in ids[0]]

    def _tokens(self, messages: Sequence[Message], tools: Tools | None) -> list[int]:
        if self._template is None:
            raise EngineFailed("The OpenVINO engine has not started.")
        return self.tokenize(self._template.prompt(messages, tools))

    async def generate(self, job: Job) -> AsyncGenerator[Chunk, None]:
        prompt = self._tokens(job.messages, job.tools)
        seq = _Sequence(
            prompt + self.tokenize(job.partial_text),
            job.sampling,
            asyncio.Queue(),
            input_tokens=len(prompt),
            generated=job.partial_tokens,
            resumed=job.partial_text,
            resumed_tokens=job.partial_tokens,
            grammar=grammar.for_job(job),
            stops=StopMatcher(job.sampling.stop),
        )
        self._waiting.put(seq)
        try:
            while True:
                item = await seq.out.get()
                if isinstance(item, BaseException):
                    raise EngineFailed(f"OpenVINO failed: {item}") from item
                yield item
                if item.finish is not None:
                    return
        finally:
            seq.cancelled = True  # a no-op once finished; otherwise the decode thread drops it

    async def close(self) -> None:
        if self._thread is not None:
            self._waiting.put(None)
            await asyncio.to_thread(self._thread.join)
        self._pipe = None

    # -- the decode thread -------------------------------------------------------------------

    def _decode_loop(self) -> None:
        active: dict[int, _Sequence] = {}
        ids = itertools.count()
        while self._admit(active, ids, block=not active):
            out = self._step(active)
            if out:
                assert self._loop is not None
                self._loop.call_soon_threadsafe(_deliver, out)
        for seq in active.values():
            seq.handle.cancel()
        if active:
            self._pipe.step()  # lets the scheduler free the cancelled requests' KV blocks

    def _admit(self, active: dict[int, _Sequence], ids: itertools.count[int], block: bool) -> bool:
        """Add waiting sequences as requests; False once the engine is closing."""
        out: list[tuple[_Sequence, Chunk | BaseException]] = []
        while True:
            try:
                seq = self._waiting.get(block=block and not out)
            except queue.Empty:
                break
            if seq is None:
                return False
            if seq.cancelled:
                continue
            try:
                if (final := self._add(seq, next(ids))) is not None:
                    out.append((seq, final))
                    continue
            except (RuntimeError, ValueError) as e:
                out.append((seq, e))
                continue
            active[id(seq)] = seq
            block = False
        if out:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(_deliver, out)
        return True

    def _add(self, seq: _Sequence, request: int) -> Chunk | None:
        """Add ``seq`` to the pipeline, or answer it at once (its grammar or room is used up)."""
        config = self._generation_config(seq)
        if seq.grammar is not None:
            cursor = self._cursor(seq.grammar, seq.resumed)
            if cursor is not None and cursor.ended():  # the reply was complete when it yielded
                return self._final(seq, "", Finish.STOP)
            rest = cursor.rest() if cursor is not None else self._translated(seq.grammar.text)
            config.structured_output_config = ovg.StructuredOutputConfig(grammar=rest)
        if config.max_new_tokens <= 0:
            return self._final(seq, "", Finish.LENGTH)
        config.validate()
        tokens = ov.Tensor(np.array([seq.prompt], dtype=np.int64))
        seq.handle = self._pipe.add_request(request, tokens, config)
        return None

    def _generation_config(self, seq: _Sequence) -> Any:
        s = seq.sampling
        config = ovg.GenerationConfig()
        room = self.context - len(seq.prompt)
        config.max_new_tokens = max(0, min(s.max_output_tokens - seq.generated, room))
        config.stop_token_ids = self._eog
        config.eos_token_id = min(self._eog) if self._eog else -1
        if s.temperature > 0:
            config.do_sample = True
            config.temperature = s.temperature
            config.top_p = s.top_p
            config.rng_seed = s.seed if s.seed is not None else random.getrandbits(31)
        return config

    def _cursor(self, g: grammar.Grammar, resumed: str) -> Cursor | None:
        """Where the grammar stands after the text generated earlier (None: at its start)."""
        if not resumed:
            return None
        cursor = Cursor(g.text)
        cursor.feed(resumed)
        if g.closed and cursor.complete() and not cursor.ended():
            cursor.stacks = {()}  # a closed grammar's reply ends as soon as it may
        return cursor

    def _translated(self, text: str) -> str:
        if (ebnf := self._ebnf.get(text)) is None:
            ebnf = self._ebnf[text] = gbnf.ebnf(gbnf.parse(text))
            while len(self._ebnf) > _GRAMMARS:
                self._ebnf.popitem(last=False)
        self._ebnf.move_to_end(text)
        return ebnf

    def _step(self, active: dict[int, _Sequence]) -> list[tuple[_Sequence, Chunk | BaseException]]:
        for key, seq in list(active.items()):
            if seq.cancelled:
                seq.handle.cancel()
                del active[key]
        out: list[tuple[_Sequence, Chunk | BaseException]] = []
        if not active:
            return out
        try:
            self._pipe.step()
        except RuntimeError as e:
            log.exception("step failed; failing %d sequences", len(active))
            for seq in active.values():
                seq.handle.cancel()
                out.append((seq, e))
            active.clear()
            return out
        for key, seq in list(active.items()):
            item = self._read(seq)
            if item is None:
                continue
            out.append((seq, item))
            if isinstance(item, BaseException) or item.finish is not None:
                del active[key]
        return out

    def _read(self, seq: _Sequence) -> Chunk | BaseException | None:
        handle = seq.handle
        if not handle.can_read():
            if handle.get_status() == ovg.GenerationStatus.IGNORED:
                return RuntimeError("the prompt does not fit the engine's KV cache")
            return None
        tokens: list[int] = []
        reason = ovg.GenerationFinishReason.NONE
        for output in handle.read().values():
            tokens += output.generated_ids
            reason = output.finish_reason
        chunk = self._next_tokens(seq, tokens, reason)
        if (
            chunk is not None
            and chunk.finish is not None
            and reason == ovg.GenerationFinishReason.NONE
        ):
            handle.cancel()  # ended here (a stop string): OpenVINO would go on
        return chunk

    def _next_tokens(self, seq: _Sequence, tokens: list[int], reason: Any) -> Chunk | None:
        text = ""
        for token in tokens:
            if token in self._eog:
                return self._final(seq, text + self._flush(seq), Finish.STOP)
            seq.generated += 1
            text += seq.stops.feed(seq.text.decode(self._pieces[token]))
            if seq.stops.matched is not None:
                return self._final(seq, text, Finish.STOP)
            room = self.context - len(seq.prompt) - (seq.generated - seq.resumed_tokens)
            if seq.generated >= seq.sampling.max_output_tokens or room <= 0:
                return self._final(seq, text + self._flush(seq), Finish.LENGTH)
        if reason != ovg.GenerationFinishReason.NONE:  # ended by the grammar or OpenVINO
            finish = Finish.LENGTH if reason == ovg.GenerationFinishReason.LENGTH else Finish.STOP
            return self._final(seq, text + self._flush(seq), finish)
        return Chunk(text, seq.generated) if text else None

    def _flush(self, seq: _Sequence) -> str:
        return seq.stops.feed(seq.text.decode(b"", final=True))

    def _final(self, seq: _Sequence, text: str, finish: Finish) -> Chunk:
        if seq.stops.matched is None:
            text += seq.stops.flush()
        usage = Usage(seq.input_tokens, seq.generated)
        return Chunk(text, seq.generated, finish, usage, seq.stops.matched)


def pipeline(
    path: Path,
    config: ModelConfig,
    *,
    prefix_caching: bool = True,
    properties: dict[str, object] | None = None,
) -> Any:
    """OpenVINO GenAI's continuous-batching pipeline for the model at ``path``; ``properties``:
    the CPU plugin's (benches try KV cache precision, inference precision and threads with it)."""
    scheduler = ovg.SchedulerConfig()
    scheduler.max_num_seqs = config.parallel
    scheduler.max_num_batched_tokens = config.batch_tokens
    scheduler.enable_prefix_caching = prefix_caching
    scheduler.dynamic_split_fuse = True
    scheduler.cache_size = 0  # the KV cache grows as sequences need it
    plugin = dict(properties or {})
    if config.threads:
        plugin["INFERENCE_NUM_THREADS"] = config.threads
    return ovg.ContinuousBatchingPipeline(str(path), scheduler, "CPU", plugin)


def template_of(tokenizer: Any) -> ChatTemplate:
    return ChatTemplate(
        tokenizer.chat_template, tokenizer.get_bos_token(), tokenizer.get_eos_token()
    )


def _deliver(out: list[tuple[_Sequence, Chunk | BaseException]]) -> None:
    """On the event loop: hand one step's new text to every waiting generation."""
    for seq, item in out:
        seq.out.put_nowait(item)


def self_check() -> None:
    """Convert the default model (once), load it and decode one token: proves the OpenVINO wheels
    run on this CPU."""
    path = for_openvino(default_model_path())
    pipe = pipeline(path, ModelConfig("self-check", parallel=1, context=256, batch_tokens=64))
    tokenizer = pipe.get_tokenizer()
    prompt = tokenizer.encode(template_of(tokenizer).prompt([Message("user", "Hi")]))
    config = ovg.GenerationConfig()
    config.max_new_tokens = 1
    handle = pipe.add_request(0, prompt.input_ids, config)
    while pipe.has_non_finished_requests():
        pipe.step()
    [output] = handle.read_all()
    text = tokenizer.decode(output.generated_ids)
    print(f"OpenVINO self-check ok ({path.name}): first token {text!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="OpenVINO engine tools")
    parser.add_argument("--self-check", action="store_true", help="decode one token and exit")
    if parser.parse_args().self_check:
        self_check()
