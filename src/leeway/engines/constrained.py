"""Grammar-constrained sampling on llama.cpp: every token a sequence generates is one its grammar
allows, so the reply matches the grammar by construction.

Checking a whole vocabulary against a grammar on every step is slow (49k tokens for SmolLM2), so a
token is sampled as usual first and checked alone; only when the grammar rejects it is the step
sampled again from the candidates the grammar allows: the 256 likeliest, or, if the grammar allows
none of those, the whole vocabulary. (llama.cpp's own common sampler works the same way.)
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from typing import Any

import llama_cpp as ll
import numpy as np

_TOKEN = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
assert _TOKEN.itemsize == ctypes.sizeof(ll.llama_token_data)
_TOP = 256  # candidates checked first when a sampled token is rejected


class Grammars:
    """llama.cpp grammar samplers, each grammar parsed once; every sequence gets its own clone.
    The parsed ones kept are bounded by their grammars' bytes (``most``), least recently used out.
    Used from the decode thread only (its sequences share one scratch buffer for resampling)."""

    def __init__(self, vocab: Any, most: int = 16 * 1024 * 1024) -> None:
        self._vocab, self._most, self._bytes = vocab, most, 0
        self._parsed: OrderedDict[str, Any] = OrderedDict()
        n = ll.llama_vocab_n_tokens(vocab)
        self._scratch = np.zeros(n, dtype=_TOKEN), np.arange(n, dtype=np.int32)

    def constraint(self, grammar: str, closed: bool) -> Constraint:
        """A new sequence's grammar state, at the start of ``grammar``."""
        return Constraint(self._sampler(grammar), self._vocab, closed, self._scratch)

    def _sampler(self, grammar: str) -> Any:
        proto = self._parsed.get(grammar)
        if proto is None:
            proto = ll.llama_sampler_init_grammar(self._vocab, grammar.encode(), b"root")
            if not proto:
                raise RuntimeError("llama.cpp could not parse the grammar")
            self._parsed[grammar] = proto
            self._bytes += len(grammar)
            while self._bytes > self._most and len(self._parsed) > 1:
                text, old = self._parsed.popitem(last=False)
                self._bytes -= len(text)
                ll.llama_sampler_free(old)
        self._parsed.move_to_end(grammar)
        return ll.llama_sampler_clone(proto)

    def close(self) -> None:
        while self._parsed:
            ll.llama_sampler_free(self._parsed.popitem()[1])


class Constraint:
    """One sequence's grammar state."""

    def __init__(
        self, sampler: Any, vocab: Any, closed: bool, scratch: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """``scratch``: a buffer of one candidate per token, and every token id (shared)."""
        self._smpl, self._vocab, self._closed = sampler, vocab, closed
        self._buf, self._all = scratch
        self._n = len(self._all)
        self._eos = ll.llama_vocab_eos(vocab)
        self._one = (ll.llama_token_data * 1)()
        self._one_array = ll.llama_token_data_array(self._one, 1, -1, False)

    def allows(self, token: int) -> bool:
        one = self._one[0]
        one.id, one.logit, one.p = token, 0.0, 0.0  # type: ignore[assignment]
        self._one_array.size, self._one_array.selected = 1, -1
        ll.llama_sampler_apply(self._smpl, ctypes.byref(self._one_array))
        return bool(np.isfinite(self._one[0].logit))

    def accept(self, token: int) -> None:
        """Advance past ``token``; it must be one the grammar allows (llama.cpp aborts otherwise)."""
        ll.llama_sampler_accept(self._smpl, token)

    def replay(self, tokens: list[int]) -> None:
        """Advance past text generated before (a job resumed after yielding its sequence)."""
        for token in tokens:
            if not self.allows(token):
                raise RuntimeError("the text generated earlier does not match the grammar")
            self.accept(token)

    def complete(self) -> bool:
        """The reply is whole: the grammar is closed and allows ending here."""
        return self._closed and self.allows(self._eos)

    def choose(self, ctx: Any, chain: Any, index: int, token: int) -> int:
        """``token`` if the grammar allows it, else a token sampled (by ``chain``) from those it
        allows. The token is accepted unless it ends generation."""
        if not self.allows(token):
            token = self._resample(ctx, chain, index)
        if not ll.llama_vocab_is_eog(self._vocab, token):
            self.accept(token)
        return token

    def _resample(self, ctx: Any, chain: Any, index: int) -> int:
        logits = np.ctypeslib.as_array(ll.llama_get_logits_ith(ctx, index), shape=(self._n,))
        for k in (_TOP, self._n):
            ids = self._all if k >= self._n else np.argpartition(logits, -k)[-k:]
            buf = self._buf[: len(ids)]
            buf["id"], buf["logit"], buf["p"] = ids, logits[ids], 0.0
            array = ll.llama_token_data_array(
                buf.ctypes.data_as(ll.llama_token_data_p), len(ids), -1, False
            )
            ll.llama_sampler_apply(self._smpl, ctypes.byref(array))
            if np.isfinite(buf["logit"]).any():
                ll.llama_sampler_apply(chain, ctypes.byref(array))
                return int(buf["id"][array.selected])
        raise RuntimeError("the grammar allows no token here")

    def close(self) -> None:
        ll.llama_sampler_free(self._smpl)
