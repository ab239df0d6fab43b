"""A thin layer over llama.cpp's C API (through llama-cpp-python's ctypes bindings): one model, one
context holding ``parallel`` sequences of ``context`` tokens each, a token batch, per-sequence samplers,
the tokenizer and the model's own chat template (from its GGUF metadata)."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from pathlib import Path

import llama_cpp as ll

from leeway.engines.chat_template import ChatTemplate
from leeway.engines.constrained import Constraint
from leeway.engines.gguf_file import default_model_path
from leeway.errors import ConfigError
from leeway.jobs import Message, Sampling
from leeway.structured import Tools

__all__ = ["Batch", "LlamaModel", "Sampler", "default_model_path"]

_QUIET = ll.llama_log_callback(lambda level, text, data: None)


class LlamaModel:
    def __init__(
        self,
        path: Path,
        *,
        parallel: int,
        context: int,
        batch_tokens: int,
        threads: int | None = None,
    ) -> None:
        if not path.is_file():
            raise ConfigError(f"Model file {path} does not exist.")
        ll.llama_log_set(_QUIET, None)
        ll.llama_backend_init()
        self.model = ll.llama_model_load_from_file(
            str(path).encode(), ll.llama_model_default_params()
        )
        if not self.model:
            raise ConfigError(f"llama.cpp could not load {path}.")
        self.vocab = ll.llama_model_get_vocab(self.model)
        params = ll.llama_context_default_params()
        params.n_ctx = parallel * context
        params.n_seq_max = parallel
        params.n_batch = params.n_ubatch = batch_tokens
        params.n_threads = params.n_threads_batch = threads or os.cpu_count() or 1
        params.kv_unified = False  # each sequence owns `context` cells
        self.ctx = ll.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise ConfigError(f"llama.cpp could not create a context of {params.n_ctx} tokens.")
        self.memory = ll.llama_get_memory(self.ctx)
        self.parallel, self.context, self.batch_tokens = parallel, context, batch_tokens
        source = ll.llama_model_chat_template(self.model, None)
        self._template = ChatTemplate(
            source.decode() if source else "",
            bos=self.piece(ll.llama_vocab_bos(self.vocab), special=True).decode(errors="ignore"),
            eos=self.piece(ll.llama_vocab_eos(self.vocab), special=True).decode(errors="ignore"),
        )

    def prompt(self, messages: Sequence[Message], tools: Tools | None = None) -> str:
        return self._template.prompt(messages, tools)

    def tokenize(self, text: str) -> list[int]:
        data = text.encode()
        room = len(data) + 16
        tokens = (ll.llama_token * room)()
        n = ll.llama_tokenize(self.vocab, data, len(data), tokens, room, False, True)
        if n < 0:  # cannot happen (a token is at least one byte) but never trust a buffer size
            raise ValueError(f"tokenizer needed {-n} slots")
        return list(tokens[:n])

    def piece(self, token: int, *, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = ll.llama_token_to_piece(self.vocab, token, buf, 64, 0, special)
        if n > 64:
            buf = ctypes.create_string_buffer(n)
            n = ll.llama_token_to_piece(self.vocab, token, buf, n, 0, special)
        return buf.raw[:n]

    def longest_piece(self) -> int:
        """Bytes of the longest token's text (special tokens included): no prompt has fewer
        tokens than its bytes over this."""
        n = ll.llama_vocab_n_tokens(self.vocab)
        return max(1, max(len(self.piece(t, special=True)) for t in range(n)))

    def is_eog(self, token: int) -> bool:
        return bool(ll.llama_vocab_is_eog(self.vocab, token))

    def forget(self, seq: int) -> None:
        """Free every cache cell of sequence ``seq``."""
        ll.llama_memory_seq_rm(self.memory, seq, -1, -1)

    def close(self) -> None:
        ll.llama_free(self.ctx)
        ll.llama_model_free(self.model)


class Batch:
    """A reusable llama_batch of up to ``size`` tokens, one sequence id each."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.raw = ll.llama_batch_init(size, 0, 1)
        self.n = 0

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        """Append a token; returns its index (where its logits are read, if asked for)."""
        i, raw = self.n, self.raw
        raw.token[i], raw.pos[i], raw.n_seq_id[i] = token, pos, 1
        raw.seq_id[i][0], raw.logits[i] = seq, logits
        self.n += 1
        return i

    def decode(self, model: LlamaModel) -> None:
        self.raw.n_tokens = self.n
        rc = ll.llama_decode(model.ctx, self.raw)
        self.n = 0
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def close(self) -> None:
        ll.llama_batch_free(self.raw)


class Sampler:
    """One sequence's sampling chain: temperature, then top-p (OpenAI's order), then a draw; with a
    grammar, every token is one the grammar allows (``Constraint``)."""

    def __init__(self, sampling: Sampling, constraint: Constraint | None = None) -> None:
        self.constraint = constraint
        self.chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
        if sampling.temperature <= 0:
            ll.llama_sampler_chain_add(self.chain, ll.llama_sampler_init_greedy())
            return
        ll.llama_sampler_chain_add(self.chain, ll.llama_sampler_init_temp(sampling.temperature))
        if sampling.top_p < 1:
            ll.llama_sampler_chain_add(self.chain, ll.llama_sampler_init_top_p(sampling.top_p, 1))
        seed = sampling.seed if sampling.seed is not None else ll.LLAMA_DEFAULT_SEED
        ll.llama_sampler_chain_add(self.chain, ll.llama_sampler_init_dist(seed))

    def sample(self, model: LlamaModel, index: int) -> int:
        token = int(ll.llama_sampler_sample(self.chain, model.ctx, index))
        if self.constraint is not None:
            token = self.constraint.choose(model.ctx, self.chain, index, token)
        return token

    def complete(self) -> bool:
        """The grammar says the reply is whole."""
        return self.constraint is not None and self.constraint.complete()

    def close(self) -> None:
        ll.llama_sampler_free(self.chain)
        if self.constraint is not None:
            self.constraint.close()
