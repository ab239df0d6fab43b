"""The embedded engine: OpenVINO GenAI's continuous-batching pipeline on the CPU.

The pipeline runs in a decode process of its own (``engines.openvino_worker``: OpenVINO's ``step()``
holds the GIL through each inference, which would freeze this process's event loops). Each turn the
process adds the requests sent to it, runs one ``step()`` (OpenVINO's scheduler packs every running
sequence's next token and chunks of new prompts, up to ``batch_tokens``, into one inference, reusing
the KV cache of any prompt prefix it has computed) and sends back every request's new tokens. Here,
a reader thread turns them into text and hands each step's text to the event loop in one call.
Requests join and leave between steps.

The model is the configured GGUF file; a file with tensors OpenVINO imports lossily (the shipped
Q4_1 SmolLM2) is read through its Q8_0 copy (``engines.gguf_file``). Prompts are the model's chat
template tokenized by OpenVINO's tokenizer for that file (what ``count_tokens`` counts and usage
bills). Text comes from the GGUF's own vocabulary, byte-exact, through an incremental UTF-8 decoder;
stop strings are matched here (``engines.reply``) so no part of one ever reaches a client, and a
reply's tool calls are read back from their markup into typed calls. A job with
an output format or tools decodes under its ``leeway.grammar`` grammar, handed to OpenVINO's
structured output (xgrammar) as EBNF; a job resumed after yielding its sequence decodes under what
its grammar allows after the text it had (``grammar.residual``). OpenVINO has no per-request
priority: Leeway's dispatcher decides what runs, as for every engine. Its sampler draws every
request's tokens from one generator, so ``seed`` is best effort here.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import functools
import itertools
import logging
import multiprocessing
import random
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import openvino_genai as ovg

from leeway import grammar
from leeway.catalog import ModelConfig
from leeway.engines import Chunk, local_id, openvino_worker
from leeway.engines.chat_template import ChatTemplate
from leeway.engines.gguf_file import default_model_path, for_openvino, vocabulary
from leeway.engines.openvino_worker import compiled_cache, lane_config, pipeline
from leeway.engines.reply import ReplyFilter
from leeway.errors import EngineFailed
from leeway.grammar.residual import Cursor
from leeway.jobs import Finish, Job, Message, Sampling, Usage
from leeway.structured import Tools

__all__ = ["OpenVINOEngine", "pipeline", "template_of"]

log = logging.getLogger(__name__)

_GRAMMARS = 256  # grammars kept translated to EBNF
# how the decode process says a request ended without a reply (openvino_worker._step)
_FAILED = {
    "ignored": "the prompt does not fit the KV cache",
    "dropped": "OpenVINO's pipeline dropped the request",
}
Delivery = list[tuple["_Sequence", Chunk | BaseException]]  # one step's news, for the event loop


@dataclass(eq=False)
class _Sequence:
    """A generation in flight; its text is made by the reader thread."""

    prompt: list[int]  # what is prefilled: the formatted input, then any text generated earlier
    sampling: Sampling
    out: asyncio.Queue[Chunk | BaseException]
    input_tokens: int  # of the formatted input alone (what usage reports)
    generated: int  # output tokens so far, earlier runs of the job included
    resumed: str = ""  # the text earlier runs generated (its tokens are in the prompt)
    resumed_tokens: int = 0  # the output tokens earlier runs generated (billed once, by the last)
    grammar: grammar.Grammar | None = None  # the reply is constrained to this
    text: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    reply: ReplyFilter | None = None  # what of the text is shown, held, or a call
    done: bool = False


class OpenVINOEngine:
    def __init__(self, config: ModelConfig, id: str | None = None) -> None:
        self.model, self.parallel, self.context = config.id, config.parallel, config.context
        self.id = id or local_id(config.id)
        self._config = config
        self._tokenizer: Any = None
        self._template: ChatTemplate | None = None
        self._pieces: list[bytes] = []
        self._eog: set[int] = set()
        self._ebnf: OrderedDict[str, str] = OrderedDict()
        self._running: dict[int, _Sequence] = {}  # by request id
        self._requests = itertools.count()
        self._worker: BaseProcess | None = None
        self._conn: Connection | None = None
        self._sending = threading.Lock()
        self._reader: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        source = Path(self._config.path) if self._config.path else default_model_path()
        path = await asyncio.to_thread(for_openvino, source)
        spawn = multiprocessing.get_context("spawn")
        self._conn, child = spawn.Pipe()
        self._worker = spawn.Process(
            target=openvino_worker.serve,
            args=(child, str(path), self._config),
            name=f"openvino:{self.model}",
            daemon=True,
        )
        self._worker.start()
        child.close()
        # the decode process loads the model while this one reads the tokenizer and vocabulary
        self._tokenizer, (self._pieces, self._eog), _ = await asyncio.gather(
            asyncio.to_thread(tokenizer, path),
            asyncio.to_thread(vocabulary, path),
            asyncio.to_thread(self._await_ready),
        )
        self._template = template_of(self._tokenizer)
        self._reader = threading.Thread(
            target=self._read_loop, name=f"openvino-reader:{self.model}", daemon=True
        )
        self._reader.start()

    def _await_ready(self) -> None:
        assert self._conn is not None
        try:
            message = self._conn.recv()
        except EOFError:
            raise EngineFailed("The OpenVINO decode process died while loading.") from None
        assert message == ("ready",), message

    def ready(self) -> bool:
        alive = self._worker is not None and self._worker.is_alive()
        return alive and self._reader is not None and self._reader.is_alive()

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
            reply=ReplyFilter(job),
        )
        try:
            settings = self._settings(seq)
        except RuntimeError as e:  # the text generated earlier left the grammar
            raise EngineFailed(f"OpenVINO failed: {e}") from e
        if isinstance(settings, Chunk):
            yield settings
            return
        request = next(self._requests)
        self._running[request] = seq
        self._send(("add", request, seq.prompt, settings))
        try:
            while True:
                item = await seq.out.get()
                if isinstance(item, BaseException):
                    raise EngineFailed(f"OpenVINO failed: {item}") from item
                yield item
                if item.finish is not None:
                    return
        finally:
            if self._running.pop(request, None) is not None:  # abandoned: stop it there
                self._send(("cancel", request))

    def _settings(self, seq: _Sequence) -> dict[str, Any] | Chunk:
        """The request's GenerationConfig fields, or its final chunk if there is nothing to run
        (its grammar or its room is used up)."""
        s = seq.sampling
        room = self.context - len(seq.prompt)
        settings: dict[str, Any] = {
            "max_new_tokens": max(0, min(s.max_output_tokens - seq.generated, room)),
            "stop_token_ids": self._eog,
        }
        if s.temperature > 0:
            settings.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
            settings["rng_seed"] = s.seed if s.seed is not None else random.getrandbits(31)
        if seq.grammar is not None:
            cursor = self._cursor(seq.grammar, seq.resumed)
            if cursor is not None and cursor.ended():  # the reply was whole when it yielded
                return self._final(seq, "", Finish.STOP)
            text = seq.grammar.text
            settings["grammar"] = cursor.rest() if cursor is not None else self._translated(text)
        if settings["max_new_tokens"] <= 0:
            return self._final(seq, "", Finish.LENGTH)
        return settings

    def _cursor(self, g: grammar.Grammar, resumed: str) -> Cursor | None:
        """Where the grammar stands after the text generated earlier (None: at its start)."""
        if not resumed:
            return None
        cursor = Cursor(g.text)
        cursor.feed(resumed)
        if g.closed and cursor.complete():
            cursor.stacks = {()}  # a closed grammar's reply ends as soon as it may
        return cursor

    def _translated(self, text: str) -> str:
        """The grammar as xgrammar's EBNF, its repetitions spelled out as rules: xgrammar's own
        ``{m,n}`` makes every step check each token against the count (4x slower per token on
        a 400-character string)."""
        if (ebnf := self._ebnf.get(text)) is None:
            ebnf = self._ebnf[text] = Cursor(text).rest()
            while len(self._ebnf) > _GRAMMARS:
                self._ebnf.popitem(last=False)
        self._ebnf.move_to_end(text)
        return ebnf

    def _send(self, message: tuple[Any, ...]) -> None:
        assert self._conn is not None
        with self._sending:
            try:
                self._conn.send(message)
            except (BrokenPipeError, OSError):  # the decode process is gone: the reader says so
                log.warning("OpenVINO decode process gone; dropped %s", message[0])

    async def close(self) -> None:
        if self._worker is not None:
            self._send(("close",))
            await asyncio.to_thread(self._worker.join, 30)
            if self._worker.is_alive():
                self._worker.kill()
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join)
        if self._conn is not None:
            self._conn.close()

    # -- the reader thread -------------------------------------------------------------------

    def _read_loop(self) -> None:
        assert self._conn is not None and self._loop is not None
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                gone = RuntimeError("the decode process stopped")
                out: Delivery = [(seq, gone) for seq in self._running.values()]
                self._running.clear()
                if out:
                    self._loop.call_soon_threadsafe(_deliver, out)
                return
            if message[0] == "tokens":
                out = self._read(message[1])
            else:  # ("failed", requests, why)
                why = RuntimeError(message[2])
                out = [(seq, why) for r in message[1] if (seq := self._running.pop(r, None))]
            if out:
                self._loop.call_soon_threadsafe(_deliver, out)

    def _read(self, outputs: list[tuple[int, list[int], str]]) -> Delivery:
        out: Delivery = []
        for request, tokens, finish in outputs:
            if (seq := self._running.get(request)) is None or seq.done:
                continue  # abandoned, or ended here (a stop string) while it ran on
            if (why := _FAILED.get(finish)) is not None:
                self._running.pop(request, None)
                out.append((seq, RuntimeError(why)))
                continue
            chunk = self._next_tokens(seq, tokens, finish)
            if chunk is None:
                continue
            out.append((seq, chunk))
            if chunk.finish is not None:
                seq.done = True
                self._running.pop(request, None)
                if not finish:  # ended here (a stop string, the output cap): stop it there
                    self._send(("cancel", request))
        return out

    def _next_tokens(self, seq: _Sequence, tokens: list[int], finish: str) -> Chunk | None:
        assert seq.reply is not None
        reply, text = seq.reply, ""
        for token in tokens:
            if token in self._eog:
                return self._final(seq, text + self._flush(seq), Finish.STOP)
            seq.generated += 1
            text += reply.feed(seq.text.decode(self._pieces[token]))
            if reply.stop_sequence is not None:
                return self._final(seq, text, Finish.STOP)
            room = self.context - len(seq.prompt) - (seq.generated - seq.resumed_tokens)
            if seq.generated >= seq.sampling.max_output_tokens or room <= 0:
                return self._final(seq, text + self._flush(seq), Finish.LENGTH)
        if finish:  # ended by the grammar or by OpenVINO
            ending = Finish.LENGTH if finish == "length" else Finish.STOP
            return self._final(seq, text + self._flush(seq), ending)
        return Chunk(text, seq.generated, tail=reply.tail) if text else None

    def _flush(self, seq: _Sequence) -> str:
        assert seq.reply is not None
        return seq.reply.feed(seq.text.decode(b"", final=True))

    def _final(self, seq: _Sequence, text: str, finish: Finish) -> Chunk:
        assert seq.reply is not None
        reply = seq.reply
        if reply.stop_sequence is None:
            text += reply.flush()
        usage = Usage(seq.input_tokens, seq.generated)
        return Chunk(text, seq.generated, finish, usage, reply.stop_sequence, reply.calls())


@functools.cache  # engines of one model file share it
def tokenizer(path: Path) -> Any:
    """OpenVINO's tokenizer for the GGUF file (built from it; compiled once, then cached)."""
    return ovg.Tokenizer(str(path), CACHE_DIR=compiled_cache())


def template_of(tokenizer: Any) -> ChatTemplate:
    return ChatTemplate(
        tokenizer.chat_template, tokenizer.get_bos_token(), tokenizer.get_eos_token()
    )


def _deliver(out: Delivery) -> None:
    """On the event loop: hand one step's new text to every waiting generation."""
    for seq, item in out:
        seq.out.put_nowait(item)


def self_check() -> None:
    """Convert the default model (once), load it and decode one token: proves the OpenVINO wheels
    run on this CPU. The model compiles as a default one would (precision follows ``parallel``)
    and is cached, so that ``leeway serve`` then loads it in seconds (its f32 lane too)."""
    path = for_openvino(default_model_path())
    config = ModelConfig("self-check", context=256)
    if (lane := lane_config(config)) is not None:
        pipeline(path, lane)
    pipe = pipeline(path, config)
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
