"""Perplexity of the default engine's model on a fixed text, against the shipped Q4_1 GGUF on
llama.cpp: the Q8_0 copy OpenVINO loads must lose nothing the conversion can avoid (target: within
5%), and OpenVINO reading the Q4_1 file directly shows why it is not given that file.

The text (the opening of Pride and Prejudice, public domain) is tokenized once, with the model's own
tokenizer, cut into windows of --window tokens, and each window is scored token by token given the
tokens before it in the window: OpenVINO through ``echo`` with ``logprobs`` (the log-probability of
every prompt token), llama.cpp from the logits of every position.

    .venv/bin/python bench/perplexity.py [--window 256] [--skip-llamacpp]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import openvino as ov
import openvino_genai as ovg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from leeway.catalog import ModelConfig
from leeway.engines.gguf_file import default_model_path, for_openvino
from leeway.engines.openvino import pipeline

TEXT = """\
It is a truth universally acknowledged, that a single man in possession of a good fortune, must be \
in want of a wife. However little known the feelings or views of such a man may be on his first \
entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families, that \
he is considered the rightful property of some one or other of their daughters.
"My dear Mr. Bennet," said his lady to him one day, "have you heard that Netherfield Park is let at \
last?" Mr. Bennet replied that he had not. "But it is," returned she; "for Mrs. Long has just been \
here, and she told me all about it." Mr. Bennet made no answer. "Do you not want to know who has \
taken it?" cried his wife impatiently. "You want to tell me, and I have no objection to hearing it." \
This was invitation enough.
"Why, my dear, you must know, Mrs. Long says that Netherfield is taken by a young man of large \
fortune from the north of England; that he came down on Monday in a chaise and four to see the \
place, and was so much delighted with it, that he agreed with Mr. Morris immediately; that he is to \
take possession before Michaelmas, and some of his servants are to be in the house by the end of \
next week."
"What is his name?" "Bingley." "Is he married or single?" "Oh! Single, my dear, to be sure! A single \
man of large fortune; four or five thousand a year. What a fine thing for our girls!" "How so? How \
can it affect them?" "My dear Mr. Bennet," replied his wife, "how can you be so tiresome! You must \
know that I am thinking of his marrying one of them." "Is that his design in settling here?" \
"Design! Nonsense, how can you talk so! But it is very likely that he may fall in love with one of \
them, and therefore you must visit him as soon as he comes."
"I see no occasion for that. You and the girls may go, or you may send them by themselves, which \
perhaps will be still better, for as you are as handsome as any of them, Mr. Bingley may like you \
the best of the party." "My dear, you flatter me. I certainly have had my share of beauty, but I do \
not pretend to be anything extraordinary now. When a woman has five grown-up daughters, she ought to \
give over thinking of her own beauty."
Mr. Bennet was so odd a mixture of quick parts, sarcastic humour, reserve, and caprice, that the \
experience of three-and-twenty years had been insufficient to make his wife understand his \
character. Her mind was less difficult to develop. She was a woman of mean understanding, little \
information, and uncertain temper. When she was discontented, she fancied herself nervous. The \
business of her life was to get her daughters married; its solace was visiting and news.
"""


def windows(tokens: list[int], size: int) -> list[list[int]]:
    return [tokens[i : i + size] for i in range(0, len(tokens), size) if len(tokens) - i > 1]


def openvino_logprobs(path: Path, chunks: list[list[int]]) -> list[float]:
    """Log-probabilities of every token after the first of each window."""
    pipe = pipeline(path, ModelConfig("ppl", parallel=len(chunks), context=1024, batch_tokens=512))
    handles = []
    for i, chunk in enumerate(chunks):
        config = ovg.GenerationConfig()
        config.max_new_tokens, config.echo, config.logprobs, config.do_sample = 1, True, 1, False
        ids = ov.Tensor(np.array([chunk], dtype=np.int64))
        handles.append((len(chunk), pipe.add_request(i, ids, config)))
    while pipe.has_non_finished_requests():
        pipe.step()
    out: list[float] = []
    for n, handle in handles:
        [result] = handle.read_all()
        out += list(result.generated_log_probs[1:n])  # [0] stands for the first token: no context
    return out


def llamacpp_logprobs(chunks: list[list[int]]) -> list[float]:
    import llama_cpp as ll

    from leeway.engines.llama_model import Batch, LlamaModel

    size = max(map(len, chunks))
    llama = LlamaModel(default_model_path(), parallel=1, context=size, batch_tokens=size)
    n_vocab = ll.llama_vocab_n_tokens(llama.vocab)
    batch = Batch(size)
    out: list[float] = []
    for chunk in chunks:
        for pos, token in enumerate(chunk):
            batch.add(token, pos, 0, True)
        batch.decode(llama)
        for pos in range(len(chunk) - 1):
            logits = np.ctypeslib.as_array(ll.llama_get_logits_ith(llama.ctx, pos), (n_vocab,))
            top = float(logits.max())
            log_sum = top + math.log(float(np.exp(logits - top).sum()))
            out.append(float(logits[chunk[pos + 1]]) - log_sum)
        llama.forget(0)
    batch.close()
    llama.close()
    return out


def perplexity(logprobs: list[float]) -> float:
    return math.exp(-sum(logprobs) / len(logprobs))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--window", type=int, default=256, help="tokens scored together")
    parser.add_argument("--skip-llamacpp", action="store_true")
    args = parser.parse_args()

    shipped = default_model_path()
    q8 = for_openvino(shipped)
    pipe = pipeline(q8, ModelConfig("tok", parallel=1, context=1024, batch_tokens=64))
    tokens = [int(t) for t in pipe.get_tokenizer().encode(TEXT).input_ids.data[0]]
    del pipe
    chunks = windows(tokens, args.window)
    runs = [
        ("OpenVINO, Q8_0 copy (the default engine)", lambda: openvino_logprobs(q8, chunks)),
        ("OpenVINO, shipped Q4_1 read directly", lambda: openvino_logprobs(shipped, chunks)),
    ]
    if not args.skip_llamacpp:
        runs.append(("llama.cpp, shipped Q4_1", lambda: llamacpp_logprobs(chunks)))
    rows = []
    for name, run in runs:
        start = time.perf_counter()
        scored = run()
        rows.append((name, len(scored), perplexity(scored), time.perf_counter() - start))
    base = rows[-1][2]
    print(f"\n{len(tokens)} tokens in windows of {args.window}; ratio against the last row")
    print(f"{'model':<44} {'scored':>7} {'perplexity':>11} {'ratio':>6} {'secs':>6}")
    for name, n, ppl, secs in rows:
        print(f"{name:<44} {n:>7} {ppl:>11.2f} {ppl / base:>6.3f} {secs:>6.1f}")


if __name__ == "__main__":
    main()
